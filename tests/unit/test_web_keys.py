"""Endpoints behind an API key, and endpoints routed to an owner, served by real Faust
apps on local ports as in test_web_views.py."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import faust
import orjson
import pytest
from yarl import URL

from streams.common.web import API_KEY, Reply, Unavailable, Views
from tests.unit.endpoints import KEY, UNAUTHORIZED, send, things
from tests.unit.test_web_views import TOPIC, worker


async def exchange(url: str, request: bytes) -> tuple[int, bytes]:
    """The status and body of the answer to ``request``, sent as raw bytes (for headers
    no HTTP client would send)."""
    parsed = URL(url)
    assert parsed.host is not None and parsed.port is not None
    reader, writer = await asyncio.open_connection(parsed.host, parsed.port)
    try:
        writer.write(request)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        lines = head.decode().split("\r\n")
        fields = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:] if line)}
        body = await asyncio.wait_for(reader.readexactly(int(fields["content-length"])), 5)
    finally:
        writer.close()
    return int(lines[0].split(" ", 2)[1]), body


@pytest.mark.parametrize("value", [b"\xe9", KEY.encode() + b"\xe9", b"\xff\xfe"])
async def test_an_api_key_that_is_not_utf8_is_a_401(value: bytes) -> None:
    async with worker(keyed(things)) as w:
        status, body = await exchange(
            w.url,
            b"GET /things/t1 HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
            + API_KEY.encode()
            + b": "
            + value
            + b"\r\n\r\n",
        )

    assert (status, orjson.loads(body)) == (401, UNAUTHORIZED)


def keyed(declare: Any) -> Any:
    """``declare`` on views that need X-API-Key."""

    def with_key(views: Views) -> None:
        declare(Views(views.app, views.latency, api_key=KEY))

    return with_key


@pytest.mark.parametrize(
    "headers",
    [{}, {API_KEY: ""}, {API_KEY: "wrong"}, {API_KEY: KEY[:-1]}, {API_KEY: KEY + "x"}],
    ids=["none", "empty", "wrong", "prefix", "longer"],
)
async def test_without_the_api_key_every_view_is_a_json_401(headers: dict[str, str]) -> None:
    async with worker(keyed(things)) as w:
        answers = [
            await send(f"{w.url}/things/t1", headers=headers),
            await send(f"{w.url}/things/t1", "POST", data=b"{}", headers=headers),
            await send(f"{w.url}/things/t1", "DELETE", headers=headers),
            await send(f"{w.url}/uploads", "POST", data=b"x" * 500, headers=headers),
        ]

    for answer in answers:
        assert (answer.status, answer.body) == (401, UNAUTHORIZED)


async def test_with_the_api_key_views_answer() -> None:
    async with worker(keyed(things)) as w:
        read = await send(f"{w.url}/things/t1", headers={API_KEY: KEY})
        made = await send(f"{w.url}/things/t1", "POST", data=b"hi", headers={API_KEY: KEY})

    assert (read.status, read.body) == (200, {"id": "t1", "query": {}})
    assert (made.status, made.body) == (201, {"id": "t1", "body": "hi"})


def devices(owners: Mapping[str, str]) -> Any:
    """A routed page whose owner ``owners`` names (filled once the workers run); a
    device no one owns is a KeyError: no assignment known."""

    def declare(views: Views) -> None:
        here = str(views.app.conf.canonical_url)

        def answer(q: Mapping[str, str], device_id: str) -> dict[str, str]:
            if device_id == "busy":
                raise Unavailable("busy", retry_after=7)
            return {"device_id": device_id, "answered_by": here}

        def owner(device_id: str) -> URL:
            return URL(owners[device_id])

        views.routed("/devices/{device_id}", answer, key="device_id", owner=owner)

    return declare


async def test_a_page_routed_by_an_owner_function_is_answered_by_that_owner() -> None:
    owners: dict[str, str] = {}
    async with worker(devices(owners)) as a, worker(devices(owners)) as b:
        owners.update({"d1": b.url, "d2": a.url, "busy": b.url})

        forwarded = await send(f"{a.url}/devices/d1")
        local = await send(f"{a.url}/devices/d2")
        refused = await send(f"{a.url}/devices/busy")
        unassigned = await send(f"{a.url}/devices/d3")

    assert (forwarded.status, forwarded.body) == (200, {"device_id": "d1", "answered_by": b.url})
    assert (local.status, local.body) == (200, {"device_id": "d2", "answered_by": a.url})
    assert (refused.status, refused.headers["Retry-After"]) == (503, "7")
    assert (unassigned.status, unassigned.headers["Retry-After"]) == (503, "1")
    assert unassigned.body == {"error": "partition assignment under way; retry", "detail": None}


async def test_a_routed_read_forwarded_to_its_owner_carries_the_api_key() -> None:
    """The owner needs the key too: the forwarding worker sends it along, and a request
    without it is refused before it is forwarded."""
    owners: dict[str, str] = {}
    async with worker(keyed(devices(owners))) as a, worker(keyed(devices(owners))) as b:
        owners.update({"d1": b.url})

        forwarded = await send(f"{a.url}/devices/d1", headers={API_KEY: KEY})
        without = await send(f"{a.url}/devices/d1")

        assert b.count("/devices/{device_id}", "GET", 200) == 1
        assert b.count("/devices/{device_id}", "GET", 401) == 0

    assert (forwarded.status, forwarded.body) == (200, {"device_id": "d1", "answered_by": b.url})
    assert (without.status, without.body) == (401, UNAUTHORIZED)


async def test_an_endpoint_with_an_owner_forwards_reads_and_answers_writes_itself() -> None:
    owners: dict[str, str] = {}

    def declare(views: Views) -> None:
        here = str(views.app.conf.canonical_url)

        def read(request: Any, id: str) -> dict[str, str]:
            return {"read_by": here}

        def write(request: Any, id: str) -> Reply:
            return Reply({"written_by": here}, 201)

        views.endpoint(
            "/series/{id}",
            {"GET": read, "POST": write},
            key="id",
            owner=lambda id: URL(owners[id]),
        )

    async with worker(declare) as a, worker(declare) as b:
        owners.update({"s1": b.url})

        read = await send(f"{a.url}/series/s1")
        written = await send(f"{a.url}/series/s1", "POST", data=b"{}")

    assert (read.status, read.body) == (200, {"read_by": b.url})
    assert (written.status, written.body) == (201, {"written_by": a.url})


def test_a_routed_page_is_routed_by_exactly_one_of_topic_table_or_owner() -> None:
    views = Views(faust.App("web-routing", broker="kafka://127.0.0.1:1", autodiscover=False))

    def owner(key: str) -> URL:
        return URL("http://127.0.0.1:1")

    with pytest.raises(TypeError):
        views.routed("/x/{k}", dict, key="k")
    with pytest.raises(TypeError):
        views.routed("/x/{k}", dict, key="k", topic=TOPIC, owner=owner)
    with pytest.raises(TypeError):
        views.routed("/x/{k}", dict, key="k", table=TOPIC, owner=owner)
