"""Wiring of the time-series workers: topics, the series table, the agent, the timer.

``timeseries.writes`` carries one write command per record, keyed by series id and sent
to ``partition_for(id)`` (service.py); the agent applies each partition's commands in
offset order, a batch at a time (batch.py), to the ``series`` table, whose changelog is
co-partitioned with the topic. A timer forgets kept answers after
``TIMESERIES_ANSWERS_DAYS``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import faust

from streams.common.background import guarded, unless_rebalanced
from streams.common.batches import BatchRunner, batch_agent, dead_letter_failure
from streams.common.table_io import write_all
from streams.common.topics import COMPACTED, TopicSpec, changelog, raw_topic
from streams.timeseries import store
from streams.timeseries.answers import Answers
from streams.timeseries.batch import DLQ, Applier, handle_batch
from streams.timeseries.metrics import TASKS, Metrics
from streams.timeseries.service import TimeSeries
from streams.timeseries.settings import TimeSeriesSettings

log = logging.getLogger(__name__)

APP_ID = "timeseries"
WRITES = "timeseries.writes"
TABLE = "series"
#: Answers forgotten per partition and tick at most: a backlog never blocks the loop long.
EXPIRY_BATCH = 5_000
EXPIRY_EVERY_SECONDS = 60.0


def topic_specs(partitions: int) -> dict[str, TopicSpec]:
    return {
        WRITES: TopicSpec(partitions),
        DLQ: TopicSpec(partitions),
        changelog(APP_ID, TABLE): TopicSpec(partitions, COMPACTED),
    }


def register(app: faust.App, settings: TimeSeriesSettings, metrics: Metrics) -> TimeSeries:
    """Declare every topic, the table, the agent and the timer on ``app``."""
    if not app.conf.store.scheme.startswith("rocksdb"):
        raise ValueError("the time-series workers keep series in RocksDB: rocksdb://")
    n = settings.partitions
    topics = {name: raw_topic(app, name, spec.partitions) for name, spec in topic_specs(n).items()}
    table = app.Table(TABLE, default=None, partitions=n, key_type=str)
    series = TimeSeries(app, settings, table, topics[WRITES], metrics, Answers())

    async def attempt(events: list[Any]) -> None:
        applier = Applier(
            table,
            app.producer,
            series.answers,
            metrics.applied,
            metrics.dead_letters,
            partitions=n,
        )
        async with series.lock:
            await handle_batch(applier, events)

    async def reject(event: Any, error: Exception) -> None:
        await dead_letter_failure(app.producer, DLQ, event, error, metrics.dead_letters)

    runner = BatchRunner(
        app, "timeseries: a batch of writes", attempt, reject, metrics.batch_failures
    )
    batch_agent(
        app,
        topics[WRITES],
        "timeseries.apply",
        runner,
        size=settings.batch_size,
        within=settings.batch_seconds,
    )

    @app.timer(EXPIRY_EVERY_SECONDS)
    @guarded(metrics.task_failures, TASKS[0])
    async def expire_answers() -> None:
        before = int(time.time() * 1000) - settings.answers_days * 86_400_000
        for partition in range(n):
            local = series.local(partition)
            if local is None:
                continue

            async def forget(local: Any = local) -> None:
                async with series.lock:
                    done = store.expire_answers(local, before, EXPIRY_BATCH)
                    await write_all([local], app.producer)
                metrics.answers_expired.inc(done)

            await unless_rebalanced(app, forget)

    return series
