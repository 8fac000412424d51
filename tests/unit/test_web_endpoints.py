"""Endpoints declared with streams.common.web (several methods on one path, statuses of
their own, bodies read within a limit, an API key), served by real Faust apps on local
ports as in test_web_views.py."""

from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import faust
import orjson
import pytest
from yarl import URL

from streams.common.web import API_KEY, Reply, Unavailable, Views, read_body
from tests.unit.test_web_views import TOPIC, worker

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


async def test_one_path_answers_each_method_with_its_own_status() -> None:
    """GET, POST and DELETE on one path reach their handlers with the path's parameters;
    a Reply's status and headers are the answer's, a 204 has an empty body."""
    async with worker(things) as w:
        exported = {
            method: w.registry.get_sample_value(
                f"{LATENCY}_count",
                {"route": "/things/{thing_id}", "method": method, "status": status},
            )
            for method, status in (("GET", "200"), ("POST", "201"), ("DELETE", "204"))
        }
        read = await send(f"{w.url}/things/t1?x=1")
        made = await send(f"{w.url}/things/t2", "POST", data=b"hello")
        removed = await send(f"{w.url}/things/t3", "DELETE")
        head = await send(f"{w.url}/things/t4", "HEAD")

        assert exported == {"GET": 0.0, "POST": 0.0, "DELETE": 0.0}  # before any call
        assert w.count("/things/{thing_id}", "POST", 201) == 1
        assert w.count("/things/{thing_id}", "DELETE", 204) == 1

    assert (read.status, read.body) == (200, {"id": "t1", "query": {"x": "1"}})
    assert (made.status, made.body) == (201, {"id": "t2", "body": "hello"})
    assert made.headers["Location"] == "/things/t2"
    assert (removed.status, removed.raw) == (204, b"")
    assert (head.status, head.raw) == (200, b"")


@pytest.mark.parametrize(
    ("path", "method", "allowed"),
    [
        ("/things/t1", "PUT", {"GET", "HEAD", "POST", "DELETE"}),
        ("/things/t1", "PATCH", {"GET", "HEAD", "POST", "DELETE"}),
        ("/uploads", "GET", {"POST"}),
        ("/uploads", "DELETE", {"POST"}),
        ("/uploads", "PUT", {"POST"}),
        # Methods Faust views cannot define: refused by the kit's middleware, not aiohttp.
        ("/things/t1", "OPTIONS", {"GET", "HEAD", "POST", "DELETE"}),
        ("/things/t1", "TRACE", {"GET", "HEAD", "POST", "DELETE"}),
        ("/uploads", "TRACE", {"POST"}),
    ],
)
async def test_a_method_not_given_is_a_json_405_allowing_exactly_the_given_ones(
    path: str, method: str, allowed: set[str]
) -> None:
    async with worker(things) as w:
        refused = await send(f"{w.url}{path}", method)

    assert refused.status == 405
    assert refused.body["error"] == f"method {method} not allowed"
    listed = refused.headers["Allow"].split(", ")
    assert sorted(listed) == sorted(allowed) == sorted(refused.body["allowed"])


async def test_head_where_no_get_is_given_is_a_405() -> None:
    async with worker(things) as w:
        refused = await send(f"{w.url}/uploads", "HEAD")

    assert (refused.status, refused.headers["Allow"]) == (405, "POST")


@pytest.mark.parametrize(
    "data",
    [b"", b"x" * LIMIT, b'{"a": "\xc3\xa9"}'],
    ids=["empty", "at-limit", "utf8"],
)
async def test_a_body_within_the_limit_is_read_exactly(data: bytes) -> None:
    async with worker(things) as w:
        declared = await send(f"{w.url}/uploads", "POST", data=data)
        streamed = await send(
            f"{w.url}/uploads", "POST", data=pieces(data[:10], data[10:50], data[50:])
        )

    assert (declared.status, declared.body) == (
        200,
        {"declared": len(data), "body": data.decode()},
    )
    assert (streamed.status, streamed.body) == (200, {"declared": None, "body": data.decode()})


async def test_a_body_over_the_limit_is_a_413_declared_or_streamed() -> None:
    too_large = {"error": f"a body holds at most {LIMIT} bytes", "detail": {"limit": LIMIT}}
    async with worker(things) as w:
        declared = await send(f"{w.url}/uploads", "POST", data=b"x" * (LIMIT + 1))
        streamed = await send(
            f"{w.url}/uploads", "POST", data=pieces(b"x" * 60, b"x" * 41, b"x" * 60)
        )
        made = await send(f"{w.url}/things/t1", "POST", data=pieces(b"y" * 80, b"y" * 80))

    assert (declared.status, declared.body) == (413, too_large)
    assert (streamed.status, streamed.body) == (413, too_large)
    assert (made.status, made.body) == (413, too_large)


async def test_a_declared_length_over_the_limit_is_refused_before_the_body_arrives() -> None:
    """A client announcing 10 MB is answered 413 at once, not after 10 MB are sent."""
    async with worker(things) as w:
        url = URL(w.url)
        assert url.host is not None and url.port is not None
        reader, writer = await asyncio.open_connection(url.host, url.port)
        try:
            writer.write(
                b"POST /uploads HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                b"Content-Length: 10000000\r\n\r\n" + b"x" * 10
            )
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            lines = head.decode().split("\r\n")
            fields = dict(line.split(": ", 1) for line in lines[1:] if line)
            body = await asyncio.wait_for(reader.readexactly(int(fields["Content-Length"])), 5)
        finally:
            writer.close()

    assert lines[0].split(" ", 2)[1] == "413"
    assert orjson.loads(body)["detail"] == {"limit": LIMIT}


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_body_not_in_its_content_encoding_is_a_json_400(encoding: str) -> None:
    """aiohttp decodes a compressed body as it is read: data that does not decode is the
    client's error, refused in the error shape, not a 500."""
    async with worker(things) as w:
        refused = await send(
            f"{w.url}/uploads",
            "POST",
            data=b"\x1f\x8b garbage",
            headers={"Content-Encoding": encoding},
        )
        made = await send(
            f"{w.url}/things/t1",
            "POST",
            data=b"\x78\x9c garbage",
            headers={"Content-Encoding": encoding},
        )

    for answer in (refused, made):
        assert answer.status == 400
        assert answer.body["detail"] == {"header": "Content-Encoding"}
        assert encoding in answer.body["error"]


async def test_a_body_in_its_content_encoding_is_read_decoded() -> None:
    async with worker(things) as w:
        zipped = await send(
            f"{w.url}/uploads",
            "POST",
            data=gzip.compress(b"hello"),
            headers={"Content-Encoding": "gzip"},
        )
        deflated = await send(
            f"{w.url}/uploads",
            "POST",
            data=zlib.compress(b"hello"),
            headers={"Content-Encoding": "deflate"},
        )

    assert (zipped.status, zipped.body["body"]) == (200, "hello")
    assert (deflated.status, deflated.body["body"]) == (200, "hello")


@pytest.mark.parametrize("encoding", ["br", "zstd"])
async def test_an_encoding_aiohttp_cannot_decode_is_its_own_400(encoding: str) -> None:
    """Refused by aiohttp's parser before any middleware or view runs (it decodes br and
    zstd only with Brotli or backports.zstd installed): a 400, in plain text."""
    async with worker(things) as w:
        refused = await send(
            f"{w.url}/uploads", "POST", data=b"garbage", headers={"Content-Encoding": encoding}
        )

    assert refused.status == 400


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
