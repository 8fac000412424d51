"""The flow-logs views, JSON, on every worker (any worker answers for all: query.py).

    GET /flowlogs/summary                 totals
    GET /flowlogs/top?field=F&by=B&limit=N top values of a field
    GET /flowlogs/hourly                  flows, rejected and bytes per hour
    GET /flowlogs/alerts?kind=K&limit=N   recent alerts, newest first
    GET /flowlogs/windows?vpc=A|V&resolution=5m|1h   one VPC's live rollups per window

Every view takes the filters of filters.py; a bad parameter is a 400 naming it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry

from streams.common.partitioning import partition_for
from streams.common.query import Query, choice, integer, names, text
from streams.common.table_io import RocksPartition
from streams.common.web import BadRequest, Views, route_latency
from streams.flowlogs.filters import Filters, parse_filters, strict
from streams.flowlogs.metrics import ALERT_KINDS, PREFIX
from streams.flowlogs.query import TOP_BY, TOP_FIELDS, LakeQueries
from streams.flowlogs.rollups import RESOLUTIONS, figures_by_window, window_text
from streams.flowlogs.runtime import RECORDS, FlowPipeline

MAX_TOP = 1000
VPC_KEY = r"[0-9A-Za-z-]{1,64}\|[0-9A-Za-z-]{1,64}"


def register_views(pipeline: FlowPipeline, registry: CollectorRegistry | None = None) -> None:
    latency = None if registry is None else route_latency(registry, PREFIX)
    views = Views(pipeline.app, latency, ready=pipeline.ready)
    lake = LakeQueries(pipeline.settings.lake)

    async def summary(query: Query) -> dict[str, int]:
        strict(query)
        return fits(await asyncio.to_thread(lake.summary, parse_filters(query)))

    async def top(query: Query) -> list[dict[str, Any]]:
        strict(query, "field", "by", "limit")
        filters = parse_filters(query)
        field = choice(query, "field", TOP_FIELDS, "srcaddr")
        by = choice(query, "by", TOP_BY, "bytes")
        limit = integer(query, "limit", 10, 1, MAX_TOP)
        return fits(await asyncio.to_thread(lake.top, filters, field, by, limit))

    async def hourly(query: Query) -> list[dict[str, Any]]:
        strict(query)
        return fits(await asyncio.to_thread(lake.hourly, parse_filters(query)))

    views.page("/flowlogs/summary", summary)
    views.page("/flowlogs/top", top)
    views.page("/flowlogs/hourly", hourly)
    views.page("/flowlogs/alerts", lambda query: recent_alerts(pipeline, query))

    async def windows(query: Query) -> dict[str, Any]:
        return await asyncio.to_thread(vpc_windows, pipeline, query)

    # Answered from the rollup table by the worker owning the VPC's partition.
    views.routed("/flowlogs/windows", windows, key="vpc", topic=pipeline.topics[RECORDS])


def vpc_windows(pipeline: FlowPipeline, query: Query) -> dict[str, Any]:
    """One VPC's live figures per 5-minute or hourly window, from its rollups (blocking)."""
    strict(query, "vpc", "resolution", "limit")
    vpc_key = text(query, "vpc", VPC_KEY, 200)
    if vpc_key is None:
        raise BadRequest("vpc is required: <account id>|<vpc id>", parameter="vpc")
    resolution = choice(query, "resolution", tuple(RESOLUTIONS), "5m")
    filters = parse_filters(query)
    limit = integer(query, "limit", 288, 1, 100_000)
    io = RocksPartition(
        pipeline.table, partition_for(vpc_key.encode(), pipeline.settings.partitions)
    )
    low = f"{resolution}|{window_text(filters.start) if filters.start is not None else ''}"
    high = f"{resolution}|{window_text(filters.end) if filters.end is not None else '~'}"
    rows: list[dict[str, Any]] = []
    if _vpc_passes(vpc_key, filters):
        rows = figures_by_window(io.items_between(low, high), vpc_key, filters)[-limit:]
    for row in rows:
        row["window"] = _iso(row["window"])
    return {"vpc": vpc_key, "resolution": resolution, "windows": rows}


def _vpc_passes(vpc_key: str, filters: Filters) -> bool:
    """Whether the VPC is one ``account_id`` and ``vpc_id`` let through. Honoured, not
    refused: a dashboard sends every view the same filters, and a VPC outside them has
    no flows that pass, so no windows (as /summary would answer zeros)."""
    account, _, vpc = vpc_key.partition("|")
    return (not filters.account_id or account in filters.account_id) and (
        not filters.vpc_id or vpc in filters.vpc_id
    )


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


T = TypeVar("T")
INT64 = 2**63 - 1


def fits(answer: T) -> T:
    """``answer``, unless a figure is beyond 64 bits (sums of many records at the parser's
    bound): JSON readers would mangle it, so the view asks for narrower filters."""
    rows: list[Any] = answer if isinstance(answer, list) else [answer]
    for row in rows:
        if any(isinstance(v, int) and not -INT64 <= v <= INT64 for v in dict(row).values()):
            raise BadRequest("figures beyond 64-bit integers: narrow the filters or the range")
    return answer


def recent_alerts(pipeline: FlowPipeline, query: Query) -> list[dict[str, Any]]:
    """The newest alerts this worker has seen (all workers', from the alerts topic)."""
    strict(query, "kind", "limit")
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
