"""Rollups: exact figures per 5-minute and hourly window and per filter combination (pure).

A rollup key names a window and one value of every filter the views take but the
addresses and ports: ``<res>|<window start, 12 digits>|<account>|<vpc>|<subnet>|<eni>|<protocol>|
<action>``. An ENI belongs to one subnet, VPC and account, so a window holds at most
(ENIs x protocols x actions) keys, and ANY combination of those filters is a sum over
the keys that match: nothing is precomputed per combination, nothing is approximate.
Top talkers and ports need the addresses, which cannot be keys (a window can hold
millions); they come from the columnar copy (lake.py, query.py).

Each value holds the window's figures (FIGURES) and ``_o``, the offset of the last
record applied (streams/common/exactly_once.py). A batch's contribution is computed
per record, so each key applies exactly the records past its own ``_o``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from streams.common.exactly_once import PartitionState, Value
from streams.flowlogs.filters import Filters

FIVE_MINUTES = 300
HOUR = 3600
RESOLUTIONS = {"5m": FIVE_MINUTES, "1h": HOUR}
DIMENSIONS = ("account_id", "vpc_id", "subnet_id", "interface_id", "protocol", "action")
#: flows, bytes, packets, accepted, rejected, nodata, skipdata
FIGURES = ("flows", "bytes", "packets", "accepted", "rejected", "nodata", "skipdata")
NO_VALUE = "-"
OFFSET_COLUMN = "_offset"


@dataclass(frozen=True)
class Delta:
    key: str
    offset: int
    figures: tuple[int, ...]


def window_of(start: int, resolution: int) -> int:
    return start - start % resolution


def rollup_key(resolution: str, window: int, dims: tuple[object, ...]) -> str:
    """Windows zero-padded to 12 digits: keys sort by time, so a range of windows (a
    view's, the retention sweep's) is one range of keys, for any year."""
    values = (NO_VALUE if v is None else str(v) for v in dims)
    return "|".join((resolution, window_text(window), *values))


def window_text(window: int) -> str:
    return f"{window:012d}"


def deltas(flows: pa.Table) -> Iterator[Delta]:
    """Each record's contribution to each rollup key it touches.

    ``flows`` holds the rows of a batch's accepted chunks with an ``_offset`` column
    (the Kafka offset of the chunk each row came in). One vectorised group-by per
    resolution; the loop is per (record, key), not per flow.
    """
    if flows.num_rows == 0:
        return
    status = flows.column("log_status")
    is_flow = pc.equal(status, "OK")
    action = flows.column("action")
    base = {
        OFFSET_COLUMN: flows.column(OFFSET_COLUMN),
        **{name: flows.column(name) for name in DIMENSIONS},
        "flows": pc.cast(is_flow, pa.int64()),
        "bytes": pc.if_else(is_flow, pc.fill_null(flows.column("bytes"), 0), 0),
        "packets": pc.if_else(is_flow, pc.fill_null(flows.column("packets"), 0), 0),
        "accepted": pc.cast(pc.and_(is_flow, pc.equal(action, "ACCEPT")), pa.int64()),
        "rejected": pc.cast(pc.and_(is_flow, pc.equal(action, "REJECT")), pa.int64()),
        "nodata": pc.cast(pc.equal(status, "NODATA"), pa.int64()),
        "skipdata": pc.cast(pc.equal(status, "SKIPDATA"), pa.int64()),
    }
    start = flows.column("start")
    table = pa.table({**base, "window": pc.subtract(start, pc.remainder(start, FIVE_MINUTES))})
    five_minutes = _summed(table)
    yield from _deltas("5m", five_minutes)
    # An hour's figures are the sums of its 5-minute windows': grouping those again reads
    # one row per record and key, not one per flow.
    window = five_minutes.column("window")
    hours = five_minutes.set_column(
        five_minutes.schema.get_field_index("window"),
        "window",
        pc.subtract(window, pc.remainder(window, HOUR)),
    )
    yield from _deltas("1h", _summed(hours))


def _summed(table: pa.Table) -> pa.Table:
    """``table``'s figures summed per record, window and dimensions."""
    groups = table.group_by([OFFSET_COLUMN, "window", *DIMENSIONS], use_threads=False)
    summed = groups.aggregate([(figure, "sum") for figure in FIGURES])
    return summed.rename_columns({f"{figure}_sum": figure for figure in FIGURES})


def _deltas(resolution: str, summed: pa.Table) -> Iterator[Delta]:
    # A key's guard skips any offset at or below the last one applied: in order.
    summed = summed.sort_by(OFFSET_COLUMN)
    offsets = summed.column(OFFSET_COLUMN).to_pylist()
    windows = summed.column("window").to_pylist()
    dims = [summed.column(d).to_pylist() for d in DIMENSIONS]
    sums = [summed.column(f).to_pylist() for f in FIGURES]
    for row in range(summed.num_rows):
        key = rollup_key(resolution, windows[row], tuple(d[row] for d in dims))
        yield Delta(key, offsets[row], tuple(int(s[row] or 0) for s in sums))


def apply(state: PartitionState, flows: pa.Table) -> int:
    """Add each record's figures to the keys it touches, once; the count of keys changed."""
    changed = 0
    for delta in deltas(flows):

        def add(value: Value, figures: tuple[int, ...] = delta.figures) -> None:
            for name, amount in zip(FIGURES, figures, strict=True):
                value[name] = value.get(name, 0) + amount

        changed += state.update(delta.key, delta.offset, add, dict)
    return changed


def figures_by_window(
    entries: Iterable[tuple[str, Value]], vpc_key: str, wanted: Filters
) -> list[dict[str, Any]]:
    """The VPC's figures per window, summed over the keys that pass ``wanted`` (its subnet,
    ENI, protocol and action filters; the time range by window start), oldest first."""
    account, _, vpc = vpc_key.partition("|")
    totals: dict[int, dict[str, int]] = {}
    for key, value in entries:
        parts = key.split("|")
        if len(parts) != 2 + len(DIMENSIONS) or (parts[2], parts[3]) != (account, vpc):
            continue
        window = int(parts[1])
        if not _passes(parts[4:], wanted) or not _in_range(window, wanted):
            continue
        total = totals.setdefault(window, dict.fromkeys(FIGURES, 0))
        for name in FIGURES:
            total[name] += int(value.get(name, 0))
    return [{"window": window, **totals[window]} for window in sorted(totals)]


def _passes(dims: list[str], wanted: Filters) -> bool:
    subnet, eni, protocol, action = dims
    checks = (
        (wanted.subnet_id, subnet),
        (wanted.interface_id, eni),
        (tuple(str(p) for p in wanted.protocol), protocol),
        (wanted.action, action),
    )
    return all(not allowed or value in allowed for allowed, value in checks)


def _in_range(window: int, wanted: Filters) -> bool:
    return (wanted.start is None or window >= wanted.start) and (
        wanted.end is None or window < wanted.end
    )
