"""One batch of orders.raw: decode, check, count, emit, then write the tables.

Order matters for exactly-once: a record whose partition clock is written counts as
handled after a crash and emits nothing again, so everything the batch emits (the
enriched and dead-letter records, the Parquet rows) is acknowledged by Kafka before any
clock: the Parquet rows first, the records together with the tables' other keys (one
wait, ``write_all(along=...)``), then the clocks; the tables' changelog is acknowledged
before RocksDB (streams/common/table_io.py). A crash after the keys but before the clock
leaves an order whose keys all hold it ("replayed" by ``apply_order``) and whose records
may be lost: it sends them again (``Applied.emits``). The worker's metrics move only
once all of it is done: a batch that fails and is retried is counted once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Container
from dataclasses import dataclass, field
from itertools import chain, islice
from typing import Any

import orjson

from streams.common.batches import PROCESSING_ERROR, by_partition
from streams.common.deadletter import dead_letter
from streams.common.exactly_once import OFFSET, PartitionState
from streams.common.histograms import observe_all
from streams.common.labels import allowed
from streams.common.sends import Confirmed
from streams.common.table_io import RocksPartition, write_all
from streams.orders.aggregates import (
    Applied,
    clock_key,
    flush_partition,
    sweep_key,
    verdict_key,
    watermark,
)
from streams.orders.lake import Lake
from streams.orders.lake_columns import LakeBatch
from streams.orders.logic import Rules, enrich
from streams.orders.models import Order
from streams.orders.partition_batch import PartitionBatch
from streams.orders.pipeline import DLQ, ENRICHED, OrdersPipeline
from streams.orders.retention import FIGURES, expired_figures, expired_orders, sweep_due, swept

log = logging.getLogger(__name__)

#: Expired keys deleted per write of a sweep. A week's order ids written at once (28,000
#: tombstones at 4,000 orders a day) left the worker's RSS tens of MiB higher for good:
#: the allocator kept that transient's memory (docs/orders.md, memory over event time).
SWEEP_CHUNK = 2_000


@dataclass
class Tally:
    """What a batch counted, applied to the metrics once the batch is done."""

    kinds: Counter[str] = field(default_factory=Counter)
    accepted: Counter[tuple[str, str]] = field(default_factory=Counter)
    revenue: Counter[str] = field(default_factory=Counter)
    issues: Counter[str] = field(default_factory=Counter)
    letters: Counter[str] = field(default_factory=Counter)
    stream_ms: int | None = None

    def count(
        self, order: Order, enriched: dict[str, Any], outcome: Applied, channels: Container[str]
    ) -> None:
        """Count an applied order (``enriched``: its enriched value)."""
        channel = allowed(order.channel, channels)
        self.accepted[(channel, enriched["status"])] += 1
        if enriched["counts_as_revenue"]:
            self.revenue[channel] += order.items_cents
        if outcome.issues:
            self.issues.update(outcome.issues)
        if outcome.revision:
            self.kinds["revision"] += 1

    def publish(self, pipeline: OrdersPipeline, events: list[Any]) -> None:
        metrics = pipeline.metrics
        metrics.received.inc(len(events))
        metrics.batch_size.observe(len(events))
        for (channel, status), count in self.accepted.items():
            metrics.accepted.labels(channel, status).inc(count)
        for channel, cents in self.revenue.items():
            metrics.revenue.labels(channel).inc(cents / 100)
        for issue, count in self.issues.items():
            metrics.quality_issues.labels(issue).inc(count)
        for reason, count in self.letters.items():
            metrics.dead_letters.labels(reason).inc(count)
        metrics.duplicates.inc(self.kinds["duplicate"])
        metrics.replayed.inc(self.kinds["replayed"])
        metrics.late_accepted.inc(self.kinds["revision"])
        if self.stream_ms:
            metrics.stream_time.set(self.stream_ms / 1000)
        now = time.time()
        observe_all(metrics.latency, [max(now - e.message.timestamp, 0.0) for e in events])


async def handle_batch(pipeline: OrdersPipeline, table: Any, events: list[Any]) -> None:
    """Process one batch: per partition, read and write each table key once."""
    producer = pipeline.app.producer
    sends = Confirmed(producer)
    tally = Tally()
    wall_ms = int(time.time() * 1000)
    written = []
    # Enriched orders are sent after the Parquet copy is written: a row the copy
    # refuses (a poison record, dead-lettered in the end) never reaches the topic.
    outputs: list[tuple[str, bytes, bytes]] = []
    copies = LakeWrites(pipeline.lake)
    # Each partition's verdicts are sent as soon as its records are judged: their wait,
    # which must end before its other keys are sent, runs while the next are processed.
    verdicts = Started()
    sweeps: list[tuple[int, int, int]] = []  # (partition, high mark, week): a sweep due
    try:
        for partition, batch in by_partition(events).items():
            io = RocksPartition(table, partition)
            state = PartitionState(io)
            records = PartitionBatch(state, state, partition, pipeline.catalog, pipeline.rules)
            outcomes = records.process_events(batch, wall_ms)
            verdicts.add(write_apart(table, partition, state, verdict_key(partition), producer))
            copies.start(partition, await emit(pipeline, sends, batch, outcomes, tally, outputs))
            high = watermark(state, partition)
            if high is not None:
                tally.stream_ms = max(tally.stream_ms or 0, high)
            week = sweep_due(state, partition)
            if week is not None and high is not None:
                sweeps.append((partition, high, week))
            flush_partition(state, partition)
            written.append(io)
    finally:
        await copies.settle()
        await verdicts.settle()
    await copies.done()
    await verdicts.done()
    for topic, key, value in outputs:
        await sends.send(topic, key, value)
    # Acknowledged with the tables' keys, before the clocks: a crash between the two
    # leaves keys written and outputs maybe not, and such a record sends them again.
    await write_all(written, producer, along=sends)
    # Between batches: a record is never judged both before and after a sweep, so a
    # crash in the middle of one cannot make a replayed duplicate look new.
    for partition, high, week in sweeps:
        await forget_expired(table, partition, high, pipeline.rules, producer, week)
    tally.publish(pipeline, events)


class Started:
    """Work a batch started and goes on beside (each a future), awaited before what must
    follow it."""

    def __init__(self) -> None:
        self.futures: list[asyncio.Future[Any]] = []

    def add(self, future: Awaitable[Any]) -> None:
        self.futures.append(asyncio.ensure_future(future))

    async def settle(self) -> None:
        """Wait for every one, failed or not: a batch that fails is tried again, and its
        retry must not race what this try still writes."""
        await asyncio.gather(*self.futures, return_exceptions=True)

    async def done(self) -> None:
        """Raise the first that failed (once ``settle`` waited for all)."""
        for future in self.futures:
            future.result()


class LakeWrites(Started):
    """The Parquet copies of a batch's partitions, each started in a thread as soon as
    its rows are built: pyarrow releases the GIL while it encodes and writes, so the
    copy of one partition runs while the next partition's orders are processed."""

    def __init__(self, lake: Lake | None) -> None:
        super().__init__()
        self.lake = lake

    def start(self, partition: int, rows: LakeBatch) -> None:
        if self.lake is not None:
            self.add(self.lake.write(partition, rows))


def write_apart(
    table: Any, partition: int, state: PartitionState, key: str, producer: Any
) -> Awaitable[int]:
    """Take the value ``state`` holds for ``key`` out of its flush, now, and write it on
    its own (changelog acknowledged, then RocksDB) when awaited."""
    io = RocksPartition(table, partition)
    value = state.detach(key)
    if value is not None:
        io[key] = value
    return write_all([io], producer)


async def forget_expired(
    table: Any, partition: int, high_mark: int, rules: Rules, producer: Any, week: int
) -> int:
    """Delete what the partition keeps past its horizons: order ids past retention, and
    figures past ``history_ms`` (retention.py says why both are safe); returns how many.

    Run after a batch's clock is written (the next batch's records are all judged after
    it), ``SWEEP_CHUNK`` keys at a time, each chunk's changelog acknowledged and RocksDB
    written before the next is read; ``week`` is recorded as swept (``sweep|<p>``) only
    once all are. A failure fails the batch: its retry, whose records the clock already
    counts, sweeps again (deleting is idempotent), and so does the next batch after a
    crash."""
    forgotten = 0
    while True:
        io = RocksPartition(table, partition)
        expired = chain(
            expired_orders(io.scan("order|"), high_mark, rules),
            *(expired_figures((k for k, _v in io.scan(p)), high_mark, rules) for p in FIGURES),
        )
        for key in islice(expired, SWEEP_CHUNK):
            del io[key]
        chunk = len(io.pending)
        if chunk < SWEEP_CHUNK:
            io[sweep_key(partition)] = swept(week)
        if io.pending:
            await write_all([io], producer)
        forgotten += chunk
        if chunk < SWEEP_CHUNK:
            return forgotten


async def emit(
    pipeline: OrdersPipeline,
    sends: Confirmed,
    events: list[Any],
    outcomes: list[Applied],
    tally: Tally,
    outputs: list[tuple[str, bytes, bytes]],
) -> LakeBatch:
    """Dead-letter what a partition's records rejected and add the enriched orders to
    ``outputs``; returns the Parquet rows.

    Records go straight to the transport producer (Faust's topic layer costs more per
    record than the rest of the work).
    """
    rules = pipeline.rules
    rows = LakeBatch()
    inventory = pipeline.inventory()
    for event, outcome in zip(events, outcomes, strict=True):
        tally.kinds[outcome.kind] += 1
        if outcome.kind == "rejected" and outcome.rejected is not None:
            rejected = outcome.rejected
            await dead_letter(sends, DLQ, event.message, rejected.reason, rejected.detail)
            tally.letters[rejected.reason] += 1
        elif outcome.emits and outcome.order is not None:
            order = outcome.order
            enriched = enrich(order, pipeline.catalog, inventory, rules, revision=outcome.revision)
            outputs.append((ENRICHED, order.order_id.encode(), orjson.dumps(enriched)))
            # The Parquet row is made from the order itself, not from the JSON sent.
            rows.add(event.message.offset, order, enriched)
            if outcome.kind == "applied":
                tally.count(order, enriched, outcome, pipeline.channels)
    return rows


async def reject(pipeline: OrdersPipeline, table: Any, event: Any, error: Exception) -> None:
    """Settle a record that fails alone, for good (streams/common/batches.py): dead-letter
    it as processing_error and move its partition's clock past it, counted under that
    reason, so a restart does not try it again."""
    message = event.message
    io = RocksPartition(table, message.partition)
    state = PartitionState(io)
    clock = state.peek(clock_key(message.partition))
    if clock is not None and int(clock[OFFSET]) >= message.offset:
        # A try of its batch wrote the clock past it, then a later step (the weekly
        # sweep) failed: the record was judged for good then, and a dead letter now
        # would give an order that counts a second fate. The failure is the batch's.
        log.error(
            "orders: %s[%d]@%d was settled before its batch failed (%s: %s); not dead-lettered",
            message.topic,
            message.partition,
            message.offset,
            type(error).__name__,
            error,
        )
        pipeline.metrics.task_failures.labels("after_clock").inc()
        return
    producer = pipeline.app.producer
    sends = Confirmed(producer)
    detail = f"{type(error).__name__}: {error}"
    await dead_letter(sends, DLQ, message, PROCESSING_ERROR, detail)
    alone = PartitionBatch(state, state, message.partition, pipeline.catalog, pipeline.rules)
    alone.settle(message.offset, int(time.time() * 1000), None, f"rejected:{PROCESSING_ERROR}")
    alone.close()
    flush_partition(state, message.partition)
    # The clock is the only key: the dead letter is acknowledged before it is sent.
    await write_all([io], producer, along=sends)
    pipeline.metrics.received.inc()
    pipeline.metrics.dead_letters.labels(PROCESSING_ERROR).inc()
