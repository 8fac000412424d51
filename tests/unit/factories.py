"""Small builders shared by the unit tests: raw orders, catalogs and batch runs."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import orjson

from producers.orders import load_catalog
from streams.common.exactly_once import PartitionState
from streams.orders.aggregates import Applied, flush_partition
from streams.orders.logic import Rules, parse_order
from streams.orders.models import CatalogEntry, Order
from streams.orders.partition_batch import PartitionBatch

#: The default business rules (frozen, so safe to share).
DEFAULT_RULES = Rules()

#: A moment well inside a UTC day, so the default order is neither late nor near midnight.
NOON = "2025-08-01T12:00:00Z"


def item(product_id: str = "PROD-001", quantity: int = 1, price: str = "248.06") -> dict[str, Any]:
    """One v1 line item; prices are written as JSON numbers, as the channels send them."""
    return {"product_id": product_id, "quantity": quantity, "unit_price": float(Decimal(price))}


def v1(**overrides: Any) -> dict[str, Any]:
    """A valid v1 order (PROD-001 at its bundled catalog price), with fields overridden."""
    order: dict[str, Any] = {
        "order_id": "ORD-1",
        "customer_id": "CUST-1",
        "timestamp": NOON,
        "channel": "web",
        "items": [item()],
        "shipping_address": {"country": "US", "state": "CA", "city": "San Francisco"},
        "status": "confirmed",
    }
    order.update(overrides)
    return order


def raw(obj: Any) -> bytes:
    return orjson.dumps(obj)


def order(**overrides: Any) -> Order:
    """A parsed v1 order."""
    return parse_order(raw(v1(**overrides)))


def entry(product_id: str, price: str, **fields: Any) -> CatalogEntry:
    return CatalogEntry.model_validate(
        {"product_id": product_id, "category": "Home", "brand": "Acme", "price": price, **fields}
    )


def catalog_of(*entries: CatalogEntry) -> dict[str, CatalogEntry]:
    return {e.product_id: e for e in entries}


def bundled_catalog() -> dict[str, CatalogEntry]:
    return {e["product_id"]: CatalogEntry.model_validate(e) for e in load_catalog()}


def without(mapping: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k not in keys}


def run_batch(
    table: dict[Any, Any],
    records: Iterable[tuple[int, bytes | None]],
    catalog: Mapping[str, CatalogEntry],
    *,
    partition: int = 0,
    rules: Rules = DEFAULT_RULES,
    wall_ms: int = 1,
    flush: bool = True,
) -> list[Applied]:
    """Process ``(offset, value)`` records of one partition as the agent does, in one batch."""
    state = PartitionState(table)
    batch = PartitionBatch(state, state, partition, catalog, rules)
    outcomes = [batch.process(value, offset, wall_ms) for offset, value in records]
    batch.close()
    if flush:
        flush_partition(state, partition)
    return outcomes


def numbered(values: Sequence[bytes | None], start: int = 0) -> list[tuple[int, bytes | None]]:
    """Give consecutive offsets to record values."""
    return list(enumerate(values, start))


def comparable(table: Mapping[Any, Any]) -> dict[Any, Any]:
    """A deep copy of a table without the wall-clock time the partition clocks carry,
    nor the partitions' last verdicts (which records they cover depends on where the
    batches began)."""
    copied = copy.deepcopy(without_verdicts(table))
    for key, value in copied.items():
        if key.startswith("clock|"):
            value.pop("wall_ms", None)
    return copied


def without_verdicts(table: Mapping[Any, Any]) -> dict[Any, Any]:
    """``table`` but its ``verdict|`` keys, which depend on where batches began."""
    return {k: v for k, v in table.items() if not k.startswith("verdict|")}


def kinds(outcomes: Iterable[Applied]) -> list[str]:
    return [o.kind for o in outcomes]


class Crash(Exception):
    pass


class LossyTable(dict[Any, Any]):
    """A dict-backed table whose worker dies in a flush after only the writes
    ``kept(key)`` lets through reached it, in any order; the clock never does."""

    def __init__(self, kept: Any) -> None:
        super().__init__()
        self.kept = kept

    def __setitem__(self, key: Any, value: Any) -> None:
        if key.startswith("clock|"):
            raise Crash(key)
        if self.kept(key):
            super().__setitem__(key, value)
