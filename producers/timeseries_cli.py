"""``python -m producers timeseries``: a client of the time-series API for the demo.

Creates a series (a week of a room's temperature every 15 minutes, with its daily
cycle) once, with an ``Idempotency-Key`` so a restarted client finds the same series,
then appends a reading every ``--interval-seconds`` of wall clock. A refused or failed
request is printed and retried on the next tick; the client never stops on one.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import sys
import time
from typing import Any

import aiohttp

DAY = 86_400.0
STEP = 900  # seconds between the history's points
KEY = "demo-room-temperature"


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("timeseries", help="create a demo series and append to it")
    parser.add_argument("--url", default="http://127.0.0.1:6090", help="any time-series worker")
    parser.add_argument("--interval-seconds", type=float, default=5.0)
    parser.add_argument("--api-key", help="X-API-Key, when the workers have one")
    parser.add_argument("--seed", type=int, default=7)


def temperature(ts: float, rng: random.Random) -> float:
    """20 degrees, 3 up in the afternoon, 3 down at night, a little noise."""
    return round(
        20 + 3 * math.sin(2 * math.pi * (ts % DAY - 9 * 3600) / DAY) + rng.gauss(0, 0.3), 2
    )


async def run(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    headers = {} if args.api_key is None else {"X-API-Key": args.api_key}
    now = int(time.time()) // STEP * STEP
    history = [
        {"ts": ts, "value": temperature(ts, rng)} for ts in range(now - 7 * 86_400, now, STEP)
    ]
    async with aiohttp.ClientSession(headers=headers) as session:
        series_id = None
        while series_id is None:
            series_id = await _create(session, args.url, history)
            if series_id is None:
                await asyncio.sleep(1.0)
        print(f"timeseries: series {args.url}/series/{series_id}", file=sys.stderr)
        while True:
            await asyncio.sleep(args.interval_seconds)
            point = {"ts": round(time.time(), 3), "value": temperature(time.time(), rng)}
            await _post(session, f"{args.url}/series/{series_id}/points", {"points": [point]})


async def _create(
    session: aiohttp.ClientSession, url: str, history: list[dict[str, Any]]
) -> str | None:
    body = {"name": "demo: room temperature", "points": history}
    answer = await _post(session, f"{url}/series", body, {"Idempotency-Key": KEY})
    return None if answer is None else str(answer["id"])


async def _post(
    session: aiohttp.ClientSession, url: str, body: Any, headers: dict[str, str] | None = None
) -> Any:
    try:
        async with session.post(
            url, json=body, headers=headers, timeout=aiohttp.ClientTimeout(total=30)
        ) as response:
            answer = await response.json(content_type=None)
            if response.status < 300:
                return answer
            print(f"timeseries: {url} answered {response.status}: {answer}", file=sys.stderr)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        print(f"timeseries: {url}: {exc!r}", file=sys.stderr)
    return None
