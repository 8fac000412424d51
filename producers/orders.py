"""Orders, the catalog and inventory batches as Kafka records (pure, seeded generators).

Orders are keyed by customer id: a customer's orders share a partition, which is what
makes per-customer figures and duplicate detection exact without a repartition.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

Record = tuple[bytes | None, bytes]

CHANNELS = ("web", "mobile", "api")
STATUSES = ("confirmed", "pending", "cancelled")
PLACES = (
    ("CA", "San Francisco"),
    ("CA", "Los Angeles"),
    ("NY", "New York"),
    ("NY", "Albany"),
    ("TX", "Austin"),
    ("TX", "Houston"),
    ("FL", "Miami"),
    ("IL", "Chicago"),
    ("WA", "Seattle"),
    ("MA", "Boston"),
)


def fixture(name: str) -> Path:
    return Path(str(resources.files("producers") / "fixtures" / name))


def load_catalog(path: Path | None = None) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((path or fixture("catalog.json")).read_text())
    return data


def catalog_records(entries: Sequence[dict[str, Any]]) -> Iterator[Record]:
    for entry in entries:
        yield str(entry["product_id"]).encode(), orjson.dumps(entry)


def inventory_records(path: Path | None = None) -> Iterator[Record]:
    """One record per CSV row, keyed by product; malformed rows are sent as they are."""
    with (path or fixture("inventory.csv")).open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row.get("available_quantity", "").lstrip("-").isdigit():
                value: dict[str, Any] = {
                    **row,
                    "available_quantity": int(row["available_quantity"]),
                }
            else:
                value = dict(row)
            yield str(row.get("product_id", "")).encode(), orjson.dumps(value)


def file_records(path: Path) -> Iterator[tuple[Record, datetime | None]]:
    """Replay a JSONL file as it is, keyed by customer, with each line's timestamp."""
    with path.open("rb") as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            try:
                obj = orjson.loads(line)
                key = _customer_of(obj)
                stamp = _timestamp_of(obj)
            except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError):
                # Sent as it is: the pipeline dead-letters it with the precise reason.
                key, stamp = None, None
            yield (key, line), stamp


def _customer_of(obj: Any) -> bytes | None:
    if not isinstance(obj, dict):
        return None
    nested = obj.get("customer")
    customer = obj.get("customer_id") or (nested.get("id") if isinstance(nested, dict) else None)
    return str(customer).encode() if customer else None


def _timestamp_of(obj: Any) -> datetime | None:
    """The order's time if it is a timezone-aware ISO string; None otherwise."""
    raw = (obj.get("timestamp") or obj.get("created_at")) if isinstance(obj, dict) else None
    if not isinstance(raw, str):
        return None
    stamp = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return stamp if stamp.tzinfo is not None else None


@dataclass(frozen=True)
class Faults:
    """Fractions of generated records that carry each injected fault."""

    duplicates: float = 0.0
    variants: float = 0.0
    malformed: float = 0.0
    late: float = 0.0
    spike_channel: str | None = None
    spike_factor: float = 1.0


class OrderGenerator:
    """Seeded orders in the seed's format (v1), its v1.1 and v2 variants, and faults."""

    def __init__(
        self,
        catalog: Sequence[dict[str, Any]],
        *,
        seed: int = 7,
        start: datetime | None = None,
        step: timedelta = timedelta(seconds=1),
        faults: Faults = Faults(),
        customers: int = 5000,
    ) -> None:
        self.rng = random.Random(seed)
        self.products = [(str(p["product_id"]), Decimal(str(p["price"]))) for p in catalog]
        self.clock = start or datetime(2025, 8, 1, tzinfo=UTC)
        self.step, self.faults, self.customers = step, faults, customers
        self.count = 0
        self._recent: list[Record] = []

    def __iter__(self) -> Iterator[Record]:
        return self

    def __next__(self) -> Record:
        rng, faults = self.rng, self.faults
        if self._recent and rng.random() < faults.duplicates:
            return rng.choice(self._recent)
        if rng.random() < faults.malformed:
            return self._malformed()
        self.count += 1
        self.clock += self.step
        when = self.clock
        if rng.random() < faults.late:
            when -= timedelta(hours=rng.randint(26, 24 * 20))
        order = self._order(f"ORD-{self.count:09d}", when)
        if rng.random() < faults.variants:
            order = rng.choice((to_v11, to_v2))(order)
        record = (_customer_of(order), orjson.dumps(order))
        self._recent = [*self._recent[-99:], record]
        return record

    def _order(self, order_id: str, when: datetime) -> dict[str, Any]:
        rng = self.rng
        channel = rng.choice(CHANNELS)
        if self.faults.spike_channel and rng.random() < 1 - 1 / max(self.faults.spike_factor, 1):
            channel = self.faults.spike_channel
        state, city = rng.choice(PLACES)
        items = []
        for product, price in rng.sample(self.products, rng.randint(1, 4)):
            items.append(
                {"product_id": product, "quantity": rng.randint(1, 3), "unit_price": float(price)}
            )
        return {
            "order_id": order_id,
            "customer_id": f"CUST-{rng.randint(1, self.customers):05d}",
            "timestamp": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "channel": channel,
            "items": items,
            "shipping_address": {"country": "US", "state": state, "city": city},
            "status": rng.choices(STATUSES, weights=(6, 3, 1))[0],
        }

    def _malformed(self) -> Record:
        rng = self.rng
        broken = rng.choice(
            (
                b'{"order_id": "ORD-X", "items": [',
                b'{"order_id": "ORD-BAD", "customer_id": "C", "timestamp": "2025-08-01T00:00:00Z", '
                b'"channel": "web", "items": [{"product_id": "PROD-001", "quantity": -1, '
                b'"unit_price": 1.0}], "shipping_address": {"country": "US", "state": "CA"}, '
                b'"status": "confirmed"}',
                b'{"schema_version": 9, "id": "ORD-FUTURE"}',
                b"[1, 2, 3]",
            )
        )
        return None, broken


def to_v11(order: dict[str, Any]) -> dict[str, Any]:
    """v1 plus the later ``total_amount`` and ``currency`` fields."""
    total = sum(Decimal(str(i["unit_price"])) * i["quantity"] for i in order["items"])
    return {**order, "total_amount": float(total), "currency": "USD"}


def to_v2(order: dict[str, Any]) -> dict[str, Any]:
    """The v2 shape: renamed fields, a nested customer, amounts in integer cents."""
    lines = [
        {
            "sku": i["product_id"],
            "qty": i["quantity"],
            "unit_price_cents": int(Decimal(str(i["unit_price"])) * 100),
        }
        for i in order["items"]
    ]
    address = order["shipping_address"]
    return {
        "schema_version": 2,
        "id": order["order_id"],
        "customer": {"id": order["customer_id"]},
        "created_at": order["timestamp"],
        "source": order["channel"],
        "lines": lines,
        "shipping": {
            "country": address["country"],
            "region": address["state"],
            "city": address.get("city"),
        },
        "status": order["status"],
        "total_cents": sum(line["qty"] * line["unit_price_cents"] for line in lines),
        "currency": "USD",
    }
