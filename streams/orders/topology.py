"""Wiring of the orders pipeline: topics, tables, agents and the mirror, in one function."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import faust
import orjson
from pydantic import ValidationError

from streams.common.deadletter import DeadLetter
from streams.common.exactly_once import PartitionState
from streams.common.mirror import TopicMirror
from streams.common.table_io import partition_io
from streams.orders.aggregates import Applied, clock_key, process_record
from streams.orders.analytics import AggregateIndex
from streams.orders.lake import Lake
from streams.orders.logic import Rules, describe, enrich
from streams.orders.metrics import OrdersMetrics
from streams.orders.models import CatalogEntry, InventoryRow
from streams.orders.settings import OrdersSettings

log = logging.getLogger(__name__)

RAW = "orders.raw"
CATALOG = "orders.catalog"
INVENTORY = "orders.inventory"
ENRICHED = "orders.enriched"
DLQ = "orders.dlq"
REPORTS = "orders.reports.daily"
ALERTS = "orders.alerts"
AGGREGATES = "aggregates"


@dataclass
class OrdersPipeline:
    """What the views, the reporter and the tests need from a registered pipeline."""

    app: faust.App
    settings: OrdersSettings
    rules: Rules
    metrics: OrdersMetrics
    mirror: TopicMirror
    index: AggregateIndex = field(default_factory=AggregateIndex)
    catalog: dict[str, CatalogEntry] = field(default_factory=dict)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    topics: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, Any] = field(default_factory=dict)
    lake: Lake | None = None

    @property
    def aggregates_changelog(self) -> str:
        return f"{self.app.conf.id}-{AGGREGATES}-changelog"

    def inventory(self) -> dict[Any, Any]:
        return self.mirror.data[INVENTORY]

    def on_mirrored(self, topic: str, key: Any, value: Any) -> None:
        if topic == self.aggregates_changelog:
            self.index.on_record(topic, key, value)
        elif topic == CATALOG:
            self._on_catalog(key, value)

    def _on_catalog(self, key: str, value: Any) -> None:
        if value is None:
            self.catalog.pop(key, None)
            return
        try:
            self.catalog[key] = CatalogEntry.model_validate(value)
        except ValidationError:
            log.warning("catalog entry %s is invalid; kept out of the catalog", key)


def _raw_topic(app: faust.App, name: str, partitions: int) -> Any:
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
    )


def register(
    app: faust.App, settings: OrdersSettings, metrics: OrdersMetrics, bootstrap: str
) -> OrdersPipeline:
    """Declare every topic, table and agent of the orders pipeline on ``app``."""
    n = settings.partitions
    topics = {name: _raw_topic(app, name, n) for name in (RAW, ENRICHED, DLQ, INVENTORY)}
    # Reference data and results are small: one partition keeps them in order.
    topics.update({name: _raw_topic(app, name, 1) for name in (CATALOG, REPORTS, ALERTS)})
    aggregates = app.Table(AGGREGATES, default=None, partitions=n, key_type=str)
    mirror = TopicMirror(
        bootstrap,
        [CATALOG, INVENTORY, REPORTS, ALERTS, f"{app.conf.id}-{AGGREGATES}-changelog"],
        # Per-customer records stay in their partition's table: no view needs them all.
        keep=lambda _topic, key: not (isinstance(key, str) and key.startswith("customer|")),
    )
    pipeline = OrdersPipeline(
        app,
        settings,
        settings.rules(),
        metrics,
        mirror,
        topics=topics,
        tables={AGGREGATES: aggregates},
    )
    mirror.listeners.append(pipeline.on_mirrored)
    app.add_dependency(mirror)

    @app.task
    async def wait_for_reference_data() -> None:
        # Faust creates only the topics its agents read; the mirror needs the rest too.
        for topic in topics.values():
            await topic.maybe_declare()
        # Orders checked before the catalog is loaded would all be "unknown_product".
        await mirror.caught_up()
        pipeline.ready.set()
        log.info("orders: catalog of %d products loaded", len(pipeline.catalog))

    @app.agent(topics[RAW], name="orders.process")
    async def process_orders(stream: Any) -> None:
        await pipeline.ready.wait()
        async for events in stream.take_events(settings.batch_size, within=settings.batch_seconds):
            await handle_batch(pipeline, aggregates, events)

    @app.agent(topics[INVENTORY], name="orders.inventory")
    async def load_inventory(stream: Any) -> None:
        async for event in stream.events():
            await handle_inventory(pipeline, event)

    return pipeline


async def handle_batch(pipeline: OrdersPipeline, table: Any, events: list[Any]) -> None:
    """Process one batch: per partition, read and write each table key once.

    Order matters for exactly-once: a record whose partition clock is flushed counts as
    handled after a crash and emits nothing again, so everything the batch emits (the
    enriched and dead-letter records, the Parquet rows) is acknowledged first, and the
    tables are flushed last.
    """
    by_partition: dict[int, list[Any]] = defaultdict(list)
    for event in events:
        by_partition[event.message.partition].append(event)
    metrics = pipeline.metrics
    metrics.received.inc(len(events))
    metrics.batch_size.observe(len(events))
    wall_ms = int(time.time() * 1000)
    done = []
    for partition, batch in by_partition.items():
        io = partition_io(table, partition, batch[-1])
        state = PartitionState(io)
        outcomes = [
            process_record(
                event.message.value,
                partition,
                event.message.offset,
                wall_ms,
                state,
                state,
                pipeline.catalog,
                pipeline.rules,
            )
            for event in batch
        ]
        rows = [await emit(pipeline, e, o) for e, o in zip(batch, outcomes, strict=True)]
        if pipeline.lake is not None:
            await pipeline.lake.write(partition, [row for row in rows if row is not None])
        clock = state.get(clock_key(partition)) or {}
        if clock.get("max_ms"):
            metrics.stream_time.set(clock["max_ms"] / 1000)
        state.flush(last=clock_key(partition))
        done.append(io)
    producer = pipeline.app.producer
    await producer.flush()
    for io in done:
        await io.write(producer)
    now = time.time()
    for event in events:
        metrics.latency.observe(max(now - event.message.timestamp, 0.0))


async def emit(pipeline: OrdersPipeline, event: Any, outcome: Applied) -> tuple[int, bytes] | None:
    """Send what one record produced and count it; returns its Parquet row, if any."""
    metrics, message = pipeline.metrics, event.message
    if outcome.kind == "rejected" and outcome.rejected is not None:
        await dead_letter(pipeline, message, outcome.rejected.reason, outcome.rejected.detail)
    elif outcome.kind == "duplicate":
        metrics.duplicates.inc()
    elif outcome.kind == "replayed":
        metrics.replayed.inc()
    elif outcome.kind == "applied" and outcome.order is not None:
        order = outcome.order
        enriched = orjson.dumps(
            enrich(
                order,
                pipeline.catalog,
                pipeline.inventory(),
                pipeline.rules,
                revision=outcome.revision,
            )
        )
        await pipeline.topics[ENRICHED].send(key=order.order_id.encode(), value=enriched)
        status = order.status.value
        metrics.accepted.labels(order.channel, status).inc()
        if status in pipeline.rules.revenue_statuses:
            metrics.revenue.labels(order.channel).inc(order.items_cents / 100)
        if outcome.revision:
            metrics.late_accepted.inc()
        for issue in outcome.issues:
            metrics.quality_issues.labels(issue).inc()
        return message.offset, enriched
    return None


async def dead_letter(pipeline: OrdersPipeline, message: Any, reason: str, detail: str) -> None:
    """Send a record's original key and bytes to orders.dlq with why, and count it."""
    letter = DeadLetter(
        reason, detail, message.topic, message.partition, message.offset, message.key,
        message.value,
    )  # fmt: skip
    await pipeline.topics[DLQ].send(
        key=letter.id.encode(), value=message.value, headers=letter.headers()
    )
    pipeline.metrics.dead_letters.labels(reason).inc()


async def handle_inventory(pipeline: OrdersPipeline, event: Any) -> None:
    """Validate an inventory row; dead-letter bad ones and alert on low stock."""
    message = event.message
    try:
        row = InventoryRow.model_validate_json(message.value or b"")
    except ValidationError as exc:
        await dead_letter(pipeline, message, "invalid", describe(exc))
        return
    threshold = pipeline.settings.low_stock_threshold
    if row.available_quantity < threshold:
        stamp = row.last_updated.isoformat().replace("+00:00", "Z")
        alert: dict[str, Any] = {
            "id": f"low_stock:{row.product_id}:{stamp}",
            "kind": "low_stock",
            "product_id": row.product_id,
            "available_quantity": row.available_quantity,
            "threshold": threshold,
            "warehouse": row.warehouse_location,
            "at": stamp,
        }
        await pipeline.topics[ALERTS].send(key=alert["id"].encode(), value=orjson.dumps(alert))
        pipeline.metrics.alerts.labels("low_stock").inc()
