"""Wiring of the streaming way: the raw topic, the latest launches, the debounced rewrite.

``launches.raw`` carries the API's records as published (``python -m producers
launches``), keyed by launch id. The agent checks each record by the batch job's rule
(models.py): a valid one becomes the latest version of its launch in the ``launches``
table (its changelog acknowledged before the offset counts: table_io.py), an invalid
one a dead letter on ``launches.dlq`` with its reason. A null value (a tombstone)
deletes the launch its key names: that is how a launch the API dropped leaves the
object. The rewrite (rewrite.py) then writes the object with the batch job's publish.

One partition everywhere, by design: the object is one file of every launch, so one
worker must hold them all and be its only writer; partition ownership makes it one.
A few hundred launches need no more.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import faust
from pydantic import ValidationError

from streams.common.batches import BatchRunner, batch_agent, dead_letter_failure
from streams.common.deadletter import dead_letter
from streams.common.sends import Confirmed
from streams.common.table_io import RocksPartition
from streams.common.topics import COMPACTED, TopicSpec, changelog, raw_topic
from streams.launches.metrics import INVALID_JSON, INVALID_LAUNCH, Metrics
from streams.launches.models import check, reason

log = logging.getLogger(__name__)

APP_ID = "launches"
RAW = "launches.raw"
DLQ = "launches.dlq"
TABLE = "launches"
PARTITION = 0


def topic_specs() -> dict[str, TopicSpec]:
    return {
        RAW: TopicSpec(1, COMPACTED),
        DLQ: TopicSpec(1),
        changelog(APP_ID, TABLE): TopicSpec(1, COMPACTED),
    }


def register(app: faust.App, metrics: Metrics, changed: Any, batch_size: int = 500) -> Any:
    """Declare the topics, the table and the agent on ``app``; ``changed()`` is called
    after each batch that changed the table. Returns the table."""
    if not app.conf.store.scheme.startswith("rocksdb"):
        raise ValueError("the launches worker keeps launches in RocksDB: rocksdb://")
    topics = {name: raw_topic(app, name, spec.partitions) for name, spec in topic_specs().items()}
    table = app.Table(TABLE, default=None, partitions=1, key_type=str)

    async def attempt(events: list[Any]) -> None:
        latest = RocksPartition(table, PARTITION)
        sends = Confirmed(app.producer)
        for event in events:
            await _apply(event.message, latest, sends, metrics)
        await sends.confirm()
        if latest.pending:
            await latest.write(app.producer)
            metrics.last_record.set(time.time())
            changed()

    async def reject(event: Any, error: Exception) -> None:
        await dead_letter_failure(app.producer, DLQ, event, error, metrics.rejected)

    runner = BatchRunner(
        app, "launches: a batch of records", attempt, reject, metrics.batch_failures
    )
    batch_agent(app, topics[RAW], "launches.apply", runner, size=batch_size, within=0.2)
    return table


async def _apply(message: Any, latest: RocksPartition, sends: Confirmed, metrics: Metrics) -> None:
    if message.value is None:
        key = _text(message.key)
        if key is None:
            await dead_letter(
                sends,
                DLQ,
                message,
                INVALID_LAUNCH,
                "a tombstone whose key is no launch id",
                counter=metrics.rejected,
            )
        else:
            del latest[key]
        return
    try:
        record = json.loads(message.value)
    except (ValueError, RecursionError) as exc:
        await dead_letter(
            sends,
            DLQ,
            message,
            INVALID_JSON,
            f"not JSON: {str(exc)[:200]}",
            counter=metrics.rejected,
        )
        return
    try:
        launch = check(record)
    except ValidationError as exc:
        await dead_letter(
            sends, DLQ, message, INVALID_LAUNCH, reason(exc), counter=metrics.rejected
        )
        return
    latest[launch.id] = launch.model_dump(mode="json")


def _text(key: bytes | None) -> str | None:
    try:
        return key.decode("utf-8") if key else None
    except UnicodeDecodeError:
        return None
