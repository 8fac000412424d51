"""Memory of one orders worker over 180 days of event time: does it stay flat?

One orders worker (as bench/pipeline.py starts it: defaults, Parquet copy on, 4
partitions) on a fresh embedded broker with the catalog and inventory loaded. Orders
of the project's generator (producers/orders.py, no faults), exactly ``per_day`` of
them each UTC day, evenly spaced and in event-time order, are sent ten days at a time
(replaying the demo's rate for months would take months). After each ten days the
bench waits until the worker has counted every order sent (its ``received`` metric)
and its gauge of records held for the views has stopped moving, then samples: the
worker's resident memory (``VmRSS`` of /proc/<pid>/status), the records it holds for
its views (``streams_orders_view_records``), the days, reports and alerts its views
answer with, what RocksDB counts in its memory (``streams_rocksdb_memory_bytes``), and
the size of its RocksDB directory. Once every day is in, the worker is stopped and the
keys its RocksDB holds are counted by kind. 180 days: the issue's 90, and as many again
past the 60 days of figures kept, to see where memory levels off.

Resident memory also holds RocksDB's write buffers and block cache and the allocator's
free lists, which grow to their sizes early and are not given back: the records held
say what the state is, the RSS what it costs, RSS less RocksDB's count the rest.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.pipeline import RAW, RECEIVED, Worker, preload, stop_all, wait_for
from bench.recovery import count_keys
from producers.orders import OrderGenerator, Record, load_catalog
from producers.send import paced, send_all
from streams.common.broker import EmbeddedBroker

log = logging.getLogger("bench.memory")

START = datetime(2025, 8, 1, tzinfo=UTC)
DAYS = 180
PER_DAY = 4_000
EVERY_DAYS = 10
VIEW_RECORDS = "streams_orders_view_records"
#: RocksDB's own count of its memtables, block cache and table readers (bounded).
ROCKSDB_MEMORY = "streams_rocksdb_memory_bytes"
STREAM_TIME = "streams_orders_stream_time_seconds"
#: Seconds the view-records gauge must hold still before a mark is sampled (it is
#: refreshed every second; the reporter's reports reach the mirror within a tick).
SETTLE_S = 3.0


def orders(per_day: int = PER_DAY, days: int = DAYS, seed: int = 5) -> list[Record]:
    """``per_day`` valid orders on each of ``days`` UTC days from START, in time order."""
    step = timedelta(seconds=86_400 / per_day)
    # The generator moves its clock before each order: one step early puts order i at
    # START + i * step, so every day holds exactly ``per_day`` orders.
    generator = OrderGenerator(load_catalog(), seed=seed, start=START - step, step=step)
    return list(itertools.islice(generator, per_day * days))


def marks(days: int = DAYS, every: int = EVERY_DAYS) -> list[int]:
    """The event days after which the worker is sampled: every ``every`` days, and the last."""
    return sorted({*range(every, days, every), days})


def growth(rows: Sequence[dict[str, Any]], field: str, first: int, last: int) -> float | None:
    """Change of ``field`` per day of event time between the marks ``first`` and ``last``."""
    by_day = {row["day"]: row.get(field) for row in rows}
    start, end = by_day.get(first), by_day.get(last)
    if last <= first or start is None or end is None:
        return None
    return float(end - start) / (last - first)


def rss_mb(pid: int | None, field: str = "VmRSS") -> float | None:
    """A /proc/<pid>/status memory field (kB there), in MiB; None if the process is gone."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def disk_mb(path: Path, pattern: str = "*") -> float:
    """Size of the files under ``path`` whose names match ``pattern``, in MiB."""
    files = path.rglob(pattern) if path.exists() else iter(())
    return sum(f.stat().st_size for f in files if f.is_file()) / 2**20


def settle(worker: Worker, received: int) -> bool:
    """Wait until the worker counted ``received`` orders and the view-records gauge held
    still for SETTLE_S; False if it never held still (the sample is taken anyway)."""
    wait_for(lambda: worker.metrics(RECEIVED)[RECEIVED] >= received, worker, 900, "the orders")
    last, since = None, time.monotonic()
    deadline = since + 60
    while time.monotonic() < deadline:
        worker.check_alive()
        held = worker.metrics(VIEW_RECORDS)[VIEW_RECORDS]
        if held != last:
            last, since = held, time.monotonic()
        elif time.monotonic() - since >= SETTLE_S:
            return True
        time.sleep(0.5)
    return False


def sample(worker: Worker, data_dir: Path) -> dict[str, Any]:
    """What the worker holds right now."""
    figures = worker.metrics(RECEIVED, STREAM_TIME, VIEW_RECORDS, ROCKSDB_MEMORY)
    daily = worker.get("/orders/revenue/daily")
    stream = figures[STREAM_TIME]
    rss = rss_mb(worker.pid)
    rocksdb = figures[ROCKSDB_MEMORY] / 2**20
    return {
        "received": int(figures[RECEIVED]),
        "stream_day": round((stream - START.timestamp()) / 86_400, 2) if stream else None,
        "rss_mb": rss,
        # RSS apart from what RocksDB holds within its bounds: the Python heap and the
        # rest of the process.
        "rocksdb_memory_mb": round(rocksdb, 2),
        "rss_less_rocksdb_mb": None if rss is None else round(rss - rocksdb, 2),
        "rss_peak_mb": rss_mb(worker.pid, "VmHWM"),
        "view_records": int(figures[VIEW_RECORDS]),
        "days_in_view": len({row["date"] for row in daily}),
        "daily_rows": len(daily),
        "reports": len(worker.get("/orders/reports/daily")),
        "alerts": len(worker.get("/orders/alerts?limit=10000")),
        "rocksdb_mb": round(disk_mb(data_dir), 2),
        # The write-ahead logs hold what RocksDB's memtables hold (not yet flushed to
        # sorted files): a view, from outside, of memory that RocksDB owns.
        "rocksdb_wal_mb": round(disk_mb(data_dir, "*.log"), 2),
        "rocksdb_sst_mb": round(disk_mb(data_dir, "*.sst"), 2),
    }


def feed(worker: Worker, records: list[Record], per_day: int, days: int) -> list[dict[str, Any]]:
    """Send the orders ten days at a time; one sample after each ten days is processed."""
    rows = [{"day": 0, "settled": settle(worker, 0), **sample(worker, worker.workdir / "data")}]
    began, done = time.monotonic(), 0
    for day in marks(days):
        chunk = records[done * per_day : day * per_day]
        asyncio.run(send_all(worker.bootstrap, RAW, paced(chunk, None), label=RAW, quiet=True))
        done = day
        settled = settle(worker, day * per_day)
        row = {"day": day, "settled": settled, **sample(worker, worker.workdir / "data")}
        row["elapsed_s"] = round(time.monotonic() - began, 1)
        log.info("day %d: %s", day, row)
        rows.append(row)
    return rows


def run(per_day: int = PER_DAY, days: int = DAYS, partitions: int = 4) -> dict[str, Any]:
    """One worker fed ``days`` of orders on a fresh broker; its samples and end state."""
    started, load_before = time.monotonic(), os.getloadavg()
    records = orders(per_day, days)
    env = {"ORDERS_PARTITIONS": str(partitions)}
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        workdir = Path(tmp)
        broker = EmbeddedBroker(log_path=workdir / "broker.log").start()
        worker: Worker | None = None
        try:
            preload(broker.bootstrap, [], partitions)  # topics, catalog and inventory
            worker = Worker(broker.bootstrap, workdir, env).start()
            ready = worker
            wait_for(lambda: isinstance(ready.get("/orders/revenue/daily"), list), worker, 120,
                     "the views to answer")  # fmt: skip
            rows = feed(worker, records, per_day, days)
            # A clean stop flushes RocksDB's write buffers: the size on disk, and the
            # keys (counted read-only, the process gone), are then the whole table.
            worker.stop()
            data = workdir / "data"
            end = {
                "rocksdb_mb": round(disk_mb(data), 2),
                "rocksdb_wal_mb": round(disk_mb(data, "*.log"), 2),
                **count_keys(data),
            }
            end["lake_mb"] = round(disk_mb(workdir / "lake"), 2)
        finally:
            stop_all(None, worker, broker)
    return {
        "orders": len(records),
        "orders_per_day": per_day,
        "days": days,
        "event_time_from": START.isoformat(),
        "partitions": partitions,
        "by_ten_days": rows,
        "growth": growths(rows, days),
        "end": end,
        "bench_seconds": round(time.monotonic() - started, 1),
        "load_before": load_before,
        "load_after": os.getloadavg(),
    }


#: What growth is reported for, and how it is written.
GROWING = {
    "rss_mb": "RSS {:+,.2f} MiB",
    "rocksdb_memory_mb": "RocksDB memory {:+,.2f} MiB",
    "rss_less_rocksdb_mb": "RSS less RocksDB {:+,.2f} MiB",
    "view_records": "view records {:+,.0f}",
    "reports": "reports held {:+,.2f}",
    "rocksdb_wal_mb": "RocksDB WAL {:+,.2f} MiB",
}


def growths(rows: Sequence[dict[str, Any]], days: int) -> list[dict[str, Any]]:
    """Per day of event time, from day 10 to the last, over the last 20 days (at 90
    days: past the 60 days of figures kept and the week between sweeps), and over the
    second half (in a longer run, once the first 90 days are behind)."""
    last_20, second_half = max(days - 20, EVERY_DAYS), days // 2 // EVERY_DAYS * EVERY_DAYS
    spans = sorted({(EVERY_DAYS, days), (last_20, days), (max(second_half, EVERY_DAYS), days)})
    return [
        {"from_day": a, "to_day": b, **{f: growth(rows, f, a, b) for f in GROWING}}
        for a, b in spans
    ]


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def markdown(figures: dict[str, Any]) -> str:
    rows = figures["by_ten_days"]
    out = [
        f"{figures['orders']:,} orders, {figures['orders_per_day']:,} a day over "
        f"{figures['days']} days of event time; one worker, sampled after each 10 days:",
        "",
        "| event day | orders counted | RSS MiB | MiB/day since previous | RocksDB memory MiB "
        "| RSS less RocksDB | view records | days in daily view | reports held | "
        "RocksDB MiB on disk (of which WAL) |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for before, row in itertools.pairwise([None, *rows]):
        per_day = None
        if before is not None and row["rss_mb"] is not None and before["rss_mb"] is not None:
            per_day = (row["rss_mb"] - before["rss_mb"]) / (row["day"] - before["day"])
        out.append(
            f"| {row['day']} | {row['received']:,} | {_num(row['rss_mb'])} | "
            f"{_num(per_day, 2)} | {_num(row.get('rocksdb_memory_mb'), 1)} | "
            f"{_num(row.get('rss_less_rocksdb_mb'))} | {row['view_records']:,} | "
            f"{row['days_in_view']} | "
            f"{row['reports']} | {row['rocksdb_mb']:.1f} ({row['rocksdb_wal_mb']:.1f}) |"
        )
    end = figures["end"]
    kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(end["by_kind"].items()))
    growth_lines = [
        f"- day {g['from_day']} to {g['to_day']}: "
        + ", ".join("-" if g[f] is None else text.format(g[f]) for f, text in GROWING.items())
        for g in figures["growth"]
    ]
    if any(not row["settled"] for row in rows):
        growth_lines.append("- some samples were taken before the view-records gauge settled")
    return "\n".join(
        [
            *out,
            "",
            "Growth per day of event time:",
            *growth_lines,
            "",
            f"RocksDB at the end (worker stopped): {end['rocksdb_mb']:.1f} MiB, "
            f"{end['keys']:,} keys ({kinds}). Bench: {figures['bench_seconds']:.0f} s.",
        ]
    )
