"""The Parquet copy made from the parsed orders (lake_columns.py) equals the one made from
the enriched JSON (lake.to_row), file for file and byte for byte."""

from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from producers.orders import Faults, OrderGenerator, load_catalog
from streams.common.parquet import PartitionedParquetWriter
from streams.common.storage import open_filesystem
from streams.orders.lake import ENRICHED_SCHEMA, Lake, LakeMetrics, partition_of
from streams.orders.lake_columns import LakeBatch
from streams.orders.logic import Rules, enrich, parse_order
from streams.orders.models import Order
from tests.unit.factories import bundled_catalog, entry, item, order

RULES = Rules(revenue_statuses=frozenset({"confirmed", "pending"}))


def new_lake(root: Path) -> Lake:
    fs, path = open_filesystem(str(root), None)
    writer = PartitionedParquetWriter(fs, path, ENRICHED_SCHEMA, partition_of)
    return Lake(writer, LakeMetrics.create(CollectorRegistry()))


def accepted() -> list[tuple[Order, dict[str, Any]]]:
    """Generated orders of every version over several days, a revision, a product with no
    stock row, and an order worth more than the copy's money column holds."""
    catalog = {**bundled_catalog(), "PROD-BIG": entry("PROD-BIG", "9999999999.99")}
    products = sorted(catalog)
    stock = {p: {"available_quantity": 3, "warehouse_location": "WH-1"} for p in products[::2]}
    step = timedelta(hours=7)
    generator = OrderGenerator(load_catalog(), seed=3, step=step, faults=Faults(variants=0.5))
    orders = [parse_order(value) for _key, value in itertools.islice(generator, 40)]
    orders.append(order(order_id="ORD-BIG", items=[item("PROD-BIG", 2, "9999999999.99")]))
    orders.append(order(order_id="ORD-NOCITY", shipping_address={"country": "CA", "state": "QC"}))
    return [
        (o, enrich(o, catalog, stock, RULES, revision=index % 5 == 0))
        for index, o in enumerate(orders)
    ]


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}


def counts(lake: Lake) -> list[float]:
    m = lake.metrics
    return [c._value.get() for c in (m.rows, m.files, m.replayed, m.invalid)]


def write_both(tmp_path: Path, batches: list[list[int]], records: list[Any]) -> tuple[Lake, Lake]:
    """Write the same batches (lists of indices into ``records``) both ways."""
    by_json, by_order = new_lake(tmp_path / "json"), new_lake(tmp_path / "order")
    for indices in batches:
        by_json.write_batch(0, [(i, orjson.dumps(records[i][1])) for i in indices])
        columns = LakeBatch()
        for i in indices:
            columns.add(i, *records[i])
        by_order.write_orders(0, columns)
    return by_json, by_order


def test_the_files_made_from_orders_equal_those_made_from_the_enriched_json(
    tmp_path: Path,
) -> None:
    """Same files, same bytes, same counts, and the order too large for the copy left out."""
    records = accepted()
    by_json, by_order = write_both(tmp_path, [list(range(20)), list(range(20, 42))], records)

    assert files(tmp_path / "order") == files(tmp_path / "json")
    assert len(files(tmp_path / "json")) > 4
    assert counts(by_order) == counts(by_json)
    assert by_order.metrics.invalid._value.get() == 1


def test_replayed_records_are_skipped_alike(tmp_path: Path) -> None:
    """A batch that overlaps what the files hold writes only the rest, as from JSON."""
    records = accepted()
    by_json, by_order = write_both(tmp_path, [list(range(10)), list(range(5, 30))], records)

    assert files(tmp_path / "order") == files(tmp_path / "json")
    assert counts(by_order) == counts(by_json)
    assert by_order.metrics.replayed._value.get() == 5
