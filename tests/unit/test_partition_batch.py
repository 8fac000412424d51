"""A batch moves its partition's clock once, as record by record would
(streams.orders.aggregates.PartitionBatch)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from streams.common.exactly_once import OFFSET, PartitionState
from streams.orders.aggregates import clock_key, flush_partition
from streams.orders.logic import DAY_MS, Rules
from streams.orders.models import CatalogEntry
from streams.orders.partition_batch import PartitionBatch, process_record
from tests.unit.factories import bundled_catalog, item, raw, v1, without_verdicts

RULES = Rules(retention_ms=3 * DAY_MS)
AUG_1 = 1_754_006_400_000  # 2025-08-01T00:00:00Z


def stamp(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def random_stream(rng: random.Random, n: int) -> list[bytes | None]:
    """Orders over a week, going back in time now and then (some beyond retention), with
    duplicates, several lines, cancellations, malformed records and unknown products."""
    records: list[bytes | None] = []
    ids: list[bytes] = []
    for index in range(n):
        roll = rng.random()
        if index == n // 2:  # one order certainly counted, then its duplicate
            ids.append(raw(v1(order_id="ORD-SURE", timestamp=stamp(AUG_1 + 6 * DAY_MS))))
            records.extend([ids[-1], ids[-1]])
            continue
        if roll < 0.1 and ids:
            records.append(rng.choice(ids))  # a duplicate order id (same value)
            continue
        if roll < 0.15:
            records.append(rng.choice([None, b"{not json", b"[1]"]))
            continue
        lines = [item("PROD-001"), item("PROD-002", 2, "243.82"), item("PROD-001", 3)]
        if roll < 0.2:
            lines = [item("PROD-404", 1, "1.00")]
        hours = rng.randrange(0, 24 * 7) if rng.random() < 0.9 else -24 * 5
        order = v1(
            order_id=f"ORD-{index}",
            customer_id=f"CUST-{rng.randrange(8)}",
            timestamp=stamp(AUG_1 + hours * 3_600_000 + rng.randrange(3_600_000)),
            channel=rng.choice(["web", "mobile"]),
            status=rng.choice(["confirmed", "pending", "cancelled"]),
            items=rng.sample(lines, rng.randint(1, len(lines))),
        )
        ids.append(raw(order))
        records.append(ids[-1])
    return records


def by_batches(
    table: dict[Any, Any],
    records: list[tuple[int, bytes | None]],
    sizes: list[int],
    catalog: dict[str, CatalogEntry],
) -> list[str]:
    """Records in batches of ``sizes`` (one PartitionBatch each); their kinds."""
    kinds = []
    start = 0
    for size in sizes:
        state = PartitionState(table)
        batch = PartitionBatch(state, state, 0, catalog, RULES)
        for offset, value in records[start : start + size]:
            kinds.append(batch.process(value, offset, wall_ms=offset).kind)
        batch.close()
        flush_partition(state, 0)
        start += size
    return kinds


def one_by_one(
    table: dict[Any, Any],
    records: list[tuple[int, bytes | None]],
    sizes: list[int],
    catalog: dict[str, CatalogEntry],
) -> list[str]:
    """The same, but each record writes the clock into the state on its own."""
    kinds = []
    start = 0
    for size in sizes:
        state = PartitionState(table)
        for offset, value in records[start : start + size]:
            applied = process_record(value, 0, offset, offset, state, state, catalog, RULES)
            kinds.append(applied.kind)
        flush_partition(state, 0)
        start += size
    return kinds


def split(rng: random.Random, n: int) -> list[int]:
    sizes = []
    while n > 0:
        sizes.append(min(n, rng.randint(1, 40)))
        n -= sizes[-1]
    return sizes


@pytest.mark.parametrize("seed", range(12))
def test_a_batch_leaves_the_table_a_record_at_a_time_would(seed: int) -> None:
    """Batches of any size, replays of handled offsets among them, leave the clock and
    every figure as writing the clock after each record does, and report the same kinds."""
    rng = random.Random(seed)
    catalog = bundled_catalog()
    values = random_stream(rng, 150)
    first = list(enumerate(values[:100]))
    # After a restart, part of what was handled comes again before the new records.
    again = first[rng.randrange(100) :] + list(enumerate(values[100:], 100))
    sizes = split(rng, len(first)), split(rng, len(again))
    batched: dict[Any, Any] = {}
    single: dict[Any, Any] = {}
    kinds = by_batches(batched, first, sizes[0], catalog)
    kinds += by_batches(batched, again, sizes[1], catalog)
    assert kinds == one_by_one(single, first, sizes[0], catalog) + one_by_one(
        single, again, sizes[1], catalog
    )
    assert without_verdicts(batched) == without_verdicts(single)
    assert {"applied", "duplicate", "rejected", "replayed"} <= set(kinds)


@pytest.mark.parametrize("seed", range(6))
def test_the_clock_counts_each_offset_once_and_keeps_the_high_mark(seed: int) -> None:
    """The clock holds the last offset, its wall clock, the newest event time of every
    order counted (duplicates too) and each outcome once per offset, replays left out."""
    rng = random.Random(seed)
    catalog = bundled_catalog()
    values = random_stream(rng, 80)
    records = list(enumerate(values))
    table: dict[Any, Any] = {}
    by_batches(table, records[:50], split(rng, 50), catalog)
    state = PartitionState(table)
    batch = PartitionBatch(state, state, 0, catalog, RULES)
    outcomes = [batch.process(value, offset, wall_ms=7) for offset, value in records[30:]]
    batch.close()
    flush_partition(state, 0)

    clock = table[clock_key(0)]
    assert [o.kind for o in outcomes[:20]] == ["replayed"] * 20
    counted: Counter[str] = Counter()
    high = None
    for outcome, event_ms in clean_outcomes(records, catalog):
        counted[outcome] += 1
        if event_ms is not None:
            high = event_ms if high is None else max(high, event_ms)
    assert clock["n"] == dict(counted)
    assert clock["max_ms"] == high
    assert clock[OFFSET] == len(records) - 1
    assert clock["wall_ms"] == 7


def clean_outcomes(
    records: list[tuple[int, bytes | None]], catalog: dict[str, CatalogEntry]
) -> list[tuple[str, int | None]]:
    """Each record's outcome as the clock counts it, and its event time, from one clean
    run in one batch."""
    fresh: dict[Any, Any] = {}
    state = PartitionState(fresh)
    batch = PartitionBatch(state, state, 0, catalog, RULES)
    found: list[tuple[str, int | None]] = []
    for offset, value in records:
        applied = batch.process(value, offset, wall_ms=0)
        if applied.kind == "rejected" and applied.rejected is not None:
            found.append((f"rejected:{applied.rejected.reason}", None))
        elif applied.order is not None:
            counted = "duplicate" if applied.kind == "duplicate" else "applied"
            found.append((counted, applied.order.event_ms))
    return found


def test_a_rejected_record_alone_moves_the_clock_once() -> None:
    """A record settled alone (a processing error) is counted, and settling it again is not."""
    table: dict[Any, Any] = {}
    state = PartitionState(table)
    for _ in range(2):
        alone = PartitionBatch(state, state, 0, {}, RULES)
        alone.settle(5, 1, None, "rejected:processing_error")
        alone.close()
    flush_partition(state, 0)
    assert table[clock_key(0)] == {
        "n": {"rejected:processing_error": 1},
        "max_ms": None,
        "wall_ms": 1,
        OFFSET: 5,
    }
