"""The HTTP send loop for telemetry: batched POSTs that keep order and honour backpressure.

Each device is pinned to one lane, a sender with one request in flight: a device's
readings leave in order, and a batch the ingest answers 429/503 is retried (after its
Retry-After) before anything later of that device is sent. The ingest accepts or
refuses a request whole, so malformed readings travel in batches of their own and
never take good readings down with them. Backpressure also halves the pace at which
readings are released; it creeps back up while batches are accepted.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import aiohttp
import orjson

from producers.send import Progress
from producers.telemetry import Emitted

DEFAULT_URL = "http://127.0.0.1:6070/telemetry"
ACCEPTED, BACKPRESSURE = frozenset({200, 201, 202}), frozenset({429, 503})
LINGER = 0.05  # pauses shorter than this are not worth sleeping for
MAX_LINGER = 0.5  # during a pause, a batch opened this long ago goes out partly filled


@dataclass(frozen=True)
class SendOptions:
    url: str = DEFAULT_URL
    batch: int = 500
    concurrency: int = 4
    api_key: str | None = None
    rate: float | None = None  # readings per second at most; None: no cap
    live: bool = False  # release each reading when its event time comes round
    count: int | None = None
    duration: float | None = None
    max_attempts: int = 8  # for connection errors and 5xx other than 503 (about 20 s)
    quiet: bool = False


@dataclass
class SendStats:
    sent: int = 0
    accepted: int = 0
    accepted_duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    backpressure: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    duplicates_sent: int = 0
    malformed_sent: int = 0
    slowdowns: int = 0
    lowest_rate: float | None = None
    seconds: float = 0.0
    last_error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            **self.__dict__,
            "rejected": dict(self.rejected),
            "backpressure": dict(self.backpressure),
            "accepted_per_second": round(self.accepted / max(self.seconds, 1e-9)),
        }

    def summary(self) -> str:
        rejected = ", ".join(f"{n:,} ({status})" for status, n in sorted(self.rejected.items()))
        lines = [
            f"accepted {self.accepted:,} readings in {self.seconds:.1f} s "
            f"({self.accepted / max(self.seconds, 1e-9):,.0f}/s), "
            f"rejected {rejected or 0}, {self.retries:,} retries, {self.slowdowns} slowdowns",
            f"sent {self.duplicates_sent:,} duplicates and {self.malformed_sent:,} malformed",
        ]
        if self.last_error:
            lines.append(f"last error: {self.last_error}")
        return "\n".join(lines)


class Batch(NamedTuple):
    items: list[Emitted]
    body: bytes
    duplicates: int
    malformed: int


def make_batch(items: list[Emitted]) -> Batch:
    return Batch(
        items,
        orjson.dumps([item.reading for item in items]),
        sum(item.kind == "duplicate" for item in items),
        sum(item.kind == "malformed" for item in items),
    )


class Batcher:
    """Groups readings into request bodies per lane, malformed ones apart from the rest."""

    def __init__(self, size: int, lanes: int) -> None:
        self.size, self.lanes = size, lanes
        self._lane_of: dict[str, int] = {}
        self._open: dict[tuple[int, bool], list[Emitted]] = {}
        self._opened: dict[tuple[int, bool], float] = {}

    def lane(self, device_id: str) -> int:
        """Devices get lanes round-robin as they appear, which balances them exactly."""
        lane = self._lane_of.get(device_id)
        if lane is None:
            lane = self._lane_of[device_id] = len(self._lane_of) % self.lanes
        return lane

    def add(self, item: Emitted, now: float = 0.0) -> tuple[int, Batch] | None:
        """Adds ``item``; returns a full batch and its lane when this one filled it."""
        key = self.lane(item.device_id), item.kind == "malformed"
        items = self._open.get(key)
        if items is None:
            items = self._open[key] = []
            self._opened[key] = now
        items.append(item)
        if len(items) < self.size:
            return None
        del self._open[key], self._opened[key]
        return key[0], make_batch(items)

    def flush(self, opened_before: float = math.inf) -> list[tuple[int, Batch]]:
        """The open batches (those opened before ``opened_before``), partly filled."""
        keys = [key for key, opened in self._opened.items() if opened <= opened_before]
        ready = [(key[0], make_batch(self._open.pop(key))) for key in keys]
        for key in keys:
            del self._opened[key]
        return ready


class Pace:
    """Release times for readings: at most ``cap`` a second, halved on backpressure (once
    a second at most) and regained by a quarter a second while batches are accepted."""

    def __init__(self, cap: float | None, now: float) -> None:
        self.cap = self.limit = cap
        self.slowdowns, self.lowest = 0, cap
        self._next = self._mark = self._last_change = now
        self._released = self._marked = 0
        self._recent: float | None = None
        self._ceiling = math.inf

    def take(self, now: float) -> float:
        """When the next reading may go (the schedule advances by one reading)."""
        self._released += 1
        if now - self._mark >= 1.0:
            self._recent = (self._released - self._marked) / (now - self._mark)
            self._mark, self._marked = now, self._released
        if self.limit is None:
            return now
        due = self._next = max(self._next, now - LINGER) + 1 / self.limit
        return due

    def backoff(self, now: float, started: float) -> None:
        if self.slowdowns and now - self._last_change < 1.0:
            return
        observed = self._recent or self._released / max(now - started, 1e-3)
        base = min(self.limit, observed) if self.limit is not None else observed
        self.limit = max(base / 2, 1.0)
        self._ceiling = 2 * observed
        self.lowest = min(self.lowest or math.inf, self.limit)
        self.slowdowns += 1
        self._last_change = now

    def recover(self, now: float) -> None:
        if self.limit is None or self.limit == self.cap:
            return
        self.limit *= 1.25 ** min(now - self._last_change, 5.0)
        self._last_change = now
        if self.cap is not None and self.limit >= self.cap:
            self.limit = self.cap
        elif self.cap is None and self.limit >= self._ceiling:
            self.limit = None


class IngestUnreachable(RuntimeError):
    """Requests kept failing without an HTTP answer (refused, reset, timed out)."""


class Sender:
    """Sends readings with ``options``; ``stats`` stays readable if the run is cancelled."""

    def __init__(self, options: SendOptions) -> None:
        self.options = options
        self.stats = SendStats()
        self._started = time.monotonic()
        self._pace = Pace(options.rate, self._started)
        self._batcher = Batcher(options.batch, options.concurrency)
        self._queues: list[asyncio.Queue[Batch | None]] = [
            asyncio.Queue(maxsize=2) for _ in range(options.concurrency)
        ]
        self._progress = Progress("telemetry", options.count)
        self._stopping = False
        self._headers = {"Content-Type": "application/json"}
        if options.api_key:
            self._headers["X-API-Key"] = options.api_key

    def stop(self) -> None:
        """Take no more readings; what was taken is still sent, without further retries."""
        self._stopping = True

    async def run(self, items: Iterable[Emitted]) -> SendStats:
        self._started = time.monotonic()
        connector = aiohttp.TCPConnector(limit=self.options.concurrency)
        timeout = aiohttp.ClientTimeout(total=60)
        try:
            async with (
                aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
                asyncio.TaskGroup() as group,
            ):
                for queue in self._queues:
                    group.create_task(self._lane(session, queue))
                group.create_task(self._dispatch(items))
        finally:
            self.stats.seconds = time.monotonic() - self._started
            self.stats.slowdowns, self.stats.lowest_rate = self._pace.slowdowns, self._pace.lowest
            if not self.options.quiet:
                self._progress.add(0, final=True)
        return self.stats

    async def _dispatch(self, items: Iterable[Emitted]) -> None:
        options, pace = self.options, self._pace
        deadline = self._started + options.duration if options.duration else math.inf
        first_ms: int | None = None
        for number, item in enumerate(items):
            now = time.monotonic()
            if (
                (options.count is not None and number >= options.count)
                or now >= deadline
                or self._stopping
            ):
                break
            due = pace.take(now)
            if options.live:
                first_ms = item.ts_ms if first_ms is None else first_ms
                due = max(due, self._started + (item.ts_ms - first_ms) / 1000)
            if due - now > LINGER:
                if due >= deadline:
                    break
                for lane, batch in self._batcher.flush(opened_before=due - MAX_LINGER):
                    await self._queues[lane].put(batch)
                await asyncio.sleep(due - now)
                now = due
            ready = self._batcher.add(item, now)
            if ready:
                await self._queues[ready[0]].put(ready[1])
        for lane, batch in self._batcher.flush():
            await self._queues[lane].put(batch)
        for queue in self._queues:
            await queue.put(None)

    async def _lane(
        self, session: aiohttp.ClientSession, queue: asyncio.Queue[Batch | None]
    ) -> None:
        while (batch := await queue.get()) is not None:
            stats = self.stats
            stats.sent += len(batch.items)
            stats.duplicates_sent += batch.duplicates
            stats.malformed_sent += batch.malformed
            status = await self._post(session, batch)
            if status in ACCEPTED:
                stats.accepted += len(batch.items)
                stats.accepted_duplicates += batch.duplicates
            else:
                stats.rejected[str(status or "error")] += len(batch.items)
            if not self.options.quiet:
                self._progress.add(len(batch.items))

    async def _post(self, session: aiohttp.ClientSession, batch: Batch) -> int | None:
        """The final status of one batch, retried as long as the ingest asks us to wait."""
        failures = 0
        while True:
            status, wait = await self._request(session, batch.body)
            self.stats.requests += 1
            if status in ACCEPTED:
                self._pace.recover(time.monotonic())
                return status
            if status in BACKPRESSURE:
                self.stats.backpressure[str(status)] += 1
                self._pace.backoff(time.monotonic(), self._started)
            elif status is None or status >= 500:
                failures += 1
                if failures >= self.options.max_attempts:
                    if status is None:  # every later batch would fail the same way
                        raise IngestUnreachable(self.stats.last_error or "no answer")
                    return status
                wait = min(0.5 * 2 ** (failures - 1), 5.0)
            else:
                return status
            if self._stopping:
                return status  # asked to stop: no more waiting on an ingest that refuses
            self.stats.retries += 1
            await asyncio.sleep(wait)

    async def _request(
        self, session: aiohttp.ClientSession, body: bytes
    ) -> tuple[int | None, float]:
        try:
            async with session.post(self.options.url, data=body, headers=self._headers) as resp:
                await resp.read()
                return resp.status, retry_after(resp.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.stats.last_error = f"{type(exc).__name__}: {exc}"
            return None, 1.0


def retry_after(header: str | None) -> float:
    """Seconds to wait from a Retry-After header (integer seconds); 1 when absent or odd."""
    try:
        return float(min(max(int(header or "1"), 0), 60))
    except ValueError:
        return 1.0


def print_summary(stats: SendStats) -> None:
    sys.stderr.write(f"telemetry: {stats.summary()}\n")
