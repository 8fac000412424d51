"""JSON web views on a Faust app: one way to declare them, one error shape, timed by route.

Every answer other than a success is the error shape of :mod:`streams.common.errors`
(``{"error": message, "detail": ...}``, its statuses, an exception per status), which
these views serve: a view raises one, or a bug is a 500 (logged; the worker keeps
serving). The one exception: a request aiohttp's parser refuses before the app sees it
(a malformed request line or header, a ``Content-Encoding`` it cannot decode such as
``br``) is aiohttp's plain-text 400. Query parameters are parsed by
:mod:`streams.common.query`.

A routed page answers on the worker that owns the key's partition, of a topic read by the
group or of a table, as Faust's ``app.topic_route``/``app.table_route`` do. The forwarding
is ours, not Faust's router's, for three reasons: a forwarded request carries a header, so
two workers that disagree on the assignment during a rebalance answer 503 instead of
passing it back and forth; the owner's ``Retry-After`` reaches the client; and an owner
that died or hangs is a 503 after ``forward_timeout``, not an unhandled exception. The
answer keeps the owner's headers that describe it (``Content-Type`` with its charset, a
HEAD's ``Content-Length``), so every worker answers alike.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import aiohttp
import aiohttp.web
import faust
from faust.web import View
from prometheus_client import CollectorRegistry, Histogram
from yarl import URL

from streams.common.errors import (
    BadRequest,
    HttpError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    Unavailable,
    Unprocessable,
    UnsupportedMediaType,
    error_body,
)
from streams.common.web_requests import REFUSAL_HEADERS, read_body, refuse_in_json

# The error types are streams.common.errors'; the views import them from here too.
__all__ = [
    "API_KEY", "FORWARDED_BY", "Answer", "BadRequest", "Handler", "HttpError", "JsonView",
    "MethodNotAllowed", "NotFound", "PayloadTooLarge", "Reply", "Unauthorized", "Unavailable",
    "Unprocessable", "UnsupportedMediaType", "Views", "address", "error_body", "error_response",
    "read_body", "route_latency",
]  # fmt: skip

log = logging.getLogger(__name__)

#: Marks a request one worker forwarded to another (value: the sender's URL).
FORWARDED_BY = "X-Streams-Forwarded-By"
#: The header of the optional API key.
API_KEY = "X-API-Key"
#: Headers of a refusal that tell the client what to do next.
#: Headers of the owner's answer a forwarded answer keeps (and a HEAD's Content-Length).
_PASSED_HEADERS = ("Content-Type", *REFUSAL_HEADERS)
#: The status a route's success has, exported at zero from the start.
_SUCCESS = {"POST": "201", "DELETE": "204"}
_ASSIGNMENT_UNDER_WAY = "partition assignment under way; retry"

#: ``answer(query, **path_params)``: a JSON-able value, or an awaitable of one.
Answer = Callable[..., Any]
#: ``handler(request, **path_params)``: a :class:`Reply`, a JSON-able value (200), or an
#: awaitable of either.
Handler = Callable[..., Any]


@dataclass(frozen=True)
class Reply:
    """An answer with a status of its own (201, 204...) and headers."""

    body: Any = None
    status: int = 200
    headers: Mapping[str, str] | None = None


def error_response(view: Any, error: HttpError) -> Any:
    return view.json(error.body(), status=error.status, headers=error.headers or None)


def route_latency(registry: CollectorRegistry, pipeline_prefix: str) -> Histogram:
    """``<pipeline_prefix>_http_request_duration_seconds{route, method, status}``.

    ``route`` is the path pattern a view was declared with (``/x/{id}``), never the
    requested URL, so every label has a handful of values.
    """
    return Histogram(
        f"{pipeline_prefix}_http_request_duration_seconds",
        "Time to answer a web view, by route pattern, method and status",
        ["route", "method", "status"],
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        registry=registry,
    )


class JsonView(View):
    """A Faust view whose refusals are JSON too: a method it does not define answers 405.

    Faust routes only the methods a view defines, and aiohttp answers the others with a
    plain-text 405; defining all Faust knows here brings them to ``refuse`` (the rest,
    TRACE or CONNECT, are refused by ``Views``' middleware).
    """

    _METHODS: ClassVar[tuple[str, ...]] = (
        "get", "post", "put", "patch", "delete", "options", "search",
    )  # fmt: skip

    def allowed(self) -> list[str]:
        mine = type(self)
        own = [m.upper() for m in self._METHODS if getattr(mine, m) is not getattr(JsonView, m)]
        return [*own, "HEAD"] if "GET" in own else own

    async def refuse(self, request: Any) -> Any:
        return error_response(self, MethodNotAllowed(request.method, self.allowed()))

    async def get(self, request: Any, **params: Any) -> Any:
        return await self.refuse(request)

    async def post(self, request: Any, **params: Any) -> Any:
        return await self.refuse(request)

    async def put(self, request: Any, **params: Any) -> Any:
        return await self.refuse(request)

    async def patch(self, request: Any, **params: Any) -> Any:
        return await self.refuse(request)

    async def delete(self, request: Any, **params: Any) -> Any:
        return await self.refuse(request)

    async def options(self, request: Any, **params: Any) -> Any:
        return await self.refuse(request)

    async def search(self, request: Any, **params: Any) -> Any:
        return await self.refuse(request)


@dataclass(frozen=True)
class _Page:
    path: str
    #: By method (GET, POST, DELETE...); HEAD is answered as GET.
    handlers: Mapping[str, Handler]
    needs_ready: bool
    #: For a routed page: the URL of the worker owning a key, and the key's parameter.
    owner: Callable[[str], URL] | None = None
    key: str = ""


class Views:
    """Declares a pipeline's JSON views on ``app``: read-only pages (GET and HEAD), and
    endpoints that take other methods too.

    ``latency``: from :func:`route_latency`, or None not to time them. ``ready``: until it
    is set, pages that need it answer 503 with ``Retry-After: retry_after`` rather than
    the partial state of a worker still loading.
    """

    def __init__(
        self,
        app: faust.App,
        latency: Histogram | None = None,
        *,
        ready: asyncio.Event | None = None,
        retry_after: int = 1,
        forward_timeout: float = 10.0,
        api_key: str | None = None,
    ) -> None:
        self.app = app
        self.latency = latency
        self.ready = ready
        self.retry_after = retry_after
        self.forward_timeout = forward_timeout
        #: When set, every view declared here needs it in ``X-API-Key``.
        self.api_key = api_key
        #: The methods each declared path takes, for refusals aiohttp would make.
        self._allowed: dict[str, list[str]] = {}
        middlewares = app.web.web_app.middlewares
        if refuse_in_json not in middlewares:  # once per app, however many Views it has
            middlewares.insert(0, refuse_in_json)  # outermost: sees what the others raise
        middlewares.append(self._refuse_other_methods)

    @aiohttp.web.middleware
    async def _refuse_other_methods(self, request: Any, handler: Any) -> Any:
        """A method no Faust view can define (TRACE...) on one of our paths: the JSON
        405 of the path, not aiohttp's plain text listing every method of every view."""
        try:
            return await handler(request)
        except aiohttp.web.HTTPMethodNotAllowed:
            for resource in request.app.router.resources():
                allowed = self._allowed.get(resource.canonical)
                if allowed is not None and (await resource.resolve(request))[1]:
                    error = MethodNotAllowed(request.method, allowed)
                    return aiohttp.web.json_response(
                        error.body(), status=error.status, headers=error.headers
                    )
            raise

    def page(self, path: str, answer: Answer, *, needs_ready: bool = True) -> None:
        """Serve ``answer(query, **path_params)`` as JSON at ``path`` on this worker."""
        self._add(_Page(path, {"GET": _read(answer)}, needs_ready))

    def routed(
        self,
        path: str,
        answer: Answer,
        *,
        key: str,
        topic: Any = None,
        table: Any = None,
        owner: Callable[[str], URL] | None = None,
    ) -> None:
        """Like :meth:`page`, answered by the worker owning the partition of ``key``.

        ``key`` names a path parameter (``{key}`` in ``path``) or else a required query
        parameter. Its partition is that of ``topic`` (a topic the group reads) or of
        ``table``, as Faust partitions it, or ``owner(key)`` gives the owner's URL
        (KeyError: no assignment known).
        """
        self._add(_Page(path, {"GET": _read(answer)}, True, self._owner(topic, table, owner), key))

    def endpoint(
        self,
        path: str,
        handlers: Mapping[str, Handler],
        *,
        key: str = "",
        owner: Callable[[str], URL] | None = None,
        needs_ready: bool = True,
    ) -> None:
        """Serve ``handlers[method](request, **path_params)`` at ``path``.

        With ``owner`` (as for :meth:`routed`), reads are forwarded to the worker owning
        ``key``; other methods are answered here (a write finds its own way to the owner:
        Faust's forwarding drops request bodies).
        """
        self._add(_Page(path, {m.upper(): h for m, h in handlers.items()}, needs_ready, owner, key))

    def _owner(
        self, topic: Any, table: Any, owner: Callable[[str], URL] | None
    ) -> Callable[[str], URL]:
        if owner is not None:
            if topic is not None or table is not None:
                raise TypeError("route by a topic, a table or an owner function")
            return owner
        if (topic is None) == (table is None):
            raise TypeError("route by a topic, a table or an owner function")
        app = self.app

        def by_assignment(value: str) -> URL:
            if topic is not None:
                return URL(app.router.external_topic_key_store(topic, value))
            return URL(app.router.key_store(table.name, value))

        return by_assignment

    def _add(self, page: _Page) -> None:
        views = self

        class PageView(JsonView):
            async def get(self, request: Any, **params: Any) -> Any:
                return await views._serve(page, self, request, params)

            async def post(self, request: Any, **params: Any) -> Any:
                return await views._serve(page, self, request, params)

            async def delete(self, request: Any, **params: Any) -> Any:
                return await views._serve(page, self, request, params)

            async def refuse(self, request: Any) -> Any:
                return await views._serve(page, self, request, {})

        self._allowed[page.path] = _allowed(page)
        if self.latency is not None:
            # Exported from the start, so a dashboard shows the route before its first call.
            for method in page.handlers:
                self.latency.labels(page.path, method, _SUCCESS.get(method, "200"))
        name = re.sub(r"[^A-Za-z0-9]+", "_", page.path).strip("_")
        PageView.__name__ = PageView.__qualname__ = name
        self.app.page(page.path, name=name)(PageView)

    async def _serve(self, page: _Page, view: Any, request: Any, params: dict[str, str]) -> Any:
        started = time.perf_counter()
        try:
            response = await self._respond(page, view, request, params)
        except HttpError as error:
            response = error_response(view, error)
        except Exception:
            # A bug in one view must not take the others (or the worker) down.
            log.exception("web: %s %s failed", request.method, request.path_qs)
            response = error_response(view, HttpError("internal error"))
        if self.latency is not None:
            elapsed = time.perf_counter() - started
            self.latency.labels(page.path, request.method, str(response.status)).observe(elapsed)
        return response

    async def _respond(self, page: _Page, view: Any, request: Any, params: dict[str, str]) -> Any:
        if self.api_key is not None:
            # Header bytes that are not UTF-8 arrive surrogate-escaped: compare the bytes.
            given = request.headers.get(API_KEY, "").encode("utf-8", "surrogateescape")
            if not hmac.compare_digest(given, self.api_key.encode()):
                raise Unauthorized(f"missing or wrong {API_KEY}")
        method = "GET" if request.method == "HEAD" else request.method
        handler = page.handlers.get(method)
        if handler is None:
            raise MethodNotAllowed(request.method, _allowed(page))
        if page.owner is not None and method == "GET":
            forwarded = await self._forward(page, view, request, params)
            if forwarded is not None:
                return forwarded
        if page.needs_ready and self.ready is not None and not self.ready.is_set():
            raise Unavailable(
                "not ready: this worker is still loading its state", retry_after=self.retry_after
            )
        result = handler(request, **params)
        if inspect.isawaitable(result):
            result = await result
        if not isinstance(result, Reply):
            return view.json(result)
        if result.body is None:
            return view.bytes(b"", status=result.status, headers=result.headers)
        return view.json(result.body, status=result.status, headers=result.headers)

    async def _forward(
        self, page: _Page, view: Any, request: Any, params: dict[str, str]
    ) -> Any | None:
        """The owner's answer, or None when this worker is the owner."""
        assert page.owner is not None
        key = params.get(page.key) or request.query.get(page.key)
        if not key:
            raise BadRequest(f"{page.key} is required", parameter=page.key)
        try:
            owner = page.owner(key)
        except KeyError:  # no assignment known yet
            raise Unavailable(_ASSIGNMENT_UNDER_WAY, retry_after=self.retry_after) from None
        here = self.app.conf.canonical_url
        if address(owner) == address(here):
            return None
        if FORWARDED_BY in request.headers:
            # The sender thinks we own the key, we think it is someone else's: one of us
            # has an outdated assignment, which the rebalance will settle.
            raise Unavailable(_ASSIGNMENT_UNDER_WAY, retry_after=self.retry_after)
        host, port = address(owner)
        target = request.url.with_host(host).with_port(port)
        timeout = aiohttp.ClientTimeout(total=self.forward_timeout)
        headers = {FORWARDED_BY: str(here)}
        if self.api_key is not None:
            headers[API_KEY] = self.api_key
        try:
            async with self.app.http_client.request(
                request.method,
                target,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
            ) as answer:
                body = await answer.read()
                return view.bytes(body, status=answer.status, headers=_kept(request, answer))
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("web: %s not answered by its owner %s: %r", request.path, owner, exc)
            raise Unavailable(
                "the worker that owns this key did not answer; retry",
                retry_after=self.retry_after,
            ) from None


def _kept(request: Any, answer: aiohttp.ClientResponse) -> dict[str, str]:
    """The owner's headers a forwarded answer keeps: a HEAD's body is empty, so its
    Content-Length is the owner's, not that of the empty body."""
    kept = {h: answer.headers[h] for h in _PASSED_HEADERS if h in answer.headers}
    if request.method == "HEAD" and "Content-Length" in answer.headers:
        kept["Content-Length"] = answer.headers["Content-Length"]
    return kept


def _allowed(page: _Page) -> list[str]:
    return [*page.handlers, *(["HEAD"] if "GET" in page.handlers else [])]


def _read(answer: Answer) -> Handler:
    """A page's ``answer(query, **params)`` as a handler of the request."""

    def handler(request: Any, **params: Any) -> Any:
        return answer(request.query, **params)

    return handler


def address(url: URL) -> tuple[str, int]:
    """A worker URL's host and port, as Faust's router compares them (a URL without
    scheme is "host:port" in its path)."""
    url = URL(str(url))
    return (url.host if url.scheme else url.path) or "", int(url.port or 80)
