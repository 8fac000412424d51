"""The telemetry ingest service's speed: one ingest process on a fresh embedded broker.

(a) throughput: several concurrent clients POST batches (1,000 readings from 100
    devices) as fast as they are answered; readings accepted per second.
(b) latency: requests of 100 (then 1,000) readings sent open-loop (on a fixed schedule,
    not waiting for answers) at 10,000 readings/s; p50/p99/max from send to answer.

The clients run in a separate process (aiohttp), so they do not share the ingest's
CPU; on a 2-core machine they still share the machine with the broker and the ingest.
No workers run, so the lag gate is set out of the way (max_lag_records huge).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import orjson

from bench.machine import cpu_seconds
from streams.common.broker import EmbeddedBroker, free_port, stop_process, wait_for_port

log = logging.getLogger("bench")

URL_PATH = "/telemetry"
THROUGHPUT = {"readings_per_request": 1000, "devices_per_request": 100, "clients": 8}
LATENCY = [
    {"readings_per_s": 10_000, "readings_per_request": 100, "devices_per_request": 10},
    {"readings_per_s": 10_000, "readings_per_request": 1000, "devices_per_request": 100},
]


def bodies(count: int, readings: int, devices: int, seed: int = 0) -> list[bytes]:
    """``count`` distinct JSON array bodies, ``readings`` readings each, ``devices``
    devices each (readings interleaved by device, as a collector would send a sweep)."""
    now_ms = int(time.time() * 1000)
    out = []
    for n in range(count):
        first = (seed + n) * devices % 10_000
        out.append(
            orjson.dumps(
                [
                    {
                        "device_id": f"dev-{(first + i % devices) % 10_000:05d}",
                        "interface": f"eth{i // devices % 4}",
                        "metric": "rx_bytes" if i // devices % 2 else "cpu",
                        "value": (n * readings + i) % 1000 / 7,
                        "ts": datetime.fromtimestamp((now_ms - 60_000 + i) / 1000, UTC).isoformat(),
                        "seq": n * readings + i,
                    }
                    for i in range(readings)
                ]
            )
        )
    return out


async def _throughput(url: str, seconds: float, warmup: float) -> dict[str, Any]:
    import aiohttp

    spec = THROUGHPUT
    pool = bodies(64, spec["readings_per_request"], spec["devices_per_request"])
    statuses: dict[int, int] = {}
    counted = 0
    start = time.monotonic() + warmup
    stop = start + seconds

    async def client(index: int, session: aiohttp.ClientSession) -> None:
        nonlocal counted
        n = index
        while time.monotonic() < stop:
            body = pool[n % len(pool)]
            n += spec["clients"]
            sent = time.monotonic()
            async with session.post(url, data=body, headers=JSON) as response:
                answer = await response.read()
            if sent >= start:
                statuses[response.status] = statuses.get(response.status, 0) + 1
                if response.status == 202:
                    counted += orjson.loads(answer)["accepted"]

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(client(i, session) for i in range(spec["clients"])))
    elapsed = time.monotonic() - start
    return {"readings_per_s": counted / elapsed, "statuses": statuses, "seconds": elapsed, **spec}


async def _latency(url: str, seconds: float, warmup: float, spec: dict[str, int]) -> dict[str, Any]:
    import aiohttp

    rate = spec["readings_per_s"] / spec["readings_per_request"]  # requests/s
    total = int((seconds + warmup) * rate)
    pool = bodies(200, spec["readings_per_request"], spec["devices_per_request"], seed=7)
    times: list[float] = []
    statuses: dict[int, int] = {}

    async def one(n: int, session: aiohttp.ClientSession) -> None:
        sent = time.perf_counter()
        async with session.post(url, data=pool[n % len(pool)], headers=JSON) as response:
            await response.read()
        if n >= warmup * rate:
            times.append((time.perf_counter() - sent) * 1000)
            statuses[response.status] = statuses.get(response.status, 0) + 1

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        began = time.perf_counter()
        tasks = []
        for n in range(total):
            await asyncio.sleep(max(began + n / rate - time.perf_counter(), 0))
            tasks.append(asyncio.create_task(one(n, session)))
        await asyncio.gather(*tasks)
    times.sort()
    return {
        "requests": len(times),
        "p50_ms": statistics.median(times),
        "p99_ms": times[max(math.ceil(len(times) * 0.99) - 1, 0)],  # nearest rank
        "max_ms": times[-1],
        "statuses": statuses,
        **spec,
    }


JSON = {"Content-Type": "application/json"}


def client(url: str, seconds: float, warmup: float, spec: dict[str, int] | None) -> dict[str, Any]:
    """Runs in the client process: throughput without ``spec``, else latency."""
    import uvloop

    if spec is None:
        return uvloop.run(_throughput(url, seconds, warmup))
    return uvloop.run(_latency(url, seconds, warmup, spec))


def start_ingest(bootstrap: str, workdir: Path, env: dict[str, str]) -> tuple[Any, int]:
    port = free_port()
    full_env = {
        **os.environ,
        "KAFKA_BOOTSTRAP": bootstrap,
        "KAFKA_CORRECT_END_OFFSETS": "true",  # the embedded broker's ListOffsets defect
        "STREAMS_DATA_DIR": str(workdir / "data"),
        "WEB_PORT": str(port),
        "TELEMETRY_INGEST_MAX_LAG_RECORDS": str(10**12),
        **env,
    }
    with (workdir / "ingest.log").open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streams.telemetry", "ingest", "-l", "info"],
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port("127.0.0.1", port, timeout=60)
    except TimeoutError:
        stop_process(proc)
        raise
    return proc, port


def run(
    seconds: float = 15.0, warmup: float = 3.0, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Both measurements on one fresh broker and ingest process; a dict of figures."""
    with (
        tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp,
        ProcessPoolExecutor(1, mp_context=get_context("spawn")) as clients,
    ):
        workdir = Path(tmp)
        broker = EmbeddedBroker(log_path=workdir / "broker.log").start()
        proc = None
        try:
            proc, port = start_ingest(broker.bootstrap, workdir, env or {})
            url = f"http://127.0.0.1:{port}{URL_PATH}"
            out: dict[str, Any] = {}
            kinds = [("throughput", None)] + [
                (f"latency_{spec['readings_per_request']}", spec) for spec in LATENCY
            ]
            for kind, spec in kinds:
                cpu = cpu_seconds(proc.pid), cpu_seconds(broker.pid), time.monotonic()
                out[kind] = clients.submit(client, url, seconds, warmup, spec).result()
                wall = time.monotonic() - cpu[2]
                for name, pid, before in (
                    ("ingest", proc.pid, cpu[0]),
                    ("broker", broker.pid, cpu[1]),
                ):
                    after = cpu_seconds(pid)
                    share = None if before is None or after is None else (after - before) / wall
                    out[kind][f"{name}_cpu"] = share
                log.info("ingest %s: %s", kind, out[kind])
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as m:
                text = m.read().decode()
            out["readings_counted"] = _metric(text, "streams_telemetry_ingest_readings_total")
            return out
        finally:
            if proc is not None:
                stop_process(proc)
            broker.stop()


def _metric(text: str, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and line[len(name) : len(name) + 1] in (" ", "{")
    )


def markdown(results: dict[str, Any]) -> str:
    t = results["throughput"]

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.0f}%"

    lines = [
        "| ingest (one process, embedded broker) | figure | ingest CPU | broker CPU |",
        "|---|--:|--:|--:|",
        f"| (a) readings/s, {t['readings_per_request']:,} readings per request, "
        f"{t['clients']} concurrent clients | {t['readings_per_s']:,.0f} | "
        f"{pct(t['ingest_cpu'])} | {pct(t['broker_cpu'])} |",
    ]
    for spec in LATENCY:
        lat = results[f"latency_{spec['readings_per_request']}"]
        lines.append(
            f"| (b) p50 / p99 / max ms at {lat['readings_per_s']:,} readings/s, "
            f"{lat['readings_per_request']:,} per request ({lat['requests']:,} requests) | "
            f"{lat['p50_ms']:.1f} / {lat['p99_ms']:.1f} / {lat['max_ms']:.1f} | "
            f"{pct(lat['ingest_cpu'])} | {pct(lat['broker_cpu'])} |"
        )
    return "\n".join([*lines, ""])
