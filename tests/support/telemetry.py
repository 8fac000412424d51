"""Telemetry processes, records and an independent oracle of window figures, for the
integration tests: nothing here imports the worker's window code."""

from __future__ import annotations

import asyncio
import math
import os
import signal
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import orjson
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from tests.support.workers import Processes, Record, Worker, read_topic, wait_until

#: (interface, metric, value, ts in epoch ms, seq): a reading as a ReadingGroup holds it.
Row = tuple[str, str, float, int, int]
#: (device, window start ms, interface, metric)
SeriesWindow = tuple[str, int, str, str]
FIGURES = ("count", "min", "max", "mean", "p95")


@dataclass
class TelemetryProcesses(Processes):
    """``python -m streams.telemetry worker|ingest`` processes for one test."""

    module: str = "streams.telemetry"


def rebalanced(worker: Worker, at_least: int = 1) -> bool:
    """Whether ``worker`` has finished ``at_least`` consumer-group rebalances (its table
    recovery included) and is not in one now, from Faust's own metrics."""
    done = worker.metric("faust_rebalance_done_latency_count")
    return done >= at_least and worker.metric("faust_total_rebalances") == 0


def settle(*workers: Worker, timeout: float = 90) -> None:
    """Wait until the group has given each worker its partitions and tables."""
    for worker in workers:
        wait_until(partial(rebalanced, worker), timeout=timeout, what=f"{worker.url} rebalanced")


@contextmanager
def paused(*processes: Worker) -> Iterator[None]:
    """SIGSTOP the processes for the block; they are always SIGCONT-ed afterwards."""
    stopped: list[int] = []
    try:
        for process in processes:
            assert process.proc is not None, "not running"
            os.kill(process.proc.pid, signal.SIGSTOP)
            stopped.append(process.proc.pid)
        yield
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)


def committed_records(bootstrap: str, group: str, topic: str, partitions: int) -> int:
    """Records of ``topic`` whose offsets ``group`` has committed, summed over partitions."""

    async def ask() -> int:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            wanted = [TopicPartition(topic, p) for p in range(partitions)]
            offsets = await admin.list_consumer_group_offsets(group, partitions=wanted)
            return sum(max(meta.offset, 0) for meta in offsets.values())
        finally:
            await admin.close()

    return asyncio.run(ask())


def group_record(device: str, rows: Iterable[Row], key: str | None = None) -> Record:
    """A telemetry.readings record of one device, keyed by it (any producer's form)."""
    value = orjson.dumps({"device_id": device, "readings": [list(row) for row in rows]})
    return (device if key is None else key).encode(), value


def batch_record(groups: Iterable[tuple[str, Iterable[Row]]], partition: int) -> Record:
    """A telemetry.readings record of several devices, sent to ``partition`` with no
    key: the ingest's form."""
    value = orjson.dumps(
        [{"device_id": d, "readings": [list(r) for r in rows]} for d, rows in groups]
    )
    return None, value, partition


def labelled(metrics_text: str, name: str, **labels: str) -> float:
    """The sample of ``name`` with exactly ``labels`` in a Prometheus text page (0 if none)."""
    wanted = "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
    for line in metrics_text.splitlines():
        metric, _, value = line.rpartition(" ")
        if metric == (name + wanted if labels else name):
            return float(value)
    return 0.0


def quantile(values: list[float], q: float) -> float:
    """numpy's default ("linear") quantile."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    below = math.floor(position)
    if below == position:
        return ordered[below]
    return ordered[below] + (ordered[below + 1] - ordered[below]) * (position - below)


def expected_figures(
    groups: Iterable[tuple[str, Iterable[Row]]], window_ms: int
) -> dict[SeriesWindow, dict[str, float]]:
    """Figures per series and epoch-aligned window of readings no window refused (no
    late ones); a (device, series, seq) seen twice in a window counts once."""
    values: dict[SeriesWindow, dict[int, float]] = defaultdict(dict)
    for device, rows in groups:
        for interface, metric, value, ts, seq in rows:
            values[(device, ts - ts % window_ms, interface, metric)].setdefault(seq, value)
    return {
        key: {
            "count": len(by_seq),
            "min": min(by_seq.values()),
            "max": max(by_seq.values()),
            "mean": math.fsum(by_seq.values()) / len(by_seq),
            "p95": quantile(list(by_seq.values()), 0.95),
        }
        for key, by_seq in values.items()
    }


def epoch_ms(iso: str) -> int:
    return round(datetime.fromisoformat(iso).timestamp() * 1000)


@dataclass
class Aggregates:
    """What telemetry.aggregates holds: figures per series window, and the ids of records
    that repeated one with identical content (``reemitted``) or other content (``conflicts``)."""

    figures: dict[SeriesWindow, dict[str, float]]
    windows: int
    reemitted: list[str]
    conflicts: list[str]

    def readings(self) -> int:
        return int(sum(f["count"] for f in self.figures.values()))


def read_aggregates(bootstrap: str, topic: str = "telemetry.aggregates") -> Aggregates:
    by_id: dict[str, Any] = {}
    reemitted: list[str] = []
    conflicts: list[str] = []
    for record in read_topic(bootstrap, topic):
        window = orjson.loads(record.value or b"null")
        assert record.key == window["id"].encode(), record
        previous = by_id.setdefault(window["id"], window)
        if previous is not window:
            if previous == window:
                reemitted.append(window["id"])
            else:
                conflicts.append(window["id"])
    figures = {
        (w["device_id"], epoch_ms(w["window_start"]), s["interface"], s["metric"]): {
            name: s[name] for name in FIGURES
        }
        for w in by_id.values()
        for s in w["series"]
    }
    return Aggregates(figures, len(by_id), reemitted, conflicts)


def figure_differences(
    expected: dict[SeriesWindow, dict[str, float]],
    found: dict[SeriesWindow, dict[str, float]],
    rel: float = 1e-9,
) -> list[str]:
    """Series windows missing, unexpected or with other figures (mean and p95 within
    ``rel``; count, min and max exact); empty when they agree."""
    out = [f"missing {key}" for key in expected.keys() - found.keys()]
    out += [f"unexpected {key}: {found[key]}" for key in found.keys() - expected.keys()]
    for key in expected.keys() & found.keys():
        want, got = expected[key], found[key]
        for name in FIGURES:
            close = math.isclose(got[name], want[name], rel_tol=rel, abs_tol=0.0)
            if got[name] != want[name] and not (name in ("mean", "p95") and close):
                out.append(f"{key} {name}: expected {want[name]!r}, got {got[name]!r}")
    return sorted(out)


def exact_aggregates(
    bootstrap: str, groups: list[tuple[str, list[Row]]], window_ms: int
) -> Aggregates:
    """telemetry.aggregates once every window of ``groups`` is in it with the right figures;
    raises ValueError (for wait_until to keep polling) until then."""
    found = read_aggregates(bootstrap)
    diff = figure_differences(expected_figures(groups, window_ms), found.figures)
    if diff:
        raise ValueError(f"{len(diff)} differences, first {diff[:5]}")
    return found
