"""Wiring of the telemetry workers: topics, the window table, the agent and the timers.

Each record of ``telemetry.readings`` carries the readings of one device or of many
devices of its partition (see models.py). A batch is handled per partition in two
phases, each ending with the table write that makes it count (streams/telemetry/state.py
explains why this order is exact under redelivery):

1. readings into their windows: dead letters acknowledged, then chunks and metas;
2. windows due on event time closed: figures and alerts acknowledged, then state.

A timer closes the windows of quiet devices on wall clock (``runtime.py``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, defaultdict
from typing import Any

import faust
import orjson
from pydantic import ValidationError

from streams.common import retry
from streams.common.deadletter import DeadLetter, send_dead_letter
from streams.common.mirror import TopicMirror
from streams.common.partitioning import partition_for
from streams.common.topics import TopicSpec, raw_topic
from streams.telemetry.config import CONFIG_TOPIC as CONFIG
from streams.telemetry.metrics import WorkerMetrics
from streams.telemetry.models import (
    ReadingGroup,
    beyond,
    decode_each_group,
    decode_groups,
    explain,
    is_group_list,
)
from streams.telemetry.runtime import READINGS, TelemetryPipeline, register_timers
from streams.telemetry.settings import TelemetrySettings
from streams.telemetry.state import Closed

log = logging.getLogger(__name__)

AGGREGATES = "telemetry.aggregates"
ALERTS = "telemetry.alerts"
DLQ = "telemetry.dlq"
TABLE = "device-windows"
CONSOLE_ALERTS = 20
# A batch is ~1 s of CPU work on the event loop: pausing every ~40 ms of it (~10,000
# readings' bytes, applied or replayed) keeps the web views, the producer's sends and
# the heartbeat-driven services responsive meanwhile.
YIELD_EVERY_BYTES = 500_000
YIELD_EVERY_DEVICES = 10

# Window results and alerts carry deterministic ids: compaction keeps one of each.
RESULTS = {"cleanup.policy": "compact,delete", "retention.ms": str(30 * 86_400_000)}


def topic_specs(partitions: int) -> dict[str, TopicSpec]:
    """Every topic of the pipeline; readings, results and dead letters share partitions."""
    return {
        READINGS: TopicSpec(partitions),
        AGGREGATES: TopicSpec(partitions, RESULTS),
        ALERTS: TopicSpec(1, RESULTS),
        DLQ: TopicSpec(partitions),
        # One partition keeps the versions of the configuration in order.
        CONFIG: TopicSpec(1, {"cleanup.policy": "compact"}),
    }


def register(
    app: faust.App, settings: TelemetrySettings, metrics: WorkerMetrics, bootstrap: str
) -> TelemetryPipeline:
    """Declare every topic, table, agent and timer of the telemetry workers on ``app``."""
    if not app.conf.store.scheme.startswith("rocksdb"):
        raise ValueError("the telemetry workers keep their windows in RocksDB: rocksdb://")
    n = settings.partitions
    topics = {name: raw_topic(app, name, spec.partitions) for name, spec in topic_specs(n).items()}
    table = app.Table(TABLE, default=None, partitions=n, key_type=str)
    mirror = TopicMirror(
        bootstrap, [CONFIG, ALERTS], unstored=[ALERTS], failures=metrics.task_failures
    )
    pipeline = TelemetryPipeline(
        app, settings, metrics, mirror, table, topics, config=settings.initial_config()
    )
    mirror.listeners.append(pipeline.on_mirrored)
    app.add_dependency(mirror)
    metrics.config_version.set(pipeline.config.version)

    @app.task
    async def wait_for_configuration() -> None:
        # The topics exist: main.py declares them before the worker starts.
        await mirror.caught_up()
        pipeline.ready.set()
        log.info("telemetry: configuration v%d in force", pipeline.config.version)

    @app.agent(topics[READINGS], name="telemetry.windows")
    async def window_readings(stream: Any) -> None:
        await pipeline.ready.wait()
        async for taken in stream.take_events(settings.batch_size, within=settings.batch_seconds):
            for events in split_by_size(taken, settings.batch_bytes):
                started = time.perf_counter()
                if not await handle_until_done(pipeline, events):
                    break  # a rebalance took the batch away: its records are read again
                app.monitor.record_batch("telemetry.windows", events, started)

    register_timers(pipeline, emit)
    return pipeline


async def handle_until_done(pipeline: TelemetryPipeline, events: list[Any]) -> bool:
    """Handle a batch, retrying after a failure (streams/common/retry.py says why);
    False when a rebalance took its records away first."""

    async def attempt() -> None:
        async with pipeline.lock:
            try:
                await handle_batch(pipeline, events)
            except Exception:
                # What was held in memory may be ahead of what was written.
                pipeline.forget()
                raise

    failures, what = pipeline.metrics.batch_failures, f"telemetry: a batch of {len(events)} records"
    return await retry.handle_until_done(pipeline.app, attempt, failures=failures, what=what)


def split_by_size(events: list[Any], limit: int) -> list[list[Any]]:
    """``events`` in order, in runs of at most ``limit`` bytes of record values (a record
    larger than that alone): a batch's work and results stay bounded however many
    readings each record carries."""
    runs: list[list[Any]] = [[]]
    size = 0
    for event in events:
        length = len(event.message.value or b"")
        if runs[-1] and size + length > limit:
            runs.append([])
            size = 0
        runs[-1].append(event)
        size += length
    return runs


async def handle_batch(pipeline: TelemetryPipeline, events: list[Any]) -> None:
    """Window one batch of records, then close what their event time made due."""
    by_partition: dict[int, list[Any]] = defaultdict(list)
    for event in events:
        by_partition[event.message.partition].append(event)
    config, metrics = pipeline.config, pipeline.metrics
    producer = pipeline.app.producer
    now = time.time()
    touched: dict[int, dict[str, None]] = {}
    readings = replayed = letters = 0
    since_yield = 0
    for partition, batch in by_partition.items():
        runtime = pipeline.runtime(partition)
        devices = touched[partition] = {}
        for event in batch:
            message = event.message
            since_yield += len(message.value or b"")
            if since_yield >= YIELD_EVERY_BYTES:
                since_yield = 0
                await asyncio.sleep(0)
            groups, refused = await _decode(pipeline, message)
            letters += refused
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
                    late = ReadingGroup(device_id=device, readings=applied.late)
                    detail = f"{len(applied.late)} readings after their window closed"
                    value = late.model_dump_json().encode()
                    await dead_letter(pipeline, message, "late", detail, value=value)
                    letters += 1
                readings += applied.readings
                devices[device] = None
                runtime.last_wall[device] = now
                pipeline.device_readings[device] += applied.readings
        runtime.next_offset = batch[-1].message.offset + 1
    metrics.records.inc(len(events))
    metrics.readings.inc(readings)
    metrics.replayed.inc(replayed)
    metrics.batch_readings.observe(readings)
    if letters:
        await producer.flush()  # dead letters acknowledged before their records count
    for partition in by_partition:
        runtime = pipeline.runtime(partition)
        runtime.windows.flush_applied()
        await runtime.io.write(producer)
    closed = Closed()
    for partition, devices in touched.items():
        windows = pipeline.runtime(partition).windows
        for count, device in enumerate(devices, 1):
            if count % YIELD_EVERY_DEVICES == 0:
                await asyncio.sleep(0)
            windows.close(device, windows.metas[device]["max"], config, "event_time", closed)
    if closed.windows:
        await emit(pipeline, closed)
        for partition in touched:
            await pipeline.runtime(partition).io.write(producer)


async def _decode(pipeline: TelemetryPipeline, message: Any) -> tuple[dict[str, list[Any]], int]:
    """Each valid device's readings in the record, and how many dead letters were sent.

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
            await dead_letter(pipeline, message, "invalid", explain(exc))
            return {}, 1
        try:
            groups = decode_each_group(value)
        except ValidationError as whole:
            await dead_letter(pipeline, message, "invalid", explain(whole))
            return {}, 1
    if keyed and (
        len(groups) > 1
        or not isinstance(groups[0], ReadingGroup)
        or message.key != groups[0].device_id.encode()
    ):
        await dead_letter(pipeline, message, "invalid", "the key is not the record's device_id")
        return {}, 1
    by_device: dict[str, list[Any]] = {}
    partitions = pipeline.settings.partitions
    latest_ms = min(int(message.timestamp * 1000), int(time.time() * 1000))
    latest_ms += pipeline.settings.max_future_seconds * 1000
    for group in groups:
        if not isinstance(group, ReadingGroup):
            raw, why = group
            await dead_letter(pipeline, message, "invalid", why, value=raw)
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
            await dead_letter(pipeline, message, "invalid", detail, value=letter)
            refused += 1
            continue
        rows, future = beyond(group.readings, latest_ms)
        if future:
            ahead = ReadingGroup.model_construct(device_id=device, readings=future)
            detail = f"{len(future)} readings stamped more than the allowed skew ahead"
            letter = ahead.model_dump_json().encode()
            await dead_letter(pipeline, message, "future_timestamp", detail, value=letter)
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
    producer, metrics, config = pipeline.app.producer, pipeline.metrics, pipeline.config
    for record in closed.aggregates:
        await producer.send(
            AGGREGATES, record["id"].encode(), orjson.dumps(record), None, None, None
        )
    for alert in closed.alerts:
        await producer.send(ALERTS, alert["id"].encode(), orjson.dumps(alert), None, None, None)
    await producer.flush()
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


async def dead_letter(
    pipeline: TelemetryPipeline, message: Any, reason: str, detail: str, value: bytes | None = None
) -> None:
    """Send a record (or the part of it that is rejected) to telemetry.dlq with why."""
    letter = DeadLetter(
        reason, detail, message.topic, message.partition, message.offset, message.key,
        message.value if value is None else value,
    )  # fmt: skip
    await send_dead_letter(pipeline.app.producer, DLQ, letter)
    pipeline.metrics.dead_letters.labels(reason).inc()
