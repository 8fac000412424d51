"""Endpoints declared with streams.common.web (several methods on one path, statuses of
their own, bodies read within a limit), served by real Faust apps on local ports as in
test_web_views.py."""

from __future__ import annotations

import asyncio
import gzip
import zlib

import orjson
import pytest
from yarl import URL

from tests.unit.endpoints import LATENCY, LIMIT, pieces, send, things
from tests.unit.test_web_views import worker


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
