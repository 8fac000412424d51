"""From an order produced to its daily figure visible in ``/orders/revenue/daily``.

One orders worker (as bench/pipeline.py starts it) on a fresh embedded broker with the
reference data loaded. A producer sends orders open loop at a steady rate (each at its
scheduled time, whatever the acknowledgements do), stamped with the wall clock, while a
poller thread reads the view every ``every`` s. Each order goes to a group (day,
channel, state) fed by one partition only: the states are shared out between the
partitions and each order's customer is picked from its state's partition. A group's
orders are then processed in the order they were sent, so once the view's
``orders_all_statuses`` of a group reaches k, its k-th order sent is visible: the
latency of an order is the end of the first poll that showed it minus the moment it was
handed to the Kafka producer (``sent``); the moment Kafka acknowledged it is kept too.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import tempfile
import threading
import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from bench import data
from bench.machine import cpu_seconds
from bench.pipeline import RAW, Worker, preload, stop_all, wait_for
from producers.orders import PLACES, OrderGenerator, load_catalog
from streams.common.broker import EmbeddedBroker

RATE = 1_000.0
SECONDS = 60.0
EVERY = 0.02
TARGET_P99_MS = 500.0
#: As producers/send.py, the product's producers.
LINGER_MS = 20
STATES = tuple(sorted({state for state, _city in PLACES}))
CITY = {state: city for state, city in reversed(PLACES)}

Group = tuple[str, str, str]


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest rank: the smallest value with at least ``q`` % of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(len(ordered) * q / 100) - 1, 0)]


def first_seen(groups: Sequence[Hashable], polls: Sequence[Mapping[Any, int]]) -> list[int | None]:
    """For each order (its group, in the order sent), the index of the first poll whose
    count for that group includes it: the k-th order of a group is in every count >= k."""
    rank: dict[Hashable, int] = {}
    cursor: dict[Hashable, int] = {}
    out: list[int | None] = []
    for group in groups:
        k = rank[group] = rank.get(group, 0) + 1
        i = cursor.get(group, 0)
        while i < len(polls) and polls[i].get(group, 0) < k:
            i += 1
        cursor[group] = i
        out.append(i if i < len(polls) else None)
    return out


PROCESSING = "streams_orders_processing_latency_seconds_bucket"


def buckets(metrics_text: str, name: str = PROCESSING) -> dict[float, float]:
    """A Prometheus histogram's cumulative counts by upper bound (``le``)."""
    out: dict[float, float] = {}
    for line in metrics_text.splitlines():
        if line.startswith(name + "{"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            out[float(bound)] = out.get(float(bound), 0.0) + float(line.rsplit(" ", 1)[1])
    return out


def bucket_quantile(
    before: dict[float, float], after: dict[float, float], q: float
) -> float | None:
    """The upper bound of the bucket holding the ``q`` % quantile of what was observed
    between two readings (None: beyond the last bound, or nothing observed)."""
    counts = {le: after[le] - before.get(le, 0.0) for le in sorted(after)}
    total = counts.get(math.inf, max(counts.values(), default=0.0))
    for le, count in counts.items():
        if total and count >= total * q / 100:
            return None if le == math.inf else le
    return None


def plan(n: int, partitions: int, seed: int = data.SEED) -> list[dict[str, Any]]:
    """``n`` valid orders (no timestamp yet), each state's orders all in one partition."""
    customers: dict[int, list[str]] = {}
    for c in range(1, 5001):
        customer = f"CUST-{c:05d}"
        customers.setdefault(data.partition_of(customer.encode(), partitions), []).append(customer)
    states = {p: STATES[p::partitions] for p in range(partitions)}
    rng = random.Random(seed)
    generator = OrderGenerator(load_catalog(), seed=seed)
    orders = []
    for _ in range(n):
        order = orjson.loads(next(generator)[1])
        partition = rng.randrange(partitions)
        state = rng.choice(states[partition])
        order["customer_id"] = rng.choice(customers[partition])
        order["shipping_address"] = {"country": "US", "state": state, "city": CITY[state]}
        orders.append(order)
    return orders


@dataclass
class Sent:
    scheduled: list[float] = field(default_factory=list)
    sent: list[float] = field(default_factory=list)
    acked: list[float] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)


async def produce(bootstrap: str, orders: list[dict[str, Any]], rate: float) -> Sent:
    """Send ``orders`` at ``rate``/s, open loop: each at its time, late ones at once."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=LINGER_MS, acks="all")
    await producer.start()
    out = Sent(acked=[math.nan] * len(orders))
    pending = []
    try:
        began = time.monotonic() + 0.05
        for i, order in enumerate(orders):
            due = began + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            now = datetime.now(UTC)
            order["timestamp"] = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            key, value = order["customer_id"].encode(), orjson.dumps(order)
            out.scheduled.append(due)
            out.sent.append(time.monotonic())
            future = await producer.send(RAW, key=key, value=value)
            future.add_done_callback(lambda _f, i=i: out.acked.__setitem__(i, time.monotonic()))
            pending.append(future)
            state = order["shipping_address"]["state"]
            out.groups.append((now.date().isoformat(), order["channel"], state))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return out


class Poller:
    """Reads the view every ``every`` s in a thread: (start, end, counts per group) per poll."""

    def __init__(self, worker: Worker, path: str, every: float) -> None:
        self.worker, self.path, self.every = worker, path, every
        self.polls: list[tuple[float, float, dict[Group, int]]] = []
        self.errors = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="poller", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.done.set()
        if self.thread.is_alive():
            self.thread.join(timeout=10)

    def _run(self) -> None:
        while not self.done.is_set():
            before = time.monotonic()
            try:
                rows = orjson.loads(self.worker.raw(self.path))
            except OSError:
                self.errors += 1
            else:
                counts: dict[Group, int] = {
                    (r["date"], r["channel"], r["region"]): int(r["orders_all_statuses"])
                    for r in rows
                }
                self.polls.append((before, time.monotonic(), counts))
            self.done.wait(max(self.every - (time.monotonic() - before), 0))


def summarize(sent: Sent, polls: list[tuple[float, float, dict[Group, int]]]) -> dict[str, Any]:
    """Latency figures (ms) of every order; pure, given the records of a run."""
    seen = first_seen(sent.groups, [counts for _b, _e, counts in polls])
    upper, lower = [], []
    for index, t in zip(seen, sent.sent, strict=True):
        if index is not None:
            upper.append((polls[index][1] - t) * 1000)
            # The poll before did not show it: it became visible after that one began.
            lower.append(max((polls[index - 1][0] - t) * 1000, 0.0) if index else 0.0)
    acks = [(a - s) * 1000 for s, a in zip(sent.sent, sent.acked, strict=True) if a == a]
    behind = [(s - d) * 1000 for s, d in zip(sent.sent, sent.scheduled, strict=True)]
    requests = [(e - b) * 1000 for b, e, _c in polls]
    gaps = [(b2 - b1) * 1000 for (b1, _e1, _c1), (b2, _e2, _c2) in pairwise(polls)]
    span = sent.sent[-1] - sent.sent[0] if len(sent.sent) > 1 else 0.0
    p99 = percentile(upper, 99)
    return {
        "orders": len(sent.sent),
        "seen": len(upper),
        "unseen": len(sent.sent) - len(upper),
        "sent_per_s": (len(sent.sent) - 1) / span if span > 0 else None,
        "send_behind_schedule_ms": {
            "p99": percentile(behind, 99),
            "max": max(behind, default=None),
        },
        "latency_ms": {f"p{q}": percentile(upper, q) for q in (50, 90, 99)}
        | {"max": max(upper, default=None)},
        "latency_lower_bound_ms": {f"p{q}": percentile(lower, q) for q in (50, 90, 99)},
        "produce_ack_ms": {f"p{q}": percentile(acks, q) for q in (50, 99)}
        | {"max": max(acks, default=None)},
        "polls": len(polls),
        "poll_interval_ms": {"median": percentile(gaps, 50), "p99": percentile(gaps, 99)},
        "poll_request_ms": {f"p{q}": percentile(requests, q) for q in (50, 99)}
        | {"max": max(requests, default=None)},
        "target_p99_ms": TARGET_P99_MS,
        "target_met": p99 is not None and p99 < TARGET_P99_MS and len(upper) == len(sent.sent),
    }


def run(
    rate: float = RATE, seconds: float = SECONDS, every: float = EVERY, partitions: int = 4
) -> dict[str, Any]:
    """One run on a fresh broker; the figures of summarize() and the run's context."""
    orders = plan(int(rate * seconds), partitions)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp:
        workdir = Path(tmp)
        broker = EmbeddedBroker(log_path=workdir / "broker.log").start()
        worker: Worker | None = None
        poller: Poller | None = None
        try:
            preload(broker.bootstrap, [], partitions)
            worker = Worker(
                broker.bootstrap, workdir, {"ORDERS_PARTITIONS": str(partitions)}
            ).start()
            day = datetime.now(UTC).date().isoformat()
            path = f"/orders/revenue/daily?from={day}"
            ready = worker
            wait_for(lambda: isinstance(ready.get(path), list), worker, 120, "the view to answer")
            poller = Poller(worker, path, every)
            poller.start()
            histogram = buckets(worker.raw("/metrics").decode())
            cpu = cpu_seconds(worker.pid), cpu_seconds(broker.pid)
            began = time.monotonic()
            sent = asyncio.run(produce(broker.bootstrap, orders, rate))
            ended = time.monotonic()
            cpu_end = cpu_seconds(worker.pid), cpu_seconds(broker.pid)
            polls = poller.polls

            def all_seen() -> bool:
                return None not in first_seen(sent.groups, [c for _b, _e, c in polls[-1:]])

            wait_for(all_seen, worker, 60, "every order in the view")
            poller.stop()
            result = summarize(sent, poller.polls)
            processed = buckets(worker.raw("/metrics").decode())
            result["worker_processing_s_bucket"] = {
                f"p{q}": bucket_quantile(histogram, processed, q) for q in (50, 99)
            }
        finally:
            if poller is not None:
                poller.stop()
            stop_all(None, worker, broker)

    def share(i: int) -> float | None:
        a, b = cpu[i], cpu_end[i]
        return None if a is None or b is None else (b - a) / (ended - began)

    return {
        **result,
        "rate": rate,
        "seconds": seconds,
        "poll_every_s": every,
        "poll_errors": poller.errors,
        "partitions": partitions,
        "groups": len(set(sent.groups)),
        "worker_cpu": share(0),
        "broker_cpu": share(1),
        "linger_ms": LINGER_MS,
        "load_before": load_before,
        "load_after": os.getloadavg(),
    }


def markdown(figures: dict[str, Any]) -> str:
    lat, req = figures["latency_ms"], figures["poll_request_ms"]
    met = "met" if figures["target_met"] else "**NOT met**"

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:,.0f}"

    return "\n".join(
        [
            "| orders seen | sent/s | p50 ms | p90 ms | p99 ms | max ms | poll every ms | "
            "poll request p50/p99 ms |",
            "|--:|--:|--:|--:|--:|--:|--:|--:|",
            f"| {figures['seen']:,}/{figures['orders']:,} | {figures['sent_per_s']:,.1f} | "
            f"{ms(lat['p50'])} | {ms(lat['p90'])} | {ms(lat['p99'])} | {ms(lat['max'])} | "
            f"{ms(figures['poll_interval_ms']['median'])} | {req['p50']:.1f} / {req['p99']:.1f} |",
            "",
            f"Target p99 < {figures['target_p99_ms']:.0f} ms: {met}.",
        ]
    )
