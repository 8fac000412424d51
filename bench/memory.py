"""Memory of an orders worker over months of event time: does its state stay flat?

A worker reads orders spread evenly over DAYS days (the demo's mix of channels, states
and products; ``orders_per_day`` of them a day, since replaying the demo's 20 orders/s
for months would take months) as fast as it can, on a fresh embedded broker. Every
second the bench samples the records the worker holds for its views
(``streams_orders_view_records``: the state that grows with history), its resident
memory, the event time it has reached and the size of its RocksDB directory; the table
reports them every 10 days of event time. Two variants: the defaults (figures kept
``ORDERS_HISTORY_DAYS`` = 60 days, order ids 45), and figures kept for ever (the
behaviour before the horizon) as a contrast. Resident memory also holds RocksDB's
write buffers and caches and the allocator's free lists, which grow to their sizes
early and do not shrink: the records held are the measure of the state.
"""

from __future__ import annotations

import itertools
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.pipeline import RECEIVED, BenchError, Worker, preload, stop_all
from producers.orders import OrderGenerator, Record, load_catalog
from streams.common.broker import EmbeddedBroker

START = datetime(2025, 8, 1, tzinfo=UTC)
DAYS = 150
VIEW_RECORDS = "streams_orders_view_records"
STREAM_TIME = "streams_orders_stream_time_seconds"

VARIANTS: dict[str, dict[str, str]] = {
    "bounded (defaults)": {},
    "figures kept for ever": {"ORDERS_HISTORY_DAYS": "100000"},
}


def orders(per_day: int, days: int = DAYS, seed: int = 5) -> list[Record]:
    """Valid orders, evenly spread over ``days`` of event time from START."""
    step = timedelta(seconds=86_400 / per_day)
    generator = OrderGenerator(load_catalog(), seed=seed, start=START, step=step)
    return list(itertools.islice(generator, per_day * days))


def rss_mb(pid: int | None) -> float | None:
    """Resident memory of a process (Linux), in MiB."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def disk_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def run(records: list[Record], env: dict[str, str], partitions: int = 4) -> dict[str, Any]:
    """One worker over ``records``; samples of (event day, RSS MiB, RocksDB MiB)."""
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        workdir = Path(tmp)
        broker = EmbeddedBroker(log_path=workdir / "broker.log")
        broker.start()
        worker: Worker | None = None
        try:
            preload(broker.bootstrap, records, partitions)
            worker_env = {"ORDERS_PARTITIONS": str(partitions), "ORDERS_PARQUET_URI": "", **env}
            worker = Worker(broker.bootstrap, workdir, worker_env).start()
            samples = _sample(worker, len(records), workdir / "data")
            return {"env": env, "orders": len(records), "samples": samples}
        finally:
            stop_all(None, worker, broker)


def _sample(worker: Worker, n: int, data: Path) -> list[dict[str, float | None]]:
    start_s = START.timestamp()
    samples: list[dict[str, float | None]] = []
    deadline = time.monotonic() + 120 + n / 200
    while time.monotonic() < deadline:
        worker.check_alive()
        figures = worker.metrics(RECEIVED, STREAM_TIME, VIEW_RECORDS)
        stream = figures[STREAM_TIME]
        day = (stream - start_s) / 86_400 if stream else None
        samples.append(
            {
                "received": figures[RECEIVED],
                "event_day": None if day is None else round(day, 2),
                "view_records": figures[VIEW_RECORDS],
                "rss_mb": rss_mb(worker.pid),
                "rocksdb_mb": round(disk_mb(data), 1),
            }
        )
        if figures[RECEIVED] >= n:
            time.sleep(3)  # the last batch's sweep, the gauges' refresh (every second)
            held = worker.metrics(VIEW_RECORDS)[VIEW_RECORDS]
            samples.append({**samples[-1], "view_records": held, "rss_mb": rss_mb(worker.pid)})
            return samples
        time.sleep(1.0)
    raise BenchError(f"the worker did not count {n:,} orders in time")


def by_ten_days(samples: list[dict[str, float | None]]) -> list[dict[str, float | None]]:
    """The last sample at or before each tenth day of event time, and the final one."""
    rows = []
    for mark in range(10, DAYS + 1, 10):
        seen = [s for s in samples if s["event_day"] is not None and s["event_day"] <= mark]
        if seen:
            fields = ("view_records", "rss_mb", "rocksdb_mb")
            rows.append({"day": mark, **{k: seen[-1][k] for k in fields}})
    return rows


def measure(per_day: int = 2_000) -> dict[str, Any]:
    records = orders(per_day)
    out: dict[str, Any] = {"orders_per_day": per_day, "days": DAYS, "variants": {}}
    for name, env in VARIANTS.items():
        result = run(records, env)
        result["by_ten_days"] = by_ten_days(result["samples"])
        out["variants"][name] = result
    return out


def markdown(figures: dict[str, Any]) -> str:
    names = list(figures["variants"])
    head = "| event day | " + " | ".join(
        f"{n}: records held / RSS MiB / RocksDB MiB" for n in names
    )
    head += " |"
    lines = [head, "|--:|" + "--:|" * len(names)]
    tables = {n: {r["day"]: r for r in figures["variants"][n]["by_ten_days"]} for n in names}
    for day in range(10, DAYS + 1, 10):
        cells = []
        for name in names:
            row = tables[name].get(day)
            cells.append(
                ""
                if row is None
                else f"{row['view_records']:,.0f} / {row['rss_mb']:.0f} / {row['rocksdb_mb']:.1f}"
            )
        lines.append(f"| {day} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
