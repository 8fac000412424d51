"""The detectors' state kept in a partition's table between windows (detection.py)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from streams.common.exactly_once import PartitionState
from streams.flowlogs.detect import Alert, DetectorSettings
from streams.flowlogs.detection import close_window
from streams.flowlogs.windows import DETECTOR_COLUMNS

W = 1_800_000_000 - 1_800_000_000 % 300
TYPES = {"srcport": pa.int64(), "dstport": pa.int64(), "protocol": pa.int64(),
         "packets": pa.int64(), "bytes": pa.int64(), "start": pa.int64(), "end": pa.int64(),
         "tcp_flags": pa.int64()}  # fmt: skip
SCHEMA = pa.schema([(name, TYPES.get(name, pa.string())) for name in DETECTOR_COLUMNS])


def connection(vpc: str, window: int) -> pa.Table:
    row: dict[str, Any] = {name: None for name in DETECTOR_COLUMNS}
    row.update(
        account_id="111122223333", vpc_id=vpc, interface_id="eni-1", srcaddr="10.0.0.1",
        dstaddr="52.94.1.1", srcport=50000, dstport=443, protocol=6, packets=5, bytes=500,
        start=window + 10, end=window + 20, action="ACCEPT", log_status="OK",
    )  # fmt: skip
    return pa.Table.from_pylist([row], SCHEMA)


def test_vpcs_sharing_a_partition_keep_their_own_streaks() -> None:
    """VPC b's clock runs a day behind VPC a's in the same partition (its objects are
    read after a's): closing a's windows must not cut b's connection's streak."""
    store: dict[str, Any] = {}
    alerts: list[Alert] = []
    settings = DetectorSettings()
    for i in range(15):
        state = PartitionState(store)
        for vpc, window in (("vpc-a", W + 86_400 + 300 * i), ("vpc-b", W + 300 * i)):
            flows = connection(vpc, window)
            previous = connection(vpc, window - 300) if i else None
            key = f"111122223333|{vpc}"
            since = window - 300
            alerts += close_window(state, key, flows, previous, window, settings, since=since)
        state.flush()
    found = sorted((a.vpc_id, a.window_start) for a in alerts if a.kind == "long_lived")
    assert found == [("vpc-a", W + 86_400 + 300 * 11), ("vpc-b", W + 300 * 11)]


def test_a_window_without_flows_breaks_streaks() -> None:
    store: dict[str, Any] = {}
    settings = DetectorSettings()
    alerts: list[Alert] = []
    previous = None
    since = W - 300
    for i in range(20):
        state = PartitionState(store)
        window = W + 300 * i
        if i == 6:  # no rows: the wiring does not close it, and it breaks the streak
            previous = None
            continue
        flows = connection("vpc-a", window)
        key = "111122223333|vpc-a"
        alerts += close_window(state, key, flows, previous, window, settings, since=since)
        previous, since = flows, window
        state.flush()
    # Windows 0-5, then 7-18: twelve in a row only from window 7, at window 18.
    assert [a.window_start for a in alerts if a.kind == "long_lived"] == [W + 300 * 18]


def test_streaks_broken_by_a_gap_leave_no_entries_behind() -> None:
    """Windows 0-2 hold a connection, 3-9 nothing, then 10-11 another: the first one's
    entries (under windows 1 and 2) are gone once window 10 is closed."""
    store: dict[str, Any] = {}
    settings = DetectorSettings()
    previous, since = None, W - 300
    for i in (0, 1, 2, 10, 11):
        state = PartitionState(store)
        window = W + 300 * i
        flows = connection("vpc-a", window)
        if i == 10:
            previous = None
            flows = flows.set_column(
                flows.schema.get_field_index("dstaddr"), "dstaddr", pa.array(["52.94.9.9"])
            )
        elif i == 11:
            flows = flows.set_column(
                flows.schema.get_field_index("dstaddr"), "dstaddr", pa.array(["52.94.9.9"])
            )
        close_window(state, "111122223333|vpc-a", flows, previous, window, settings, since=since)
        previous, since = flows, window
        state.flush()
    streaks = sorted(k for k in store if k.startswith("ll|"))
    assert streaks and all("52.94.9.9" in k for k in streaks)
