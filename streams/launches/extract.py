"""Extract: the API's launches, fetched with limits and retried while failing transiently.

A request is retried on a timeout, a connection error, a 429 or a 5xx, and on an answer
cut short or not JSON (a proxy's error page, a dropped connection): waits double from
``LAUNCHES_BACKOFF_SECONDS`` up to ``LAUNCHES_BACKOFF_MAX_SECONDS``, the upper half
drawn at random so that many jobs do not retry in lockstep; a ``Retry-After`` (seconds
or an HTTP date) is waited out when it asks for longer, and one longer than
``LAUNCHES_RETRY_AFTER_MAX_SECONDS`` fails the run at once rather than hold a task for
it. Any other answer (404, 401, a redirect elsewhere than http(s), an answer over the
size limit, JSON that is no array, a local file that cannot be read) fails at once:
retrying cannot change it. The HTTP client and its three limits: transport.py.
"""

from __future__ import annotations

import http.client
import logging
import random
import time
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from streams.launches import transport
from streams.launches.payload import NotArray, NotJson, decode_array

log = logging.getLogger(__name__)


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
        ceiling = min(self.backoff * 2.0 ** min(failures - 1, 64), self.backoff_max)
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
        return decode_array(body)
    except NotJson as exc:
        raise _Transient(str(exc)) from exc
    except NotArray as exc:
        raise ExtractError(str(exc)) from exc


def _get(url: str, policy: Policy) -> bytes:
    try:
        return transport.get(
            url, policy.connect_timeout, policy.read_timeout, policy.attempt_timeout,
            policy.max_bytes,
        )  # fmt: skip
    except transport.Late as exc:
        raise _Transient(str(exc)) from exc
    except transport.TooLarge as exc:
        raise ExtractError(str(exc)) from exc
    except urllib.error.HTTPError as exc:
        with exc:
            status = exc.code
            if status == 429 or 500 <= status <= 599:
                raise _Transient(f"HTTP {status}", _retry_after(exc.headers)) from exc
            raise ExtractError(f"HTTP {status} from {url}") from exc
    except http.client.InvalidURL as exc:
        raise ExtractError(f"not a URL: {exc}") from exc
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        raise _failure(url, exc) from exc


def _failure(url: str, exc: BaseException) -> Exception:
    """What a failure to fetch means: retried, unless no retry can help."""
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if url.startswith("file:"):  # a local copy that cannot be read stays so
        return ExtractError(f"cannot fetch {url}: {reason}")
    if isinstance(exc, urllib.error.URLError) and not isinstance(reason, OSError):
        return ExtractError(f"cannot fetch {url}: {reason}")  # e.g. unknown url type
    if isinstance(reason, TimeoutError):
        return _Transient(f"timed out: {reason}")
    if isinstance(exc, urllib.error.URLError):
        return _Transient(f"cannot connect: {reason}")
    return _Transient(f"connection failed: {type(exc).__name__}: {exc}")


def _retry_after(
    headers: Any, now: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, (when - now()).total_seconds()) if when.tzinfo else None
