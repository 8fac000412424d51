"""Rollups per window and filter combination, and the VPC clocks (rollups.py, windows.py)."""

from __future__ import annotations

import pyarrow as pa

from streams.common.exactly_once import PartitionState
from streams.flowlogs import rollups
from streams.flowlogs.filters import Filters
from streams.flowlogs.retention import stale_keys
from streams.flowlogs.rollups import figures_by_window
from streams.flowlogs.windows import OpenWindows, advance, due

T0 = 1_700_000_100  # 22:15:00 UTC: a 5-minute boundary, not an hour's


def table(rows: list[dict[str, object]]) -> pa.Table:
    base = {
        "account_id": "111122223333", "vpc_id": "vpc-a", "subnet_id": None,
        "interface_id": "eni-1", "protocol": 6, "action": "ACCEPT", "log_status": "OK",
        "bytes": 100, "packets": 2, "start": T0, "_offset": 0,
    }  # fmt: skip
    full = [{**base, **row} for row in rows]
    return pa.Table.from_pylist(
        full,
        pa.schema([
            ("account_id", pa.string()), ("vpc_id", pa.string()), ("subnet_id", pa.string()),
            ("interface_id", pa.string()), ("protocol", pa.int64()), ("action", pa.string()),
            ("log_status", pa.string()), ("bytes", pa.int64()), ("packets", pa.int64()),
            ("start", pa.int64()), ("_offset", pa.int64()),
        ]),
    )  # fmt: skip


def test_figures_per_window_and_filter_combination() -> None:
    rows = table([
        {},
        {"bytes": 50, "action": "REJECT"},
        {"start": T0 + 299},
        {"start": T0 + 300, "protocol": 17},
        {"log_status": "NODATA", "action": None, "protocol": None, "bytes": None},
        {"log_status": "SKIPDATA", "action": None, "protocol": None, "bytes": None},
    ])  # fmt: skip
    store: dict[str, dict[str, int]] = {}
    state = PartitionState(store)
    rollups.apply(state, rows)
    state.flush()
    five = f"5m|{T0:012d}|111122223333|vpc-a|-|eni-1"
    assert {k: v["flows"] for k, v in store.items() if k.startswith(five)} == {
        f"{five}|6|ACCEPT": 2, f"{five}|6|REJECT": 1, f"{five}|-|-": 0,
    }  # fmt: skip
    assert store[f"{five}|6|ACCEPT"]["bytes"] == 200
    assert store[f"{five}|-|-"]["nodata"] == 1 and store[f"{five}|-|-"]["skipdata"] == 1
    hour = T0 - T0 % 3600
    assert store[f"1h|{hour:012d}|111122223333|vpc-a|-|eni-1|17|ACCEPT"]["flows"] == 1
    assert store[f"1h|{hour:012d}|111122223333|vpc-a|-|eni-1|6|ACCEPT"]["packets"] == 4


def test_a_record_applied_before_a_crash_is_not_applied_again() -> None:
    store: dict[str, dict[str, int]] = {}
    first = PartitionState(store)
    rollups.apply(first, table([{"_offset": 5}, {"_offset": 6}]))
    first.flush()
    # The worker died before committing: offsets 5..7 come again, with one new record.
    again = PartitionState(store)
    rollups.apply(again, table([{"_offset": 5}, {"_offset": 6}, {"_offset": 7}]))
    again.flush()
    assert store[f"5m|{T0:012d}|111122223333|vpc-a|-|eni-1|6|ACCEPT"]["flows"] == 3


def test_deltas_come_in_offset_order_for_every_key() -> None:
    rows = table([{"_offset": 9}, {"_offset": 3}, {"_offset": 7}])
    offsets = [d.offset for d in rollups.deltas(rows) if d.key.startswith("5m")]
    assert offsets == sorted(offsets) == [3, 7, 9]


def test_windows_close_once_the_clock_passes_their_end_plus_lateness() -> None:
    clock = advance(None, T0 + 10, T0 + 10)
    assert due(clock, lateness=600) is None
    advance(clock, T0 + 20, T0 + 300 + 600 - 1)
    assert due(clock, lateness=600) is None  # one second short
    advance(clock, T0, T0 + 300 + 600)
    assert due(clock, lateness=600) == T0
    advance(clock, T0, T0 + 3000)
    assert due(clock, lateness=600) == T0 + 300 * 7
    assert due(clock, lateness=600) is None


def test_a_flow_from_long_ago_closes_one_window_not_every_window_since() -> None:
    """A VPC's first flow dated 2000-01-01 and one of today: two windows hold rows, so
    two are closed, whatever lies between (it once meant 2.8 million empty closes)."""
    old, now = 946_684_800, 1_800_000_000
    clock = advance(None, old, now)
    windows = OpenWindows()
    flows = table([{"start": old}, {"start": now}])
    for name in ("srcaddr", "dstaddr", "end", "tcp_flags", "flow_direction", "srcport", "dstport"):
        flows = flows.append_column(
            name,
            pa.nulls(
                flows.num_rows,
                pa.int64() if name in ("end", "tcp_flags", "srcport", "dstport") else pa.string(),
            ),
        )
    windows.stage("a|v", flows)
    last = due(clock, lateness=0)
    assert last == now - now % 300 - 300
    assert windows.due("a|v", old - old % 300 - 300, last) == [old]


def test_a_first_flow_earlier_than_the_first_batch_is_not_late() -> None:
    clock = advance(None, T0 - 1200, T0)
    assert clock["closed"] == T0 - 1200 - 300


def test_open_windows_keep_only_finished_batches() -> None:
    windows = OpenWindows()
    flows = table([{"start": T0}, {"start": T0 + 300}])
    for name in ("srcaddr", "dstaddr", "srcport", "dstport", "end", "tcp_flags", "flow_direction"):
        flows = flows.append_column(
            name,
            pa.nulls(
                flows.num_rows,
                pa.int64() if "port" in name or name in ("end", "tcp_flags") else pa.string(),
            ),
        )
    windows.stage("a|v", flows)
    windows.discard()  # the batch failed: nothing held
    assert windows.take("a|v", T0) is None
    windows.stage("a|v", flows)
    staged = windows.take("a|v", T0)
    assert staged is not None and staged.num_rows == 1  # staged rows count within the batch
    windows.keep({"a|v": T0})
    kept = windows.take("a|v", T0)  # the last closed window stays, for the one after it
    assert kept is not None and kept.num_rows == 1
    later = windows.take("a|v", T0 + 300)
    assert later is not None and later.num_rows == 1
    windows.keep({"a|v": T0 + 300})
    assert windows.take("a|v", T0) is None  # two windows back: dropped


class Partition:
    """A partition's stored keys, sorted as RocksDB sorts them."""

    def __init__(self, entries: dict[str, object]) -> None:
        self.entries = dict(sorted(entries.items()))

    def scan(self, prefix: str) -> list[tuple[str, object]]:
        return [(k, v) for k, v in self.entries.items() if k.startswith(prefix)]

    def keys_between(self, begin: str, end: str) -> list[str]:
        return [k for k in self.entries if begin <= k < end]


def test_a_partition_forgets_old_rollups_objects_and_silent_baselines() -> None:
    now = 1_800_000_000
    day = 86_400
    io = Partition({
        f"5m|{now - 8 * day:012d}|a|v|-|e|6|ACCEPT": {"flows": 1},
        f"5m|{now - 6 * day:012d}|a|v|-|e|6|ACCEPT": {"flows": 1},
        f"1h|{now - 8 * day:012d}|a|v|-|e|6|ACCEPT": {"flows": 1},
        "obj|s3://b/old": {"t": now - 8 * day, "seqs": {}},
        "obj|s3://b/new": {"t": now - day, "seqs": {}},
        "exf|a|v|10.0.0.1": [20, 1.0, 0.1, now - 15 * day],
        "exf|a|v|10.0.0.2": [20, 1.0, 0.1, now - day],
        "clock|a|v": {"wm": now - 30 * day, "closed": now - 30 * day},
    })  # fmt: skip
    stale = stale_keys(io, now, dedupe_days=7, five_minute_days=7, hourly_days=90)
    assert sorted(stale) == sorted([
        f"5m|{now - 8 * day:012d}|a|v|-|e|6|ACCEPT", "obj|s3://b/old", "exf|a|v|10.0.0.1",
    ])  # fmt: skip


def test_a_vpcs_windows_sum_the_keys_its_filters_pass() -> None:
    w = 1_800_000_000
    entries = [
        (f"5m|{w:012d}|a|v|s1|e1|6|ACCEPT", {"flows": 2, "bytes": 10}),
        (f"5m|{w:012d}|a|v|s1|e1|17|ACCEPT", {"flows": 1, "bytes": 5}),
        (f"5m|{w:012d}|a|v|s2|e2|6|REJECT", {"flows": 4, "bytes": 1}),
        (f"5m|{w:012d}|a|other|s1|e1|6|ACCEPT", {"flows": 100, "bytes": 100}),
        (f"5m|{w + 300:012d}|a|v|s1|e1|6|ACCEPT", {"flows": 3, "bytes": 7}),
    ]
    everything = figures_by_window(entries, "a|v", Filters())
    assert [(r["window"], r["flows"], r["bytes"]) for r in everything] == [
        (w, 7, 16),
        (w + 300, 3, 7),
    ]
    tcp = figures_by_window(entries, "a|v", Filters(protocol=(6,), subnet_id=("s1",)))
    assert [(r["window"], r["flows"]) for r in tcp] == [(w, 2), (w + 300, 3)]
    later = figures_by_window(entries, "a|v", Filters(start=w + 1))
    assert [r["window"] for r in later] == [w + 300]


def test_a_windows_rows_held_for_detection_are_capped() -> None:
    """One object of millions of lines in one window must not hold a worker's memory:
    past the cap, rows are counted (returned) and not held."""
    windows = OpenWindows(cap=3)
    flows = table([{"start": T0 + i} for i in range(5)])
    for name in ("srcaddr", "dstaddr", "end", "tcp_flags", "flow_direction", "srcport", "dstport"):
        numeric = name in ("end", "tcp_flags", "srcport", "dstport")
        flows = flows.append_column(name, pa.nulls(5, pa.int64() if numeric else pa.string()))
    assert windows.stage("a|v", flows) == 2
    windows.keep({})
    assert windows.stage("a|v", flows) == 5
    held = windows.take("a|v", T0)
    assert held is not None and held.num_rows == 3


def test_rollup_keys_sort_by_time_in_any_year() -> None:
    """A view's range of windows is one range of keys: 2000 sorts before 2027."""
    early = rollups.rollup_key("5m", 946_684_800, ("a", "v", "-", "e", 6, "ACCEPT"))
    late = rollups.rollup_key("5m", 1_800_000_000, ("a", "v", "-", "e", 6, "ACCEPT"))
    assert early < late
