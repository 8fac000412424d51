"""The time-series API's speed (``python -m bench --only timeseries``): two workers on a
fresh embedded broker, ``SERIES`` series of ``POINTS`` points loaded through the API first.

(a) Mixed traffic, open loop: ``RATE`` requests/s on a fixed schedule (wrk2's method),
    alternately to each worker, so about half of the reads are forwarded to the other
    worker and half of the writes are awaited from it. The mix (``MIX``): a week's range
    of a series (672 points; rows or columns), the metrics of a whole series, appends of
    10-100 points after a series' last time, forecasts of 24-96 points (season
    detected). Each request is sent at its scheduled time, concurrently, whatever came
    before it; its latency runs from the scheduled time to the end of its answer's body,
    so a stall counts for every request queued behind it. Any status but 2xx is an error.
    Then the same at each of ``EXTRA_RATES`` (shorter): where the workers keep up.
(b) Appends as fast as they are acknowledged: one client process, a few connections
    each posting a batch of points, waiting for its answer, posting the next, to eight
    series in turn, alternately to each worker; only points in requests answered 200
    count. The variants (``APPENDS``): batch sizes with times as Unix seconds, one with
    ISO times, and more connections.

The clients run in a separate process (aiohttp on uvloop); on a 2-core machine they
share it with the broker and both workers, and so does anything else running: the
1-minute load average is recorded before each measurement, which waits (a while) for it
to fall under ``QUIET_LOAD``. Each measurement records the CPU seconds of both workers
and the broker, and of each worker's threads by name ("main"; numpy's OpenBLAS pool is
among the threads named "python"; RocksDB names its own). With ``--profile``, one more
mixed run has worker 0 under py-spy, kept out of the figures.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import orjson

from bench import profile
from bench.machine import cpu_seconds, fingerprint
from bench.pipeline import BenchError, Profiler, Worker
from bench.timeseries_load import (
    JSON,
    MIX,
    POINTS,
    STEP_S,
    THROUGHPUT_SERIES,
    appends_client,
    mixed_client,
    points,
)  # fmt: skip
from bench.timeseries_report import RATE, TARGET_P99_MS, TARGET_POINTS_PER_S, conclusions
from streams.common.broker import EmbeddedBroker

log = logging.getLogger("bench")

SERIES = 30
EXTRA_RATES = (100.0,)
#: (points per request, ISO times rather than Unix seconds, connections)
APPENDS = (
    (1_000, False, 4),
    (5_000, False, 4),
    (10_000, False, 4),
    (20_000, False, 4),
    (5_000, True, 4),
    (5_000, False, 16),
)
QUIET_LOAD = 1.5
#: Environment the workers inherit that changes the figures (recorded when set).
WORKER_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "PYTHONOPTIMIZE")
ROUTE_METRIC = "streams_timeseries_http_request_duration_seconds_count"
WAIT_METRIC = "streams_timeseries_write_wait_seconds_count"
#: Seconds of each part: (measured, warm-up) per mode; how long py-spy records.
DURATIONS: dict[str, dict[str, Any]] = {
    "full": {"mixed": (60.0, 5.0), "extra": (30.0, 5.0), "appends": (15.0, 3.0), "profile": 20.0},
    "quick": {"mixed": (15.0, 3.0), "extra": (8.0, 2.0), "appends": (6.0, 2.0), "profile": 10.0},
}


# -- the workers ------------------------------------------------------------------------


def _call(url: str, method: str = "GET", body: Any = None, timeout: float = 60) -> tuple[int, Any]:
    data = None if body is None else orjson.dumps(body)
    request = urllib.request.Request(url, data=data, method=method, headers=JSON)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            return response.status, orjson.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()[:500]


def _serving(workers: list[Worker], steady: int = 6, timeout: float = 120) -> float:
    """Until every worker answers ``GET /series`` (every partition assigned and loaded)
    ``steady`` times in a row, 0.5 s apart: the group has settled. Returns the seconds."""
    started = time.monotonic()
    deadline = started + timeout
    row = 0
    while row < steady:
        if time.monotonic() > deadline:
            raise BenchError(f"the workers did not all serve GET /series within {timeout:.0f} s")
        for worker in workers:
            worker.check_alive()
        try:
            ok = all(_call(w.url + "/series", timeout=5)[0] == 200 for w in workers)
        except OSError:
            ok = False
        row = row + 1 if ok else 0
        time.sleep(0.5)
    return time.monotonic() - started


def _metric(worker: Worker, name: str, *labels: str) -> float:
    """``name`` summed over the label sets holding every one of ``labels``."""
    total = 0.0
    for line in worker.raw("/metrics").decode().splitlines():
        named = line.startswith(name) and line[len(name) : len(name) + 1] in (" ", "{")
        if named and all(label in line for label in labels):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _owned_reads(workers: list[Worker]) -> float:
    """GETs of one series' routes answered (forwarded or not), over both workers."""
    return sum(
        _metric(w, ROUTE_METRIC, 'method="GET"', f'route="/series/{{id}}{suffix}"')
        for w in workers
        for suffix in ("", "/metrics", "/forecast")
    )


def _waits(workers: list[Worker]) -> dict[str, float]:
    return {
        where: sum(_metric(w, WAIT_METRIC, f'where="{where}"') for w in workers)
        for where in ("here", "owner")
    }


def _quiet(max_wait: float) -> dict[str, Any]:
    """Wait (up to ``max_wait`` s) for the 1-minute load average to fall under QUIET_LOAD."""
    first = os.getloadavg()[0]
    started = time.monotonic()
    while os.getloadavg()[0] > QUIET_LOAD and time.monotonic() - started < max_wait:
        time.sleep(5)
    load = os.getloadavg()[0]
    if load > QUIET_LOAD:
        log.warning("load average still %.2f after %.0f s: measuring anyway", load, max_wait)
    return {
        "load_1min_first": first,
        "load_1min_before": load,
        "waited_for_load_s": time.monotonic() - started,
    }


def thread_cpu(pid: int | None) -> dict[str, float]:
    """CPU seconds so far of each thread of ``pid`` (Linux), summed by thread name: the
    main thread as "main"; threads started before Faust set the process title (numpy's
    OpenBLAS pool among them) are named "python"; RocksDB names its own."""
    out: dict[str, float] = {}
    if pid is None:
        return out
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return out
    for task in tasks:
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            name = "main" if task.name == str(pid) else (task / "comm").read_text().strip()
        except OSError:
            continue
        ticks = int(fields[11]) + int(fields[12])
        out[name] = out.get(name, 0.0) + ticks / os.sysconf("SC_CLK_TCK")
    return out


class Cpu:
    """CPU seconds of the workers and the broker between two moments, and of each
    worker's threads."""

    def __init__(self, pids: dict[str, int | None], threads: dict[str, int | None]) -> None:
        self.pids = pids
        self.threads = threads
        self.before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        self.threads_before = {name: thread_cpu(pid) for name, pid in threads.items()}
        self.started = time.monotonic()

    def used(self) -> dict[str, Any]:
        wall = time.monotonic() - self.started
        out: dict[str, Any] = {"wall_s": wall}
        for name, pid in self.pids.items():
            before, after = self.before[name], cpu_seconds(pid)
            out[name] = None if before is None or after is None else after - before
        return out

    def by_thread(self) -> dict[str, dict[str, float]]:
        out = {}
        for name, pid in self.threads.items():
            before = self.threads_before[name]
            used = {t: s - before.get(t, 0.0) for t, s in thread_cpu(pid).items()}
            out[name] = {t: round(s, 2) for t, s in sorted(used.items()) if s > 0}
        return out


def _load(urls: list[str]) -> tuple[list[str], int, float]:
    """SERIES series of POINTS points, created through the API (alternately on each
    worker); their ids, the first time, and the points/s of the load."""
    now = int(time.time()) // STEP_S * STEP_S
    t0 = now - POINTS * STEP_S
    ids = []
    started = time.monotonic()
    for n in range(SERIES):
        body = {"name": f"bench-{n}", "points": points(n, 0, POINTS, t0)}
        status, answer = _call(urls[n % len(urls)] + "/series", "POST", body)
        if status != 201 or answer.get("count") != POINTS:
            raise BenchError(f"creating series {n}: {status} {answer!r}")
        ids.append(answer["id"])
    return ids, t0, SERIES * POINTS / (time.monotonic() - started)


def _empty_series(urls: list[str], tag: str) -> list[str]:
    ids = []
    for n in range(THROUGHPUT_SERIES):
        status, answer = _call(urls[n % len(urls)] + "/series", "POST", {"name": f"{tag}-{n}"})
        if status != 201:
            raise BenchError(f"creating series {tag}-{n}: {status} {answer!r}")
        ids.append(answer["id"])
    return ids


def _measure(
    name: str,
    workers: list[Worker],
    broker: EmbeddedBroker,
    clients: ProcessPoolExecutor,
    call: Callable[..., dict[str, Any]],
    *args: Any,
    max_wait: float,
) -> dict[str, Any]:
    """One client run with the load average before it and the CPU the servers used."""
    quiet = _quiet(max_wait)
    reads, waits = _owned_reads(workers), _waits(workers)
    named = {f"worker_{i}": w.pid for i, w in enumerate(workers)}
    cpu = Cpu(named | {"broker": broker.pid}, named)
    result = clients.submit(call, *args).result()
    used = cpu.used()
    result["worker_cpu_s_by_thread"] = cpu.by_thread()
    for worker in workers:
        worker.check_alive()
    result["cpu_s"] = used
    result["cpu_share"] = {
        name: None if seconds is None else seconds / used["wall_s"]
        for name, seconds in used.items()
        if name != "wall_s"
    }
    result.update(quiet)
    result["load_1min_after"] = os.getloadavg()[0]
    answered = _owned_reads(workers) - reads
    waited = {k: v - waits[k] for k, v in _waits(workers).items()}
    # Every GET a worker answered, minus those the client sent (warm-up included).
    result["forwarded_reads"] = answered - result.get("reads_sent_with_warmup", 0)
    result["writes_awaited_from_the_owner"] = waited["owner"]
    result["writes_awaited_here"] = waited["here"]
    log.info("timeseries %s: %s", name, _brief(result))
    return result


def _brief(result: dict[str, Any]) -> str:
    if "kinds" in result:
        p99 = {kind: round(k["p99_ms"] or 0, 1) for kind, k in result["kinds"].items()}
        return (
            f"{result['achieved_per_s']:.0f} req/s, errors {result['errors']}, p99 ms {p99}, "
            f"load {result['load_1min_before']:.2f}"
        )
    return (
        f"{result['points_per_s']:,.0f} points/s, {result['requests_per_s']:.1f} req/s, "
        f"errors {result['errors']}, load {result['load_1min_before']:.2f}"
    )


def run(quick: bool = False, profile_to: Path | None = None) -> dict[str, Any]:
    """Both measurements on one fresh broker and two workers; a dict of figures. With
    ``profile_to``, one more mixed run with worker 0 under py-spy, kept apart."""
    durations = DURATIONS["quick" if quick else "full"]
    max_wait = 30.0 if quick else 120.0
    with (
        tempfile.TemporaryDirectory(prefix="bench-timeseries-") as tmp,
        ProcessPoolExecutor(1, mp_context=get_context("spawn")) as clients,
    ):
        workdir = Path(tmp)
        broker = EmbeddedBroker(log_path=workdir / "broker.log").start()
        workers: list[Worker] = []
        code = fingerprint()  # of the code the workers run (others may edit it meanwhile)
        try:
            for name in ("worker0", "worker1"):
                (workdir / name).mkdir()
                worker = Worker(broker.bootstrap, workdir / name, module="streams.timeseries")
                workers.append(worker.start())
            settle_s = _serving(workers)
            urls = [w.url for w in workers]
            ids, t0, load_rate = _load(urls)
            log.info("timeseries: %d series of %d points loaded (%.0f points/s)",
                     SERIES, POINTS, load_rate)  # fmt: skip
            out: dict[str, Any] = {
                "mode": "quick" if quick else "full",
                "code": code,
                "series": SERIES,
                "points_per_series": POINTS,
                "mix": MIX,
                "targets": {"p99_ms": TARGET_P99_MS, "points_per_s": TARGET_POINTS_PER_S},
                "settle_s": settle_s,
                "load_points_per_s": load_rate,
                "worker_env": {
                    k: v
                    for k, v in os.environ.items()
                    if k in WORKER_ENV or k.startswith("TIMESERIES_")
                },
            }
            seconds, warmup = durations["mixed"]
            out["mixed"] = _measure(
                "mixed", workers, broker, clients, mixed_client,
                urls, ids, t0, RATE, seconds, warmup, max_wait=max_wait,
            )  # fmt: skip
            seconds, warmup = durations["extra"]
            out["mixed_at"] = {
                f"{rate:.0f}": _measure(
                    f"mixed at {rate:.0f}/s", workers, broker, clients, mixed_client,
                    urls, ids, t0, rate, seconds, warmup, max_wait=max_wait,
                )
                for rate in EXTRA_RATES
            }  # fmt: skip
            seconds, warmup = durations["appends"]
            t1 = int(time.time()) + 86_400 * 365  # after every loaded and appended point
            appends: dict[str, Any] = {}
            for variant in APPENDS:
                batch, iso, connections = variant
                tag = f"{batch}{'_iso' if iso else ''}_x{connections}"
                series = _empty_series(urls, tag)
                appends[tag] = _measure(
                    f"appends {tag}", workers, broker, clients, appends_client,
                    urls, series, t1, variant, seconds, warmup, max_wait=max_wait,
                )  # fmt: skip
            out["appends"] = appends
            out.update(conclusions(out))
            out["code_changed_meanwhile"] = fingerprint() != code
            if profile_to is not None:
                out["profile"] = _profiled(
                    workers, broker, clients, urls, ids, t0, durations, profile_to, max_wait
                )
            return out
        finally:
            for worker in workers:
                worker.stop()
            broker.stop()


def _profiled(
    workers: list[Worker],
    broker: EmbeddedBroker,
    clients: ProcessPoolExecutor,
    urls: list[str],
    ids: list[str],
    t0: int,
    durations: dict[str, Any],
    out: Path,
    max_wait: float,
) -> dict[str, Any]:
    """A mixed run with worker 0 under py-spy for ``durations['profile']`` seconds."""
    seconds = float(durations["profile"])
    _quiet(max_wait)
    future = clients.submit(mixed_client, urls, ids, t0, RATE, seconds + 4, 2.0)
    time.sleep(3)  # past the client's start and warm-up
    profiler = Profiler(workers[0].pid or 0, out)
    time.sleep(seconds)
    profiler.stop()
    run = future.result()
    summary = profile.summarize(out)
    text = profile.render(summary, profiler.seconds)
    out.with_suffix(".txt").write_text(text + "\n")
    log.info("profile summary in %s", out.with_suffix(".txt"))
    kinds = {kind: k["p99_ms"] for kind, k in run["kinds"].items()}
    return {"raw": str(out), "seconds": profiler.seconds, "run_p99_ms": kinds, **summary}
