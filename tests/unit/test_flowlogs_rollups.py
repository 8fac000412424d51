"""Rollups per window and filter combination, and the VPC clocks (rollups.py, windows.py)."""

from __future__ import annotations

import pyarrow as pa

from streams.common.exactly_once import PartitionState
from streams.flowlogs import rollups
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
    five = f"5m|{T0}|111122223333|vpc-a|-|eni-1"
    assert {k: v["flows"] for k, v in store.items() if k.startswith(five)} == {
        f"{five}|6|ACCEPT": 2, f"{five}|6|REJECT": 1, f"{five}|-|-": 0,
    }  # fmt: skip
    assert store[f"{five}|6|ACCEPT"]["bytes"] == 200
    assert store[f"{five}|-|-"]["nodata"] == 1 and store[f"{five}|-|-"]["skipdata"] == 1
    hour = T0 - T0 % 3600
    assert store[f"1h|{hour}|111122223333|vpc-a|-|eni-1|17|ACCEPT"]["flows"] == 1
    assert store[f"1h|{hour}|111122223333|vpc-a|-|eni-1|6|ACCEPT"]["packets"] == 4


def test_a_record_applied_before_a_crash_is_not_applied_again() -> None:
    store: dict[str, dict[str, int]] = {}
    first = PartitionState(store)
    rollups.apply(first, table([{"_offset": 5}, {"_offset": 6}]))
    first.flush()
    # The worker died before committing: offsets 5..7 come again, with one new record.
    again = PartitionState(store)
    rollups.apply(again, table([{"_offset": 5}, {"_offset": 6}, {"_offset": 7}]))
    again.flush()
    assert store[f"5m|{T0}|111122223333|vpc-a|-|eni-1|6|ACCEPT"]["flows"] == 3


def test_deltas_come_in_offset_order_for_every_key() -> None:
    rows = table([{"_offset": 9}, {"_offset": 3}, {"_offset": 7}])
    offsets = [d.offset for d in rollups.deltas(rows) if d.key.startswith("5m")]
    assert offsets == sorted(offsets) == [3, 7, 9]


def test_windows_close_once_the_clock_passes_their_end_plus_lateness() -> None:
    clock = advance(None, T0 + 10, T0 + 10)
    assert due(clock, lateness=600) == []
    advance(clock, T0 + 20, T0 + 300 + 600 - 1)
    assert due(clock, lateness=600) == []  # one second short
    advance(clock, T0, T0 + 300 + 600)
    assert due(clock, lateness=600) == [T0]
    advance(clock, T0, T0 + 3000)
    assert due(clock, lateness=600) == [T0 + 300 * i for i in range(1, 8)]
    assert due(clock, lateness=600) == []


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
