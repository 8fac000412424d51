"""The independent oracle of the orders views (tests/support/independent.py), pinned on
hand-written orders whose answers are worked out by hand here."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from tests.support.independent import (
    OutOfScope,
    Product,
    Rejected,
    answer_diff,
    answers,
    load_catalog,
    read_order,
)

#: Every hand-written order is stamped before this.
SENT = datetime(2025, 12, 1, tzinfo=UTC)

CATALOG = {
    "P-A": Product("Home", "Acme", Decimal("10.00")),
    "P-B": Product("Toys", "Bolt", Decimal("2.50")),
    "P-C": Product("Books", "Cole", Decimal("0.01")),
    "P-D": Product("Garden", "Dale", Decimal("25.00")),
}

RANGES = [
    "0.00-25.00",
    "25.00-50.00",
    "50.00-100.00",
    "100.00-250.00",
    "250.00-500.00",
    "500.00-1000.00",
    "1000.00-2500.00",
    "2500.00+",
]


@dataclass(frozen=True)
class Sent:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def v1(
    order_id: str,
    customer: str,
    at: str,
    lines: list[tuple[str, int, float]],
    *,
    channel: str = "web",
    state: str = "CA",
    status: str = "confirmed",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "customer_id": customer,
        "timestamp": at,
        "channel": channel,
        "items": [{"product_id": p, "quantity": q, "unit_price": price} for p, q, price in lines],
        "shipping_address": {"country": "US", "state": state, "city": "Somewhere"},
        "status": status,
        **extra,
    }


def v2(
    order_id: str,
    customer: str,
    at: str,
    lines: list[tuple[str, int, int]],
    *,
    source: str,
    region: str,
    status: str,
    total_cents: int,
) -> dict[str, Any]:
    return {
        "schema_version": 2,
        "id": order_id,
        "customer": {"id": customer, "email": "c@example.com"},
        "created_at": at,
        "source": source,
        "lines": [{"sku": s, "qty": q, "unit_price_cents": c} for s, q, c in lines],
        "shipping": {"country": "US", "region": region, "city": None},
        "status": status,
        "total_cents": total_cents,
        "currency": "USD",
    }


def partition(number: int, *values: dict[str, Any] | bytes) -> list[Sent]:
    """Records of one partition in offset order, each keyed by its customer."""
    records = []
    for offset, value in enumerate(values):
        if isinstance(value, bytes):
            records.append(Sent(number, offset, None, value))
            continue
        customer = value.get("customer_id") or value.get("customer", {}).get("id")
        records.append(Sent(number, offset, str(customer).encode(), json.dumps(value).encode()))
    return records


ORD_1 = v1("ORD-1", "CUST-1", "2025-08-01T10:00:00Z", [("P-A", 2, 10.0), ("P-B", 1, 2.5)])
ORD_4 = v2(
    "ORD-4",
    "CUST-3",
    "2025-08-02T08:00:00Z",
    [("P-A", 3, 1000), ("P-B", 2, 250)],
    source="web",
    region="NY",
    status="confirmed",
    total_cents=3500,
)
MIXED = [
    *partition(
        0,
        ORD_1,  # 22.50, 3 units
        ORD_1,  # the same record again: a duplicate
        # v1.1, pending; 23:30 at UTC-2 is 01:30 on 2025-08-02 in UTC.
        v1(
            "ORD-2",
            "CUST-1",
            "2025-08-01T23:30:00-02:00",
            [("P-B", 4, 2.5)],
            channel="mobile",
            state="NY",
            status="pending",
            total_amount=10.0,
            currency="USD",
        ),
        v1("ORD-3", "CUST-2", "2025-08-01T12:00:00Z", [("P-A", 1, 10.0)], status="cancelled"),
        v1("ORD-7", "CUST-5", "2025-08-02T00:00:00Z", [("P-B", 1, 2.5)], channel="api", state="TX"),
    ),
    *partition(
        1,
        ORD_4,  # v2 in cents: 35.00, 5 units
        v1("ORD-5", "CUST-3", "2025-08-01T18:00:00Z", [("P-B", 3, 2.5)]),  # 7.50
        v1("ORD-6", "CUST-4", "2025-08-01T18:00:00Z", [("P-A", 1, 9.99)]),
        b"not json",
        {**ORD_4, "status": "cancelled"},  # same id, later: a duplicate, the first counts
        v1("ORD-8", "CUST-4", "2025-08-01T18:00:00Z", [("P-Z", 1, 1.0)]),
        v1("ORD-9", "CUST-4", "2025-08-01T18:00:00Z", [("P-A", 1, 10.0)], total_amount=99.0),
        {"schema_version": 3, "id": "ORD-10"},
        v1("ORD-11", "CUST-4", "2025-08-01T18:00:00Z", [("P-A", 0, 10.0)]),
    ),
]


def test_revenue_daily_by_hand() -> None:
    """Per UTC day, channel and region: confirmed revenue, and every status by itself."""
    assert answers(MIXED, CATALOG, sent_from=SENT).revenue_daily() == [
        {
            "date": "2025-08-01",
            "channel": "web",
            "region": "CA",
            "revenue": "30.00",
            "orders": 2,
            "orders_all_statuses": 3,
            "by_status": {
                "cancelled": {"orders": 1, "amount": "10.00", "units": 1},
                "confirmed": {"orders": 2, "amount": "30.00", "units": 6},
            },
        },
        {
            "date": "2025-08-02",
            "channel": "api",
            "region": "TX",
            "revenue": "2.50",
            "orders": 1,
            "orders_all_statuses": 1,
            "by_status": {"confirmed": {"orders": 1, "amount": "2.50", "units": 1}},
        },
        {
            "date": "2025-08-02",
            "channel": "mobile",
            "region": "NY",
            "revenue": "0.00",
            "orders": 0,
            "orders_all_statuses": 1,
            "by_status": {"pending": {"orders": 1, "amount": "10.00", "units": 4}},
        },
        {
            "date": "2025-08-02",
            "channel": "web",
            "region": "NY",
            "revenue": "35.00",
            "orders": 1,
            "orders_all_statuses": 1,
            "by_status": {"confirmed": {"orders": 1, "amount": "35.00", "units": 5}},
        },
    ]


def test_top_products_by_hand() -> None:
    """Units and revenue of confirmed orders only; the two rankings differ."""
    oracle = answers(MIXED, CATALOG, sent_from=SENT)
    a = {
        "product_id": "P-A",
        "category": "Home",
        "brand": "Acme",
        "units": 5,
        "revenue": "50.00",
        "orders": 2,
    }
    b = {
        "product_id": "P-B",
        "category": "Toys",
        "brand": "Bolt",
        "units": 7,
        "revenue": "17.50",
        "orders": 4,
    }
    assert oracle.top_products("units") == [b, a]
    assert oracle.top_products("revenue") == [a, b]
    assert oracle.top_products("units", limit=1) == [b]


def test_customers_by_hand() -> None:
    """Cancelled orders are left out: CUST-2 has none left; CUST-1 and CUST-3 repeat."""
    assert answers(MIXED, CATALOG, sent_from=SENT).customers() == {
        "customers": 3,
        "repeat_customers": 2,
        "repeat_rate": 0.6667,
        "orders": 5,
        "orders_per_customer": 1.6667,
        "average_order_value": "15.50",  # (22.50 + 10.00 + 35.00 + 7.50 + 2.50) / 5
        "order_value_distribution": [
            {"range": label, "orders": n}
            for label, n in zip(RANGES, [4, 1, 0, 0, 0, 0, 0, 0], strict=True)
        ],
    }


def test_quality_by_hand() -> None:
    """Every record once: counted, duplicate or a dead letter under its reason."""
    oracle = answers(MIXED, CATALOG, sent_from=SENT)
    assert oracle.quality() == {
        "received": 14,
        "counted": 6,
        "duplicates": 2,
        "dead_letters": {
            "decode_error": 1,
            "invalid": 1,
            "price_mismatch": 1,
            "total_mismatch": 1,
            "unknown_product": 1,
            "unknown_schema": 1,
        },
        "dead_letter_rate": 0.428571,
    }
    assert oracle.counted_ids() == {"ORD-1", "ORD-2", "ORD-3", "ORD-4", "ORD-5", "ORD-7"}


def test_revenue_statuses_are_a_parameter() -> None:
    """Counting pending orders as revenue puts the pending order in the revenue."""
    rows = answers(
        MIXED, CATALOG, sent_from=SENT, revenue_statuses=frozenset({"confirmed", "pending"})
    ).revenue_daily()
    mobile = next(row for row in rows if row["channel"] == "mobile")
    assert (mobile["revenue"], mobile["orders"]) == ("10.00", 1)


def test_first_copy_in_offset_order_counts_whatever_the_list_order() -> None:
    """Of two orders with one id, the lower offset counts, even if listed second."""
    pending = v1("ORD-1", "CUST-1", "2025-08-01T10:00:00Z", [("P-A", 1, 10.0)], status="pending")
    confirmed = {**pending, "status": "confirmed"}
    first, second = partition(0, pending, confirmed)
    oracle = answers([second, first], CATALOG, sent_from=SENT)
    assert [row["by_status"] for row in oracle.revenue_daily()] == [
        {"pending": {"orders": 1, "amount": "10.00", "units": 1}}
    ]
    assert oracle.quality()["duplicates"] == 1


def test_a_rejected_first_copy_leaves_the_next_one_counted() -> None:
    """A copy that is a dead letter is no order: the next valid copy is the first."""
    good = v1("ORD-1", "CUST-1", "2025-08-01T10:00:00Z", [("P-A", 1, 10.0)])
    off = {**good, "items": [{"product_id": "P-A", "quantity": 1, "unit_price": 9.0}]}
    oracle = answers(partition(0, off, good), CATALOG, sent_from=SENT)
    assert oracle.revenue_daily()[0]["revenue"] == "10.00"
    assert (oracle.quality()["duplicates"], oracle.quality()["dead_letters"]) == (
        0,
        {"price_mismatch": 1},
    )


def test_late_is_relative_to_the_partitions_own_high_mark() -> None:
    """50 days behind its partition's newest order is late; 44 days behind still counts,
    and so does an equally old order in a partition that has seen nothing newer."""
    records = [
        *partition(
            0,
            v1("ORD-NEW", "CUST-1", "2025-09-20T00:00:00Z", [("P-A", 1, 10.0)]),
            v1("ORD-OLD", "CUST-1", "2025-08-01T00:00:00Z", [("P-A", 1, 10.0)]),
            v1("ORD-44", "CUST-1", "2025-08-07T00:00:00Z", [("P-A", 1, 10.0)]),
        ),
        *partition(1, v1("ORD-OTHER", "CUST-2", "2025-08-01T00:00:00Z", [("P-A", 1, 10.0)])),
    ]
    oracle = answers(records, CATALOG, sent_from=SENT)
    assert oracle.quality()["dead_letters"] == {"late": 1}
    assert oracle.counted_ids() == {"ORD-NEW", "ORD-44", "ORD-OTHER"}


def test_a_product_on_two_lines_counts_both() -> None:
    """An order listing one product twice sells the units of both lines, in one order."""
    twice = v1("ORD-1", "CUST-1", "2025-08-01T10:00:00Z", [("P-A", 1, 10.0), ("P-A", 2, 10.0)])
    top = answers(partition(0, twice), CATALOG, sent_from=SENT).top_products("units")
    assert [(r["units"], r["revenue"], r["orders"]) for r in top] == [(3, "30.00", 1)]


def test_average_rounds_half_a_cent_up_and_ranges_hold_their_lower_bound() -> None:
    """Orders of 0.01 and 0.04 average 0.025, shown as 0.03; an order of exactly 25.00
    is in the 25.00-50.00 range."""
    records = partition(
        0,
        v1("ORD-1", "CUST-1", "2025-08-01T10:00:00Z", [("P-C", 1, 0.01)]),
        v1("ORD-2", "CUST-2", "2025-08-01T10:00:00Z", [("P-C", 4, 0.01)]),
        v1("ORD-3", "CUST-3", "2025-08-01T10:00:00Z", [("P-D", 1, 25.0)], status="pending"),
    )
    customers = answers(records[:2], CATALOG, sent_from=SENT).customers()
    assert customers["average_order_value"] == "0.03"
    ranges = answers(records, CATALOG, sent_from=SENT).customers()["order_value_distribution"]
    assert [r["orders"] for r in ranges] == [2, 1, 0, 0, 0, 0, 0, 0]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"[1, 2, 3]", "decode_error"),
        (b'{"order_id": "ORD-1", "items": [', "decode_error"),
        (b'{"order_id": "ORD-1", "n": NaN}', "decode_error"),
        (b'{"order_id": "\xff"}', "decode_error"),
        (b'{"schema_version": "2", "id": "ORD-1"}', "unknown_schema"),
        (b'{"schema_version": true, "order_id": "ORD-1"}', "unknown_schema"),
        (b'{"id": "ORD-1"}', "unknown_schema"),
        (b'{"order_id": "ORD-1"}', "invalid"),
    ],
)
def test_records_that_are_no_order(raw: bytes, reason: str) -> None:
    """Undecodable bytes, unknown schemas and incomplete orders are dead letters."""
    with pytest.raises(Rejected) as rejected:
        read_order(raw)
    assert rejected.value.reason == reason


@pytest.mark.parametrize(
    "change",
    [
        {"timestamp": "2025-08-01T10:00:00"},  # no time zone
        {"currency": "EUR"},
        {"status": "shipped"},
        {"channel": "Web"},
        {"items": []},
        {"items": [{"product_id": "P-A", "quantity": 1, "unit_price": 10.001}]},
        {"items": [{"product_id": "P-A", "quantity": 0, "unit_price": 10.0}]},
        {"shipping_address": {"country": "USA", "state": "CA"}},
        {"shipping_address": {"country": "US", "state": "CA", "city": 5}},
    ],
)
def test_invalid_fields(change: dict[str, Any]) -> None:
    """A field out of its format makes the whole order invalid."""
    order = {**v1("ORD-1", "CUST-1", "2025-08-01T10:00:00Z", [("P-A", 1, 10.0)]), **change}
    with pytest.raises(Rejected) as rejected:
        read_order(json.dumps(order).encode())
    assert rejected.value.reason == "invalid"


def test_invalid_wins_over_what_the_oracle_cannot_judge() -> None:
    """A quantity sent as a string is out of scope, unless another field is plainly invalid."""
    lines = [{"product_id": "P-A", "quantity": "2", "unit_price": 10.0}]
    order = v1("ORD-1", "CUST-1", "2025-08-01T10:00:00Z", [], items=lines)
    with pytest.raises(OutOfScope):
        read_order(json.dumps(order).encode())
    with pytest.raises(Rejected):
        read_order(json.dumps({**order, "status": "shipped"}).encode())


@pytest.mark.parametrize(
    "records",
    [
        # One customer in two partitions.
        partition(0, v1("ORD-1", "CUST-1", "2025-08-01T10:00:00Z", [("P-A", 1, 10.0)]))
        + partition(1, v1("ORD-2", "CUST-1", "2025-08-01T10:00:00Z", [("P-A", 1, 10.0)])),
        # Keyed by something else than the customer.
        [
            Sent(
                0,
                0,
                b"other",
                json.dumps(v1("O", "CUST-1", "2025-08-01T10:00:00Z", [("P-A", 1, 10.0)])).encode(),
            )
        ],
        # Stamped after the records were sent.
        partition(0, v1("ORD-1", "CUST-1", "2026-01-01T00:00:00Z", [("P-A", 1, 10.0)])),
        # One order id for two customers.
        partition(
            0,
            v1("ORD-1", "CUST-1", "2025-08-01T10:00:00Z", [("P-A", 1, 10.0)]),
            v1("ORD-1", "CUST-2", "2025-08-01T10:00:00Z", [("P-A", 1, 10.0)]),
        ),
        # A counted order that ends up 46 days behind its partition's newest one.
        partition(
            0,
            v1("ORD-1", "CUST-1", "2025-08-01T10:00:00Z", [("P-A", 1, 10.0)]),
            v1("ORD-2", "CUST-1", "2025-09-16T10:00:00Z", [("P-A", 1, 10.0)]),
        ),
        # An unknown product and a price off the catalog in one order.
        partition(
            0, v1("ORD-1", "CUST-1", "2025-08-01T10:00:00Z", [("P-A", 1, 9.0), ("P-Z", 1, 1.0)])
        ),
    ],
)
def test_out_of_scope_inputs_raise(records: list[Sent]) -> None:
    """Where a rule is an implementation detail, the oracle refuses rather than guesses."""
    with pytest.raises(OutOfScope):
        answers(records, CATALOG, sent_from=SENT)


def test_catalog_fixture_reads_exact_prices() -> None:
    """The bundled catalog, read with plain json: 50 products, prices exact."""
    catalog = load_catalog()
    assert len(catalog) == 50
    assert catalog["PROD-001"] == Product("Home", "StyleCo", Decimal("248.06"))


def test_answer_diff_names_what_differs() -> None:
    """The account a failing recovery test shows: the rows or keys that differ."""
    assert answer_diff("/x", [{"a": 1}], [{"a": 1}]) == ""
    assert "1 missing" in answer_diff("/x", [], [{"a": 1}])
    assert "'orders': (1, 2)" in answer_diff("/x", {"orders": 1}, {"orders": 2})
