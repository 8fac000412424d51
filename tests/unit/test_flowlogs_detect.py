"""The flow-log detectors: port scans, exfiltration, long-lived connections, new countries."""

from __future__ import annotations

import math
import random
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa
import pytest

from streams.flowlogs.detect import (
    WINDOW_SECONDS,
    Alert,
    DetectorSettings,
    address_kind,
    baseline_keys,
    continued_connections,
    country_keys,
    exfiltration,
    long_lived,
    new_countries,
    port_scans,
    stale_streaks,
    streak_keys,
)

W0 = 1_700_000_100 - 1_700_000_100 % WINDOW_SECONDS
SETTINGS = DetectorSettings()
MB = 1_000_000
SCANNER, TARGET = "10.0.0.9", "10.0.0.20"
SCHEMA = pa.schema(
    [
        ("account_id", pa.string()),
        ("vpc_id", pa.string()),
        ("interface_id", pa.string()),
        ("srcaddr", pa.string()),
        ("dstaddr", pa.string()),
        ("srcport", pa.int64()),
        ("dstport", pa.int64()),
        ("protocol", pa.int64()),
        ("packets", pa.int64()),
        ("bytes", pa.int64()),
        ("start", pa.int64()),
        ("end", pa.int64()),
        ("action", pa.string()),
        ("log_status", pa.string()),
        ("tcp_flags", pa.int64()),
        ("flow_direction", pa.string()),
    ]
)


def flow(src: str | None, dst: str | None, **fields: Any) -> dict[str, Any]:
    """One flow row: an accepted TCP flow to port 443 unless told otherwise."""
    return {
        "account_id": "111122223333",
        "vpc_id": "vpc-1",
        "interface_id": "eni-a",
        "srcaddr": src,
        "dstaddr": dst,
        "srcport": 40000,
        "dstport": 443,
        "protocol": 6,
        "packets": 10,
        "bytes": 1000,
        "start": W0,
        "end": W0 + 60,
        "action": "ACCEPT",
        "log_status": "OK",
        "tcp_flags": None,
        "flow_direction": None,
        **fields,
    }


def window(rows: Sequence[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=SCHEMA)


def tries(ports: range, **fields: Any) -> list[dict[str, Any]]:
    """The scanner's tries of ``ports`` on the target, one connection each."""
    return [
        flow(SCANNER, TARGET, srcport=50000 + i, dstport=p, **fields) for i, p in enumerate(ports)
    ]


# Port scans


def test_scan_of_120_rejected_syn_ports_alerts() -> None:
    """120 ports tried with rejected SYNs make one port_scan alert on the scanner."""
    [alert] = port_scans(window(tries(range(1, 121), action="REJECT", tcp_flags=2)), W0, SETTINGS)
    assert (alert.kind, alert.subject, alert.window_start) == ("port_scan", SCANNER, W0)
    assert alert.detail["ports"] == 120 and alert.detail["port_score"] == 240
    assert alert.detail["hosts"] == 1 and alert.detail["failed_connections"] == 120


def test_thirty_normal_ports_do_not_alert() -> None:
    """30 accepted, completed connections (SYN and FIN seen) are ordinary traffic."""
    assert port_scans(window(tries(range(1, 31), tcp_flags=3)), W0, SETTINGS) == []


def test_failed_weight_decides_exactly_at_the_threshold() -> None:
    """50 failed ports reach 100; 49 failed and one answered make 99; 50 answered make 50."""
    failed = tries(range(1, 51), tcp_flags=2)
    assert len(port_scans(window(failed), W0, SETTINGS)) == 1
    answered_last = [*failed[:49], {**failed[49], "tcp_flags": 3}]
    assert port_scans(window(answered_last), W0, SETTINGS) == []
    assert port_scans(window(tries(range(1, 51), tcp_flags=3)), W0, SETTINGS) == []


def test_port_with_one_answered_connection_weighs_one() -> None:
    """A port counts double only when no connection to it of the window got through."""
    failed = tries(range(1, 51), action="REJECT")
    retried = flow(SCANNER, TARGET, srcport=60000, dstport=50)  # port 50 again, accepted
    assert port_scans(window([*failed, retried]), W0, SETTINGS) == []


def test_host_sweep_alerts_on_the_host_score() -> None:
    """25 hosts rejected on port 22 reach the host score of 50; 49 answered hosts do not."""
    sweep = [flow(SCANNER, f"10.0.1.{i}", dstport=22, action="REJECT") for i in range(25)]
    [alert] = port_scans(window(sweep), W0, SETTINGS)
    assert (alert.detail["hosts"], alert.detail["host_score"]) == (25, 50)
    visits = [flow(SCANNER, f"10.0.1.{i}", dstport=22) for i in range(49)]
    assert port_scans(window(visits), W0, SETTINGS) == []


def test_connection_logged_by_both_enis_counts_once() -> None:
    """Each connection logged by the sender's and the receiver's ENI is one port and one
    connection; with version-2 rows the receiver's REJECT fails it despite the ACCEPT."""
    sent = tries(range(1, 51), interface_id="eni-scanner")
    received = tries(range(1, 51), interface_id="eni-target", action="REJECT")
    [alert] = port_scans(window([*sent, *received]), W0, SETTINGS)
    assert alert.detail["ports"] == 50 and alert.detail["port_score"] == 100
    assert alert.detail["connections"] == 50 and alert.detail["hosts"] == 1
    accepted_twice = tries(range(1, 61), interface_id="eni-target") + tries(range(1, 61))
    assert port_scans(window(accepted_twice), W0, SETTINGS) == []


def test_server_answers_are_not_a_scan() -> None:
    """A server answering 150 clients on ephemeral ports does not scan them, with flags
    (SYN-ACK) or without (version 2, lower port with its reverse logged)."""
    clients = [(f"10.0.2.{i}", 30000 + i) for i in range(150)]
    asks = [flow(c, TARGET, srcport=p, tcp_flags=3) for c, p in clients]
    answers = [flow(TARGET, c, srcport=443, dstport=p, tcp_flags=19) for c, p in clients]
    assert port_scans(window(asks + answers), W0, SETTINGS) == []
    v2 = [{**row, "tcp_flags": None} for row in asks + answers]
    assert port_scans(window(v2), W0, SETTINGS) == []


def test_scan_of_open_ports_alerts_on_the_scanner_only() -> None:
    """100 open ports answered by the target: the scanner alerts, the answering target not."""
    asks = tries(range(1, 101))
    answers = [flow(TARGET, SCANNER, srcport=r["dstport"], dstport=r["srcport"]) for r in asks]
    assert [a.subject for a in port_scans(window(asks + answers), W0, SETTINGS)] == [SCANNER]


def test_port_scans_speed_on_50000_flows() -> None:
    """Prints the time of port_scans on a 50,000-flow window (measured, not asserted)."""
    rng = random.Random(7)
    rows = [
        flow(
            f"10.0.{rng.randrange(4)}.{rng.randrange(250)}",
            f"10.0.{rng.randrange(4)}.{rng.randrange(250)}"
            if rng.random() < 0.7
            else f"52.1.{rng.randrange(250)}.{rng.randrange(250)}",
            vpc_id=rng.choice(["vpc-1", "vpc-2", None]),
            interface_id=f"eni-{rng.randrange(50)}",
            srcport=rng.randrange(1024, 65535),
            dstport=rng.choice([443, 80, 22, 5432, rng.randrange(65535)]),
            protocol=rng.choice([6, 6, 6, 17, 1]),
            action=rng.choice(["ACCEPT"] * 9 + ["REJECT"]),
            tcp_flags=rng.choice([2, 3, 18, 19, 0, None]),
        )
        for _ in range(50_000)
    ]
    table = window(rows)
    port_scans(table, W0, SETTINGS)
    best = math.inf
    for _ in range(5):
        began = time.perf_counter()
        port_scans(table, W0, SETTINGS)
        best = min(best, time.perf_counter() - began)
    print(f"\nport_scans on 50,000 flows: {best * 1000:.1f} ms (best of 5)")


# Exfiltration

INSIDE, OUTSIDE = "10.0.1.5", "52.94.1.1"


def egress(volume: float, src: str = INSIDE, **fields: Any) -> pa.Table:
    return window([flow(src, OUTSIDE, bytes=int(volume), **fields)])


def run_exfiltration(
    volumes: Sequence[float | None],
    state: dict[str, Any] | None = None,
    settings: DetectorSettings = SETTINGS,
    src: str = INSIDE,
) -> list[list[Alert]]:
    """Each window's alerts, through the wiring's read-keys / call / write cycle (None:
    the source sent nothing in that window)."""
    state = {} if state is None else state
    alerts = []
    for i, volume in enumerate(volumes):
        table = window([]) if volume is None else egress(volume, src)
        read = {key: state[key] for key in baseline_keys(table) if key in state}
        found, updated = exfiltration(table, W0 + i * WINDOW_SECONDS, read, settings)
        state.update(updated)
        alerts.append(found)
    return alerts


STEADY = [20 * MB, 22 * MB, 18 * MB] * 4


def test_exfiltration_alerts_after_a_steady_baseline() -> None:
    """Twelve windows around 20 MB, then 200 MB to a public address, alert once."""
    *quiet, last = run_exfiltration([*STEADY, 200 * MB])
    assert quiet == [[]] * 12
    [alert] = last
    assert (alert.kind, alert.subject, alert.window_start) == ("exfiltration", INSIDE, W0 + 3600)
    assert alert.detail["bytes"] == 200 * MB and alert.detail["baseline_windows"] == 12
    assert 19 * MB < alert.detail["baseline_mean"] < 21 * MB  # type: ignore[operator]
    assert alert.detail["top_destination"] == OUTSIDE


def test_no_exfiltration_alert_before_the_minimum_history() -> None:
    """Eleven windows of history are one too few, however large the twelfth."""
    assert run_exfiltration([*STEADY[:11], 200 * MB])[-1] == []


def test_public_source_is_never_scored() -> None:
    """A source with a public address has no baseline and never alerts."""
    state: dict[str, Any] = {}
    assert run_exfiltration([*STEADY, 500 * MB], state, src="54.1.2.3") == [[]] * 13
    assert state == {}


def test_quiet_source_below_the_floor_is_silent() -> None:
    """A source of 100 kB per window sending 0.99 MB is far off its baseline (the spread
    floor set low here) but under the 1 MB floor."""
    settings = DetectorSettings(exfil_spread_floor_bytes=10_000)
    assert run_exfiltration([0.1 * MB] * 12 + [0.99 * MB], settings=settings)[-1] == []
    assert len(run_exfiltration([0.1 * MB] * 12 + [1 * MB], settings=settings)[-1]) == 1


def test_gradual_rise_never_alerts() -> None:
    """Bytes growing 5% a window from 20 MB (to ~2.6 GB in 100 windows) never alert."""
    volumes = [20 * MB * 1.05**i for i in range(100)]
    assert run_exfiltration(volumes) == [[]] * 100


def test_alerting_window_is_folded_at_the_alert_line() -> None:
    """After an alert the baseline moves only up to the alert line, so a second burst
    still alerts; a window already applied changes nothing."""
    state: dict[str, Any] = {}
    run_exfiltration([*STEADY, 200 * MB], state)
    [(key, entry)] = state.items()
    assert entry[0] == 13 and entry[1] < 21 * MB
    again = {key: entry}
    assert len(exfiltration(egress(200 * MB), W0 + 13 * 300, again, SETTINGS)[0]) == 1
    assert exfiltration(egress(200 * MB), W0 + 12 * 300, again, SETTINGS) == ([], {})


def test_nat_gateway_copy_of_a_connection_counts_once() -> None:
    """The same 5-tuple logged by the instance's and the NAT gateway's ENI is 6 MB, not
    12; the same ENI's two records of it add up."""
    rows = [
        flow(INSIDE, OUTSIDE, bytes=6 * MB, interface_id="eni-instance"),
        flow(INSIDE, OUTSIDE, bytes=4 * MB, interface_id="eni-nat"),
        flow(INSIDE, OUTSIDE, bytes=2 * MB, interface_id="eni-nat", start=W0 + 60),
    ]
    _, updated = exfiltration(window(rows), W0, {}, SETTINGS)
    assert list(updated.values()) == [[1, 6 * MB, 0.0, W0]]


def test_idle_windows_do_not_decay_and_an_old_baseline_is_forgotten() -> None:
    """Windows without traffic leave the baseline as it was; one unused for over a week
    (2016 windows) starts over, so it must learn again before alerting."""
    state: dict[str, Any] = {}
    run_exfiltration(STEADY, state)
    [key] = state
    last = W0 + 11 * WINDOW_SECONDS
    week = SETTINGS.exfil_forget_after_windows * WINDOW_SECONDS
    alerts, updated = exfiltration(egress(200 * MB), last + week, state, SETTINGS)
    assert len(alerts) == 1 and updated[key][0] == 13  # type: ignore[index]
    alerts, updated = exfiltration(egress(200 * MB), last + week + 300, state, SETTINGS)
    assert alerts == [] and updated[key] == [1, 200 * MB, 0.0, last + week + 300]


def test_only_accepted_flows_from_internal_to_public_count() -> None:
    """Rejected bytes did not leave, and internal or multicast destinations are not out."""
    rows = [
        flow(INSIDE, OUTSIDE, bytes=5 * MB, action="REJECT"),
        flow(INSIDE, "10.0.2.2", bytes=5 * MB),
        flow(INSIDE, "239.1.1.1", bytes=5 * MB),
        flow(INSIDE, OUTSIDE, bytes=MB),
    ]
    _, updated = exfiltration(window(rows), W0, {}, SETTINGS)
    assert [entry[1] for entry in updated.values()] == [MB]  # type: ignore[index]


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("10.1.2.3", "internal"),
        ("172.31.0.1", "internal"),
        ("192.168.1.1", "internal"),
        ("100.64.0.1", "internal"),
        ("fd12:3456::1", "internal"),
        ("52.94.1.1", "public"),
        ("2600:1f18::1", "public"),
        ("::ffff:10.0.0.1", "internal"),
        ("169.254.169.254", "other"),
        ("127.0.0.1", "other"),
        ("239.1.1.1", "other"),
        ("not-an-ip", "other"),
    ],
)
def test_address_kinds(address: str, kind: str) -> None:
    """Private, shared and unique-local space is internal; global unicast is public."""
    assert address_kind(address) == kind


# Long-lived connections

A_TO_B = flow("10.0.0.5", OUTSIDE, srcport=40000, dstport=443)
B_TO_A = flow(OUTSIDE, "10.0.0.5", srcport=443, dstport=40000)


def run_streaks(
    windows: Sequence[pa.Table],
    settings: DetectorSettings = SETTINGS,
    state: dict[str, Any] | None = None,
) -> list[list[Alert]]:
    """Each window's alerts through the wiring's cycle: read keys, call, write, range delete."""
    state = {} if state is None else state
    alerts = []
    previous = None
    for i, table in enumerate(windows):
        start = W0 + i * WINDOW_SECONDS
        continued = continued_connections(table, previous)
        read = {key: state[key] for key in streak_keys(continued, start) if key in state}
        found, updated = long_lived(continued, start, read, settings)
        previous = table
        for key, value in updated.items():
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
        begin, end = stale_streaks(start, "111122223333", "vpc-1")
        for key in [k for k in state if begin <= k < end]:
            del state[key]
        alerts.append(found)
    return alerts


def test_connection_in_k_consecutive_windows_alerts_once_at_the_kth() -> None:
    """Twelve windows in a row alert in the twelfth, and never again as the streak goes on."""
    alerts = run_streaks([window([A_TO_B])] * 15)
    assert [i for i, found in enumerate(alerts) if found] == [11]
    [alert] = alerts[11]
    assert alert.subject == f"10.0.0.5:40000>{OUTSIDE}:443/6"
    assert alert.detail["streak_windows"] == 12 and alert.detail["dstport"] == 443


def test_k_minus_one_windows_do_not_alert() -> None:
    """Eleven consecutive windows are not long-lived."""
    assert run_streaks([window([A_TO_B])] * 11) == [[]] * 11


def test_a_gap_resets_the_streak_and_a_new_streak_alerts_again() -> None:
    """Eleven windows, a window without it, eleven more: nothing; a twelfth then alerts."""
    present, gap = window([A_TO_B]), window([flow("10.9.9.9", OUTSIDE)])
    alerts = run_streaks([*[present] * 11, gap, *[present] * 12])
    assert [i for i, found in enumerate(alerts) if found] == [23]


def test_both_directions_by_both_enis_are_one_connection() -> None:
    """Four rows (two directions, two ENIs) of one connection make one streak and alert once,
    named client to server."""
    rows = [
        A_TO_B,
        B_TO_A,
        {**A_TO_B, "interface_id": "eni-b"},
        {**B_TO_A, "interface_id": "eni-b"},
    ]
    state: dict[str, Any] = {}
    alerts = run_streaks([window(rows)] * 12, DetectorSettings(long_lived_windows=12), state)
    assert [a.subject for found in alerts for a in found] == [f"10.0.0.5:40000>{OUTSIDE}:443/6"]
    assert sorted(state.values()) == [[11, W0 + 3000], [12, W0 + 3300]]  # one per window


def test_broken_streaks_leave_state_one_window_later() -> None:
    """A streak that did not continue is kept for one window (replays), then dropped; a
    connection seen in one window only never has an entry."""
    state: dict[str, Any] = {}
    other = window([flow("10.9.9.9", OUTSIDE)])
    run_streaks([window([A_TO_B]), window([B_TO_A]), other, other], state=state)
    assert sorted(state.values()) == [[2, W0 + 900]]
    assert all("|10.9.9.9|" in key for key in state)


def test_a_window_applied_twice_gives_the_same_alert_and_entries() -> None:
    """Replaying the K-th window reads the same streaks and writes the same entries."""
    state: dict[str, Any] = {}
    run_streaks([window([A_TO_B])] * 11, state=state)
    kth, start = window([A_TO_B]), W0 + 11 * WINDOW_SECONDS
    continued = continued_connections(kth, kth)
    read = {key: state[key] for key in streak_keys(continued, start) if key in state}
    first = long_lived(continued, start, read, SETTINGS)
    state.update(first[1])
    begin, end = stale_streaks(start, "111122223333", "vpc-1")
    state = {key: value for key, value in state.items() if not begin <= key < end}
    read = {key: state[key] for key in streak_keys(continued, start) if key in state}
    again = long_lived(continued, start, read, SETTINGS)
    assert [a.id for a in again[0]] == [a.id for a in first[0]] and again[1] == first[1]


def test_ipv6_connection_subject_brackets_addresses() -> None:
    """IPv6 endpoints are bracketed so the port stays readable; K is a setting."""
    row = flow("2600:1f18::5", "2a00:1450:4001::1", srcport=50000, dstport=22)
    [[], [], [alert]] = run_streaks([window([row])] * 3, DetectorSettings(long_lived_windows=3))
    assert alert.subject == "[2600:1f18::5]:50000>[2a00:1450:4001::1]:22/6"


# New countries

FAKE = {"81.2.69.160": "GB", "5.9.0.1": "DE", "1.1.1.1": "AU", "2001:67c:2e8::1": "NL"}


class Lookups:
    """A country_of that answers from FAKE and remembers what it was asked."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, addresses: Sequence[str]) -> list[str | None]:
        self.calls.append(list(addresses))
        return [FAKE.get(address, "XX") for address in addresses]


def run_countries(
    peers: Sequence[Sequence[str]], country_of: Callable[[Sequence[str]], Sequence[str | None]]
) -> list[list[str]]:
    """The country alerts of each window in which INSIDE talks to ``peers[i]``."""
    state: dict[str, Any] = {}
    subjects = []
    for i, addresses in enumerate(peers):
        table = window(
            [flow(INSIDE, address) for address in addresses] + [flow(INSIDE, "10.0.0.1")]
        )
        read = {key: state[key] for key in country_keys(table) if key in state}
        alerts, updated = new_countries(table, W0 + i * WINDOW_SECONDS, read, SETTINGS, country_of)
        state.update(updated)
        subjects.append([alert.subject for alert in alerts])
    return subjects


def test_new_country_after_learning_alerts_once() -> None:
    """Germany learned in the first twelve windows; Britain in the 13th alerts, once."""
    subjects = run_countries([["5.9.0.1"]] * 12 + [["81.2.69.160", "5.9.0.1"]] * 3, Lookups())
    assert subjects == [[]] * 12 + [["GB"], [], []]


def test_country_seen_while_learning_never_alerts() -> None:
    """A country first seen in the learning period is known afterwards."""
    subjects = run_countries(
        [[]] * 5 + [["81.2.69.160"]] + [[]] * 10 + [["81.2.69.160"]], Lookups()
    )
    assert subjects == [[]] * 17


def test_ipv6_peers_get_their_country_from_iptocc() -> None:
    """With the real registry data, an IPv6 peer's country (NL) is new after learning."""
    subjects = run_countries([["81.2.69.160"]] * 12 + [["2001:67c:2e8::1"]], _real_registry())
    assert subjects[-1] == ["NL"]


def _real_registry() -> Callable[[Sequence[str]], Sequence[str | None]]:
    from streams.flowlogs.detect import registered_countries

    return registered_countries


def test_private_addresses_never_count() -> None:
    """Private, shared, unique-local and link-local peers are never looked up or alerted."""
    lookups = Lookups()
    private = ["192.168.1.1", "100.64.1.1", "fd00::1", "169.254.169.254", "172.16.0.1"]
    assert run_countries([[]] * 12 + [private], lookups) == [[]] * 13
    assert all(call == [] for call in lookups.calls)


def test_each_distinct_address_is_looked_up_once_per_window() -> None:
    """Thirty rows with two addresses in two VPCs make one lookup of the two addresses."""
    lookups = Lookups()
    rows = [
        flow(INSIDE, address, vpc_id=vpc, srcport=port)
        for address in ("81.2.69.160", "5.9.0.1")
        for vpc in ("vpc-1", "vpc-2")
        for port in range(40000, 40008)
    ]
    new_countries(window(rows), W0, {}, SETTINGS, lookups)
    assert [sorted(call) for call in lookups.calls] == [["5.9.0.1", "81.2.69.160"]]


def test_rejected_probes_do_not_teach_or_alert() -> None:
    """Rejected inbound probes from a new country are the internet's noise, not a peer."""
    table = window([flow("81.2.69.160", INSIDE, action="REJECT")])
    stored = {"first": W0 - 100 * WINDOW_SECONDS, "countries": ["DE"]}
    [key] = country_keys(table)
    assert new_countries(table, W0, {key: stored}, SETTINGS, Lookups()) == ([], {})


# Alerts


def test_alert_ids_are_deterministic_and_differ_per_window_and_subject() -> None:
    """The same finding has the same 20-hex-digit id; another window or subject another."""
    alert = Alert("port_scan", "1", "vpc-1", SCANNER, W0, {"ports": 120})
    assert alert.id == Alert("port_scan", "1", "vpc-1", SCANNER, W0, {"ports": 7}).id
    assert re.fullmatch(r"[0-9a-f]{20}", alert.id)
    others = {
        Alert("port_scan", "1", "vpc-1", SCANNER, W0 + 300).id,
        Alert("port_scan", "1", "vpc-1", TARGET, W0).id,
        Alert("exfiltration", "1", "vpc-1", SCANNER, W0).id,
        Alert("port_scan", "1|vpc", "1", SCANNER, W0).id,
    }
    assert alert.id not in others and len(others) == 4


def test_alert_json_is_flat_strings_and_numbers() -> None:
    """to_json carries the window in ISO 8601 UTC, the detail beside it, and keeps its id."""
    alert = Alert("exfiltration", "1", "-", INSIDE, 1_700_000_100, {"bytes": 5, "id": "x"})
    assert alert.to_json() == {
        "id": alert.id,
        "kind": "exfiltration",
        "subject": INSIDE,
        "window_start": "2023-11-14T22:15:00Z",
        "window_end": "2023-11-14T22:20:00Z",
        "account_id": "1",
        "vpc_id": "-",
        "bytes": 5,
    }


# Hostile and empty input

NAN_TABLE = pa.table(
    {
        "srcaddr": [SCANNER, None, "10.0.0.1"],
        "dstaddr": [OUTSIDE, OUTSIDE, None],
        "srcport": [math.nan, 1.0, None],
        "dstport": [math.nan, math.inf, 3.0],
        "protocol": [6.0, math.nan, None],
        "bytes": [math.nan, -5.0, 1e30],
        "action": [None, "ACCEPT", "REJECT"],
        "log_status": ["OK", "OK", None],
    }
)
ODD_WINDOWS = {
    "no columns": pa.table({}),
    "no rows": window([]),
    "nodata only": window([flow(None, None, log_status="NODATA", action=None)] * 3),
    "skipdata": window([flow(SCANNER, TARGET, log_status="SKIPDATA")]),
    "nan and none": NAN_TABLE,
    "all none": window([{name: None for name in SCHEMA.names}]),
}


@pytest.mark.parametrize("table", ODD_WINDOWS.values(), ids=ODD_WINDOWS.keys())
def test_empty_nodata_and_nan_windows_never_crash(table: pa.Table) -> None:
    """Every detector and key function copes with windows without usable flows."""
    assert port_scans(table, W0, SETTINGS) == []
    baseline_keys(table), streak_keys(continued_connections(table, table), W0), country_keys(table)
    assert exfiltration(table, W0, {}, SETTINGS)[0] == []
    assert long_lived(continued_connections(table, table), W0, {}, SETTINGS)[0] == []
    assert new_countries(table, W0, {}, SETTINGS, Lookups())[0] == []


def test_version_2_rows_without_vpc_or_flags_use_a_dash() -> None:
    """A table without vpc_id and tcp_flags columns is keyed by VPC "-" and still scanned."""
    table = window(tries(range(1, 51), action="REJECT")).drop_columns(["vpc_id", "tcp_flags"])
    [alert] = port_scans(table, W0, SETTINGS)
    assert alert.vpc_id == "-"
    assert country_keys(table) == ["cc|111122223333|-"]


def test_keys_escape_separators_and_line_breaks() -> None:
    """Hostile account text cannot break a key in two lines or forge another's key."""
    table = window([flow(INSIDE, OUTSIDE, account_id="a|b\nc%", vpc_id="v")])
    keys = [
        *baseline_keys(table),
        *streak_keys(continued_connections(table, table), W0),
        *country_keys(table),
    ]
    assert all("\n" not in key and "|a%7Cb%0Ac%25|v" in key for key in keys)
    forged = window([flow(INSIDE, OUTSIDE, account_id="a", vpc_id="b\nc%|v")])
    assert not set(keys) & set(baseline_keys(forged) + country_keys(forged))


def test_corrupt_state_starts_over() -> None:
    """A stored entry of the wrong shape or with NaN counts as none."""
    table = egress(MB)
    [key] = baseline_keys(table)
    for corrupt in ([1, 2], [1, math.nan, 0.0, W0 - 300], "x", None):
        _, updated = exfiltration(table, W0, {key: corrupt}, SETTINGS)  # type: ignore[dict-item]
        assert updated == {key: [1, MB, 0.0, W0]}


def test_a_busy_client_reaching_many_hosts_is_no_scan() -> None:
    """60 hosts reached (accepted, answered) in a window is a busy client; 60 hosts that
    all refused is a sweep."""
    reached = [flow(SCANNER, f"10.0.9.{i}", dstport=443) for i in range(60)]
    answers = [flow(f"10.0.9.{i}", SCANNER, srcport=443, dstport=40000) for i in range(60)]
    assert port_scans(window(reached + answers), W0, SETTINGS) == []
    refused = [flow(SCANNER, f"10.0.9.{i}", dstport=443, action="REJECT") for i in range(60)]
    assert [a.subject for a in port_scans(window(refused), W0, SETTINGS)] == [SCANNER]
