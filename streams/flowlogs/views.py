"""The flow-logs views, JSON, on every worker (any worker answers for all: query.py).

    GET /flowlogs/summary                 totals
    GET /flowlogs/top?field=F&by=B&limit=N top values of a field
    GET /flowlogs/hourly                  flows, rejected and bytes per hour
    GET /flowlogs/alerts?kind=K&limit=N   recent alerts, newest first

Every view takes the filters of filters.py; a bad parameter is a 400 naming it.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry

from streams.common.query import Query, choice, integer, names
from streams.common.web import Views, route_latency
from streams.flowlogs.filters import Filters, parse_filters
from streams.flowlogs.metrics import ALERT_KINDS, PREFIX
from streams.flowlogs.query import TOP_BY, TOP_FIELDS, LakeQueries
from streams.flowlogs.runtime import FlowPipeline

MAX_TOP = 1000


def register_views(pipeline: FlowPipeline, registry: CollectorRegistry | None = None) -> None:
    latency = None if registry is None else route_latency(registry, PREFIX)
    views = Views(pipeline.app, latency, ready=pipeline.ready)
    lake = LakeQueries(pipeline.settings.lake)

    async def summary(query: Query) -> dict[str, int]:
        return await asyncio.to_thread(lake.summary, parse_filters(query))

    async def top(query: Query) -> list[dict[str, Any]]:
        filters = parse_filters(query)
        field = choice(query, "field", TOP_FIELDS, "srcaddr")
        by = choice(query, "by", TOP_BY, "bytes")
        limit = integer(query, "limit", 10, 1, MAX_TOP)
        return await asyncio.to_thread(lake.top, filters, field, by, limit)

    async def hourly(query: Query) -> list[dict[str, Any]]:
        return await asyncio.to_thread(lake.hourly, parse_filters(query))

    views.page("/flowlogs/summary", summary)
    views.page("/flowlogs/top", top)
    views.page("/flowlogs/hourly", hourly)
    views.page("/flowlogs/alerts", lambda query: recent_alerts(pipeline, query))


def recent_alerts(pipeline: FlowPipeline, query: Query) -> list[dict[str, Any]]:
    """The newest alerts this worker has seen (all workers', from the alerts topic)."""
    filters = parse_filters(query)
    kinds = set(names(query, "kind", ALERT_KINDS))
    limit = integer(query, "limit", 100, 1, pipeline.settings.alerts_kept)
    found: list[dict[str, Any]] = []
    seen: set[str] = set()
    for alert in pipeline.recent_alerts:
        if alert.get("id") in seen or not _matches(alert, filters, kinds):
            continue
        seen.add(alert.get("id", ""))
        found.append(alert)
        if len(found) == limit:
            break
    return found


def _matches(alert: dict[str, Any], filters: Filters, kinds: set[str]) -> bool:
    if kinds and alert.get("kind") not in kinds:
        return False
    for name in ("account_id", "vpc_id"):
        wanted = getattr(filters, name)
        if wanted and alert.get(name) not in wanted:
            return False
    if filters.start is not None or filters.end is not None:
        try:
            moment = datetime.fromisoformat(str(alert.get("window_start"))).timestamp()
        except ValueError:
            return False
        if filters.start is not None and moment < filters.start:
            return False
        if filters.end is not None and moment >= filters.end:
            return False
    return True
