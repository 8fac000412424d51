"""Time-series workers and an HTTP client for the integration tests and the bench:
nothing here imports the API's code."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tests.support.workers import Processes, Worker, wait_until


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    headers: Mapping[str, str]


def call(
    url: str,
    method: str = "GET",
    body: Any = None,
    *,
    headers: Mapping[str, str] | None = None,
    raw: bytes | None = None,
    timeout: float = 30.0,
) -> Answer:
    """One request; ``body`` is sent as JSON (``raw``: bytes as they are)."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    sent = {"Content-Type": "application/json"} if data is not None else {}
    request = urllib.request.Request(
        url, data=data, method=method, headers={**sent, **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            content = response.read()
            return Answer(
                response.status, json.loads(content) if content else None, response.headers
            )
    except urllib.error.HTTPError as exc:
        content = exc.read()
        try:
            parsed = json.loads(content) if content else None
        except ValueError:
            parsed = content
        return Answer(exc.code, parsed, dict(exc.headers))


@dataclass
class TimeSeriesWorkers(Processes):
    """``python -m streams.timeseries worker`` processes for one test."""

    module: str = "streams.timeseries"


def serving(
    worker: Worker,
    *,
    timeout: float = 90.0,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Wait until ``worker`` answers ``GET /series``: every partition assigned and loaded."""

    def probe() -> bool:
        return call(worker.url + "/series", headers=headers).status == 200

    wait_until(probe, timeout=timeout, what=f"{worker.url}/series to answer 200")
