"""The seeded order generator and the record sources (producers.orders)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from producers.orders import (
    Faults,
    OrderGenerator,
    Record,
    catalog_records,
    file_records,
    inventory_records,
    load_catalog,
    to_v2,
)
from streams.orders.logic import Rules, check_against_catalog, parse_order
from streams.orders.models import CatalogEntry, InventoryRow
from tests.unit.factories import raw, v1


def generate(count: int, *, seed: int = 7, **faults: Any) -> list[Record]:
    generator = OrderGenerator(load_catalog(), seed=seed, faults=Faults(**faults))
    return [next(generator) for _ in range(count)]


def profile(records: list[Record]) -> Counter[str]:
    """How many records are malformed, repeats of an earlier record, or a newer variant."""
    counts: Counter[str] = Counter()
    seen: set[bytes] = set()
    for key, value in records:
        if key is None:
            counts["malformed"] += 1
        elif value in seen:
            counts["duplicates"] += 1
        else:
            obj = orjson.loads(value)
            counts["orders"] += 1
            counts["variants"] += "schema_version" in obj or "total_amount" in obj
        seen.add(value)
    return counts


def test_generator_is_deterministic_for_a_seed() -> None:
    """The same seed replays the same records; another seed gives other records."""
    options: dict[str, Any] = {"duplicates": 0.1, "variants": 0.3, "malformed": 0.05, "late": 0.1}
    assert generate(300, **options) == generate(300, **options)
    assert generate(300, seed=8, **options) != generate(300, **options)


@pytest.mark.parametrize("fault", ["duplicates", "malformed", "variants"])
def test_fault_fractions_come_out_roughly_as_requested(fault: str) -> None:
    """Over 2000 records a requested 10% of a fault appears at 10% give or take, others not."""
    requested: dict[str, Any] = {fault: 0.1}
    counts = profile(generate(2000, **requested))
    base = counts["orders"] if fault == "variants" else 2000
    assert 0.07 < counts[fault] / base < 0.13
    assert sum(counts[f] for f in ("duplicates", "malformed", "variants") if f != fault) == 0


def test_without_faults_every_record_is_a_distinct_v1_order() -> None:
    """With no faults requested, the generator sends only fresh, plain v1 orders."""
    counts = profile(generate(500))
    assert counts["orders"] == 500


def test_late_fault_sends_orders_from_earlier_days() -> None:
    """Late orders are stamped over a day behind the generator's clock."""
    start = datetime(2025, 8, 1, tzinfo=UTC)
    records = generate(1000, late=0.2)
    days = Counter(parse_order(value).event_time.date() for _key, value in records)
    behind = sum(n for day, n in days.items() if day < start.date())
    assert 140 < behind < 260


def test_spike_sends_most_orders_to_the_spiking_channel() -> None:
    """A spike factor of 4 sends about three quarters of orders (plus its share) to one channel."""
    records = generate(1000, spike_channel="api", spike_factor=4.0)
    channels = Counter(parse_order(value).channel for _key, value in records)
    assert 0.75 < channels["api"] / 1000 < 0.9


def test_every_well_formed_record_passes_the_bundled_catalog(
    catalog: dict[str, CatalogEntry],
) -> None:
    """Generated orders of every version, late or repeated, parse and match the catalog."""
    records = generate(2000, duplicates=0.1, variants=0.4, malformed=0.05, late=0.1)
    well_formed = [value for key, value in records if key is not None]
    assert len(well_formed) > 1800
    for value in well_formed:
        check_against_catalog(parse_order(value), catalog, Rules())


def test_records_are_keyed_by_customer_id() -> None:
    """Each order is keyed by its customer, so a customer's orders share a partition."""
    records = [r for r in generate(500, variants=0.5, duplicates=0.1) if r[0] is not None]
    assert all(key == parse_order(value).customer_id.encode() for key, value in records)
    assert len({key for key, _value in records}) > 100


def test_file_records_keys_by_customer_and_tolerates_a_malformed_line(tmp_path: Path) -> None:
    """A JSONL replay keys v1 and v2 lines by customer and passes a broken line on unkeyed."""
    lines = [
        raw(v1(customer_id="CUST-7", timestamp="2025-08-01T10:00:00-02:00")),
        b"",
        b'{"order_id": "ORD-X", "items": [',
        raw(to_v2(v1(customer_id="CUST-8"))),
    ]
    path = tmp_path / "orders.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    replayed = list(file_records(path))
    assert [(record[0], stamp) for record, stamp in replayed] == [
        (b"CUST-7", datetime(2025, 8, 1, 12, tzinfo=UTC)),
        (None, None),
        (b"CUST-8", datetime(2025, 8, 1, 12, tzinfo=UTC)),
    ]
    assert [record[1] for record, _stamp in replayed] == [lines[0], lines[2], lines[3]]


@pytest.mark.parametrize(
    "line",
    [
        b'{"order_id": "ORD-1", "customer_id": "CUST-1", "timestamp": 1754049600}',
        b'{"id": "ORD-1", "customer": "CUST-1", "created_at": "2025-08-01T12:00:00Z"}',
        b'{"order_id": "ORD-1", "customer_id": "CUST-1", "timestamp": ["2025"]}',
    ],
    ids=["numeric-timestamp", "customer-as-string", "timestamp-as-list"],
)
def test_file_records_tolerates_a_line_with_wrongly_typed_fields(
    tmp_path: Path, line: bytes
) -> None:
    """A line whose fields have unexpected types is still replayed, so it is dead-lettered."""
    path = tmp_path / "orders.jsonl"
    path.write_bytes(line + b"\n" + raw(v1()) + b"\n")
    replayed = [record for record, _stamp in file_records(path)]
    assert [value for _key, value in replayed] == [line, raw(v1())]


def test_file_records_never_yields_a_naive_timestamp(tmp_path: Path) -> None:
    """A line stamped without a timezone gets no replay time rather than a naive datetime."""
    lines = [raw(v1()), raw(v1(order_id="ORD-2", timestamp="2025-08-01T12:00:05"))]
    path = tmp_path / "orders.jsonl"
    path.write_bytes(b"\n".join(lines))
    stamps = [stamp for _record, stamp in file_records(path)]
    assert all(stamp is None or stamp.utcoffset() is not None for stamp in stamps)


def test_inventory_records_read_the_bundled_csv() -> None:
    """The bundled inventory has one valid record per product, keyed by product id."""
    records = list(inventory_records())
    assert len(records) == 50
    rows = [InventoryRow.model_validate_json(value) for _key, value in records]
    assert [key for key, _value in records] == [row.product_id.encode() for row in rows]
    assert {row.product_id for row in rows} == {f"PROD-{n:03d}" for n in range(1, 51)}


def test_inventory_records_pass_a_malformed_row_on_as_it_is(tmp_path: Path) -> None:
    """A CSV row with a non-numeric quantity is still sent, as text, for the pipeline to reject."""
    path = tmp_path / "inventory.csv"
    path.write_text(
        "product_id,available_quantity,warehouse_location,last_updated\n"
        "PROD-001,-3,WH-NY,2025-08-28T00:00:00Z\n"
        "PROD-002,lots,WH-NY,2025-08-28T00:00:00Z\n"
    )
    values: list[dict[str, Any]] = [orjson.loads(v) for _k, v in inventory_records(path)]
    assert [v["available_quantity"] for v in values] == [-3, "lots"]


def test_catalog_records_are_keyed_by_product_and_valid() -> None:
    """The bundled catalog is 50 valid products PROD-001..PROD-050, keyed by product id."""
    records = list(catalog_records(load_catalog()))
    entries = [CatalogEntry.model_validate_json(value) for _key, value in records]
    assert [key for key, _value in records] == [f"PROD-{n:03d}".encode() for n in range(1, 51)]
    assert [e.product_id for e in entries] == [f"PROD-{n:03d}" for n in range(1, 51)]
