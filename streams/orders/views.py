"""Web views of the orders pipeline: thin handlers over analytics.py.

Every view reads the worker's mirror, which holds every partition, so any worker
answers for all of them. Query parameters are checked; a bad one is a 400 that names
it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from streams.common.query import BadRequest, choice, integer, json_page
from streams.orders import analytics
from streams.orders.topology import AGGREGATES, ALERTS, REPORTS, OrdersPipeline

DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _date(query: Mapping[str, str], name: str) -> str | None:
    value = query.get(name)
    if value is not None and not DATE.match(value):
        raise BadRequest(f"{name} must be a date like 2025-08-01, got {value!r}")
    return value


def register_views(pipeline: OrdersPipeline) -> None:
    app, rules, index = pipeline.app, pipeline.rules, pipeline.index

    def page(path: str, answer: Callable[[Mapping[str, str]], Any]) -> None:
        json_page(app, path, answer)

    page(
        "/orders/revenue/daily",
        lambda q: analytics.revenue_daily(
            index.by_kind["daily"],
            rules,
            date_from=_date(q, "from"),
            date_to=_date(q, "to"),
            channel=q.get("channel"),
            region=q.get("region"),
        ),
    )
    page(
        "/orders/products/top",
        lambda q: analytics.top_products(
            index.by_kind["product"],
            pipeline.catalog,
            rules,
            by=choice(q, "by", ("revenue", "units")),
            limit=integer(q, "limit", 10, 1, 1000),
            date_from=_date(q, "from"),
            date_to=_date(q, "to"),
        ),
    )
    page(
        "/orders/customers",
        lambda q: analytics.customer_patterns(index.by_kind["customers"].values()),
    )
    page(
        "/orders/inventory",
        lambda q: analytics.inventory_status(
            pipeline.inventory(),
            index.by_kind["product"],
            rules,
            pipeline.settings.low_stock_threshold,
        ),
    )
    page("/orders/quality", lambda q: analytics.data_quality(index.by_kind["clock"].values()))
    page(
        "/orders/alerts",
        lambda q: sorted(
            pipeline.mirror.data[ALERTS].values(), key=lambda a: a["id"], reverse=True
        )[: integer(q, "limit", 100, 1, 10_000)],
    )
    page(
        "/orders/reports/daily",
        lambda q: [
            report
            for report in sorted(pipeline.mirror.data[REPORTS].values(), key=lambda r: r["id"])
            if q.get("date") in (None, report["date"])
        ],
    )

    # For operators and the recovery tests: this worker's own table partitions, read
    # from its local store (RocksDB), not from the mirror.
    local = pipeline.tables[AGGREGATES]
    page("/orders/_local/aggregates", lambda q: dict(local.items()))
