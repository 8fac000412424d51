"""Answers of the web views, computed from the mirrored tables (streams.orders.analytics)."""

from __future__ import annotations

import zlib
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest

from producers.orders import Faults, OrderGenerator, load_catalog
from streams.orders.analytics import (
    AggregateIndex,
    customer_patterns,
    inventory_status,
    revenue_daily,
    top_products,
)
from streams.orders.logic import Rules
from streams.orders.models import CatalogEntry
from tests.unit.factories import catalog_of, entry, run_batch


def figures(**by_status: tuple[int, int, int]) -> dict[str, Any]:
    """A table value: per status, [orders, cents, units]."""
    return {"s": {status: list(counts) for status, counts in by_status.items()}, "_o": 1}


DAILY = {
    "daily|2025-08-01|web|CA|0": figures(confirmed=(2, 1000, 3), pending=(1, 500, 1)),
    "daily|2025-08-01|web|CA|1": figures(confirmed=(1, 250, 1), cancelled=(1, 9999, 9)),
    "daily|2025-08-01|api|NY|2": figures(confirmed=(1, 100, 1)),
    "daily|2025-08-02|web|CA|0": figures(confirmed=(4, 4000, 4)),
    "daily|2025-07-31|mobile|TX|1": figures(pending=(2, 300, 2)),
}


def revenue_by_group(rows: list[dict[str, Any]]) -> dict[tuple[str, str, str], str]:
    return {(r["date"], r["channel"], r["region"]): r["revenue"] for r in rows}


def test_revenue_daily_adds_up_partitions_and_counts_only_revenue_statuses() -> None:
    """Partitions of one date, channel and region add up; only confirmed orders are revenue."""
    row = revenue_daily(DAILY, Rules(), channel="web", date_to="2025-08-01")[0]
    assert (row["revenue"], row["orders"], row["orders_all_statuses"]) == ("12.50", 3, 5)
    assert row["by_status"] == {
        "cancelled": {"orders": 1, "amount": "99.99", "units": 9},
        "confirmed": {"orders": 3, "amount": "12.50", "units": 4},
        "pending": {"orders": 1, "amount": "5.00", "units": 1},
    }


def test_revenue_daily_counts_the_statuses_the_rules_name() -> None:
    """A deployment counting pending orders as revenue sees them in the revenue."""
    rules = Rules(revenue_statuses=frozenset({"confirmed", "pending"}))
    row = revenue_daily(DAILY, rules, channel="web", date_to="2025-08-01")[0]
    assert (row["revenue"], row["orders"]) == ("17.50", 4)


def test_revenue_daily_rows_are_sorted_by_date_channel_region() -> None:
    """Rows come out in date, then channel, then region order, one per group."""
    rows = revenue_daily(DAILY, Rules())
    assert [(r["date"], r["channel"], r["region"]) for r in rows] == [
        ("2025-07-31", "mobile", "TX"),
        ("2025-08-01", "api", "NY"),
        ("2025-08-01", "web", "CA"),
        ("2025-08-02", "web", "CA"),
    ]
    assert rows[0]["revenue"] == "0.00"


@pytest.mark.parametrize(
    ("filters", "groups"),
    [
        (
            {"date_from": "2025-08-01"},
            {"2025-08-01/api/NY", "2025-08-01/web/CA", "2025-08-02/web/CA"},
        ),
        (
            {"date_from": "2025-08-01", "date_to": "2025-08-01"},
            {"2025-08-01/api/NY", "2025-08-01/web/CA"},
        ),
        ({"date_to": "2025-07-31"}, {"2025-07-31/mobile/TX"}),
        ({"channel": "web"}, {"2025-08-01/web/CA", "2025-08-02/web/CA"}),
        ({"region": "NY"}, {"2025-08-01/api/NY"}),
        ({"channel": "web", "region": "NY"}, set()),
    ],
)
def test_revenue_daily_filters(filters: dict[str, str], groups: set[str]) -> None:
    """Date range (inclusive), channel and region filters keep only the matching groups."""
    rows = revenue_daily(DAILY, Rules(), **filters)
    assert {"/".join(group) for group in revenue_by_group(rows)} == groups


PRODUCTS = {
    # PROD-A sells many cheap units, PROD-B few expensive ones, PROD-C is in between.
    "product|2025-08-01|PROD-A|0": figures(confirmed=(5, 5000, 50)),
    "product|2025-08-01|PROD-A|1": figures(confirmed=(1, 1000, 10), pending=(9, 99999, 99)),
    "product|2025-08-01|PROD-B|0": figures(confirmed=(2, 20000, 2)),
    "product|2025-08-02|PROD-C|2": figures(confirmed=(3, 9000, 30)),
    "product|2025-08-02|PROD-D|2": figures(cancelled=(9, 99999, 99)),
}
SHOP = catalog_of(entry("PROD-A", "1.00", category="Books", brand="ReadMore"))


def ranking(by: str, **options: Any) -> list[str]:
    return [row["product_id"] for row in top_products(PRODUCTS, SHOP, Rules(), by=by, **options)]


def test_top_products_by_units_and_by_revenue_rank_differently() -> None:
    """Ranking by units favours cheap best-sellers, ranking by revenue the expensive ones."""
    assert ranking("units") == ["PROD-A", "PROD-C", "PROD-B"]
    assert ranking("revenue") == ["PROD-B", "PROD-C", "PROD-A"]


def test_top_products_add_partitions_and_describe_products() -> None:
    """A product's rows add up across partitions, with catalog details where known."""
    rows = top_products(PRODUCTS, SHOP, Rules(), by="units")
    assert rows[0] == {
        "product_id": "PROD-A",
        "category": "Books",
        "brand": "ReadMore",
        "units": 60,
        "revenue": "60.00",
        "orders": 6,
    }
    assert (rows[1]["category"], rows[1]["brand"]) == (None, None)


def test_top_products_respects_limit_and_dates() -> None:
    """Only ``limit`` products are listed, from the requested dates."""
    assert ranking("revenue", limit=2) == ["PROD-B", "PROD-C"]
    assert ranking("units", date_from="2025-08-02") == ["PROD-C"]


def test_customer_patterns_rates() -> None:
    """Repeat rate, orders per customer and average order value add up across partitions."""
    hist_a, hist_b = [1, 2, 0, 0, 0, 0, 0, 1], [0, 1, 0, 0, 0, 0, 0, 0]
    patterns = customer_patterns(
        [
            {"customers": 3, "repeat": 1, "orders": 4, "cents": 1000, "hist": hist_a},
            {"customers": 1, "repeat": 0, "orders": 1, "cents": 7, "hist": hist_b},
        ]
    )
    assert patterns["customers"] == 4
    assert patterns["repeat_customers"] == 1
    assert patterns["repeat_rate"] == 0.25
    assert patterns["orders_per_customer"] == 1.25
    assert patterns["average_order_value"] == "2.01"
    distribution = patterns["order_value_distribution"]
    assert distribution[0] == {"range": "0.00-25.00", "orders": 1}
    assert distribution[1] == {"range": "25.00-50.00", "orders": 3}
    assert distribution[-1] == {"range": "2500.00+", "orders": 1}


def test_customer_patterns_without_customers_is_all_zero() -> None:
    """With no orders yet, rates are zero rather than an error."""
    patterns = customer_patterns([])
    assert (patterns["repeat_rate"], patterns["orders_per_customer"]) == (0.0, 0.0)
    assert patterns["average_order_value"] == "0.00"


def test_inventory_status_turnover_and_low_stock() -> None:
    """Turnover is confirmed units sold over stock; stock below the threshold is low."""
    inventory = {
        "PROD-A": {"available_quantity": 120, "warehouse_location": "WH-NY"},
        "PROD-B": {"available_quantity": 10, "warehouse_location": "WH-CHI"},
        "PROD-D": {"available_quantity": 0, "warehouse_location": "WH-MIA"},
        "PROD-Z": {"available_quantity": 9, "warehouse_location": "WH-MIA"},
    }
    rows = {r["product_id"]: r for r in inventory_status(inventory, PRODUCTS, Rules(), 10)}
    assert list(rows) == ["PROD-A", "PROD-B", "PROD-D", "PROD-Z"]
    assert (rows["PROD-A"]["units_sold"], rows["PROD-A"]["turnover"]) == (60, 0.5)
    assert (rows["PROD-B"]["turnover"], rows["PROD-B"]["low_stock"]) == (0.2, False)
    assert (rows["PROD-D"]["units_sold"], rows["PROD-D"]["turnover"]) == (0, None)
    assert rows["PROD-D"]["low_stock"] is True
    assert (rows["PROD-Z"]["units_sold"], rows["PROD-Z"]["low_stock"]) == (0, True)


def test_aggregate_index_keeps_the_latest_value_per_kind() -> None:
    """The index files records by key kind, replaces updates, forgets deletions, skips others."""
    index = AggregateIndex()
    index.on_record("t", "daily|2025-08-01|web|CA|0", figures(confirmed=(1, 1, 1)))
    index.on_record("t", "daily|2025-08-01|web|CA|0", figures(confirmed=(2, 2, 2)))
    index.on_record("t", "daily|2025-08-02|web|CA|0", figures(confirmed=(1, 1, 1)))
    index.on_record("t", "daily|2025-08-02|web|CA|0", None)
    index.on_record("t", "customer|CUST-1", {"n": 1})
    assert index.by_kind["daily"] == {"daily|2025-08-01|web|CA|0": figures(confirmed=(2, 2, 2))}
    assert all(not values for kind, values in index.by_kind.items() if kind != "daily")


def test_aggregate_index_groups_days_and_hours_for_the_reporter() -> None:
    """Daily figures are grouped by date and hourly ones by channel and hour, each change
    handed to the reporter once; a channel's first hour follows deletions."""
    index = AggregateIndex()
    index.on_record("t", "daily|2025-08-01|web|CA|0", figures(confirmed=(1, 1, 1)))
    index.on_record("t", "daily|2025-08-01|api|NY|1", figures(confirmed=(2, 2, 2)))
    index.on_record("t", "daily|2025-08-02|web|CA|0", figures(confirmed=(1, 1, 1)))
    assert set(index.daily_by_date["2025-08-01"]) == {
        "daily|2025-08-01|web|CA|0",
        "daily|2025-08-01|api|NY|1",
    }
    assert index.take_touched_dates() == {"2025-08-01", "2025-08-02"}
    assert index.take_touched_dates() == set()
    index.on_record("t", "daily|2025-08-02|web|CA|0", None)
    assert index.take_touched_dates() == {"2025-08-02"}
    assert "2025-08-02" not in index.daily_by_date

    for hour, p in [("2025-08-01T10", 0), ("2025-08-01T09", 1), ("2025-08-01T09", 0)]:
        index.on_record("t", f"hourly|{hour}|web|{p}", figures(confirmed=(1, 1, 1)))
    assert set(index.hourly_by_channel["web"]) == {"2025-08-01T09", "2025-08-01T10"}
    assert index.first_hour("web") == "2025-08-01T09"
    index.on_record("t", "hourly|2025-08-01T09|web|1", None)
    assert index.first_hour("web") == "2025-08-01T09"
    index.on_record("t", "hourly|2025-08-01T09|web|0", None)
    assert index.first_hour("web") == "2025-08-01T10"
    index.on_record("t", "hourly|2025-08-01T10|web|0", None)
    assert index.first_hour("web") is None and "web" not in index.hourly_by_channel
    assert index.take_touched_hours() == {"web": "2025-08-01T09"}
    assert index.take_touched_hours() == {}


def expected_revenue(records: list[tuple[bytes | None, bytes]]) -> dict[tuple[str, str, str], str]:
    """Revenue per UTC date, channel and state, computed straight from the generated JSON."""
    totals: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    seen: set[str] = set()
    for key, value in records:
        if key is None:  # the generator's malformed records carry no key
            continue
        obj = orjson.loads(value)
        if obj.get("schema_version") == 2:
            order_id, status, stamp = obj["id"], obj["status"], obj["created_at"]
            channel, state = obj["source"], obj["shipping"]["region"]
            amount = sum(
                Decimal(line["unit_price_cents"]) / 100 * line["qty"] for line in obj["lines"]
            )
        else:
            order_id, status, stamp = obj["order_id"], obj["status"], obj["timestamp"]
            channel, state = obj["channel"], obj["shipping_address"]["state"]
            amount = sum(Decimal(str(i["unit_price"])) * i["quantity"] for i in obj["items"])
        if order_id in seen:
            continue
        seen.add(order_id)
        date = datetime.fromisoformat(stamp).astimezone(UTC).date().isoformat()
        totals[(date, channel, state)] += amount if status == "confirmed" else Decimal(0)
    return {group: f"{total:.2f}" for group, total in sorted(totals.items())}


def test_revenue_daily_matches_an_independent_count_of_a_generated_stream(
    catalog: dict[str, CatalogEntry],
) -> None:
    """Orders spread over three partitions and batches give the revenue the raw orders add to."""
    faults = Faults(duplicates=0.05, variants=0.3, malformed=0.02, late=0.05)
    generator = OrderGenerator(load_catalog(), seed=3, faults=faults, customers=300)
    records = [next(generator) for _ in range(1500)]
    partitions: dict[int, list[tuple[int, bytes]]] = defaultdict(list)
    for key, value in records:
        p = zlib.crc32(key or b"") % 3
        partitions[p].append((len(partitions[p]), value))
    table: dict[str, Any] = {}
    for p, stream in partitions.items():
        for start in range(0, len(stream), 64):
            run_batch(table, stream[start : start + 64], catalog, partition=p)
    index = AggregateIndex()
    for table_key, table_value in table.items():
        index.on_record("orders-aggregates", table_key, table_value)
    rows = revenue_daily(index.by_kind["daily"], Rules())
    assert len({k.rsplit("|", 1)[1] for k in index.by_kind["daily"]}) == 3
    assert len(rows) > 30
    assert revenue_by_group(rows) == expected_revenue(records)
