"""Wiring of the orders pipeline: topics, tables, agents and the mirror, in one function."""

from __future__ import annotations

import logging
from functools import partial

import faust

from streams.common.batches import BatchRunner, batch_agent, batch_source
from streams.common.mirror import TopicMirror
from streams.common.topics import changelog, raw_topic
from streams.orders.batch import handle_batch, reject
from streams.orders.metrics import OrdersMetrics
from streams.orders.pipeline import (
    AGGREGATES,
    ALERTS,
    CATALOG,
    INVENTORY,
    RAW,
    REPORTS,
    OrdersPipeline,
    topic_specs,
)
from streams.orders.reference import handle_catalog, handle_inventory, reject_reference
from streams.orders.settings import OrdersSettings

log = logging.getLogger(__name__)

#: Table keys no view reads (aggregates.py): kept out of every worker's mirror.
UNMIRRORED = ("customer|", "order|", "sweep|", "verdict|")
UNMIRRORED_RAW = tuple(f'"{prefix}'.encode() for prefix in UNMIRRORED)


def register(
    app: faust.App, settings: OrdersSettings, metrics: OrdersMetrics, bootstrap: str
) -> OrdersPipeline:
    """Declare every topic, table and agent of the orders pipeline on ``app``."""
    n = settings.partitions
    # The topics exist: main.py declares the registry (topic_specs) before the worker.
    topics = {
        name: raw_topic(app, name, spec.partitions)
        for name, spec in topic_specs(n).items()
        if name != changelog(app.conf.id, AGGREGATES)
    }
    aggregates = app.Table(AGGREGATES, default=None, partitions=n, key_type=str)
    mirror = TopicMirror(
        bootstrap,
        [CATALOG, INVENTORY, REPORTS, ALERTS, changelog(app.conf.id, AGGREGATES)],
        # Per-customer and per-order records stay in their partition's table: no view
        # needs them, and every worker would otherwise hold every order id.
        keep=lambda _topic, key: not (isinstance(key, str) and key.startswith(UNMIRRORED)),
        # They are most of its changelog's records: passed over before decoding (the
        # table's keys are JSON strings; ``keep`` still sees any other spelling).
        skip_raw={changelog(app.conf.id, AGGREGATES): UNMIRRORED_RAW},
        # Reference data is kept checked, and reports of recent dates only, by the
        # pipeline (on_mirrored), not raw.
        unstored=[CATALOG, INVENTORY, REPORTS],
        newest={ALERTS: settings.alerts_kept},
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
        # Orders checked before the catalog is loaded would all be "unknown_product".
        await mirror.caught_up()
        pipeline.ready.set()
        log.info("orders: catalog of %d products loaded", len(pipeline.catalog))

    failures = metrics.batch_failures
    # A failed batch is retried, never acknowledged unprocessed, and a record that
    # fails alone is dead-lettered (streams/common/batches.py); each attempt reads the
    # tables again, and their clocks make it exact.
    orders = BatchRunner(
        app,
        "orders: a batch of orders.raw",
        partial(handle_batch, pipeline, aggregates),
        partial(reject, pipeline, aggregates),
        failures,
    )
    # Taken straight from the fetches, without a Faust event per order (issue 14).
    batch_source(
        app, topics[RAW], "orders.process", orders, size=settings.batch_size, ready=pipeline.ready
    )
    reference = partial(reject_reference, pipeline)
    inventory = BatchRunner(
        app, "orders: inventory rows", partial(handle_inventory, pipeline), reference, failures
    )
    batch_agent(app, topics[INVENTORY], "orders.inventory", inventory, size=500, within=0.2)
    catalog = BatchRunner(
        app, "orders: catalog entries", partial(handle_catalog, pipeline), reference, failures
    )
    batch_agent(app, topics[CATALOG], "orders.catalog", catalog, size=500, within=0.2)

    return pipeline
