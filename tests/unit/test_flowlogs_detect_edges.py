"""Detector edges found by a black-box tester: servers above their clients' ports (F10)
and long-lived connections in logs at AWS's default 10-minute aggregation (F14)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pytest

from streams.common.exactly_once import PartitionState
from streams.flowlogs.detect import (
    WINDOW_SECONDS,
    Alert,
    DetectorSettings,
    continued_connections,
    long_lived,
    port_scans,
    streak_keys,
)
from streams.flowlogs.detection import Closing, close_windows
from tests.unit.test_flowlogs_detect import (
    OUTSIDE,
    SCANNER,
    SETTINGS,
    TARGET,
    W0,
    flow,
    run_streaks,
    window,
)

UDP = 17
SERVER = "10.5.9.9"
HOUR = 3600
VPC_KEY = "111122223333|vpc-1"


# F10: a UDP server on a port above its clients' ports is no scanner


def served(server_port: int, clients: int, client_ports: range, **fields: Any) -> pa.Table:
    """``clients`` peers, each from its own port of ``client_ports``, talking UDP to the
    server's ``server_port`` and answered: both directions logged, all accepted."""
    rows = []
    for i in range(clients):
        peer, port = f"10.5.{i // 200}.{i % 200 + 10}", client_ports[i * 97 % len(client_ports)]
        common = {"protocol": UDP, **fields}
        rows.append(flow(peer, SERVER, srcport=port, dstport=server_port, **common))
        rows.append(flow(SERVER, peer, srcport=server_port, dstport=port, **common))
    return window(rows)


@pytest.mark.parametrize(
    ("server_port", "clients", "client_ports"),
    [(51820, 150, range(32768, 51820)), (60001, 120, range(32768, 60001))],
    ids=["wireguard", "mosh"],
)
def test_udp_server_above_its_clients_ports_is_not_a_scan(
    server_port: int, clients: int, client_ports: range
) -> None:
    """The server's answers go to as many ports as it has peers: they are not tries."""
    assert port_scans(served(server_port, clients, client_ports), W0, SETTINGS) == []


def test_server_on_a_high_port_with_peers_behind_one_address_is_not_a_scan() -> None:
    """150 peers behind one NAT address: the server's one port talks with 150 of its ports."""
    nat = "10.7.0.1"
    rows = served(51820, 150, range(32768, 51820)).to_pylist()
    natted = [{**row, "srcaddr": nat} if row["srcaddr"] != SERVER else {**row, "dstaddr": nat}
              for row in rows]  # fmt: skip
    assert port_scans(window(natted), W0, SETTINGS) == []


def scan(
    ports: Iterable[int], targets: list[str], srcport: int, **fields: Any
) -> list[dict[str, Any]]:
    """One source port probing ``ports`` of each target (as a SYN scanner does)."""
    return [
        flow(SCANNER, target, srcport=srcport, dstport=port, **fields)
        for target in targets
        for port in ports
    ]


def test_unanswered_udp_scan_of_high_ports_still_alerts() -> None:
    """A UDP sweep of 120 high ports from one high port, never answered, is a scan."""
    probes = scan(range(40000, 40120), [TARGET], 45000, protocol=UDP)
    [alert] = port_scans(window(probes), W0, SETTINGS)
    assert (alert.subject, alert.detail["ports"]) == (SCANNER, 120)


def test_rejected_scan_of_high_ports_on_many_hosts_still_alerts() -> None:
    """60 high ports on three hosts, from one port, rejected: the scanner's endpoint has
    many peers like a server's, but nothing answered it, so every probe is a try."""
    probes = scan(range(33000, 33060), [TARGET, "10.0.0.21", "10.0.0.22"], 45000, action="REJECT")
    [alert] = port_scans(window(probes), W0, SETTINGS)
    assert (alert.subject, alert.detail["ports"], alert.detail["hosts"]) == (SCANNER, 60, 3)


def test_version_2_scan_with_some_open_ports_still_alerts() -> None:
    """No flags: 150 low ports on two hosts from one high port, 10 of them answered, the
    rest rejected, alert on the scanner and not on the targets that answered."""
    probes = scan(range(1, 151), [TARGET, "10.0.0.21"], 45000)
    rows = [{**probe, "action": "REJECT"} if probe["dstport"] > 10 else probe for probe in probes]
    answers = [
        flow(p["dstaddr"], SCANNER, srcport=p["dstport"], dstport=45000)
        for p in probes
        if p["dstport"] <= 10
    ]
    alerts = port_scans(window(rows + answers), W0, SETTINGS)
    assert [(a.subject, a.detail["ports"]) for a in alerts] == [(SCANNER, 150)]


def test_high_port_service_answering_a_scan_of_its_clients_ports_is_not_excused() -> None:
    """A source on a high port that reaches 120 high ports of one host and gets rejected
    is scanning, whatever its port: only answered rows are ever a server's answers."""
    probes = scan(range(50000, 50120), [TARGET], 51820, protocol=UDP, action="REJECT")
    [alert] = port_scans(window(probes), W0, SETTINGS)
    assert alert.detail["failed_connections"] == 120


# F14: long-lived connections at the 10-minute aggregation interval

LONG = DetectorSettings(long_lived_windows=12)


def records(first: int, last: int, every: int, lasting: int, **fields: Any) -> list[dict[str, Any]]:
    """A connection's records from ``first`` to ``last`` (start times), one per ``every``
    seconds, each lasting ``lasting`` seconds; both directions logged."""
    rows = []
    for start in range(first, last + 1, every):
        times = {"start": start, "end": start + lasting, **fields}
        rows.append(flow("10.0.0.5", OUTSIDE, srcport=40000, dstport=443, **times))
        rows.append(flow(OUTSIDE, "10.0.0.5", srcport=443, dstport=40000, **times))
    return rows


def by_window(rows: list[dict[str, Any]]) -> dict[int, pa.Table]:
    """The rows per 5-minute window of their start, as the wiring buffers them."""
    found: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        found.setdefault(row["start"] - row["start"] % WINDOW_SECONDS, []).append(row)
    return {start: window(found[start]) for start in sorted(found)}


def close_all(
    windows: dict[int, pa.Table], store: dict[str, Any] | None = None, together: bool = False
) -> list[Alert]:
    """Every window holding rows closed through the wiring as batch.py does: the window
    before's rows when it had any, ``since`` the last window closed with rows; windows
    without rows are never closed."""
    store = {} if store is None else store
    closings, since = [], min(windows) - WINDOW_SECONDS
    for start, flows in windows.items():
        closings.append(Closing(VPC_KEY, start, flows, windows.get(start - WINDOW_SECONDS), since))
        since = start
    alerts: list[Alert] = []
    groups = [closings] if together else [[closing] for closing in closings]
    for group in groups:
        state = PartitionState(store)
        alerts += close_windows(state, group, LONG)
        state.flush()
    return alerts


def long_lived_alerts(alerts: list[Alert]) -> list[tuple[int, Any]]:
    return [(a.window_start, a.detail["streak_windows"]) for a in alerts if a.kind == "long_lived"]


def test_ten_minute_records_of_a_quiet_vpc_make_a_long_lived_connection() -> None:
    """One record per 10 minutes (end = start + 599) for 5 hours, nothing else in the
    VPC: every other window holds rows, yet the connection is present in every window.
    It alerts once, when its records reach the twelfth window."""
    rows = records(W0, W0 + 5 * HOUR, 600, 599)
    alerts = long_lived_alerts(close_all(by_window(rows)))
    assert alerts == [(W0 + 5 * 2 * WINDOW_SECONDS, 12)]


def test_ten_minute_records_of_a_busy_vpc_make_a_long_lived_connection() -> None:
    """The same with other traffic in every window, starts off the window boundaries."""
    rows = records(W0 + 130, W0 + 3 * HOUR, 600, 599)
    others = range(W0, W0 + 3 * HOUR, WINDOW_SECONDS)  # a new connection in each window
    rows += [
        flow("10.9.9.9", OUTSIDE, srcport=w % 20_000 + 30_000, start=w + 5, end=w + 9)
        for w in others
    ]
    [(_, streak)] = long_lived_alerts(close_all(by_window(rows)))
    assert streak >= 12


def test_ten_minute_records_closed_together_equal_closed_one_by_one() -> None:
    """A batch closing all windows at once finds the same alerts and writes the same state."""
    windows = by_window(records(W0 + 250, W0 + 3 * HOUR, 600, 599))
    alone: dict[str, Any] = {}
    together: dict[str, Any] = {}
    assert close_all(windows, alone) == close_all(windows, together, together=True)
    assert alone == together


def test_one_minute_records_still_alert_at_the_twelfth_window() -> None:
    """The 1-minute aggregation (records under a minute) alerts as it always did."""
    rows = records(W0, W0 + 2 * HOUR, 60, 59)
    assert long_lived_alerts(close_all(by_window(rows))) == [(W0 + 11 * WINDOW_SECONDS, 12)]


@pytest.mark.parametrize(
    ("every", "lasting"),
    [(600, 2), (600, 59), (600, 200), (900, 599)],
    ids=["short-every-10-min", "minute-every-10-min", "partial-every-10-min", "gap-every-15-min"],
)
def test_records_leaving_windows_uncovered_are_not_long_lived(every: int, lasting: int) -> None:
    """A periodic exchange on one 5-tuple whose records leave whole windows uncovered
    (short ones, or 10-minute ones 15 minutes apart) is not one long connection."""
    rows = records(W0, W0 + 5 * HOUR, every, lasting)
    assert long_lived_alerts(close_all(by_window(rows))) == []


def test_a_record_cannot_reach_beyond_ten_minutes() -> None:
    """A record claiming to last a day counts for three windows (its start's and two
    more) at most: nothing alerts."""
    rows = records(W0, W0, 600, 86_400)
    assert run_streaks([window(rows)], LONG) == [[]]
    continued = continued_connections(window(rows), None)
    _, written = long_lived(continued, W0, {}, LONG)
    assert list(written.values()) == [[3, W0]]


def test_a_window_of_ten_minute_records_applied_twice_gives_the_same_result() -> None:
    """Replaying a window reads what it read the first time: its own entries (which
    reach further than it) are not read back as an earlier window's."""
    store: dict[str, Any] = {}
    windows = by_window(records(W0, W0 + 2 * HOUR, 600, 599))
    starts = sorted(windows)
    close_all({w: windows[w] for w in starts[:5]}, store)
    kth, start = windows[starts[5]], starts[5]
    continued = continued_connections(kth, windows.get(start - WINDOW_SECONDS))
    read = {key: store[key] for key in streak_keys(continued, start) if key in store}
    first = long_lived(continued, start, read, LONG)
    store.update({key: value for key, value in first[1].items() if value is not None})
    read = {key: store[key] for key in streak_keys(continued, start) if key in store}
    again = long_lived(continued, start, read, LONG)
    assert [a.id for a in again[0]] == [a.id for a in first[0]] and again[1] == first[1]
    assert first[0] and first[0][0].detail["streak_windows"] == 12


def test_server_with_a_port_per_session_is_not_a_scan() -> None:
    """mosh gives each session its own server port (60001, 60002, ...): every endpoint has
    one peer, and the server's address, talking with 120 clients, is the service."""
    rows = []
    for i in range(120):
        peer, port, session = f"10.5.0.{i + 10}", 40000 + i * 113, 60001 + i
        rows.append(flow(peer, SERVER, srcport=port, dstport=session, protocol=UDP))
        rows.append(flow(SERVER, peer, srcport=session, dstport=port, protocol=UDP))
    assert port_scans(window(rows), W0, SETTINGS) == []
