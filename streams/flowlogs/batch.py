"""One batch of flowlogs.records, per partition, in the order that makes it exact:

1. chunks decoded; the first copy of each (object, seq) counts (dedupe.py), records
   that are not chunks dead-lettered;
2. the counted rows written to the lake (offset-named files: a replay skips them);
3. rollups updated (per-key offset guards), the rows staged in their VPC's open
   windows, and the windows the VPC's clock made due closed through the detectors;
4. dead letters and alerts acknowledged, then the table (changelog acknowledged
   before RocksDB, streams/common/table_io.py), the VPC clocks last.

Metrics move once the batch is done, so a batch that is retried is counted once.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from streams.common.batches import by_partition
from streams.common.deadletter import dead_letter
from streams.common.exactly_once import PartitionState
from streams.common.sends import Confirmed
from streams.common.table_io import write_all
from streams.flowlogs import dedupe, rollups
from streams.flowlogs.chunks import Chunk, ChunkError, decode
from streams.flowlogs.detect import Alert
from streams.flowlogs.detection import Closing, close_windows
from streams.flowlogs.fields import SCHEMA
from streams.flowlogs.rollups import OFFSET_COLUMN
from streams.flowlogs.runtime import ALERTS, DLQ, FlowPipeline, PartitionRuntime
from streams.flowlogs.windows import DETECTOR_COLUMNS, WINDOW, advance, clock_key, due


async def handle_batch(pipeline: FlowPipeline, events: list[Any]) -> None:
    for partition, group in by_partition(events).items():
        runtime = await pipeline.runtime(partition)
        try:
            await _handle_partition(pipeline, runtime, partition, group)
        except BaseException:
            runtime.windows.discard()
            runtime.closed_now = 0
            raise


async def _handle_partition(
    pipeline: FlowPipeline, runtime: PartitionRuntime, partition: int, events: list[Any]
) -> None:
    metrics, producer = pipeline.metrics, pipeline.app.producer
    sends = Confirmed(producer)
    state = PartitionState(runtime.io)
    now = time.time()
    counted: list[tuple[int, Chunk]] = []
    tally: Counter[str] = Counter()
    for event in events:
        message = event.message
        try:
            chunk = decode(message.value)
        except ChunkError as exc:
            await dead_letter(sends, DLQ, message, "invalid_chunk", str(exc))
            tally["invalid_chunk"] += 1
            continue
        if dedupe.counts(state, chunk.object, chunk.seq, message.offset, now):
            counted.append((message.offset, chunk))
        elif message.offset <= runtime.horizon:
            tally["replayed"] += 1
        else:
            tally["duplicate"] += 1
    flows = _with_offsets(counted)
    first, last = events[0].message.offset, events[-1].message.offset
    # The lake's write (a thread, pyarrow releases the GIL) runs while the rollups and
    # the detectors work; nothing below is sent or written before it is done.
    lake = asyncio.ensure_future(pipeline.lake.write(partition, first, last, flows))
    try:
        rollups.apply(state, flows)
        alerts, clocks, late = await _windows(pipeline, runtime, state, counted)
    finally:
        await lake  # a failure of either fails the batch, which is tried again
    for alert in alerts:
        body = alert.to_json()
        await sends.send(ALERTS, alert.id.encode(), orjson.dumps(body))
    await sends.confirm()  # dead letters and alerts acknowledged before the state moves
    state.flush()
    runtime.io.barrier()
    for vpc_key, clock in clocks.items():
        runtime.io[clock_key(vpc_key)] = clock
    await write_all([runtime.io], producer)
    runtime.windows.keep({key: clock["closed"] for key, clock in clocks.items()})
    runtime.horizon = max(runtime.horizon, last)
    metrics.chunks.inc(len(counted))
    metrics.flows.inc(flows.num_rows)
    metrics.duplicate_chunks.inc(tally["duplicate"])
    metrics.replayed.inc(tally["replayed"])
    metrics.late_for_detection.inc(late)
    metrics.windows_closed.inc(runtime.closed_now)
    runtime.closed_now = 0
    if tally["invalid_chunk"]:
        metrics.dead_letters.labels("invalid_chunk").inc(tally["invalid_chunk"])
    for alert in alerts:
        metrics.alerts.labels(alert.kind).inc()


def _with_offsets(counted: list[tuple[int, Chunk]]) -> pa.Table:
    if not counted:
        return SCHEMA.empty_table().append_column(OFFSET_COLUMN, pa.array([], pa.int64()))
    tables = [
        chunk.flows.append_column(
            OFFSET_COLUMN, pa.array([offset] * chunk.flows.num_rows, pa.int64())
        )
        for offset, chunk in counted
    ]
    return pa.concat_tables(tables)


async def _windows(
    pipeline: FlowPipeline,
    runtime: PartitionRuntime,
    state: PartitionState,
    counted: list[tuple[int, Chunk]],
) -> tuple[list[Alert], dict[str, dict[str, int]], int]:
    """Stage new rows in their VPC's open windows, close what is due; the alerts, the
    clocks changed and the count of rows late for detection."""
    clocks: dict[str, dict[str, int]] = {}
    late = 0
    by_vpc: dict[str, list[pa.Table]] = defaultdict(list)
    for offset, chunk in counted:
        if offset > runtime.horizon and chunk.flows.num_rows:
            by_vpc[chunk.key].append(chunk.flows)
    for vpc_key, tables in by_vpc.items():
        # Only the detectors' columns are copied from here on (windows.py).
        flows = pa.concat_tables(tables).select(list(DETECTOR_COLUMNS))
        starts = flows.column("start")
        clock = clocks.get(vpc_key) or runtime.io.get(clock_key(vpc_key))
        earliest, latest = pc.min(starts).as_py(), pc.max(starts).as_py()
        clock = advance(dict(clock) if clock else None, earliest, latest)
        on_time = pc.greater(starts, clock["closed"] + WINDOW - 1)
        kept = flows if pc.all(on_time, skip_nulls=False).as_py() else flows.filter(on_time)
        late += flows.num_rows - kept.num_rows
        if kept.num_rows:
            late += runtime.windows.stage(vpc_key, kept)  # beyond a window's cap: unscanned
        clocks[vpc_key] = clock
    closings: list[Closing] = []
    for vpc_key, clock in clocks.items():
        closed_before = clock["closed"]
        last = due(clock, pipeline.settings.lateness_seconds)
        if last is None:
            continue
        # The last window closed that held rows: streak entries can be there and before.
        since = clock.get("rows", closed_before)
        windows = runtime.windows.due(vpc_key, closed_before, last)
        # Each window taken once: as the window before the next it is the same table,
        # which the detectors then read once.
        taken = {window: runtime.windows.take(vpc_key, window) for window in windows}
        for window in windows:
            previous = taken.get(window - WINDOW)
            if window - WINDOW not in taken:
                previous = runtime.windows.take(vpc_key, window - WINDOW)
            closings.append(Closing(vpc_key, window, taken[window], previous, since))
            since = window
            runtime.closed_now += 1
        clock["rows"] = since
    # Every window the batch closed, of every VPC, through the detectors at once.
    alerts = close_windows(state, closings, pipeline.detectors)
    return alerts, clocks, late
