"""Extract: the API's launches, fetched with timeouts and retried while failing transiently.

The standard library's HTTP client, not aiohttp: the batch job starts in a fraction of a
second and its image carries nothing it does not use. A request is retried on a
timeout, a connection error, a 429 or a 5xx, and on an answer that is cut short or is
not JSON (a proxy's error page, a dropped connection): waits double from
``LAUNCHES_BACKOFF_SECONDS`` up to ``LAUNCHES_BACKOFF_MAX_SECONDS``, the upper half
drawn at random so that many jobs do not retry in lockstep; a ``Retry-After`` (seconds
or an HTTP date) is waited out when it asks for longer, and one longer than
``LAUNCHES_RETRY_AFTER_MAX_SECONDS`` fails the run at once rather than hold a task for
it. Any other answer (404, 401, ...) fails at once: retrying cannot change it.
"""

from __future__ import annotations

import functools
import http.client
import json
import logging
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

log = logging.getLogger(__name__)

CHUNK = 256 * 1024


class ExtractError(RuntimeError):
    """The launches could not be extracted; the message is the one-line reason."""


class _Transient(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Policy:
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    attempt_timeout: float = 120.0
    attempts: int = 5
    backoff: float = 0.5
    backoff_max: float = 20.0
    retry_after_max: float = 120.0
    max_bytes: int = 64 * 1024 * 1024

    def delay(self, failures: int, draw: Callable[[], float] = random.random) -> float:
        ceiling = min(self.backoff * 2.0 ** (failures - 1), self.backoff_max)
        return ceiling / 2 + draw() * ceiling / 2


def fetch_records(
    url: str, policy: Policy, sleep: Callable[[float], None] = time.sleep
) -> list[Any]:
    """The JSON array at ``url``, decoded; ExtractError once retrying is over or useless."""
    for attempt in range(1, policy.attempts + 1):
        try:
            return _decoded(_get(url, policy))
        except _Transient as failure:
            if attempt == policy.attempts:
                raise ExtractError(f"{failure} (after {attempt} attempts)") from failure
            wait = policy.delay(attempt)
            if failure.retry_after is not None:
                if failure.retry_after > policy.retry_after_max:
                    raise ExtractError(
                        f"{failure}: asked to retry after {failure.retry_after:.0f} s, "
                        f"more than LAUNCHES_RETRY_AFTER_MAX_SECONDS"
                    ) from failure
                wait = max(wait, failure.retry_after)
            log.warning(
                "attempt %d of %d: %s; retrying in %.2f s", attempt, policy.attempts, failure, wait
            )
            sleep(wait)
    raise AssertionError("unreachable")


def _decoded(body: bytes) -> list[Any]:
    try:
        records = json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise _Transient(f"the answer is not JSON: {str(exc)[:120]}") from exc
    if not isinstance(records, list):
        raise ExtractError(f"the answer is a JSON {type(records).__name__}, not an array")
    return records


def _get(url: str, policy: Policy) -> bytes:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    opener = _opener(policy.read_timeout)
    started = time.monotonic()
    try:
        with opener.open(request, timeout=policy.connect_timeout) as answer:
            return _read(answer, policy, started)
    except urllib.error.HTTPError as exc:
        with exc:
            status = exc.code
            if status == 429 or status >= 500:
                raise _Transient(f"HTTP {status}", _retry_after(exc.headers)) from exc
            raise ExtractError(f"HTTP {status} from {url}") from exc
    except TimeoutError as exc:
        raise _Transient(f"timed out: {exc}") from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, FileNotFoundError):  # a file:// URL: no retry helps
            raise ExtractError(f"cannot fetch {url}: {exc.reason}") from exc
        if isinstance(exc.reason, OSError):
            raise _Transient(f"cannot connect: {exc.reason}") from exc
        raise ExtractError(f"cannot fetch {url}: {exc.reason}") from exc
    except (http.client.HTTPException, OSError) as exc:  # reset, TLS, cut short
        raise _Transient(f"connection failed: {type(exc).__name__}: {exc}") from exc


def _read(answer: Any, policy: Policy, started: float) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := answer.read(CHUNK):
        size += len(chunk)
        if size > policy.max_bytes:
            raise ExtractError(f"the answer is over {policy.max_bytes} bytes")
        if time.monotonic() - started > policy.attempt_timeout:
            raise _Transient(f"the answer took over {policy.attempt_timeout:g} s")
        chunks.append(chunk)
    return b"".join(chunks)


def _retry_after(
    headers: Any, now: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - now()).total_seconds()) if when.tzinfo else None


@functools.cache
def _opener(read_timeout: float) -> urllib.request.OpenerDirector:
    """urllib with the connect timeout (``urlopen``'s) apart from the read timeout.

    urllib has one timeout for both; a connection here connects with the request's and
    then waits for each read at most ``read_timeout``.
    """

    class Plain(http.client.HTTPConnection):
        def connect(self) -> None:
            super().connect()
            self.sock.settimeout(read_timeout)

    class Secure(http.client.HTTPSConnection):
        def connect(self) -> None:
            super().connect()
            self.sock.settimeout(read_timeout)

    class PlainHandler(urllib.request.HTTPHandler):
        def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(Plain, req)

    class SecureHandler(urllib.request.HTTPSHandler):
        def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(Secure, req, context=self._context)  # type: ignore[attr-defined]

    return urllib.request.build_opener(PlainHandler, SecureHandler)
