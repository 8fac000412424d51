"""The API's views, registered from openapi.ROUTES (so the document and the routes
cannot disagree), and the two routes the workers use between them.

Reads of a series are answered by the worker serving its partition (others forward
them, streams/common/web.py); writes are sent through ``timeseries.writes`` from any
worker (writes.py). ``GET /series`` asks every partition's owner for its part
(listing.py). Everything but /health and /metrics needs ``X-API-Key`` when one is set.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar

import aiohttp
from yarl import URL

from streams.common.query import integer
from streams.common.web import API_KEY, Handler, NotFound, Reply, Unavailable, Views, read_body
from streams.timeseries import forecasting, listing, openapi, requests, stats
from streams.timeseries.chunks import meta_key
from streams.timeseries.commands import SERIES_ID
from streams.timeseries.forecast import ForecastInputError, forecast
from streams.timeseries.points import Points
from streams.timeseries.reads import (
    page_answer,
    page_request,
    read_page,
    read_range,
    read_tail,
    time_range,
)
from streams.timeseries.service import TimeSeries
from streams.timeseries.writes import ANSWER_ROUTE, submit, wait_here

LISTING_ROUTE = "/_internal/timeseries/listing"
#: Metrics of fewer points are computed on the loop (~1 ms); more, in a thread.
IN_LOOP_POINTS = 50_000
T = TypeVar("T")
VERSION = "1.0.0"


def register_views(series: TimeSeries) -> None:
    settings = series.settings
    views = Views(series.app, series.metrics.requests, api_key=settings.api_key)
    api = Api(series)
    handlers: dict[tuple[str, str], Handler] = {
        ("post", "/series"): api.create,
        ("get", "/series"): api.list_series,
        ("get", "/series/{id}"): api.read,
        ("delete", "/series/{id}"): api.delete,
        ("post", "/series/{id}/points"): api.append,
        ("get", "/series/{id}/metrics"): api.metrics,
        ("get", "/series/{id}/forecast"): api.forecast,
        ("get", "/openapi.json"): api.document,
    }
    declared = {(route.method, route.path) for route in openapi.ROUTES}
    if declared != handlers.keys():
        raise RuntimeError(f"routes and handlers differ: {declared ^ handlers.keys()}")
    by_path: dict[str, dict[str, Handler]] = {}
    for method, path in sorted(handlers):
        by_path.setdefault(path, {})[method.upper()] = handlers[(method, path)]
    for path, methods in by_path.items():
        owned = "{id}" in path
        views.endpoint(path, methods, key="id" if owned else "", owner=api.owner if owned else None)
    views.endpoint(ANSWER_ROUTE, {"GET": api.answer})
    views.endpoint(LISTING_ROUTE, {"GET": api.part})


class Api:
    """The handlers: each takes the request and the path's parameters."""

    def __init__(self, series: TimeSeries) -> None:
        self.series = series
        self.settings = series.settings
        self._document = openapi.document(VERSION)
        self._heavy = asyncio.Semaphore(1)

    # -- routing ----------------------------------------------------------------------

    def owner(self, series_id: str) -> URL:
        """The worker serving ``series_id``; a malformed id is unknown everywhere."""
        _known(series_id)
        return self.series.owner_of(series_id)

    def _local(self, series_id: str) -> Any:
        local = self.series.local(self.series.partition(series_id))
        if local is None:
            raise Unavailable("partition assignment under way; retry")
        return local

    def _meta(self, series_id: str) -> tuple[Any, dict[str, Any]]:
        local = self._local(series_id)
        meta = local.get(meta_key(series_id))
        if meta is None:
            raise NotFound("no such series", detail={"id": series_id})
        return local, meta

    # -- writes -----------------------------------------------------------------------

    async def _body(self, request: Any) -> Any:
        limit = self.settings.max_body_bytes
        raw = await read_body(request, limit)
        return requests.json_body(raw, request.headers.get("Content-Type"), limit=limit)

    async def create(self, request: Any) -> Reply:
        key = requests.idempotency_key(request.headers.get("Idempotency-Key"))
        body = await self._body(request)
        command, points = requests.create(
            body,
            key=key,
            request_id="",
            now_ms=int(time.time() * 1000),
            max_points=self.settings.max_points_per_request,
        )
        command["rid"] = requests.request_id("create", command["id"], key)
        return await self._write(command, points)

    async def append(self, request: Any, id: str) -> Reply:
        _known(id)
        key = requests.idempotency_key(request.headers.get("Idempotency-Key"))
        body = await self._body(request)
        command, points = requests.append(
            body,
            id,
            request_id=requests.request_id("append", id, key),
            max_points=self.settings.max_points_per_request,
        )
        return await self._write(command, points)

    async def delete(self, request: Any, id: str) -> Reply:
        _known(id)
        key = requests.idempotency_key(request.headers.get("Idempotency-Key"))
        command = {"op": "delete", "id": id, "rid": requests.request_id("delete", id, key)}
        return await self._write(command, None)

    async def _write(self, command: dict[str, Any], points: Points | None) -> Reply:
        if points is not None:
            command["digest"] = requests.digest(command, points)
        answers = await submit(self.series, requests.in_parts(command, points))
        refused = [answer for answer in answers if answer["status"] >= 300]
        if refused:
            return Reply(refused[0]["body"], refused[0]["status"])
        if points is not None:
            self.series.metrics.points_written.inc(len(points))
        # A request in parts: the first part's status (201 for a create), the last's count.
        return Reply(answers[-1]["body"], answers[0]["status"])

    # -- reads ------------------------------------------------------------------------

    def read(self, request: Any, id: str) -> dict[str, Any]:
        query = request.query
        start, end = time_range(query)
        limit, after, form = page_request(query, self.settings.page_limit)
        local, meta = self._meta(id)
        if after is not None:
            start = after if start is None else max(start, after)
        points, following = read_page(local.get, meta, start, end, limit)
        return page_answer(id, points, following, form)

    async def metrics(self, request: Any, id: str) -> dict[str, Any]:
        start, end = time_range(request.query)
        local, meta = self._meta(id)
        points = read_range(local.get, meta, start, end)
        if len(points) < IN_LOOP_POINTS:
            return stats.metrics(points)
        return await self._off_loop(stats.metrics, points)

    def forecast(self, request: Any, id: str) -> dict[str, Any]:
        horizon, levels, season = forecasting.parameters(request.query)
        local, meta = self._meta(id)
        fit_points = forecasting.MAX_FIT_POINTS
        points = read_tail(local.get, meta, forecasting.points_needed(fit_points, season))
        try:
            # On the loop: ~16 ms at the 2,000-point fit window. In a thread it fought the
            # loop for the GIL and took several times longer under load (measured: the
            # 200 requests/s mix collapsed, forecasts queueing for seconds).
            result = forecast(points.times, points.values, horizon, levels, season, fit_points)
        except ForecastInputError as exc:
            raise forecasting.unprocessable(exc) from None
        return forecasting.answer(id, result)

    async def _off_loop(self, compute: Callable[..., T], *args: Any) -> T:
        """``compute`` in a thread, one at a time: the loop keeps serving the cheap
        requests meanwhile (numpy releases the GIL), and the memory of many heavy ones
        at once stays bounded."""
        async with self._heavy:
            return await asyncio.to_thread(compute, *args)

    def document(self, request: Any) -> dict[str, Any]:
        return self._document

    async def list_series(self, request: Any) -> dict[str, Any]:
        limit = integer(request.query, "limit", 100, 1, self.settings.page_limit)
        after = listing.cursor(request.query)
        owners = self.series.owners()
        if len(owners) < self.series.partitions:
            raise Unavailable("partition assignment under way; retry")
        by_owner: dict[URL, list[int]] = {}
        for partition, url in owners.items():
            by_owner.setdefault(url, []).append(partition)
        asked = [self._parts(url, parts, after, limit) for url, parts in by_owner.items()]
        parts = [part for found in await asyncio.gather(*asked) for part in found]
        return listing.merge(parts, limit)

    async def _parts(
        self, url: URL, partitions: list[int], after: str, limit: int
    ) -> list[listing.Part]:
        if self.series.is_here(url):
            return self._own_parts(partitions, after, limit)
        query = {"partitions": ",".join(map(str, partitions)), "cursor": after, "limit": limit}
        headers = {} if self.settings.api_key is None else {API_KEY: self.settings.api_key}
        try:
            async with self.series.app.http_client.get(
                str(url).rstrip("/") + LISTING_ROUTE,
                params=query,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=10),
            ) as response:
                if response.status == 200:
                    found: list[listing.Part] = (await response.json())["parts"]
                    return found
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError):
            pass
        raise Unavailable("a partition's owner did not answer; retry")

    def _own_parts(self, partitions: list[int], after: str, limit: int) -> list[listing.Part]:
        parts = []
        for partition in partitions:
            local = self.series.local(partition)
            if local is None:
                raise Unavailable("partition assignment under way; retry")
            parts.append(listing.part(local, after, limit))
        return parts

    # -- between workers --------------------------------------------------------------

    def part(self, request: Any) -> dict[str, Any]:
        query = request.query
        partitions = _partitions(query.get("partitions", ""), self.series.partitions)
        limit = integer(query, "limit", 100, 1, self.settings.page_limit)
        return {"parts": self._own_parts(partitions, listing.cursor(query), limit)}

    async def answer(self, request: Any) -> dict[str, Any]:
        query = request.query
        partition = integer(query, "partition", 0, 0, self.series.partitions - 1)
        wait = min(float(integer(query, "wait_ms", 1000, 0, 5000)) / 1000, 5.0)
        if self.series.local(partition) is None:
            raise Unavailable("not the owner of this partition")
        rid = requests.idempotency_key(query.get("rid")) or ""
        request = (rid, query.get("digest") or None)
        return {"answer": await wait_here(self.series, request, partition, wait)}


def _known(series_id: str) -> None:
    if not SERIES_ID.fullmatch(series_id):
        raise NotFound("no such series", detail={"id": series_id[:64]})


def _partitions(raw: str, count: int) -> list[int]:
    parts = [int(p) for p in raw.split(",") if p.isascii() and p.isdigit()]
    if not parts or any(p >= count for p in parts):
        raise Unavailable("partitions unknown here")
    return parts
