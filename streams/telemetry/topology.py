"""Wiring of the telemetry workers: topics, the window table, the agent and the timers.

Each record of ``telemetry.readings`` carries the readings of one device or of many
devices of its partition (see models.py). A batch is handled as batch.py says, until
done (streams/common/batches.py). A timer closes the windows of quiet devices on wall
clock (runtime.py).
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import faust

from streams.common.batches import BatchRunner, batch_agent
from streams.common.mirror import TopicMirror
from streams.common.topics import COMPACTED, TopicSpec, changelog, raw_topic
from streams.telemetry.batch import AGGREGATES, ALERTS, DLQ, emit, handle_batch, reject
from streams.telemetry.config import CONFIG_TOPIC as CONFIG
from streams.telemetry.metrics import WorkerMetrics
from streams.telemetry.runtime import READINGS, TelemetryPipeline, register_timers
from streams.telemetry.settings import TelemetrySettings

log = logging.getLogger(__name__)

TABLE = "device-windows"
#: The workers' app id: their consumer group and the prefix of their changelogs.
APP_ID = "telemetry"

# Window results and alerts carry deterministic ids: compaction keeps one of each.
RESULTS = {"cleanup.policy": "compact,delete", "retention.ms": str(30 * 86_400_000)}


def topic_specs(partitions: int) -> dict[str, TopicSpec]:
    """Every topic of the pipeline; readings, results, dead letters and the window
    table's changelog share partitions."""
    return {
        READINGS: TopicSpec(partitions),
        AGGREGATES: TopicSpec(partitions, RESULTS),
        ALERTS: TopicSpec(1, RESULTS),
        DLQ: TopicSpec(partitions),
        # One partition keeps the versions of the configuration in order.
        CONFIG: TopicSpec(1, COMPACTED),
        changelog(APP_ID, TABLE): TopicSpec(partitions, COMPACTED),
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

    async def attempt(events: list[Any]) -> None:
        async with pipeline.lock:
            try:
                await handle_batch(pipeline, events)
            except Exception:
                # What was held in memory may be ahead of what was written.
                pipeline.forget()
                raise

    runner = BatchRunner(
        app,
        "telemetry: a batch of telemetry.readings",
        attempt,
        partial(reject, pipeline),
        metrics.batch_failures,
    )
    batch_agent(
        app,
        topics[READINGS],
        "telemetry.windows",
        runner,
        size=settings.batch_size,
        within=settings.batch_seconds,
        ready=pipeline.ready,
        split=partial(split_by_size, limit=settings.batch_bytes),
    )

    register_timers(pipeline, emit)
    return pipeline


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
