"""The pure-logic ceiling: the pipeline's functions in one process, no Kafka, no Faust."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

from bench.data import by_partition
from producers.orders import Record, inventory_records, load_catalog
from streams.common.exactly_once import PartitionState
from streams.common.mirror import text_or_json_key
from streams.orders.aggregates import flush_partition
from streams.orders.logic import Rules, enrich, parse_order
from streams.orders.models import CatalogEntry
from streams.orders.partition_batch import PartitionBatch


def catalog() -> dict[str, CatalogEntry]:
    return {str(e["product_id"]): CatalogEntry.model_validate(e) for e in load_catalog()}


def inventory() -> dict[Any, Any]:
    """The inventory as the worker's mirror holds it (key -> decoded row)."""
    return {text_or_json_key(key): orjson.loads(value) for key, value in inventory_records()}


def _rate(n: int, run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return n / (time.perf_counter() - started)


def json_loads_rate(values: list[bytes]) -> float:
    def run() -> None:
        for value in values:
            orjson.loads(value)

    return _rate(len(values), run)


def parse_rate(values: list[bytes]) -> float:
    def run() -> None:
        for value in values:
            parse_order(value)

    return _rate(len(values), run)


def process_rate(
    partitions: dict[int, list[bytes]],
    batch_size: int,
    *,
    with_enrich: bool = False,
) -> tuple[float, dict[str, int]]:
    """An order's processing as the agent runs it: per partition, batches of
    ``PartitionBatch`` (the clock moved once per batch), one flush each.

    With ``with_enrich``, also the synchronous part of ``emit`` for applied orders:
    ``enrich`` and the ``orjson.dumps`` of the enriched value.
    """
    entries, stock, rules = catalog(), inventory(), Rules()
    table: dict[Any, Any] = {}
    kinds: dict[str, int] = {}
    n = sum(len(values) for values in partitions.values())
    wall_ms = int(time.time() * 1000)

    def run() -> None:
        for partition, values in partitions.items():
            for start in range(0, len(values), batch_size):
                state = PartitionState(table)
                records = PartitionBatch(state, state, partition, entries, rules)
                for offset, value in enumerate(values[start : start + batch_size], start):
                    outcome = records.process(value, offset, wall_ms)
                    kinds[outcome.kind] = kinds.get(outcome.kind, 0) + 1
                    if with_enrich and outcome.order is not None:
                        orjson.dumps(
                            enrich(outcome.order, entries, stock, rules, revision=outcome.revision)
                        )
                records.close()
                flush_partition(state, partition)

    return _rate(n, run), kinds


def measure(records: list[Record], partitions: int, batch_size: int) -> dict[str, Any]:
    """One run of every pure-logic figure (orders/s)."""
    values = [value for _key, value in records]
    split = by_partition(records, partitions)
    process, kinds = process_rate(split, batch_size)
    process_enrich, _ = process_rate(split, batch_size, with_enrich=True)
    return {
        "orjson_loads": json_loads_rate(values),
        "parse_order": parse_rate(values),
        "process_record": process,
        "process_record_enrich": process_enrich,
        "outcomes": kinds,
    }
