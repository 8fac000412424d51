"""Wiring of the orders pipeline: topics, tables, agents and the mirror, in one function."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import faust
import orjson

from streams.common import retry
from streams.common.deadletter import DeadLetter, send_dead_letter
from streams.common.exactly_once import PartitionState
from streams.common.labels import allowed
from streams.common.mirror import TopicMirror
from streams.common.table_io import partition_io
from streams.common.topics import raw_topic
from streams.orders.aggregates import Applied, clock_key, process_record
from streams.orders.analytics import AggregateIndex
from streams.orders.lake import Lake
from streams.orders.logic import Rejected, Rules, enrich, reference_record
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
    #: Valid inventory rows by product, as JSON-able dicts.
    stock: dict[str, dict[str, Any]] = field(default_factory=dict)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    topics: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, Any] = field(default_factory=dict)
    lake: Lake | None = None
    #: Channels exported as metric labels as they are; any other is ``other``.
    channels: frozenset[str] = frozenset()

    @property
    def aggregates_changelog(self) -> str:
        return f"{self.app.conf.id}-{AGGREGATES}-changelog"

    def inventory(self) -> dict[str, dict[str, Any]]:
        return self.stock

    def on_mirrored(self, topic: str, key: Any, value: Any) -> None:
        if topic == self.aggregates_changelog:
            self.index.on_record(topic, key, value)
        elif topic == CATALOG:
            self._on_reference(self.catalog, CatalogEntry, key, value)
        elif topic == INVENTORY:
            self._on_reference(self.stock, InventoryRow, key, value, as_json=True)

    def _on_reference(
        self, into: dict[str, Any], model: Any, key: Any, value: Any, *, as_json: bool = False
    ) -> None:
        """Keep a checked copy of a catalog or inventory record. A rejected one (the
        agent dead-letters it) leaves the last valid value of its product in force."""
        if value is None:
            into.pop(key, None)
            return
        try:
            row = reference_record(model, key, value)
        except Rejected:
            return
        into[row.product_id] = row.model_dump(mode="json") if as_json else row


def register(
    app: faust.App, settings: OrdersSettings, metrics: OrdersMetrics, bootstrap: str
) -> OrdersPipeline:
    """Declare every topic, table and agent of the orders pipeline on ``app``."""
    n = settings.partitions
    topics = {name: raw_topic(app, name, n) for name in (RAW, ENRICHED, DLQ, INVENTORY)}
    # Reference data and results are small: one partition keeps them in order.
    topics.update({name: raw_topic(app, name, 1) for name in (CATALOG, REPORTS, ALERTS)})
    aggregates = app.Table(AGGREGATES, default=None, partitions=n, key_type=str)
    mirror = TopicMirror(
        bootstrap,
        [CATALOG, INVENTORY, REPORTS, ALERTS, f"{app.conf.id}-{AGGREGATES}-changelog"],
        # Per-customer records stay in their partition's table: no view needs them all.
        keep=lambda _topic, key: not (isinstance(key, str) and key.startswith("customer|")),
        # Reference data is kept checked, by the pipeline (on_mirrored), not raw.
        unstored=[CATALOG, INVENTORY],
        failures=metrics.task_failures,
    )
    pipeline = OrdersPipeline(
        app,
        settings,
        settings.rules(),
        metrics,
        mirror,
        topics=topics,
        tables={AGGREGATES: aggregates},
        channels=settings.known_channels(),
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
            started = time.perf_counter()
            # A failed batch is retried, never acknowledged unprocessed (common/retry.py);
            # each attempt reads the tables again, and their clocks make it exact.
            done = await retry.handle_until_done(
                app,
                partial(handle_batch, pipeline, aggregates, events),
                failures=pipeline.metrics.batch_failures,
                what=f"orders: a batch of {len(events)} records",
            )
            if done:
                app.monitor.record_batch("orders.process", events, started)

    @app.agent(topics[INVENTORY], name="orders.inventory")
    async def load_inventory(stream: Any) -> None:
        async for event in stream.events():
            started = time.perf_counter()
            await handle_inventory(pipeline, event)
            app.monitor.record_batch("orders.inventory", [event], started)

    @app.agent(topics[CATALOG], name="orders.catalog")
    async def check_catalog(stream: Any) -> None:
        # Every worker's mirror keeps only valid entries; this agent (one worker, the
        # partition's owner) sends each rejected one to the dead-letter topic, once.
        async for event in stream.events():
            started = time.perf_counter()
            message = event.message
            try:
                reference_record(CatalogEntry, message.key, message.value)
            except Rejected as rejected:
                await dead_letter(pipeline, message, rejected.reason, rejected.detail)
            app.monitor.record_batch("orders.catalog", [event], started)

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
    rows: dict[int, list[tuple[int, bytes]]] = {}
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
                key=event.message.key,
                record_ms=int(event.message.timestamp * 1000),
            )
            for event in batch
        ]
        rows[partition] = await emit(pipeline, batch, outcomes)
        clock = state.get(clock_key(partition)) or {}
        if clock.get("max_ms"):
            metrics.stream_time.set(clock["max_ms"] / 1000)
        state.flush(last=clock_key(partition))
        done.append(io)
    if pipeline.lake is not None:
        # One thread per partition: pyarrow releases the GIL while it encodes and writes.
        lake = pipeline.lake
        await asyncio.gather(*(lake.write(p, r) for p, r in rows.items()))
    producer = pipeline.app.producer
    await producer.flush()
    for io in done:
        await io.write(producer)
    now = time.time()
    for event in events:
        metrics.latency.observe(max(now - event.message.timestamp, 0.0))


async def emit(
    pipeline: OrdersPipeline, events: list[Any], outcomes: list[Applied]
) -> list[tuple[int, bytes]]:
    """Send what a partition's records produced, count it; returns the Parquet rows.

    Records go straight to the transport producer (Faust's topic layer costs more per
    record than the rest of the work), and metrics are counted once per batch.
    """
    producer, metrics, rules = pipeline.app.producer, pipeline.metrics, pipeline.rules
    accepted: Counter[tuple[str, str]] = Counter()
    revenue: Counter[str] = Counter()
    issues: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    rows = []
    inventory = pipeline.inventory()
    for event, outcome in zip(events, outcomes, strict=True):
        kinds[outcome.kind] += 1
        if outcome.kind == "rejected" and outcome.rejected is not None:
            rejected = outcome.rejected
            await dead_letter(pipeline, event.message, rejected.reason, rejected.detail)
        elif outcome.kind == "applied" and outcome.order is not None:
            order = outcome.order
            enriched = orjson.dumps(
                enrich(order, pipeline.catalog, inventory, rules, revision=outcome.revision)
            )
            await producer.send(ENRICHED, order.order_id.encode(), enriched, None, None, None)
            rows.append((event.message.offset, enriched))
            channel = allowed(order.channel, pipeline.channels)
            accepted[(channel, order.status.value)] += 1
            if order.status.value in rules.revenue_statuses:
                revenue[channel] += order.items_cents
            issues.update(outcome.issues)
            kinds["revision"] += outcome.revision
    for (channel, status), count in accepted.items():
        metrics.accepted.labels(channel, status).inc(count)
    for channel, cents in revenue.items():
        metrics.revenue.labels(channel).inc(cents / 100)
    for issue, count in issues.items():
        metrics.quality_issues.labels(issue).inc(count)
    metrics.duplicates.inc(kinds["duplicate"])
    metrics.replayed.inc(kinds["replayed"])
    metrics.late_accepted.inc(kinds["revision"])
    return rows


async def dead_letter(pipeline: OrdersPipeline, message: Any, reason: str, detail: str) -> None:
    """Send a record's original key and bytes to orders.dlq with why, and count it."""
    letter = DeadLetter(
        reason, detail, message.topic, message.partition, message.offset, message.key,
        message.value,
    )  # fmt: skip
    await send_dead_letter(pipeline.app.producer, DLQ, letter)
    pipeline.metrics.dead_letters.labels(reason).inc()


async def handle_inventory(pipeline: OrdersPipeline, event: Any) -> None:
    """Validate an inventory row; dead-letter bad ones and alert on low stock."""
    message = event.message
    try:
        row = reference_record(InventoryRow, message.key, message.value)
    except Rejected as rejected:
        await dead_letter(pipeline, message, rejected.reason, rejected.detail)
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
