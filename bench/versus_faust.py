"""The peer workload on our platform, one process (``make bench-versus`` runs it).

``python -m bench.versus_faust worker -l info``

Only the peer's work (bench/versus_work.py: parse, order total, one-day tumbling
revenue and count per channel and state), on the machinery the orders pipeline runs
on: the one app factory (``make_app``), a raw-bytes topic, ``batch_source`` and
``BatchRunner`` (batches handled until done), ``PartitionState`` (each value carries
``_o``, the highest source offset applied to it: a replay changes nothing) and
``RocksPartition``/``write_all`` (the changelog acknowledged before RocksDB). The
window is a table key, ``<day>|<channel>|<state>|<partition>``, as the orders
pipeline keeps its days: partitions never share a key, so nothing is repartitioned.

Settings come from the orders pipeline's variables (``ORDERS_PARTITIONS``,
``ORDERS_BATCH_SIZE``) and the shared ``KAFKA_*``,
``STREAMS_DATA_DIR`` and ``WEB_*``; this module is the only one here that reads them.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any

import faust
import orjson
from prometheus_client import CollectorRegistry, Counter

from bench.versus_work import day_label, event_ms, group_of, total_cents
from streams.common.app import make_app
from streams.common.batches import BatchRunner, batch_source, by_partition
from streams.common.exactly_once import PartitionState, Value
from streams.common.settings import KafkaSettings, WorkerSettings
from streams.common.table_io import RocksPartition, write_all
from streams.common.topics import COMPACTED, TopicSpec, changelog, raw_topic

log = logging.getLogger(__name__)

APP_ID = "versus-same"
SOURCE = "orders.raw"
TABLE = "revenue-by-channel-state-1d"


def topic_specs(partitions: int) -> dict[str, TopicSpec]:
    """The source and the table's changelog, sharing partitions (declared before start)."""
    return {
        SOURCE: TopicSpec(partitions),
        changelog(APP_ID, TABLE): TopicSpec(partitions, COMPACTED),
    }


def table_key(order: dict[str, Any], partition: int) -> str:
    return f"{day_label(event_ms(order))}|{group_of(order)}|{partition}"


def _new() -> Value:
    return {"n": 0, "c": 0}


def apply_record(state: PartitionState, partition: int, offset: int, raw: bytes) -> bool:
    """Count one order into its window, unless its offset was applied already."""
    order = orjson.loads(raw)
    cents = total_cents(order)

    def add(value: Value) -> None:
        value["n"] += 1
        value["c"] += cents

    return state.update(table_key(order, partition), offset, add, _new)


async def handle_batch(app: Any, table: Any, events: list[Any]) -> None:
    """Per source partition: each window key read once, written once; then the
    changelog (acknowledged) and RocksDB."""
    written = []
    for partition, batch in by_partition(events).items():
        io = RocksPartition(table, partition)
        state = PartitionState(io)
        for event in batch:
            apply_record(state, partition, event.message.offset, event.message.value)
        state.flush()
        written.append(io)
    await write_all(written, app.producer)


async def reject(event: Any, error: Exception) -> None:
    """The peer workload has no dead-letter topic: a record that fails alone is logged
    and skipped (the bench's check of the result then fails loudly)."""
    message = event.message
    log.error("versus: record %s@%d skipped: %r", message.partition, message.offset, error)


def build_app(
    kafka: KafkaSettings, worker: WorkerSettings, partitions: int, size: int
) -> faust.App:
    registry = CollectorRegistry()
    app = make_app(APP_ID, kafka, worker, registry, partitions=partitions)
    source = raw_topic(app, SOURCE, partitions)
    table = app.Table(TABLE, default=None, partitions=partitions, key_type=str)
    failures = Counter("streams_versus_batch_failures", "failed batch attempts", registry=registry)
    runner = BatchRunner(
        app, "versus: a batch of orders.raw", partial(handle_batch, app, table), reject, failures
    )
    batch_source(app, source, "versus.process", runner, size=size)
    return app


def main() -> None:
    import sys

    import uvloop

    from streams.common.topics import declare
    from streams.orders.settings import OrdersSettings

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    kafka, orders = KafkaSettings(), OrdersSettings()
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        declare(kafka.bootstrap, topic_specs(orders.partitions), kafka.replication_factor)
    app = build_app(kafka, WorkerSettings(), orders.partitions, orders.batch_size)
    app.main()


if __name__ == "__main__":
    main()
