"""Wiring of the flow-logs processes: topics, the worker's table and agent, the reader.

The reader (reader.py) lists the source and sends chunks; each worker aggregates the
chunks of its partitions (batch.py) and serves the views (views.py). Both are Faust
apps, so both serve /health and /metrics.
"""

from __future__ import annotations

import logging
import time
from functools import partial
from typing import Any

import faust

from streams.common.background import guarded_timer, unless_rebalanced
from streams.common.batches import BatchRunner, batch_agent, dead_letter_failure
from streams.common.mirror import TopicMirror
from streams.common.table_io import write_all
from streams.common.topics import COMPACTED, TopicSpec, changelog, raw_topic
from streams.flowlogs.batch import handle_batch
from streams.flowlogs.detect import DetectorSettings
from streams.flowlogs.lake import FlowLake
from streams.flowlogs.ledger import LEDGER, Ledger, group_of
from streams.flowlogs.metrics import ReaderMetrics, WorkerMetrics
from streams.flowlogs.reader import Reader
from streams.flowlogs.retention import stale_keys
from streams.flowlogs.runtime import ALERTS, DLQ, RECORDS, FlowPipeline
from streams.flowlogs.settings import FlowLogsSettings
from streams.flowlogs.source import ObjectSource

log = logging.getLogger(__name__)

APP_ID = "flowlogs"
READER_ID = "flowlogs-reader"
TABLE = "flowlogs-state"
LEDGER_PARTITIONS = 6
# Alerts carry deterministic ids: compaction keeps one of each.
ALERTS_CONFIG = {"cleanup.policy": "compact,delete", "retention.ms": str(30 * 86_400_000)}


def topic_specs(partitions: int) -> dict[str, TopicSpec]:
    """Every topic of the pipeline. The ledger is compacted: one record per object."""
    return {
        RECORDS: TopicSpec(partitions),
        ALERTS: TopicSpec(1, ALERTS_CONFIG),
        DLQ: TopicSpec(partitions),
        LEDGER: TopicSpec(LEDGER_PARTITIONS, COMPACTED),
        changelog(APP_ID, TABLE): TopicSpec(partitions, COMPACTED),
    }


def register_worker(
    app: faust.App,
    settings: FlowLogsSettings,
    metrics: WorkerMetrics,
    bootstrap: str,
    detectors: DetectorSettings | None = None,
) -> FlowPipeline:
    """Declare the worker's topics, table, agent and alert mirror on ``app``."""
    if not app.conf.store.scheme.startswith("rocksdb"):
        raise ValueError("the flow-logs workers keep their state in RocksDB: rocksdb://")
    n = settings.partitions
    topics = {name: raw_topic(app, name, spec.partitions) for name, spec in topic_specs(n).items()}
    table = app.Table(TABLE, default=None, partitions=n, key_type=str)
    lake = FlowLake.open(settings.lake, metrics)
    pipeline = FlowPipeline(
        app, settings, detectors or settings.detectors(), metrics, table, lake, topics
    )
    mirror = TopicMirror(
        bootstrap,
        [ALERTS],
        unstored=[ALERTS],
        failures=metrics.task_failures,
    )
    mirror.listeners.append(pipeline.on_alert)
    app.add_dependency(mirror)

    @app.task
    async def wait_for_alerts() -> None:
        await mirror.caught_up()
        pipeline.ready.set()

    @app.on_partitions_revoked.connect
    async def forget_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        pipeline.lake.forget(tp.partition for tp in revoked if tp.topic == RECORDS)

    async def attempt(events: list[Any]) -> None:
        async with pipeline.lock:
            try:
                await handle_batch(pipeline, events)
            except Exception:
                pipeline.forget()
                raise

    @guarded_timer(app, settings.sweep_seconds, metrics.task_failures)
    async def sweep() -> None:
        if app.rebalancing or not pipeline.ready.is_set():
            return
        async with pipeline.lock:
            await unless_rebalanced(app, sweep_stale)

    async def sweep_stale() -> None:
        changed = []
        for runtime in pipeline.partitions.values():
            stale = stale_keys(
                runtime.io, time.time(), dedupe_days=settings.dedupe_days,
                five_minute_days=settings.five_minute_days, hourly_days=settings.hourly_days,
            )  # fmt: skip
            for key in stale:
                del runtime.io[key]
            if stale:
                changed.append(runtime.io)
        await write_all(changed, app.producer)

    runner = BatchRunner(
        app,
        "flowlogs: a batch of flowlogs.records",
        attempt,
        partial(reject, pipeline),
        metrics.batch_failures,
    )
    batch_agent(
        app,
        topics[RECORDS],
        "flowlogs.aggregate",
        runner,
        size=settings.batch_size,
        within=settings.batch_seconds,
        ready=pipeline.ready,
    )
    return pipeline


async def reject(pipeline: FlowPipeline, event: Any, error: Exception) -> None:
    """A chunk that fails alone, every time: dead-lettered whole, its partition moves on."""
    await dead_letter_failure(
        pipeline.app.producer, DLQ, event, error, pipeline.metrics.dead_letters
    )


def register_reader(
    app: faust.App, settings: FlowLogsSettings, metrics: ReaderMetrics, bootstrap: str
) -> Reader:
    """The reader's loop as a task of ``app`` (a producer-only Faust app)."""
    if not settings.source:
        raise ValueError("FLOWLOGS_SOURCE is not set: s3://bucket/prefix or a directory")
    ledger = Ledger(bootstrap, LEDGER_PARTITIONS, group_of(settings.source))
    reader = Reader(
        ObjectSource(settings.source, settle_seconds=settings.settle_seconds),
        ledger,
        app.producer,
        metrics,
        poll_seconds=settings.poll_seconds,
        object_attempts=settings.object_attempts,
        max_future_seconds=settings.max_future_seconds,
        chunk_rows=settings.chunk_rows,
        format=settings.format,
        concurrency=settings.read_concurrency,
    )

    @app.task
    async def read_objects() -> None:
        reader.producer = app.producer
        await ledger.start()
        try:
            await reader.run()  # it retries every failure itself, for ever
        finally:
            await ledger.stop()

    return reader
