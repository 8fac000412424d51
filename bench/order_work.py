"""The orders pipeline's own CPU cost per order, no broker: ``python -m bench.order_work``.

Generated orders (the producer's generator, with the faults the integration tests
inject: duplicates, v1.1/v2 variants, malformed records, late orders) go through what
``streams/orders/batch.py`` does per batch, minus Kafka: the records, per partition
and in batches, through a ``PartitionBatch`` (the stage is still called
``process_record``) against a JSON-encoding in-memory table (a stand-in for
``RocksPartition``), ``emit`` (dead letters, enrichment, the Parquet rows,
the tally) into an unconfirmed ``Confirmed``, the Parquet copy written to a temporary
directory, the tables' flush, and the metrics. Each stage is timed per batch and
summed; the figures are the best of ``--repeat`` runs, in CPU microseconds per record
(``time.process_time``, so other load on the machine counts less).

The digests at the end cover everything a user could observe (enriched records, dead
letters with their headers, the table, the Parquet files' bytes, the metrics but the
wall-clock latency): a change that only makes the work cheaper leaves them equal.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pyarrow.fs as pafs
from prometheus_client import CollectorRegistry

from producers.orders import Faults, OrderGenerator, inventory_records, load_catalog
from streams.common.exactly_once import PartitionState
from streams.common.parquet import PartitionedParquetWriter
from streams.common.partitioning import partition_for
from streams.common.sends import Confirmed
from streams.orders.aggregates import flush_partition, watermark
from streams.orders.batch import Tally, emit
from streams.orders.lake import ENRICHED_SCHEMA, Lake, LakeMetrics, partition_of
from streams.orders.logic import Rejected, Rules, parse_order, reference_record
from streams.orders.metrics import OrdersMetrics
from streams.orders.models import CatalogEntry, InventoryRow
from streams.orders.partition_batch import PartitionBatch
from streams.orders.retention import sweep_due

PARTITIONS = 4
BATCH = 2000
START = datetime(2025, 8, 1, tzinfo=UTC)
STEP = timedelta(seconds=2)
#: As tests/integration/test_orders_recovery.py injects them.
FAULTS = Faults(duplicates=0.03, variants=0.2, malformed=0.01, late=0.05)
STAGES = ("process_record", "emit", "lake", "flush", "publish")


@dataclass(frozen=True)
class Message:
    """The parts of a Kafka record the batch reads."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float


@dataclass(frozen=True)
class Event:
    message: Message


class JsonStore:
    """A table partition as RocksPartition is to PartitionState: keys and values
    encoded as JSON on write and decoded on read (no RocksDB, no changelog)."""

    returns_fresh_values = True

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    def get(self, key: str) -> Any:
        raw = self.data.get(orjson.dumps(key))
        return None if raw is None else orjson.loads(raw)

    def __setitem__(self, key: str, value: Any) -> None:
        self.data[orjson.dumps(key)] = orjson.dumps(value)

    def __delitem__(self, key: str) -> None:
        del self.data[orjson.dumps(key)]


def records(n: int, seed: int) -> list[tuple[bytes | None, bytes]]:
    generator = OrderGenerator(load_catalog(), seed=seed, start=START, step=STEP, faults=FAULTS)
    return list(itertools.islice(generator, n))


def batches(recs: list[tuple[bytes | None, bytes]], wall_ms: int) -> dict[int, list[list[Event]]]:
    """The records as a consumer reads them: per partition (unkeyed ones in 0), in
    batches of ``BATCH``."""
    split: dict[int, list[Event]] = defaultdict(list)
    for key, value in recs:
        partition = 0 if key is None else partition_for(key, PARTITIONS)
        offset = len(split[partition])
        message = Message("orders.raw", partition, offset, key, value, wall_ms / 1000)
        split[partition].append(Event(message))
    return {
        p: [events[i : i + BATCH] for i in range(0, len(events), BATCH)]
        for p, events in sorted(split.items())
    }


def reference() -> tuple[dict[str, CatalogEntry], dict[str, dict[str, Any]]]:
    catalog = {str(e["product_id"]): CatalogEntry.model_validate(e) for e in load_catalog()}
    stock: dict[str, dict[str, Any]] = {}
    for key, value in inventory_records():
        try:
            row = reference_record(InventoryRow, key, value)
        except Rejected:
            continue
        stock[row.product_id] = row.model_dump(mode="json")
    return catalog, stock


def stand_in(rules: Rules, lake: Lake, registry: CollectorRegistry) -> Any:
    """What ``emit`` and ``Tally.publish`` read of an OrdersPipeline."""
    catalog, stock = reference()
    return SimpleNamespace(
        rules=rules,
        catalog=catalog,
        inventory=lambda: stock,
        channels=frozenset({"web", "mobile", "api"}),
        metrics=OrdersMetrics.create(registry),
        lake=lake,
    )


class Clock:
    """CPU seconds per stage, summed over batches."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = dict.fromkeys(STAGES, 0.0)
        self._mark = time.process_time()

    def start(self) -> None:
        self._mark = time.process_time()

    def lap(self, stage: str) -> None:
        now = time.process_time()
        self.spent[stage] += now - self._mark
        self._mark = now


async def run_once(
    parts: dict[int, list[list[Event]]], rules: Rules, wall_ms: int, root: Path
) -> tuple[dict[str, float], dict[str, str]]:
    """One pass over every batch; CPU seconds per stage and the digests of the output."""
    registry = CollectorRegistry()
    writer = PartitionedParquetWriter(
        pafs.LocalFileSystem(), str(root), ENRICHED_SCHEMA, partition_of
    )
    lake = Lake(writer, LakeMetrics.create(registry))
    pipeline = stand_in(rules, lake, registry)
    stores = {p: JsonStore() for p in parts}
    # Hashed as they come: holding every send would make the garbage collector's work
    # (part of each stage's figure) the bench's, not the pipeline's.
    sent = hashlib.sha256()
    clock = Clock()
    for partition, chunks in parts.items():
        for chunk in chunks:
            sends = await one_batch(pipeline, stores[partition], partition, chunk, wall_ms, clock)
            sent.update(orjson.dumps([list(map(repr, record)) for record in sends]))
    return clock.spent, {"sends": sent.hexdigest()[:16], **digests(stores, root, registry)}


async def one_batch(
    pipeline: Any, store: JsonStore, partition: int, events: list[Event], wall_ms: int, clock: Clock
) -> list[Any]:
    """handle_batch's work on one partition's batch, stage by stage; the sends."""
    sends = Confirmed(None)
    tally = Tally()
    outputs: list[tuple[str, bytes, bytes]] = []
    state = PartitionState(store)
    clock.start()
    records = PartitionBatch(state, state, partition, pipeline.catalog, pipeline.rules)
    outcomes = records.process_events(events, wall_ms)
    clock.lap("process_record")
    rows = await emit(pipeline, sends, events, outcomes, tally, outputs)
    for topic, key, value in outputs:
        await sends.send(topic, key, value)
    clock.lap("emit")
    pipeline.lake.write_orders(partition, rows)
    clock.lap("lake")
    high = watermark(state, partition)
    if high is not None:
        tally.stream_ms = max(tally.stream_ms or 0, high)
    sweep_due(state, partition)
    flush_partition(state, partition)
    clock.lap("flush")
    tally.publish(pipeline, events)
    clock.lap("publish")
    return sends.pending


def digests(
    stores: dict[int, JsonStore], root: Path, registry: CollectorRegistry
) -> dict[str, str]:
    def sha(parts: Iterator[bytes]) -> str:
        h = hashlib.sha256()
        for part in parts:
            h.update(len(part).to_bytes(8, "big") + part)
        return h.hexdigest()[:16]

    files = sorted(p for p in root.rglob("*.parquet"))
    samples = sorted(
        f"{s.name}{sorted(s.labels.items())}={s.value}"
        for metric in registry.collect()
        if "latency" not in metric.name and "write_seconds" not in metric.name
        for s in metric.samples
        if not s.name.endswith("_created")
    )
    return {
        "tables": sha(
            k + b"=" + v for p in sorted(stores) for k, v in sorted(stores[p].data.items())
        ),
        "parquet": sha(str(f.relative_to(root)).encode() + f.read_bytes() for f in files),
        "metrics": sha(s.encode() for s in samples),
    }


def parse_only(values: list[bytes | None]) -> float:
    started = time.process_time()
    for value in values:
        with contextlib.suppress(Rejected):
            parse_order(value)
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.order_work", description=__doc__)
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs; the best is shown")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    recs = records(args.orders, args.seed)
    n = len(recs)
    wall_ms = int((START + STEP * n + timedelta(days=1)).timestamp() * 1000)
    rules = Rules(max_future_ms=300_000, partitions=PARTITIONS, history_ms=60 * 86_400_000)
    parts = batches(recs, wall_ms)

    best = dict.fromkeys((*STAGES, "total", "parse_order alone"), float("inf"))
    seen: set[tuple[tuple[str, str], ...]] = set()
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="order-work-") as tmp:
            spent, digest = asyncio.run(run_once(parts, rules, wall_ms, Path(tmp)))
        seen.add(tuple(sorted(digest.items())))
        for stage, seconds in spent.items():
            best[stage] = min(best[stage], seconds)
        best["total"] = min(best["total"], sum(spent.values()))
        best["parse_order alone"] = min(best["parse_order alone"], parse_only([v for _, v in recs]))
    out = sys.stdout
    out.write(
        f"{n} records, {PARTITIONS} partitions, batches of {BATCH}, best of {args.repeat} "
        "(CPU µs per record)\n"
    )
    for stage, seconds in best.items():
        out.write(f"  {stage:<20} {seconds / n * 1e6:8.1f}\n")
    if len(seen) != 1:
        raise SystemExit(f"runs disagree: {seen}")
    for name, value in next(iter(seen)):
        out.write(f"  digest {name:<13} {value}\n")


if __name__ == "__main__":
    main()
