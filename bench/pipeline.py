"""One worker process against a fresh embedded broker holding N pre-produced orders."""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from bench.machine import cpu_seconds
from producers.orders import Record, catalog_records, inventory_records, load_catalog
from producers.send import paced, send_all
from streams.common.broker import EmbeddedBroker, free_port, stop_process
from streams.common.topics import declare
from streams.orders.pipeline import topic_specs

RAW = "orders.raw"
RECEIVED = "streams_orders_received_total"
DEAD_LETTERS = "streams_orders_dead_letters_total"
DUPLICATES = "streams_orders_duplicates_total"
LAKE_ROWS = "streams_orders_lake_rows_total"
POLL = 0.2

#: name -> extra worker environment. The lake directory is set per run unless "" here.
VARIANTS: dict[str, dict[str, str]] = {
    "a_default": {},
    "b_lake_off": {"ORDERS_PARQUET_URI": ""},
    "c_batch_5000": {"ORDERS_BATCH_SIZE": "5000"},
}

VIEWS = ("/orders/revenue/daily", "/orders/products/top")


class BenchError(RuntimeError):
    pass


@dataclass
class Worker:
    """``python -m <module> <command>`` (by default ``streams.orders worker``) with its
    own port, data dir and lake."""

    bootstrap: str
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    module: str = "streams.orders"
    command: str = "worker"
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.command}.log"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> Worker:
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP": self.bootstrap,
            "KAFKA_CORRECT_END_OFFSETS": "true",  # the embedded broker's ListOffsets defect
            "STREAMS_DATA_DIR": str(self.workdir / "data"),
            "WEB_PORT": str(self.port),
            "ORDERS_PARQUET_URI": str(self.workdir / "lake"),
            **self.env,
        }
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", self.module, self.command, "-l", "info"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                self.get("/health")
                return self
            except (OSError, ValueError):
                time.sleep(0.1)
        raise BenchError(f"{self.command} not healthy after 90 s; see {self.log_path}")

    def check_alive(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise BenchError(f"the {self.command} exited; the end of its log:\n{tail}")

    def raw(self, path: str, timeout: float = 10) -> bytes:
        with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
            body: bytes = response.read()
            return body

    def get(self, path: str) -> Any:
        return json.loads(self.raw(path))

    def metrics(self, *names: str) -> dict[str, float]:
        """Each of ``names`` summed over its label sets (0 when absent)."""
        totals = dict.fromkeys(names, 0.0)
        for line in self.raw("/metrics").decode().splitlines():
            for name in names:
                if line.startswith(name) and line[len(name) : len(name) + 1] in (" ", "{"):
                    totals[name] += float(line.rsplit(" ", 1)[1])
        return totals

    def stop(self) -> None:
        if self.proc is None:
            return
        stop_process(self.proc)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL, as a crash: no shutdown, no flush, no commit."""
        if self.proc is None:
            return
        self.proc.kill()
        self.proc.wait()
        self.proc = None


def preload(bootstrap: str, records: list[Record], partitions: int) -> float:
    """Declare the topics, send every order and the reference data; returns orders/s sent."""
    declare(bootstrap, topic_specs(partitions), replication_factor=1)
    asyncio.run(send_all(bootstrap, "orders.catalog", paced(catalog_records(load_catalog()), None),
                         label="catalog", quiet=True))  # fmt: skip
    asyncio.run(send_all(bootstrap, "orders.inventory", paced(list(inventory_records()), None),
                         label="inventory", quiet=True))  # fmt: skip
    started = time.perf_counter()
    sent = asyncio.run(send_all(bootstrap, RAW, paced(records, None), label=RAW, quiet=True))
    return sent / (time.perf_counter() - started)


class Profiler:
    """``py-spy record`` of one process, collapsed stacks per thread, until stopped."""

    def __init__(self, pid: int, out: Path, rate: int = 100) -> None:
        exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not Path(exe).exists():
            raise BenchError("--profile needs py-spy (pip install py-spy)")
        self.out = out
        self.proc = subprocess.Popen(
            [exe, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw",
             "--threads", "--output", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        self.started = time.monotonic()
        self.seconds = 0.0

    def stop(self) -> None:
        self.seconds = time.monotonic() - self.started
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def wait_for(
    probe: Callable[[], bool], worker: Worker, timeout: float, what: str, every: float = POLL
) -> float:
    """Poll every ``every`` s until ``probe()``; returns the monotonic time it first held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker.check_alive()
        before = time.monotonic()
        try:
            if probe():
                return (before + time.monotonic()) / 2
        except (OSError, ValueError, urllib.error.URLError):
            pass
        time.sleep(max(every - (time.monotonic() - before), 0))
    raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")


def run_variant(
    name: str,
    records: list[Record],
    partitions: int,
    *,
    views: int = 0,
    profile: Path | None = None,
) -> dict[str, Any]:
    """One measured run of ``VARIANTS[name]`` on a fresh broker; ``views`` GETs per view."""
    n = len(records)
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        workdir = Path(tmp)
        broker = EmbeddedBroker(log_path=workdir / "broker.log")
        broker.start()
        worker: Worker | None = None
        profiler: Profiler | None = None
        try:
            produce_rate = preload(broker.bootstrap, records, partitions)
            env = {"ORDERS_PARTITIONS": str(partitions), **VARIANTS[name]}
            started = time.monotonic()
            worker = Worker(broker.bootstrap, workdir, env).start()
            healthy = time.monotonic()
            result = _measure(worker, broker, n, started, healthy, profile)
            profiler = result.pop("_profiler", None)
            if profiler is not None:
                result["profile_seconds"] = profiler.seconds
            if views:
                result["views"] = measure_views(worker, views)
            return {"variant": name, "env": VARIANTS[name], "produce_rate": produce_rate,
                    **result}  # fmt: skip
        finally:
            stop_all(profiler, worker, broker)


@dataclass
class Count:
    """``metric`` polled every POLL s, from the first poll that saw it above 0 until it
    reached its target; CPU seconds of the worker and the broker at both ends."""

    first: float
    first_count: float
    last: float
    samples: list[tuple[float, float]]
    cpu_first: tuple[float | None, float | None]
    cpu_last: tuple[float | None, float | None]
    profiler: Profiler | None


def count_until(
    worker: Worker,
    broker_pid: int | None,
    metric: str,
    n: float,
    timeout: float,
    profile: Path | None = None,
) -> Count:
    """Poll ``metric`` until it reaches ``n``; py-spy the worker from the first count
    when ``profile`` is given (the caller stops the profiler)."""
    first: tuple[float, float] | None = None
    cpu_first: tuple[float | None, float | None] = (None, None)
    profiler: Profiler | None = None
    samples: list[tuple[float, float]] = []

    def reached() -> bool:
        nonlocal first, cpu_first, profiler
        count = worker.metrics(metric)[metric]
        now = time.monotonic()
        if count > 0 and first is None:
            first = (now, count)
            cpu_first = (cpu_seconds(worker.pid), cpu_seconds(broker_pid))
            if profile is not None and worker.pid is not None:
                profiler = Profiler(worker.pid, profile)
        if first is not None:
            samples.append((now, count))
        return count >= n

    try:
        last = wait_for(reached, worker, timeout, f"{n:,.0f} counted in {metric}")
    except BenchError:
        if profiler is not None:
            profiler.stop()
        raise
    cpu_last = (cpu_seconds(worker.pid), cpu_seconds(broker_pid))
    assert first is not None
    return Count(first[0], first[1], last, samples, cpu_first, cpu_last, profiler)


def _measure(
    worker: Worker,
    broker: EmbeddedBroker,
    n: int,
    started: float,
    healthy: float,
    profile: Path | None,
) -> dict[str, Any]:
    counted = count_until(worker, broker.pid, RECEIVED, n, 120 + n / 200, profile)
    samples, profiler = counted.samples, counted.profiler
    t_first, c_first, last = counted.first, counted.first_count, counted.last
    cpu_first, cpu_last = counted.cpu_first, counted.cpu_last
    elapsed = last - t_first

    expected: dict[str, float] = {}

    def view_complete() -> bool:
        faults = worker.metrics(DEAD_LETTERS, DUPLICATES)
        expected["orders"] = n - faults[DEAD_LETTERS] - faults[DUPLICATES]
        expected.update(faults)
        rows = worker.get("/orders/revenue/daily")
        return sum(int(row["orders_all_statuses"]) for row in rows) == expected["orders"]

    view_done = wait_for(view_complete, worker, 300, "/orders/revenue/daily to hold every order")
    lake_done: float | None = None
    if worker.env.get("ORDERS_PARQUET_URI", "x"):
        lake_done = wait_for(
            lambda: worker.metrics(LAKE_ROWS)[LAKE_ROWS] >= expected["orders"],
            worker,
            300,
            "the Parquet copy to hold every order",
        )
    cpu_done = cpu_seconds(worker.pid)
    if profiler is not None:
        profiler.stop()

    def share(index: int) -> float | None:
        a, b = cpu_first[index], cpu_last[index]
        return None if a is None or b is None or elapsed <= 0 else (b - a) / elapsed

    return {
        "orders": n,
        "startup_s": healthy - started,
        "first_record_after_start_s": t_first - started,
        "processing_s": elapsed,
        # Records counted between the first and the last poll, over that time: the
        # first poll may already see a batch or two, which N / elapsed would overstate.
        "orders_per_s": (n - c_first) / elapsed if elapsed > 0 else None,
        "orders_per_s_naive": n / elapsed if elapsed > 0 else None,
        "view_complete_s": view_done - t_first,
        "view_lag_after_last_s": view_done - last,
        "lake_complete_s": None if lake_done is None else lake_done - t_first,
        "worker_cpu": share(0),
        "broker_cpu": share(1),
        "worker_cpu_s_total": None
        if cpu_done is None or cpu_first[0] is None
        else cpu_done - cpu_first[0],
        "dead_letters": expected.get(DEAD_LETTERS, 0.0),
        "duplicates": expected.get(DUPLICATES, 0.0),
        "steady_orders_per_s": steady_rate(samples),
        "orders_per_s_by_tenth": rate_by_tenth(samples, n),
        "_profiler": profiler,
    }


def steady_rate(samples: list[tuple[float, float]]) -> float | None:
    """Median rate over windows of 1 s, ignoring the first and last window (ramp up/down).

    A counter that moves in steps (once per batch of a few seconds) would leave most
    1 s windows empty and the median at 0: windows then span two of its steps.
    """
    moves = [t for (_, before), (t, count) in pairwise(samples) if count != before]
    steps = [b - a for a, b in pairwise(moves)]
    span = max(1.0, 2 * statistics.median(steps)) if steps else 1.0
    rates = []
    i = 0
    for j in range(len(samples)):
        if samples[j][0] - samples[i][0] >= span:
            rates.append((samples[j][1] - samples[i][1]) / (samples[j][0] - samples[i][0]))
            i = j
    return statistics.median(rates[1:-1]) if len(rates) > 2 else None


def rate_by_tenth(samples: list[tuple[float, float]], n: int) -> list[float | None]:
    """Counts/s over each tenth of ``n``: does the pipeline slow down as state grows?"""
    rates: list[float | None] = []
    for tenth in range(10):
        lo, hi = n * tenth / 10, n * (tenth + 1) / 10
        # The last poll at or below each bound: each tenth spans whole poll intervals.
        start = max((s for s in samples if s[1] <= lo), default=samples[0] if samples else None)
        end = max((s for s in samples if s[1] <= hi), default=None)
        if start is None or end is None or end[0] <= start[0]:
            rates.append(None)
        else:
            rates.append((end[1] - start[1]) / (end[0] - start[0]))
    return rates


def measure_views(worker: Worker, requests: int) -> dict[str, Any]:
    """``requests`` sequential GETs of each view: p50/p99/max in ms and the body size."""
    out: dict[str, Any] = {}
    for path in VIEWS:
        worker.raw(path)  # warm up
        times = []
        size = 0
        for _ in range(requests):
            started = time.perf_counter()
            size = len(worker.raw(path))
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        out[path] = {
            "requests": requests,
            "p50_ms": statistics.median(times),
            "p99_ms": times[max(math.ceil(len(times) * 0.99) - 1, 0)],  # nearest rank
            "max_ms": times[-1],
            "bytes": size,
        }
    return out


def stop_all(profiler: Profiler | None, worker: Worker | None, broker: EmbeddedBroker) -> None:
    """Stop what a run started, the profiler first (it samples the worker)."""
    if profiler is not None and profiler.proc.poll() is None:
        profiler.stop()
    if worker is not None:
        worker.stop()
    broker.stop()
