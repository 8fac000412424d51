"""Our platform against Quix Streams on the same orders (``make bench-versus``).

Three workloads, each one process against a fresh embedded broker pre-loaded with the
same N generated orders (4 partitions, keyed by customer), run back to back and
interleaved (quix, same_work, full, quix, ...):

1. ``quix``: the peer workload in Quix Streams (bench/versus_quix.py, its own virtualenv);
2. ``same_work``: the same workload on our platform's machinery (bench/versus_faust.py);
3. ``full``: the orders pipeline as shipped (validation, dedup, enrichment, every
   table, the enriched topic, the Parquet copy).

Progress is read the same way for all three, from outside the process: the consumer
group's committed offsets, polled from the broker every 0.1 s, of the topic whose
processing completes an order (``orders.raw`` for ours; Quix's repartition topic, since
an order counts in its window only once that topic's record is processed). A commit
covers only what is durable in each system (tables and changelog acknowledged), so a
committed offset means the same in all three. Each commits at its own cadence: ours
every second (``broker_commit_interval`` in ``make_app``; our tables are written per
batch anyway), Quix every 5 s, its default (Quix writes its state and changelog at each
commit, so a shorter interval costs it CPU: detuning the peer would flatter us). The
rate is taken between the first and the last commit seen while orders were still
waiting (the steady state: start-up, group join and the idle tail after the last order
are left out), so a run must span several of Quix's commits: N defaults to 500,000.
CPU is the process's own (utime + stime, all its threads) over the same span. Each
workload's figures are then checked against an independent computation
(bench/versus_check.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import data, pipeline, versus_check, versus_faust, versus_quix
from bench.machine import cpu_seconds
from bench.pipeline import BenchError, Worker
from bench.versus_report import summarize
from producers.orders import Record
from producers.send import paced, send_all
from streams.common.broker import EmbeddedBroker, stop_process
from streams.common.topics import TopicSpec, changelog, declare
from streams.orders.pipeline import AGGREGATES, APP_ID, RAW

log = logging.getLogger("bench.versus")

ROOT = Path(__file__).resolve().parent.parent
QUIX_PYTHON = ROOT / ".venv" / "bench-quix" / "bin" / "python"
WORKLOADS = ("quix", "same_work", "full")
POLL = 0.1


@dataclass(frozen=True)
class Sample:
    """One poll: when, orders committed, and CPU seconds so far of the worker, the
    broker, this bench process and the whole machine (all cores)."""

    t: float
    done: int
    cpu: float | None
    broker_cpu: float | None
    bench_cpu: float
    machine_busy: float | None


def machine_busy_seconds() -> float | None:
    """CPU seconds the whole machine spent busy so far (/proc/stat, every core)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return None
    ticks = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def steady(samples: list[Sample], n: int) -> dict[str, Any]:
    """Orders/s and CPU per 100k orders between the first and the last commit seen while
    orders were still waiting; with fewer than two such commits (a tiny run), from the
    first commit to the last."""
    points: list[Sample] = []
    for sample in samples:
        if sample.done > 0 and (not points or sample.done != points[-1].done):
            points.append(sample)
    if not points:
        raise BenchError("no commit seen")
    busy = [p for p in points if p.done < n]
    a, b = (busy[0], busy[-1]) if len(busy) >= 2 else (points[0], points[-1])
    orders, seconds = b.done - a.done, b.t - a.t
    if orders <= 0 or seconds <= 0:
        raise BenchError(f"too few commits to measure a rate ({len(points)} seen)")

    def per_s(get: Callable[[Sample], float | None]) -> float | None:
        x, y = get(a), get(b)
        return None if x is None or y is None else (y - x) / seconds

    worker_cores = per_s(lambda s: s.cpu)
    broker_cores = per_s(lambda s: s.broker_cpu)
    bench_cores = per_s(lambda s: s.bench_cpu)
    machine_cores = per_s(lambda s: s.machine_busy)
    ours = [c for c in (worker_cores, broker_cores, bench_cores) if c is not None]
    others = None
    if machine_cores is not None and len(ours) == 3:
        others = max(machine_cores - sum(ours), 0.0)
    return {
        "orders_per_s": orders / seconds,
        "cpu_s_per_100k": None if worker_cores is None else worker_cores * seconds / orders * 1e5,
        "cpu_us_per_order": None if worker_cores is None else worker_cores * seconds / orders * 1e6,
        "window_s": seconds,
        "window_orders": orders,
        "commits_seen": len(points),
        "worker_cores": worker_cores,
        "broker_cores": broker_cores,
        # Busy cores of the machine not used by this run (other work on the machine).
        "other_cores": others,
    }


async def _follow(
    bootstrap: str,
    group: str,
    topic: Callable[[list[str]], str | None],
    partitions: int,
    n: int,
    worker_pid: int,
    broker_pid: int | None,
    alive: Callable[[], None],
    limit_s: float,
) -> tuple[str, list[Sample]]:
    """Poll ``group``'s committed offsets on the progress topic (chosen by ``topic`` among
    the broker's topics, once it exists) until they add up to ``n``."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError
    from aiokafka.structs import TopicPartition

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    deadline = time.monotonic() + limit_s
    samples: list[Sample] = []
    name: str | None = None
    try:
        while True:
            alive()
            before = time.monotonic()
            if time.monotonic() > deadline:
                got = samples[-1].done if samples else 0
                raise BenchError(f"timed out after {limit_s:.0f} s: {got:,} of {n:,} committed")
            try:
                if name is None:
                    # Asking for offsets of a topic that does not exist yet would create
                    # it on the embedded broker, with the wrong partition count.
                    name = topic(list(await admin.list_topics()))
                if name is not None:
                    wanted = [TopicPartition(name, p) for p in range(partitions)]
                    offsets = await admin.list_consumer_group_offsets(group, partitions=wanted)
                    done = sum(max(meta.offset, 0) for meta in offsets.values())
                    now = time.monotonic()
                    samples.append(
                        Sample((before + now) / 2, done, cpu_seconds(worker_pid),
                               cpu_seconds(broker_pid), time.process_time(),
                               machine_busy_seconds())
                    )  # fmt: skip
                    if done >= n:
                        return name, samples
            except KafkaError as exc:  # the group's coordinator is not there yet
                log.debug("offsets not available yet: %r", exc)
            await asyncio.sleep(max(POLL - (time.monotonic() - before), 0))
    finally:
        await admin.close()


def _exactly(name: str) -> Callable[[list[str]], str | None]:
    return lambda topics: name if name in topics else None


def _prefixed(prefix: str) -> Callable[[list[str]], str | None]:
    def pick(topics: list[str]) -> str | None:
        found = [t for t in topics if t.startswith(prefix)]
        if len(found) > 1:
            raise BenchError(f"several topics start with {prefix}: {found}")
        return found[0] if found else None

    return pick


@dataclass
class Process:
    """A started workload process: its pid, how to check and stop it, its log."""

    pid: int
    check_alive: Callable[[], None]
    stop: Callable[[], None]
    log_path: Path


def _start_quix(
    bootstrap: str, workdir: Path, quix_python: Path, commit_interval: float
) -> Process:
    log_path = workdir / "quix.log"
    with log_path.open("ab") as out:
        proc = subprocess.Popen(
            [str(quix_python), "-m", "bench.versus_quix", "--bootstrap", bootstrap,
             "--topic", RAW, "--state-dir", str(workdir / "quix-state"),
             "--commit-interval", str(commit_interval)],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def check_alive() -> None:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise BenchError(f"the Quix app exited; the end of its log:\n{tail}")

    return Process(proc.pid, check_alive, lambda: stop_process(proc), log_path)


def _start_worker(worker: Worker) -> Process:
    worker.start()
    assert worker.pid is not None
    return Process(worker.pid, worker.check_alive, worker.stop, worker.log_path)


def run_once(
    name: str,
    records: list[Record],
    partitions: int,
    want: versus_check.Figures,
    quix_python: Path,
    quix_commit_interval: float = 5.0,
) -> dict[str, Any]:
    """One measured run of workload ``name`` on a fresh broker; its figures checked."""
    n = len(records)
    with tempfile.TemporaryDirectory(prefix=f"bench-versus-{name}-") as tmp:
        workdir = Path(tmp)
        broker = EmbeddedBroker(log_path=workdir / "broker.log").start()
        process: Process | None = None
        try:
            bootstrap = broker.bootstrap
            env = {"ORDERS_PARTITIONS": str(partitions)}
            if name == "full":
                pipeline.preload(bootstrap, records, partitions)
            else:
                if name == "quix":
                    # Quix sizes its internal topics from the source topic's retention
                    # settings, which the embedded broker reports only when set.
                    specs = {RAW: TopicSpec(partitions, {"retention.ms": "-1"})}
                else:
                    specs = versus_faust.topic_specs(partitions)
                declare(bootstrap, specs, replication_factor=1)
                asyncio.run(send_all(bootstrap, RAW, paced(records, None), label=RAW, quiet=True))
            started = time.monotonic()
            if name == "quix":
                process = _start_quix(bootstrap, workdir, quix_python, quix_commit_interval)
                group, progress = versus_quix.GROUP, _prefixed(versus_quix.REPARTITION_PREFIX)
                state = _prefixed(versus_quix.CHANGELOG_PREFIX)
                figures_of = versus_check.quix_figures
            elif name == "same_work":
                process = _start_worker(
                    Worker(bootstrap, workdir, env, module="bench.versus_faust")
                )
                group, progress = versus_faust.APP_ID, _exactly(RAW)
                state = _exactly(changelog(versus_faust.APP_ID, versus_faust.TABLE))
                figures_of = versus_check.same_work_figures
            elif name == "full":
                process = _start_worker(Worker(bootstrap, workdir, env))
                group, progress = APP_ID, _exactly(RAW)
                state = _exactly(changelog(APP_ID, AGGREGATES))
                figures_of = versus_check.full_figures
            else:
                raise ValueError(f"unknown workload {name}")
            load_before = os.getloadavg()
            topic, samples = asyncio.run(
                _follow(bootstrap, group, progress, partitions, n, process.pid, broker.pid,
                        process.check_alive, 120 + n / 200)
            )  # fmt: skip
            load_after = os.getloadavg()
            cpu_total = samples[-1].cpu
            process.stop()
            process = None
            changelog_topic = state(_topics(bootstrap))
            if changelog_topic is None:
                raise BenchError(f"{name}: no changelog topic found")
            found = figures_of(versus_check.read_topic(bootstrap, changelog_topic))
            check = versus_check.verify(name, want, found)
            first = next(s for s in samples if s.done > 0)
            return {
                "workload": name,
                **steady(samples, n),
                "orders": n,
                "first_commit_after_start_s": first.t - started,
                "all_committed_after_start_s": samples[-1].t - started,
                "worker_cpu_s_total": cpu_total,
                "progress_topic": topic,
                "changelog_topic": changelog_topic,
                "check": check,
                "load_before": list(load_before),
                "load_after": list(load_after),
            }
        finally:
            if process is not None:
                process.stop()
            broker.stop()


def _topics(bootstrap: str) -> list[str]:
    from aiokafka.admin import AIOKafkaAdminClient

    async def ask() -> list[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            return list(await admin.list_topics())
        finally:
            await admin.close()

    return asyncio.run(ask())


def quix_version(quix_python: Path) -> str:
    done = subprocess.run(
        [str(quix_python), "-c", "import quixstreams; print(quixstreams.__version__)"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def run(
    records: list[Record],
    partitions: int,
    repeat: int,
    quix_python: Path = QUIX_PYTHON,
    workloads: tuple[str, ...] = WORKLOADS,
    quix_commit_interval: float = 5.0,
) -> dict[str, Any]:
    """``repeat`` rounds of ``workloads`` in turn; every run's figures checked."""
    # Not resolve(): the interpreter is a symlink out of its virtualenv.
    quix_python = quix_python.absolute()
    if "quix" in workloads and not quix_python.exists():
        raise BenchError(
            f"no Quix Streams interpreter at {quix_python}: `make bench-versus` creates it"
        )
    want = versus_check.expected(records)
    started = time.monotonic()
    load_before = os.getloadavg()
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in workloads}
    for round_ in range(repeat):
        for name in workloads:
            log.info("versus %s, run %d/%d", name, round_ + 1, repeat)
            result = run_once(name, records, partitions, want, quix_python, quix_commit_interval)
            log.info(
                "  %s orders/s, %.1f CPU s per 100k orders, figures exact",
                f"{result['orders_per_s']:,.0f}",
                result["cpu_s_per_100k"] or float("nan"),
            )
            runs[name].append(result)
    versions = {"faust-streaming": _version("faust-streaming"), "python": sys.version.split()[0]}
    if "quix" in workloads:
        versions["quixstreams"] = quix_version(quix_python)
    return {
        "orders": len(records),
        "partitions": partitions,
        "repeat": repeat,
        "data": data.summary(records),
        "order": list(workloads),
        "versions": versions,
        # Faust's broker_commit_interval as make_app sets it; Quix's as passed (its
        # default is 5 s).
        "commit_interval_s": {"faust": 1.0, "quix": quix_commit_interval},
        **summarize(runs),
        "load_before": list(load_before),
        "load_after": list(os.getloadavg()),
        "bench_seconds": time.monotonic() - started,
        "method": __doc__,
    }


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None
