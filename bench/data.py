"""The benchmark's input: seeded orders over ~5 days of event time, keyed by customer."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka.partitioner import murmur2

from producers.orders import OrderGenerator, Record, load_catalog

START = datetime(2025, 8, 1, tzinfo=UTC)
STEP = timedelta(seconds=2)
SEED = 11


def generate(n: int, seed: int = SEED) -> list[Record]:
    """``n`` valid orders (no injected faults), 2 s of event time apart."""
    generator = OrderGenerator(load_catalog(), seed=seed, start=START, step=STEP)
    return list(itertools.islice(generator, n))


def partition_of(key: bytes | None, partitions: int) -> int:
    """The partition aiokafka's default partitioner sends a keyed record to."""
    assert key is not None, "generated orders are keyed by customer"
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


def by_partition(records: list[Record], partitions: int) -> dict[int, list[bytes]]:
    """Record values per partition, in offset order (as a consumer reads them)."""
    out: dict[int, list[bytes]] = defaultdict(list)
    for key, value in records:
        out[partition_of(key, partitions)].append(value)
    return dict(sorted(out.items()))


def summary(records: list[Record]) -> dict[str, Any]:
    sizes = [len(value) for _key, value in records]
    return {
        "orders": len(records),
        "mean_value_bytes": round(sum(sizes) / max(len(sizes), 1), 1),
        "event_time_from": START.isoformat(),
        "event_time_to": (START + STEP * len(records)).isoformat(),
    }
