"""The clients of the time-series bench (bench/timeseries.py): the data they send,
the mixed open-loop client and the appends client, each run in a process of its own.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson

POINTS = 10_000
STEP_S = 900  # 15 minutes: 10,000 points are ~104 days
SEASON = 96  # a daily season at that step
#: kind -> share of the mixed traffic.
MIX = {
    "read_rows": 0.25,
    "read_columns": 0.25,
    "metrics": 0.20,
    "append": 0.20,
    "forecast": 0.10,
}
READ_POINTS = 672  # a week at 15 minutes
APPEND_POINTS = (10, 100)
HORIZON = (24, 96)
READS = ("read_rows", "read_columns", "metrics", "forecast")
THROUGHPUT_SERIES = 8
JSON = {"Content-Type": "application/json"}


# -- the data ---------------------------------------------------------------------------


def values(series: int, first: int, count: int) -> list[float]:
    """A level, a slow trend, a daily season and noise: something a forecast can fit."""
    index = np.arange(first, first + count, dtype=np.int64)
    noise = (index * 2_654_435_761 + series * 40_503) % 1_000 / 100 - 5  # uniform, ±5
    season = 20 * np.sin(2 * np.pi * index / SEASON)
    out: list[float] = np.round(100 + 10 * series + 0.002 * index + season + noise, 3).tolist()
    return out


def points(series: int, first: int, count: int, t0: int, step: int = STEP_S) -> list[Any]:
    times = range(t0 + first * step, t0 + (first + count) * step, step)
    return [{"ts": t, "value": v} for t, v in zip(times, values(series, first, count), strict=True)]


def percentiles(times: Sequence[float]) -> dict[str, Any]:
    """Nearest-rank p50/p90/p99 and max of ``times`` (ms)."""
    ordered = sorted(times)
    if not ordered:
        return {"count": 0, "p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None}

    def rank(p: float) -> float:
        return ordered[max(math.ceil(len(ordered) * p) - 1, 0)]

    return {
        "count": len(ordered),
        "p50_ms": rank(0.50),
        "p90_ms": rank(0.90),
        "p99_ms": rank(0.99),
        "max_ms": ordered[-1],
    }


# -- (a) the mixed, open-loop client ----------------------------------------------------


def plan(
    urls: list[str], ids: list[str], t0: int, total: int, seed: int = 11
) -> list[tuple[str, str, str, bytes | None]]:
    """``total`` requests (kind, method, url, body), in the order they are scheduled."""
    rng = random.Random(seed)
    kinds, weights = list(MIX), list(MIX.values())
    following = dict.fromkeys(range(len(ids)), POINTS)
    out: list[tuple[str, str, str, bytes | None]] = []
    for n in range(total):
        kind = rng.choices(kinds, weights)[0]
        series = rng.randrange(len(ids))
        base = f"{urls[n % len(urls)]}/series/{ids[series]}"
        if kind.startswith("read"):
            first = rng.randrange(POINTS - READ_POINTS)
            start, end = t0 + first * STEP_S, t0 + (first + READ_POINTS) * STEP_S
            form = kind.removeprefix("read_")
            out.append((kind, "GET", f"{base}?start={start}&end={end}&format={form}", None))
        elif kind == "metrics":
            out.append((kind, "GET", f"{base}/metrics", None))
        elif kind == "forecast":
            out.append((kind, "GET", f"{base}/forecast?horizon={rng.randint(*HORIZON)}", None))
        else:
            count = rng.randint(*APPEND_POINTS)
            body = orjson.dumps({"points": points(series, following[series], count, t0)})
            following[series] += count
            out.append((kind, "POST", f"{base}/points", body))
    return out


async def _mixed(
    urls: list[str], ids: list[str], t0: int, rate: float, seconds: float, warmup: float
) -> dict[str, Any]:
    import aiohttp

    total = int((seconds + warmup) * rate)
    requests = plan(urls, ids, t0, total)
    skipped = int(warmup * rate)
    latency: dict[str, list[float]] = {kind: [] for kind in MIX}
    statuses: dict[str, dict[str, int]] = {kind: {} for kind in MIX}
    lateness: list[float] = []  # ms from the scheduled time to the request's task running
    timeline: dict[int, list[float]] = {}  # 5 s bucket -> latencies
    finished: list[float] = []

    async def one(n: int, scheduled: float, session: aiohttp.ClientSession) -> None:
        kind, method, url, body = requests[n]
        started = time.perf_counter()
        try:
            async with session.request(method, url, data=body, headers=JSON) as response:
                await response.read()
            status = str(response.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            status = type(exc).__name__
        done = time.perf_counter()
        if n < skipped:
            return
        took = (done - scheduled) * 1000
        latency[kind].append(took)
        lateness.append((started - scheduled) * 1000)
        statuses[kind][status] = statuses[kind].get(status, 0) + 1
        timeline.setdefault(int((n - skipped) / rate) // 5, []).append(took)
        finished.append(done)

    connector = aiohttp.TCPConnector(limit=1024)
    timeout = aiohttp.ClientTimeout(total=30)
    cpu = time.process_time()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        began = time.perf_counter() + 0.1
        tasks = []
        for n in range(total):
            scheduled = began + n / rate
            await asyncio.sleep(max(scheduled - time.perf_counter(), 0))
            tasks.append(asyncio.create_task(one(n, scheduled, session)))
        await asyncio.gather(*tasks)
    measured_from = began + skipped / rate
    window = max(finished) - measured_from if finished else float("nan")
    kinds: dict[str, Any] = {}
    for kind in MIX:
        errors = sum(c for s, c in statuses[kind].items() if not s.startswith("2"))
        kinds[kind] = {**percentiles(latency[kind]), "errors": errors, "statuses": statuses[kind]}
    reads = [t for kind in READS for t in latency[kind]]
    done_ok = sum(c for kind in MIX for s, c in statuses[kind].items() if s.startswith("2"))
    return {
        "rate": rate,
        "seconds": seconds,
        "warmup_s": warmup,
        "sent": total - skipped,
        "reads_sent_with_warmup": sum(1 for r in requests if r[0] in READS),
        "achieved_per_s": (total - skipped) / window,
        "ok_per_s": done_ok / window,
        "errors": sum(k["errors"] for k in kinds.values()),
        "kinds": kinds,
        "reads": percentiles(reads),
        "writes": percentiles(latency["append"]),
        "client_lateness": percentiles(lateness),
        "p99_ms_per_5s": [percentiles(timeline[b])["p99_ms"] for b in sorted(timeline)],
        "client_cpu_s": time.process_time() - cpu,
    }


def mixed_client(
    urls: list[str], ids: list[str], t0: int, rate: float, seconds: float, warmup: float
) -> dict[str, Any]:
    import uvloop

    return uvloop.run(_mixed(urls, ids, t0, rate, seconds, warmup))


# -- (b) the appends client -------------------------------------------------------------


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _appends(
    urls: list[str],
    ids: list[str],
    t0: int,
    variant: tuple[int, bool, int],
    seconds: float,
    warmup: float,
) -> dict[str, Any]:
    import aiohttp

    batch, iso, connections = variant
    following = dict.fromkeys(ids, 0)  # shared: connections may append to one series
    statuses: dict[str, int] = {}
    took: list[float] = []
    counted = 0
    requests = 0
    start = time.monotonic() + warmup
    stop = start + seconds
    last = start

    def body(series: str) -> bytes:
        first = following[series]
        following[series] += batch
        number = ids.index(series)
        if iso:
            rows = [
                {"ts": _iso(t0 + first + i), "value": v}
                for i, v in enumerate(values(number, first, batch))
            ]
        else:
            rows = points(number, first, batch, t0, step=1)
        return orjson.dumps({"points": rows})

    async def connection(index: int, session: aiohttp.ClientSession) -> None:
        nonlocal counted, requests, last
        k = 0
        while time.monotonic() < stop:
            series = ids[(index + k * connections) % len(ids)]
            url = f"{urls[(index + k) % len(urls)]}/series/{series}/points"
            data = body(series)
            k += 1
            sent = time.monotonic()
            try:
                async with session.post(url, data=data, headers=JSON) as response:
                    await response.read()
                status = str(response.status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                status = type(exc).__name__
            if sent < start:
                continue
            last = max(last, time.monotonic())
            requests += 1
            statuses[status] = statuses.get(status, 0) + 1
            took.append((time.monotonic() - sent) * 1000)
            if status == "200":
                counted += batch

    cpu = time.process_time()
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(connection(i, session) for i in range(connections)))
    elapsed = last - start
    return {
        "batch": batch,
        "times": "iso" if iso else "unix_seconds",
        "connections": connections,
        "series": len(ids),
        "seconds": elapsed,
        "points_per_s": counted / elapsed,
        "requests_per_s": requests / elapsed,
        "points_acknowledged": counted,
        "statuses": statuses,
        "errors": sum(c for s, c in statuses.items() if s != "200"),
        "latency": percentiles(took),
        "client_cpu_s": time.process_time() - cpu,
    }


def appends_client(
    urls: list[str],
    ids: list[str],
    t0: int,
    variant: tuple[int, bool, int],
    seconds: float,
    warmup: float,
) -> dict[str, Any]:
    import uvloop

    return uvloop.run(_appends(urls, ids, t0, variant, seconds, warmup))
