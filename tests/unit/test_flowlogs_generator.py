"""The AWS VPC flow-logs generator (producers.flowlogs): layout, records, anomalies.

Every property is read back from the generated text lines, parsed here by their
header; the ground truth only says where to look.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import ipaddress
import itertools
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import iptocc
import orjson
import pytest

from producers.flowlogs import GeneratedObject, Options, Simulation, generate, write
from producers.flowlogs_anomalies import Injected
from producers.flowlogs_cli import add_parser, options, run

START = datetime(2025, 8, 1, tzinfo=UTC)
T0 = int(START.timestamp())
HOUR = 3600
KEY = re.compile(
    r"^AWSLogs/(?P<account>\d{12})/vpcflowlogs/(?P<region>[a-z]{2}-[a-z]+-\d)/"
    r"(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/"
    r"(?P=account)_vpcflowlogs_(?P=region)_(?P<flow_log>fl-[0-9a-f]{17})_"
    r"(?P<stamp>(?P=y)(?P=m)(?P=d)T\d{4}Z)_[0-9a-f]{8}\.log\.gz$"
)
V2 = (
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes "
    "start end action log-status"
)
V5_FIELDS = {"vpc-id", "subnet-id", "tcp-flags", "flow-direction", "traffic-path", "az-id"}
Row = dict[str, str]


def parse(objects: Iterable[GeneratedObject]) -> list[Row]:
    """Every record as a dict by its object's header, with its flow log and 5-minute window."""
    rows: list[Row] = []
    for generated in objects:
        match = KEY.match(generated.key)
        assert match, generated.key
        names = generated.lines[0].split()
        for line in generated.lines[1:]:
            row = dict(zip(names, line.split(" "), strict=True))
            row["flow_log"] = match["flow_log"]
            row["stamp"] = match["stamp"]
            if row["log-status"] == "OK":
                row["window"] = str(int(row["start"]) // 300 * 300)
            rows.append(row)
    return rows


def traffic(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r["log-status"] == "OK"]


@functools.cache
def public(address: str) -> bool:
    return ipaddress.ip_address(address).is_global


def by_flow_log(rows: list[Row]) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = defaultdict(list)
    for row in traffic(rows):
        out[row["flow_log"]].append(row)
    return out


def five_tuple(row: Row) -> tuple[str, ...]:
    return (row["srcaddr"], row["dstaddr"], row["srcport"], row["dstport"], row["protocol"])


def longest_run(windows: Iterable[int]) -> int:
    ordered, best, run = sorted(set(windows)), 1, 1
    for before, after in itertools.pairwise(ordered):
        run = run + 1 if after - before == 300 else 1
        best = max(best, run)
    return best


def egress(rows: list[Row], host: str) -> Counter[int]:
    """Bytes ``host`` sent to public addresses, by window."""
    sent: Counter[int] = Counter()
    for row in rows:
        if row["srcaddr"] == host and public(row["dstaddr"]):
            sent[int(row["window"])] += int(row["bytes"])
    return sent


@pytest.fixture(scope="module")
def clean() -> list[Row]:
    """Six hours of traffic without anomalies (~60,000 records)."""
    return parse(generate(Options(start=START, hours=6, seed=11)))


@pytest.fixture(scope="module")
def injected() -> tuple[list[Row], list[Injected]]:
    """Eight hours with two anomalies of each kind, and their ground truth."""
    chosen = Options(
        start=START, hours=8, seed=5, port_scans=2, exfiltration=2, long_lived=2, new_country=2
    )
    simulation = Simulation(chosen)
    return parse(simulation.objects()), simulation.truth


def test_same_seed_gives_identical_objects() -> None:
    """The same seed gives byte-identical objects under the same names; another does not."""
    one = [(o.key, o.body()) for o in generate(Options(start=START, hours=1, seed=3))]
    two = [(o.key, o.body()) for o in generate(Options(start=START, hours=1, seed=3))]
    other = [(o.key, o.body()) for o in generate(Options(start=START, hours=1, seed=4))]
    assert one == two
    assert {k for k, _ in one}.isdisjoint(k for k, _ in other)


def test_keys_follow_aws_layout_one_object_per_flow_log_and_delivery() -> None:
    """Keys match AWS's layout; each flow log delivers once every 5 minutes, 10 minutes
    after its records' window opens, and its records end by the delivery time."""
    objects = list(generate(Options(start=START, hours=1, seed=3)))
    deliveries: dict[str, list[datetime]] = defaultdict(list)
    for generated in objects:
        match = KEY.match(generated.key)
        assert match, generated.key
        delivered = datetime.strptime(match["stamp"], "%Y%m%dT%H%MZ").replace(tzinfo=UTC)
        deliveries[match["flow_log"]].append(delivered)
        for row in traffic(parse([generated])):
            opened = delivered.timestamp() - 600
            assert opened <= int(row["start"]) < opened + 300
            assert int(row["end"]) <= delivered.timestamp()
    assert len(deliveries) == 4
    for times in deliveries.values():
        assert times == [START + timedelta(minutes=10 + 5 * i) for i in range(12)]


def test_mixed_format_writes_v2_and_v5_flow_logs() -> None:
    """By default some flow logs use AWS's v2 format and others a v5 custom format."""
    headers = {o.lines[0] for o in generate(Options(start=START, hours=0.25, seed=3))}
    assert V2 in headers
    (custom,) = headers - {V2}
    assert custom.startswith("version vpc-id") and set(custom.split()) >= V5_FIELDS
    only_v2 = {o.lines[0] for o in generate(Options(start=START, hours=0.25, format="v2"))}
    assert only_v2 == {V2}


def test_every_record_is_well_formed(clean: list[Row]) -> None:
    """Fields parse and agree: ports, protocols, times, actions, sizes, addresses."""
    for row in clean:
        assert row["version"] in {"2", "5"}
        assert re.fullmatch(r"\d{12}", row["account-id"])
        assert re.fullmatch(r"eni-[0-9a-f]{17}", row["interface-id"])
        if row["log-status"] != "OK":
            assert row["log-status"] in {"NODATA", "SKIPDATA"}
            assert row["srcaddr"] == row["dstaddr"] == row["action"] == row["bytes"] == "-"
            continue
        assert row["action"] in {"ACCEPT", "REJECT"}
        assert row["protocol"] in {"1", "6", "17"}
        assert 0 <= int(row["srcport"]) <= 65535 and 0 <= int(row["dstport"]) <= 65535
        assert int(row["start"]) <= int(row["end"])
        packets, size = int(row["packets"]), int(row["bytes"])
        assert packets >= 1
        if row["protocol"] == "6":
            assert size >= 40 * packets
        if row["action"] == "REJECT":
            assert packets <= 3
        src, dst = ipaddress.ip_address(row["srcaddr"]), ipaddress.ip_address(row["dstaddr"])
        assert src.version == dst.version
        if row["version"] == "5":
            assert row["type"] == f"IPv{src.version}"
            assert row["flow-direction"] in {"ingress", "egress"}


def test_traffic_is_varied(clean: list[Row]) -> None:
    """Two accounts of two VPCs; both actions, TCP/UDP/ICMP, the well-known ports, IPv6,
    NODATA, addresses inside the private ranges and public ones from many countries."""
    rows = traffic(clean)
    assert len({r["account-id"] for r in rows}) == 2
    assert len({r["flow_log"] for r in rows}) == 4
    assert {r["action"] for r in rows} == {"ACCEPT", "REJECT"}
    assert {r["protocol"] for r in rows} == {"1", "6", "17"}
    assert {22, 53, 80, 123, 443, 3306, 5432, 3389} <= {int(r["dstport"]) for r in rows}
    assert any(int(r["srcport"]) >= 49152 for r in rows)
    assert any(":" in r["srcaddr"] for r in rows)
    assert any(r["log-status"] == "NODATA" for r in clean)
    private = {a for r in rows for a in (r["srcaddr"], r["dstaddr"]) if not public(a)}
    ranges = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12")]
    assert all(any(ipaddress.ip_address(a) in n for n in ranges) for a in private)
    outside = sorted({a for r in rows for a in (r["srcaddr"], r["dstaddr"]) if public(a)})
    assert len(set(iptocc.country_code(outside))) >= 15


def test_written_objects_gunzip_to_the_generated_lines(tmp_path: Path) -> None:
    """write() puts every object under its key in the directory, gzipped."""
    chosen = Options(start=START, hours=0.5, seed=3)
    summary = write(chosen, str(tmp_path))
    expected = {o.key: o.lines for o in generate(chosen)}
    found = {p.relative_to(tmp_path).as_posix(): p for p in tmp_path.rglob("*.log.gz")}
    assert set(found) == set(expected) and summary.objects == len(expected)
    for key, path in found.items():
        assert gzip.decompress(path.read_bytes()).decode().splitlines() == expected[key]
    assert summary.flows == sum(len(lines) - 1 for lines in expected.values())


def test_port_scans_probe_200_ports_in_one_window(
    injected: tuple[list[Row], list[Injected]],
) -> None:
    """A scanner probes >= 200 distinct ports of the VPC's hosts within its window,
    mostly refused, with SYN only where the format has tcp-flags."""
    rows, truth = injected
    scans = [t for t in truth if t.kind == "port_scan"]
    assert len(scans) == 2
    for scan in scans:
        probes = [
            r
            for r in by_flow_log(rows)[scan.flow_log_id]
            if r["srcaddr"] == scan.subject and r["window"] == str(scan.window_start)
        ]
        assert len({r["dstport"] for r in probes}) >= 200
        assert Counter(r["action"] for r in probes).most_common(1)[0][0] == "REJECT"
        refused = [r for r in probes if r["action"] == "REJECT"]
        assert all(r.get("tcp-flags", "2") == "2" and r["protocol"] == "6" for r in refused)


def test_exfiltration_is_50x_the_hosts_median_after_6_hours(
    injected: tuple[list[Row], list[Injected]],
) -> None:
    """The host's egress in the injected windows is >= 50x its median, after >= 6 hours
    in which it sent something every window."""
    rows, truth = injected
    thefts = [t for t in truth if t.kind == "exfiltration"]
    assert len(thefts) == 2
    for theft in thefts:
        sent = egress(by_flow_log(rows)[theft.flow_log_id], theft.subject)
        median = statistics.median(sent[T0 + 300 * i] for i in range(8 * 12))
        for w in range(theft.window_start, theft.window_start + 300 * theft.windows, 300):
            assert sent[w] >= 50 * median
        assert theft.window_start >= T0 + 6 * HOUR
        assert all(sent[T0 + 300 * i] for i in range(6 * 12))


def test_long_lived_connection_spans_24_windows(
    injected: tuple[list[Row], list[Injected]],
) -> None:
    """The long-lived connection's 5-tuple is in >= 24 consecutive windows (2 hours)."""
    rows, truth = injected
    lasting = [t for t in truth if t.kind == "long_lived"]
    assert len(lasting) == 2
    for one in lasting:
        seen: dict[tuple[str, ...], list[int]] = defaultdict(list)
        for r in by_flow_log(rows)[one.flow_log_id]:
            if r["srcaddr"] == one.subject and r["dstaddr"] == one.peer:
                seen[five_tuple(r)].append(int(r["window"]))
        assert max(longest_run(windows) for windows in seen.values()) >= 24


def test_new_country_peer_is_new_to_its_vpc(
    injected: tuple[list[Row], list[Injected]],
) -> None:
    """The new peer's country appears in none of its VPC's traffic before, and only
    after the first 6 hours."""
    rows, truth = injected
    newcomers = [t for t in truth if t.kind == "new_country"]
    assert len(newcomers) == 2
    for newcomer in newcomers:
        country = iptocc.country_code(newcomer.subject)
        assert country == newcomer.detail["country"]
        assert newcomer.window_start >= T0 + 6 * HOUR
        earlier = {
            a
            for r in by_flow_log(rows)[newcomer.flow_log_id]
            if int(r["window"]) < newcomer.window_start
            for a in (r["srcaddr"], r["dstaddr"])
            if public(a)
        }
        assert country not in set(iptocc.country_code(sorted(earlier)))


def test_clean_sources_touch_few_ports(clean: list[Row]) -> None:
    """Without a scan, no source reaches more than 20 service ports (below the ephemeral
    range, where replies go) or 200 service ports of the VPC's hosts in a window."""
    ports: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    inside: dict[tuple[str, str, str], set[tuple[str, str]]] = defaultdict(set)
    for r in traffic(clean):
        if int(r["dstport"]) < 32768:
            key = (r["flow_log"], r["srcaddr"], r["window"])
            ports[key].add(r["dstport"])
            if not public(r["dstaddr"]):
                inside[key].add((r["dstaddr"], r["dstport"]))
    assert max(len(p) for p in ports.values()) <= 20
    assert max(len(p) for p in inside.values()) < 200


def test_clean_egress_is_steady(clean: list[Row]) -> None:
    """Every host that sends to the internet in most windows never sends over 3x its
    median in one."""
    checked = 0
    for rows in by_flow_log(clean).values():
        windows = sorted({int(r["window"]) for r in rows})
        sent: dict[str, Counter[int]] = defaultdict(Counter)
        for r in rows:
            if not public(r["srcaddr"]) and public(r["dstaddr"]):
                sent[r["srcaddr"]][int(r["window"])] += int(r["bytes"])
        for by_window in sent.values():
            if len(by_window) >= 0.8 * len(windows):
                checked += 1
                median = statistics.median(by_window[w] for w in windows)
                assert max(by_window.values()) <= 3 * median
    assert checked >= 20


def test_clean_connections_do_not_outlive_their_window(clean: list[Row]) -> None:
    """No TCP or UDP 5-tuple recurs in the next window (ephemeral ports are fresh), and
    no ICMP pair (no ports) is seen in more than five consecutive windows."""
    seen: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for r in traffic(clean):
        seen[(r["flow_log"], *five_tuple(r))].append(int(r["window"]))
    for key, windows in seen.items():
        assert longest_run(windows) <= (5 if key[-1] == "1" else 1), key


def test_clean_vpcs_meet_all_their_countries_in_the_first_hour(clean: list[Row]) -> None:
    """Every country a VPC's public peers come from already appears in its first hour."""
    for rows in by_flow_log(clean).values():
        first: set[str] = set()
        later: set[str] = set()
        for r in rows:
            for a in (r["srcaddr"], r["dstaddr"]):
                if public(a):
                    (first if int(r["window"]) < T0 + HOUR else later).add(a)
        assert set(iptocc.country_code(sorted(later))) <= set(iptocc.country_code(sorted(first)))


def test_anomalies_need_their_baseline() -> None:
    """An exfiltration or a new country needs more than 6 hours, a long-lived connection 2."""
    with pytest.raises(ValueError, match="exfiltration needs more than 6 hours"):
        Simulation(Options(start=START, hours=6, exfiltration=1))
    with pytest.raises(ValueError, match="long-lived needs at least 2 hours"):
        Simulation(Options(start=START, hours=1.5, long_lived=1))
    assert Simulation(Options(start=START, hours=1)).truth == []


def test_cli_writes_objects_and_ground_truth(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``flowlogs --truth`` writes the objects, the anomalies as JSON, and a summary line."""
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    truth = tmp_path / "truth.json"
    out = tmp_path / "out"
    argv = ["flowlogs", "--out", str(out), "--start", "2025-08-01T00:00:00Z", "--hours", "2.5"]
    argv += ["--accounts", "1", "--long-lived", "1", "--port-scans", "1", "--truth", str(truth)]
    flows = run(parser.parse_args(argv))
    anomalies = orjson.loads(truth.read_bytes())["anomalies"]
    assert sorted(a["kind"] for a in anomalies) == ["long_lived", "port_scan"]
    assert {"account_id", "vpc_id", "subject", "window_start"} <= set(anomalies[0])
    assert len(list(out.rglob("*.log.gz"))) == 2 * 30
    assert f"{flows:,} flows" in capsys.readouterr().err.splitlines()[-1]
    now = datetime(2025, 8, 1, 12, 34, tzinfo=UTC)
    default = options(parser.parse_args(["flowlogs"]), now=now)
    assert default.start == datetime(2025, 7, 31, 12, tzinfo=UTC) and default.hours == 24
