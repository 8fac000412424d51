"""Helpers of the endpoint tests (test_web_endpoints.py, test_web_keys.py): a client,
streamed bodies, and the ``/things`` and ``/uploads`` endpoints they declare."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from streams.common.web import API_KEY, Reply, Views, read_body

LIMIT = 100
KEY = "s3cret-key"
UNAUTHORIZED = {"error": f"missing or wrong {API_KEY}", "detail": None}
LATENCY = "streams_test_http_request_duration_seconds"


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any  # parsed JSON, or None
    raw: bytes
    headers: Mapping[str, str]


async def send(
    url: str,
    method: str = "GET",
    *,
    data: bytes | AsyncIterator[bytes] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Answer:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, data=data, headers=headers) as response,
    ):
        raw = await response.read()
        json = response.content_type == "application/json" and raw
        return Answer(response.status, orjson.loads(raw) if json else None, raw, response.headers)


async def pieces(*parts: bytes) -> AsyncIterator[bytes]:
    """A body streamed in pieces: chunked, without a Content-Length."""
    for part in parts:
        yield part
        await asyncio.sleep(0)


def things(views: Views) -> None:
    """``/things/{thing_id}``: GET, POST (201, Location) and DELETE (204); ``/uploads``:
    POST only, echoing a body of at most LIMIT bytes."""

    def read(request: Any, thing_id: str) -> dict[str, Any]:
        return {"id": thing_id, "query": dict(request.query)}

    async def make(request: Any, thing_id: str) -> Reply:
        body = (await read_body(request, LIMIT)).decode()
        return Reply({"id": thing_id, "body": body}, 201, {"Location": f"/things/{thing_id}"})

    def remove(request: Any, thing_id: str) -> Reply:
        return Reply(None, 204)

    async def upload(request: Any) -> dict[str, Any]:
        raw = await read_body(request, LIMIT)
        return {"declared": request.content_length, "body": raw.decode()}

    views.endpoint("/things/{thing_id}", {"GET": read, "post": make, "Delete": remove})
    views.endpoint("/uploads", {"POST": upload})
