"""Web views declared with streams.common.web, served by real Faust apps on local ports."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import faust
import pytest
from aiohttp.test_utils import TestServer
from faust.web import View
from prometheus_client import CollectorRegistry
from yarl import URL

from streams.common import web_requests
from streams.common.query import integer
from streams.common.web import JsonView, NotFound, Unavailable, Views, error_body, route_latency
from tests.support.ports import free_port

LATENCY = "streams_test_http_request_duration_seconds"
#: The topic a routed page is keyed by; the tests decide who owns which key.
TOPIC = object()


@dataclass
class Worker:
    app: faust.App
    url: str
    registry: CollectorRegistry

    def route(self, owners: Mapping[str, str]) -> None:
        """Make this worker see ``owners`` (key -> worker URL) as the assignment."""

        def owner(topic: object, key: str) -> URL:
            assert topic is TOPIC
            return URL(owners[key])

        self.app.router.external_topic_key_store = owner  # type: ignore[method-assign]

    def count(self, route: str, method: str, status: int) -> float:
        labels = {"route": route, "method": method, "status": str(status)}
        return self.registry.get_sample_value(f"{LATENCY}_count", labels) or 0.0


@asynccontextmanager
async def worker(
    declare: Callable[[Views], None], ready: asyncio.Event | None = None
) -> AsyncIterator[Worker]:
    port = free_port()
    app = faust.App(
        f"web-{port}",
        broker="kafka://127.0.0.1:1",
        autodiscover=False,
        web_host="127.0.0.1",
        web_port=port,
    )
    registry = CollectorRegistry()
    declare(Views(app, route_latency(registry, "streams_test"), ready=ready))
    server = TestServer(app.web.web_app, host="127.0.0.1", port=port)
    await server.start_server()
    try:
        yield Worker(app, f"http://127.0.0.1:{port}", registry)
    finally:
        await server.close()
        await app.http_client.close()


async def call(url: str, method: str = "GET") -> tuple[int, Any, Mapping[str, str]]:
    async with aiohttp.ClientSession() as session, session.request(method, url) as response:
        body = await response.json() if response.content_type == "application/json" else None
        return response.status, body, response.headers


def items(views: Views) -> None:
    views.page("/items", lambda q: {"limit": integer(q, "limit", 10, 1, 100)})


async def test_a_page_answers_json_and_names_a_bad_parameter() -> None:
    """A page answers its value as JSON, and a bad parameter is a 400 naming it."""
    async with worker(items) as w:
        ok = await call(f"{w.url}/items?limit=5")
        status, body, _ = await call(f"{w.url}/items?limit=500")

    assert ok[:2] == (200, {"limit": 5})
    assert status == 400
    assert body == {
        "error": "limit must be an integer from 1 to 100, got '500'",
        "detail": {"parameter": "limit"},
        "parameter": "limit",
    }


async def test_pages_answer_503_with_retry_after_until_the_worker_is_ready() -> None:
    """Before the worker is ready a page is a 503 with Retry-After, then it answers."""
    ready = asyncio.Event()
    async with worker(items, ready) as w:
        status, body, headers = await call(f"{w.url}/items")
        ready.set()
        after = await call(f"{w.url}/items")

    assert (status, headers["Retry-After"]) == (503, "1")
    assert set(body) == {"error", "detail"} and body["detail"] is None
    assert after[:2] == (200, {"limit": 10})


async def test_a_view_that_raises_is_a_logged_500_and_the_worker_keeps_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An exception inside a view answers 500 in the error shape, is logged, and the
    next request is served as usual."""

    def failing(q: Mapping[str, str]) -> Any:
        return dict(q)["missing"]

    def declare(views: Views) -> None:
        items(views)
        views.page("/broken", failing)

    async with worker(declare) as w:
        broken = await call(f"{w.url}/broken")
        fine = await call(f"{w.url}/items")

    assert broken[:2] == (500, {"error": "internal error", "detail": None})
    assert "GET /broken failed" in caplog.text and "KeyError" in caplog.text
    assert fine[0] == 200


async def test_other_methods_are_a_json_405_listing_the_allowed_ones() -> None:
    """A method a view does not take is a JSON 405 whose Allow header and body list
    the methods it does take, for pages and for a view taking POST only."""

    class PostOnly(JsonView):
        async def post(self, request: Any, **params: Any) -> Any:
            return self.json({"posted": True})

    def declare(views: Views) -> None:
        items(views)
        views.app.page("/submit")(PostOnly)

    async with worker(declare) as w:
        page = await call(f"{w.url}/items", "DELETE")
        ingest = await call(f"{w.url}/submit", "GET")
        posted = await call(f"{w.url}/submit", "POST")

    allowed = ["GET", "HEAD"]
    assert page[:2] == (
        405,
        {"error": "method DELETE not allowed", "detail": {"allowed": allowed}, "allowed": allowed},
    )
    assert page[2]["Allow"] == "GET, HEAD"
    assert ingest[:2] == (
        405,
        {"error": "method GET not allowed", "detail": {"allowed": ["POST"]}, "allowed": ["POST"]},
    )
    assert posted[:2] == (200, {"posted": True})


async def test_latency_is_labelled_by_route_pattern_not_by_url() -> None:
    """Requests for different keys are timed under the one route pattern, by status."""

    def declare(views: Views) -> None:
        def thing(q: Mapping[str, str], thing_id: str) -> dict[str, str]:
            if thing_id == "missing":
                raise NotFound(f"no thing {thing_id!r}", thing_id=thing_id)
            return {"id": thing_id}

        views.page("/things/{thing_id}", thing)

    async with worker(declare) as w:
        for thing_id in ("a", "b", "missing"):
            await call(f"{w.url}/things/{thing_id}")

        assert w.count("/things/{thing_id}", "GET", 200) == 2
        assert w.count("/things/{thing_id}", "GET", 404) == 1
        samples = [s for m in w.registry.collect() for s in m.samples]
        assert {s.labels["route"] for s in samples if "route" in s.labels} == {"/things/{thing_id}"}


def devices(views: Views) -> None:
    """A routed page answering which worker holds a device; device "busy" is a 503."""
    here = str(views.app.conf.canonical_url)

    def answer(q: Mapping[str, str], device_id: str) -> dict[str, str]:
        if device_id == "busy":
            raise Unavailable("busy", retry_after=7)
        return {"device_id": device_id, "answered_by": here}

    views.routed("/devices/{device_id}", answer, key="device_id", topic=TOPIC)


async def test_a_routed_page_is_answered_by_the_worker_owning_the_key() -> None:
    """Asked on any worker, a routed page is answered by the key's owner, its
    refusals and Retry-After included."""
    async with worker(devices) as a, worker(devices) as b:
        owners = {"d1": b.url, "d2": a.url, "busy": b.url}
        a.route(owners)
        b.route(owners)

        forwarded = await call(f"{a.url}/devices/d1")
        local = await call(f"{a.url}/devices/d2")
        refused = await call(f"{a.url}/devices/busy")

    assert forwarded[:2] == (200, {"device_id": "d1", "answered_by": b.url})
    assert local[:2] == (200, {"device_id": "d2", "answered_by": a.url})
    assert (refused[0], refused[1]["error"], refused[2]["Retry-After"]) == (503, "busy", "7")


async def test_workers_that_disagree_on_the_owner_answer_503_instead_of_looping() -> None:
    """When two workers each think the other owns a key, the request is forwarded once
    and answered 503 with Retry-After, never bounced back and forth."""
    async with worker(devices) as a, worker(devices) as b:
        a.route({"d1": b.url})
        b.route({"d1": a.url})

        status, body, headers = await call(f"{a.url}/devices/d1")

        assert (status, headers["Retry-After"]) == (503, "1")
        assert body == {"error": "partition assignment under way; retry", "detail": None}
        assert b.count("/devices/{device_id}", "GET", 503) == 1


async def test_an_owner_that_does_not_answer_or_no_assignment_is_a_503() -> None:
    """A key whose owner is unreachable, or whose partition has no owner yet, is a 503
    with Retry-After."""
    async with worker(devices) as a:
        a.route({"d1": f"http://127.0.0.1:{free_port()}"})

        unreachable = await call(f"{a.url}/devices/d1")
        unassigned = await call(f"{a.url}/devices/d2")  # KeyError: no owner known

    assert (unreachable[0], unreachable[2]["Retry-After"]) == (503, "1")
    assert "did not answer" in unreachable[1]["error"]
    assert unassigned[:2] == (
        503,
        {"error": "partition assignment under way; retry", "detail": None},
    )


def test_every_refusal_has_a_detail_and_keeps_its_details_at_top_level() -> None:
    """``detail`` is the one passed, else the other details (null when none); those stay
    at top level too, where clients of the other pipelines read ``parameter``."""
    assert error_body("down") == {"error": "down", "detail": None}
    assert error_body("bad", parameter="p") == {
        "error": "bad",
        "detail": {"parameter": "p"},
        "parameter": "p",
    }
    assert error_body("big", detail={"limit": 5}) == {"error": "big", "detail": {"limit": 5}}
    assert error_body("gone", detail=None) == {"error": "gone", "detail": None}
    assert error_body("x", detail=[1], parameter="p") == {
        "error": "x",
        "detail": [1],
        "parameter": "p",
    }


@pytest.mark.parametrize("path", ["/nowhere", "/items/", "/ITEMS", "/items/x", "/"])
async def test_a_path_no_view_has_is_a_json_404(path: str) -> None:
    """aiohttp's router refuses unknown paths (a trailing slash or another case
    included) before any view runs: the kit's middleware answers in the error shape."""
    async with worker(items) as w:
        status, body, headers = await call(f"{w.url}{path}")
        posted = await call(f"{w.url}{path}", "POST")

    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert (status, body) == (404, {"error": "no such path", "detail": {"path": path}})
    assert posted[:2] == (status, body)


async def test_aiohttp_refusals_of_views_not_declared_by_the_kit_are_json_too() -> None:
    """A plain Faust view's missing method is aiohttp's 405, a body past aiohttp's cap
    its 413: both in the error shape, the 405 with its Allow."""

    class Plain(View):
        async def get(self, request: Any, **params: Any) -> Any:
            return self.json({"got": True})

        async def post(self, request: Any, **params: Any) -> Any:
            return self.json({"read": len(await request.read())})

    def declare(views: Views) -> None:
        items(views)
        views.app.page("/plain")(Plain)

    async with worker(declare) as w:
        status, body, headers = await call(f"{w.url}/plain", "DELETE")
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{w.url}/plain", data=b"x" * (2**20 + 1)) as response,
        ):
            too_large = (response.status, await response.json())

    assert status == 405
    assert headers["Allow"].split(", ") == body["allowed"] == ["GET", "HEAD", "POST"]
    assert body["error"] == "method DELETE not allowed"
    assert body["detail"] == {"allowed": body["allowed"]}
    assert too_large[0] == 413
    assert too_large[1]["detail"] is None and "1048576" in too_large[1]["error"]


async def test_one_app_with_several_views_has_one_json_404() -> None:
    def declare(views: Views) -> None:
        items(views)
        other = Views(views.app)
        other.page("/others", lambda q: {"other": True})

    async with worker(declare) as w:
        middlewares = list(w.app.web.web_app.middlewares)
        missing = await call(f"{w.url}/nowhere")
        other = await call(f"{w.url}/others", "DELETE")

    assert middlewares.count(web_requests.refuse_in_json) == 1
    assert middlewares[0] is web_requests.refuse_in_json  # outermost: sees what the others re-raise
    assert missing[:2] == (404, {"error": "no such path", "detail": {"path": "/nowhere"}})
    assert (other[0], other[1]["allowed"]) == (405, ["GET", "HEAD"])


async def test_a_forwarded_read_has_the_owners_headers() -> None:
    """Whichever worker is asked, the answer is the same: the owner's full Content-Type
    (charset included), and a HEAD's Content-Length."""
    async with worker(devices) as a, worker(devices) as b:
        owners = {"d1": b.url}
        a.route(owners)
        b.route(owners)

        owned = await call(f"{b.url}/devices/d1")
        forwarded = await call(f"{a.url}/devices/d1")
        owned_head = await call(f"{b.url}/devices/d1", "HEAD")
        forwarded_head = await call(f"{a.url}/devices/d1", "HEAD")

    assert forwarded[:2] == owned[:2]
    assert forwarded[2]["Content-Type"] == owned[2]["Content-Type"]
    assert owned[2]["Content-Type"] == "application/json; charset=utf-8"
    assert forwarded_head[2]["Content-Type"] == owned[2]["Content-Type"]
    length = owned[2]["Content-Length"]
    assert forwarded_head[2]["Content-Length"] == owned_head[2]["Content-Length"] == length
