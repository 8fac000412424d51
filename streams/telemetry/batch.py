"""One batch of telemetry.readings, per partition, in two phases, each ending with the
table write that makes it count (streams/telemetry/state.py explains why this order is
exact under redelivery):

1. readings into their windows: dead letters acknowledged, then chunks and metas;
2. windows due on event time closed: figures and alerts acknowledged, then state.

Every send is confirmed (streams/common/sends.py), the table's changelog is
acknowledged before RocksDB is written (streams/common/table_io.py), and the worker's
metrics move once the batch is done, so a batch that is retried is counted once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any

import orjson
from pydantic import ValidationError

from streams.common.batches import PROCESSING_ERROR, by_partition
from streams.common.deadletter import DeadLetter, Source, dead_letter, send_dead_letter
from streams.common.partitioning import partition_for
from streams.common.sends import Confirmed
from streams.common.table_io import write_all
from streams.telemetry.models import (
    ReadingGroup,
    beyond,
    decode_each_group,
    decode_groups,
    explain,
    is_group_list,
)
from streams.telemetry.runtime import TelemetryPipeline
from streams.telemetry.state import Closed

log = logging.getLogger(__name__)

AGGREGATES = "telemetry.aggregates"
ALERTS = "telemetry.alerts"
DLQ = "telemetry.dlq"
CONSOLE_ALERTS = 20
# A batch is ~1 s of CPU work on the event loop: pausing every ~40 ms of it (~10,000
# readings' bytes, applied or replayed) keeps the web views, the producer's sends and
# the heartbeat-driven services responsive meanwhile.
YIELD_EVERY_BYTES = 500_000
YIELD_EVERY_DEVICES = 10


async def handle_batch(pipeline: TelemetryPipeline, events: list[Any]) -> None:
    """Window one batch of records, then close what their event time made due."""
    config = pipeline.config
    producer = pipeline.app.producer
    sends = Confirmed(producer)
    letters: Counter[str] = Counter()
    per_device: Counter[str] = Counter()
    now = time.time()
    touched: dict[int, dict[str, None]] = {}
    replayed = 0
    since_yield = 0
    grouped = by_partition(events)
    runtimes = pipeline.runtimes(grouped)
    for partition, batch in grouped.items():
        runtime = runtimes[partition]
        devices = touched[partition] = {}
        for event in batch:
            message = event.message
            since_yield += len(message.value or b"")
            if since_yield >= YIELD_EVERY_BYTES:
                since_yield = 0
                await asyncio.sleep(0)
            groups, refused = await _decode(pipeline, sends, message, letters)
            # A record holding one group as an object is stored as received (state.py),
            # unless some of its readings were refused.
            single = not refused and len(groups) == 1 and not is_group_list(message.value)
            raw = message.value if single else None
            for device, rows in groups.items():
                applied = runtime.windows.apply(device, message.offset, rows, config, raw=raw)
                if applied.replayed:
                    replayed += 1
                    continue
                if applied.late:
                    late = ReadingGroup.model_construct(device_id=device, readings=applied.late)
                    detail = f"{len(applied.late)} readings after their window closed"
                    value = late.model_dump_json().encode()
                    await dead_letter(sends, DLQ, message, "late", detail, value=value)
                    letters["late"] += 1
                per_device[device] += applied.readings
                devices[device] = None
                runtime.last_wall[device] = now
        runtime.next_offset = batch[-1].message.offset + 1
    await sends.confirm()  # dead letters acknowledged before their records count
    for runtime in runtimes.values():
        runtime.windows.flush_applied()
    await write_all([runtime.io for runtime in runtimes.values()], producer)
    closed = Closed()
    for partition, devices in touched.items():
        windows = runtimes[partition].windows
        for count, device in enumerate(devices, 1):
            if count % YIELD_EVERY_DEVICES == 0:
                await asyncio.sleep(0)
            windows.close(device, windows.metas[device]["max"], config, "event_time", closed)
    if closed.windows:
        await emit(pipeline, closed)
        await write_all([runtime.io for runtime in runtimes.values()], producer)
    _count(pipeline, events, per_device, replayed, letters)


def _count(
    pipeline: TelemetryPipeline,
    events: list[Any],
    per_device: Counter[str],
    replayed: int,
    letters: Counter[str],
) -> None:
    metrics = pipeline.metrics
    readings = sum(per_device.values())
    metrics.records.inc(len(events))
    metrics.readings.inc(readings)
    metrics.replayed.inc(replayed)
    metrics.batch_readings.observe(readings)
    for reason, count in letters.items():
        metrics.dead_letters.labels(reason).inc(count)
    pipeline.device_readings.update(per_device)


async def _decode(
    pipeline: TelemetryPipeline, sends: Confirmed, message: Any, letters: Counter[str]
) -> tuple[dict[str, list[Any]], int]:
    """Each valid device's readings in the record, and how many dead letters were sent
    (also counted by reason in ``letters``).

    The rules are the ingest's (models.py): a record that is not valid at all is
    dead-lettered whole; in an array record, an invalid group is dead-lettered alone,
    and so is a device in the wrong partition (its state lives in another partition,
    and windowing it here too would split its windows in two). Readings stamped more
    than ``max_future_seconds`` after the earlier of the record's Kafka timestamp and
    the clock are dead-lettered as ``future_timestamp``: they would move the device's
    event time and close every window it has.
    """
    value = message.value or b""
    keyed = message.key is not None
    refused = 0
    try:
        groups: list[ReadingGroup | tuple[bytes, str]] = [*decode_groups(value)]
    except ValidationError as exc:
        if keyed or not is_group_list(value):
            await _letter(sends, letters, message, "invalid", explain(exc))
            return {}, 1
        try:
            groups = decode_each_group(value)
        except ValidationError as whole:
            await _letter(sends, letters, message, "invalid", explain(whole))
            return {}, 1
    if keyed and (
        len(groups) > 1
        or not isinstance(groups[0], ReadingGroup)
        or message.key != groups[0].device_id.encode()
    ):
        await _letter(sends, letters, message, "invalid", "the key is not the record's device_id")
        return {}, 1
    by_device: dict[str, list[Any]] = {}
    partitions = pipeline.settings.partitions
    latest_ms = min(int(message.timestamp * 1000), int(time.time() * 1000))
    latest_ms += pipeline.settings.max_future_seconds * 1000
    for group in groups:
        if not isinstance(group, ReadingGroup):
            raw, why = group
            await _letter(sends, letters, message, "invalid", why, value=raw)
            refused += 1
            continue
        device = group.device_id
        home = partition_for(device.encode(), partitions)
        if home != message.partition:
            detail = (
                f"device {device} belongs in partition {home} of {partitions} "
                "(Kafka's default partitioner of its id)"
            )
            # A keyed record is one group: the whole record is the dead letter.
            letter = None if keyed else group.model_dump_json().encode()
            await _letter(sends, letters, message, "invalid", detail, letter)
            refused += 1
            continue
        rows, future = beyond(group.readings, latest_ms)
        if future:
            ahead = ReadingGroup.model_construct(device_id=device, readings=future)
            detail = f"{len(future)} readings stamped more than the allowed skew ahead"
            letter = ahead.model_dump_json().encode()
            await _letter(sends, letters, message, "future_timestamp", detail, value=letter)
            refused += 1
        if not rows:
            continue
        known = by_device.get(device)
        # A device split over two groups of one record is windowed as one: a record is
        # applied to a device once (its offset marks it done).
        by_device[device] = rows if known is None else [*known, *rows]
    return by_device, refused


async def emit(pipeline: TelemetryPipeline, closed: Closed) -> None:
    """Send closed windows and alerts, wait for their acknowledgement, count them."""
    metrics, config = pipeline.metrics, pipeline.config
    sends = Confirmed(pipeline.app.producer)
    for record in closed.aggregates:
        await sends.send(AGGREGATES, record["id"].encode(), orjson.dumps(record))
    for alert in closed.alerts:
        await sends.send(ALERTS, alert["id"].encode(), orjson.dumps(alert))
    for failed in closed.failed:
        # Not one Kafka record's fault: the window is the source, its readings the value.
        source = Source(object=f"telemetry.window/{failed['device']}/{failed['start']}")
        device = str(failed["device"]).encode()
        letter = DeadLetter(
            PROCESSING_ERROR, failed["error"], source, device, orjson.dumps(failed["chunks"])
        )
        await send_dead_letter(sends, DLQ, letter)
        log.error("telemetry: window %s not computed (%s)", source.object, failed["error"])
    await sends.confirm()
    metrics.dead_letters.labels(PROCESSING_ERROR).inc(len(closed.failed))
    now = time.time()
    triggers: Counter[str] = Counter()
    for _device, end, trigger in closed.windows:
        triggers[trigger] += 1
        metrics.close_delay.observe(max(now - (end + config.grace_ms) / 1000, 0.0))
    for trigger, count in triggers.items():
        metrics.windows_closed.labels(trigger).inc(count)
    metrics.duplicates.inc(closed.duplicates)
    kinds: Counter[str] = Counter(kind for alert in closed.alerts for kind in alert["kinds"])
    for kind, count in kinds.items():
        metrics.alerts.labels(kind).inc(count)
    # The console sink: one line per alert in the worker's log, and a summary line
    # instead of a flood when a whole fleet breaks a threshold at once.
    for alert in closed.alerts[:CONSOLE_ALERTS]:
        reasons = orjson.dumps(alert["reasons"]).decode()
        log.warning("ALERT %s %s: %s", ",".join(alert["kinds"]), alert["id"], reasons)
    if len(closed.alerts) > CONSOLE_ALERTS:
        log.warning(
            "ALERT ... and %d more in telemetry.alerts", len(closed.alerts) - CONSOLE_ALERTS
        )


async def _letter(
    sends: Confirmed,
    letters: Counter[str],
    message: Any,
    reason: str,
    detail: str,
    value: bytes | None = None,
) -> None:
    await dead_letter(sends, DLQ, message, reason, detail, value=value)
    letters[reason] += 1


async def reject(pipeline: TelemetryPipeline, event: Any, error: Exception) -> None:
    """A record that fails alone (streams/common/batches.py): dead-lettered as
    processing_error with the exception; its devices' windows go on without it."""
    sends = Confirmed(pipeline.app.producer)
    detail = f"{type(error).__name__}: {error}"
    await dead_letter(sends, DLQ, event.message, PROCESSING_ERROR, detail)
    await sends.confirm()
    pipeline.metrics.dead_letters.labels(PROCESSING_ERROR).inc()
