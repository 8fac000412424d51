"""One HTTP GET with three limits: to connect, between two reads, and for the whole
answer (status line and headers included), so no server can hold a run however slowly
it trickles. The standard library's client: the batch job starts in a fraction of a
second and its image carries nothing it does not use.

urllib has one timeout for connecting and reading; a connection here connects within
the connect timeout, then waits for each read at most the read timeout, and a timer
shuts its socket down when the whole answer is late. Only http(s):// and file:// are
opened (a redirect elsewhere is refused).
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

CHUNK = 256 * 1024


class TooLarge(Exception):
    """The answer is over the size limit."""


class Late(Exception):
    """The whole answer took longer than its limit (its socket was shut down)."""


@dataclass
class Deadline:
    """Shuts down every socket it watches once ``at`` (monotonic) has passed."""

    at: float
    expired: bool = False
    timers: list[threading.Timer] = field(default_factory=list)

    def watch(self, sock: socket.socket) -> None:
        timer = threading.Timer(max(self.at - time.monotonic(), 0.0), self._expire, [sock])
        timer.daemon = True
        timer.start()
        self.timers.append(timer)

    def _expire(self, sock: socket.socket) -> None:
        self.expired = True
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        for timer in self.timers:
            timer.cancel()


def get(url: str, connect: float, read: float, whole: float, max_bytes: int) -> bytes:
    """The body at ``url``; raises Late, TooLarge, or what urllib and http.client raise
    (HTTPError for a status other than 2xx)."""
    deadline = Deadline(time.monotonic() + whole)
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with _opener(read, deadline).open(request, timeout=connect) as answer:
            body = _read(answer, max_bytes)
    except Exception as exc:
        if deadline.expired:
            raise Late(f"the answer took over {whole:g} s") from exc
        raise
    finally:
        deadline.cancel()
    if deadline.expired:  # the socket shut down looks like the end of a body
        raise Late(f"the answer took over {whole:g} s")
    return body


def _read(answer: Any, max_bytes: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := answer.read(CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise TooLarge(f"the answer is over {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _opener(read: float, deadline: Deadline) -> urllib.request.OpenerDirector:
    def ready(connection: http.client.HTTPConnection) -> None:
        connection.sock.settimeout(read)
        deadline.watch(connection.sock)

    class Plain(http.client.HTTPConnection):
        def connect(self) -> None:
            super().connect()
            ready(self)

    class Secure(http.client.HTTPSConnection):
        def connect(self) -> None:
            super().connect()
            ready(self)

    class PlainHandler(urllib.request.HTTPHandler):
        def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(Plain, req)

    class SecureHandler(urllib.request.HTTPSHandler):
        def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(Secure, req, context=self._context)  # type: ignore[attr-defined]

    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),  # HTTP(S)_PROXY and NO_PROXY, as every client
        urllib.request.UnknownHandler(),  # ftp://, data://...: "unknown url type"
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPRedirectHandler(),
        urllib.request.HTTPErrorProcessor(),
        urllib.request.FileHandler(),
        PlainHandler(),
        SecureHandler(),
    ):
        opener.add_handler(handler)
    return opener
