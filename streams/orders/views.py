"""Web views of the orders pipeline: thin handlers over analytics.py.

Every view reads the worker's mirror, which holds every partition, so any worker
answers for all of them; until the mirror has caught up with the topics (the pipeline's
``ready``), a view answers 503 with ``Retry-After`` rather than partial figures. A bad
query parameter is a 400 that names it (streams/common/web.py has the error shape).
"""

from __future__ import annotations

from itertools import islice

from prometheus_client import CollectorRegistry

from streams.common.query import Query, choice, integer, iso_date, text
from streams.common.web import Views, route_latency
from streams.orders import analytics
from streams.orders.metrics import PREFIX
from streams.orders.pipeline import AGGREGATES, ALERTS, OrdersPipeline

# As models.Channel and models.Region: any other value would match no order.
CHANNEL = r"[a-z][a-z0-9_-]*"
REGION = r"[A-Z0-9]+"


def _day(query: Query, name: str) -> str | None:
    # Days are compared as the ISO strings the aggregates are keyed by.
    day = iso_date(query, name)
    return None if day is None else day.isoformat()


def register_views(pipeline: OrdersPipeline, registry: CollectorRegistry | None = None) -> None:
    """Declare the views; ``registry`` (the app's) gets their latency histogram."""
    app, rules, index = pipeline.app, pipeline.rules, pipeline.index
    latency = None if registry is None else route_latency(registry, PREFIX)
    views = Views(app, latency, ready=pipeline.ready)

    views.page(
        "/orders/revenue/daily",
        lambda q: analytics.revenue_daily(
            index.by_kind["daily"],
            rules,
            date_from=_day(q, "from"),
            date_to=_day(q, "to"),
            channel=text(q, "channel", CHANNEL, 32),
            region=text(q, "region", REGION, 3),
        ),
    )
    views.page(
        "/orders/products/top",
        lambda q: analytics.top_products(
            index.by_kind["product"],
            pipeline.catalog,
            rules,
            by=choice(q, "by", ("revenue", "units")),
            limit=integer(q, "limit", 10, 1, 1000),
            date_from=_day(q, "from"),
            date_to=_day(q, "to"),
        ),
    )
    views.page(
        "/orders/customers",
        lambda q: analytics.customer_patterns(index.by_kind["customers"].values()),
    )
    views.page(
        "/orders/inventory",
        lambda q: analytics.inventory_status(
            pipeline.inventory(),
            index.by_kind["product"],
            rules,
            pipeline.settings.low_stock_threshold,
        ),
    )
    views.page("/orders/quality", lambda q: analytics.data_quality(index.by_kind["clock"].values()))
    views.page(
        "/orders/alerts",
        # The mirror keeps alerts in the order they were sent: newest first is reversed.
        lambda q: list(
            islice(
                reversed(pipeline.mirror.data[ALERTS].values()), integer(q, "limit", 100, 1, 10_000)
            )
        ),
    )

    def reports(q: Query) -> list[dict[str, object]]:
        day = _day(q, "date")
        ordered = sorted(pipeline.reports.by_id.values(), key=lambda r: r["id"])
        return [report for report in ordered if day in (None, report["date"])]

    views.page("/orders/reports/daily", reports)

    # For operators and the recovery tests: this worker's own table partitions as its
    # local store (RocksDB) holds them right now, recovered or not; the mirror's
    # readiness says nothing about them.
    local = pipeline.tables[AGGREGATES]
    views.page("/orders/_local/aggregates", lambda q: dict(local.items()), needs_ready=False)
