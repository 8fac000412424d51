"""A worker whose table holds about a million keys, killed and replaced.

The orders worker's one table (``aggregates``) grows with two kinds of keys: a
``customer|<id>`` per customer and an ``order|<customer>|<order>`` per order id (kept
for deduplication); days, hours and products add a few thousand more. The table is
filled the faithful way: N generated orders (no faults) from N possible customers,
preloaded into orders.raw and processed by an orders worker as bench/pipeline.py starts
it, until ``/orders/revenue/daily`` holds them all. The worker is then SIGKILLed and
replaced twice, against the same broker:

(a) on its RocksDB directory as it was left: Faust reads the changelog from the offset
    RocksDB holds, and the mirror behind the views reads the changelog from the start;
(b) with no data directory (a new, empty one): every partition is rebuilt from the
    changelog.

Before each start one new order (a probe) is sent, dated on a day of its own. From the
process start, each replacement is timed until ``/orders/revenue/daily`` first answers
200, until it answers with every order of the fill (the full figure), and until it shows
the probe (it processes again). The keys each replacement held are counted in its
RocksDB directory once it is killed in turn (read only), never assumed from N.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from rocksdict import AccessType, Options, Rdict

from bench import data
from bench.pipeline import RAW, RECEIVED, Worker, preload, stop_all, wait_for
from producers.orders import OrderGenerator, Record, load_catalog
from producers.send import paced, send_all
from streams.common.broker import EmbeddedBroker

log = logging.getLogger("bench.recovery")

ORDERS = 640_000  # about 1,027,000 keys: only customers with a counted order have one
TARGET_S = 30.0
EVERY = 0.1
OFFSET_KEY = b"__faust\0offset__"


def fill_orders(n: int, seed: int = data.SEED) -> tuple[list[Record], list[Record]]:
    """``n`` orders over N customers, 2 s apart, and two probes, each on a later day."""
    generator = OrderGenerator(
        load_catalog(), seed=seed, start=data.START, step=data.STEP, customers=n
    )
    orders = list(itertools.islice(generator, n))
    probes = []
    for day in (2, 3):
        key, value = next(generator)
        order = orjson.loads(value)
        when = data.START + data.STEP * n + timedelta(days=day)
        order["timestamp"] = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        probes.append((key, orjson.dumps(order)))
    return orders, probes


def count_keys(datadir: Path) -> dict[str, Any]:
    """Keys per kind in every RocksDB partition under ``datadir`` (its process dead),
    and the changelog offset each partition had reached."""
    kinds: Counter[str] = Counter()
    offsets: dict[str, int] = {}
    for path in sorted(datadir.rglob("*.db")):
        db = Rdict(str(path), Options(raw_mode=True), access_type=AccessType.read_only())
        try:
            for key in db.keys():  # noqa: SIM118 (an Rdict has no __iter__)
                if key == OFFSET_KEY:
                    offsets[path.name] = int(db[key])
                else:
                    kinds[key.lstrip(b'"').split(b"|", 1)[0].decode()] += 1
        finally:
            db.close()
    return {"keys": sum(kinds.values()), "by_kind": dict(kinds), "changelog_offsets": offsets}


#: Lines of the worker's log that mark its start-up: the consumer group's assignment,
#: the end of Faust's table recovery, and the views' readiness (the mirror caught up).
MARKS = {
    "assigned": "Setting newly assigned partitions",
    "tables_recovered": "[^---Recovery]: Recovery complete",
    "views_ready": "orders: catalog of",
}


def log_marks(lines: Iterable[str], pid: int, started: datetime) -> dict[str, float]:
    """Seconds from ``started`` to the first line of process ``pid`` holding each of MARKS."""
    out: dict[str, float] = {}
    tag = f"] [{pid}] "
    for line in lines:
        if tag not in line:
            continue
        for name, text in MARKS.items():
            if name not in out and text in line:
                # The log's times are local: read as such, made aware.
                stamp = datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f").astimezone()
                out[name] = (stamp - started).total_seconds()
    return out


def daily_rows(worker: Worker) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = worker.get("/orders/revenue/daily")
    return rows


def replace(
    worker: Worker, n: int, probe: Record, days: tuple[str, str], killed: float
) -> dict[str, Any]:
    """Send ``probe``, start ``worker``; seconds from its start to each milestone. The
    fill is every day before ``days[0]``; the probe is dated ``days[1]``."""
    asyncio.run(send_all(worker.bootstrap, RAW, paced([probe], None), label="probe", quiet=True))
    marks: dict[str, float] = {}
    started, wall = time.monotonic(), datetime.now().astimezone()
    worker.start()
    marks["healthy"] = time.monotonic()

    def reached() -> bool:
        rows = daily_rows(worker)
        now = time.monotonic()
        marks.setdefault("view_answers", now)
        fill = sum(int(r["orders_all_statuses"]) for r in rows if r["date"] < days[0])
        if fill == n:
            marks.setdefault("view_full", now)
        if any(r["date"] == days[1] for r in rows):
            marks.setdefault("processes_again", now)
        return "view_full" in marks and "processes_again" in marks

    wait_for(reached, worker, 600, "the full figure and the probe in the view", every=EVERY)
    out: dict[str, Any] = {f"{name}_s": at - started for name, at in marks.items()}
    out["started_after_kill_s"] = started - killed
    assert worker.pid is not None
    with worker.log_path.open(errors="replace") as log_lines:
        out["log_s"] = log_marks(log_lines, worker.pid, wall)
    out["received_after_start"] = worker.metrics(RECEIVED)[RECEIVED]
    out["target_met"] = max(out["view_full_s"], out["processes_again_s"]) < TARGET_S
    return out


def run(n: int = ORDERS, partitions: int = 4) -> dict[str, Any]:
    """Fill, kill, and the two replacements, on one fresh broker."""
    load_before = os.getloadavg()
    orders, probes = fill_orders(n)
    day = [orjson.loads(p[1])["timestamp"][:10] for p in probes]
    env = {"ORDERS_PARTITIONS": str(partitions)}
    with tempfile.TemporaryDirectory(prefix="bench-recovery-") as tmp:
        workdir = Path(tmp)
        lake = str(workdir / "lake")
        broker = EmbeddedBroker(log_path=workdir / "broker.log").start()
        worker: Worker | None = None
        try:
            began = time.monotonic()
            preload(broker.bootstrap, orders, partitions)
            worker = first = Worker(broker.bootstrap, workdir, env).start()
            log.info("filling: %d orders", n)
            wait_for(
                lambda: sum(int(r["orders_all_statuses"]) for r in daily_rows(first)) == n,
                worker,
                3600,
                "the fill in the view",
                every=1.0,
            )
            fill_s = time.monotonic() - began
            # Each replacement starts at once, as a supervisor's would (the dead member
            # stays in the consumer group until its session times out); (b) on a new,
            # empty data directory (the lake kept), so that (a)'s, and the keys it
            # held, are counted once all is over.
            worker.kill()
            killed = time.monotonic()
            log.info("filled in %.0f s; killed", fill_s)
            cases: dict[str, Any] = {}
            dirs = {"a_rocksdb_kept": workdir, "b_changelog_only": workdir / "b"}
            for (case, where), probe, probe_day in zip(dirs.items(), probes, day, strict=True):
                where.mkdir(exist_ok=True)
                worker = Worker(broker.bootstrap, where, {**env, "ORDERS_PARQUET_URI": lake})
                cases[case] = replace(worker, n, probe, (day[0], probe_day), killed)
                worker.kill()
                killed = time.monotonic()
                log.info("%s: %s", case, cases[case])
            for case, where in dirs.items():
                cases[case]["keys_held"] = count_keys(where / "data")
        finally:
            stop_all(None, worker, broker)
    return {
        "orders": n,
        "partitions": partitions,
        "fill_s": fill_s,
        **cases,
        "target_s": TARGET_S,
        "poll_every_s": EVERY,
        "load_before": load_before,
        "load_after": os.getloadavg(),
    }


def markdown(figures: dict[str, Any]) -> str:
    out = [
        f"{figures['orders']:,} orders; seconds from the replacement's process start "
        "(started as soon as the worker before it was killed):",
        "",
        "| replacement | /health | view answers | full figure | processes again | "
        f"target < {figures['target_s']:.0f} s | keys held after |",
        "|---|--:|--:|--:|--:|---|--:|",
    ]
    for case in ("a_rocksdb_kept", "b_changelog_only"):
        c = figures[case]
        out.append(
            f"| {case} | {c['healthy_s']:.1f} | {c['view_answers_s']:.1f} | "
            f"{c['view_full_s']:.1f} | {c['processes_again_s']:.1f} | "
            f"{'met' if c['target_met'] else '**NOT met**'} | {c['keys_held']['keys']:,} |"
        )
    return "\n".join(out)
