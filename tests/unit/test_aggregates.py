"""How records change the orders tables, exactly once (streams.orders.aggregates)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from streams.orders.aggregates import (
    VALUE_BUCKETS,
    bucket_of,
    check_lateness,
    clock_key,
    customers_key,
)
from streams.orders.logic import DAY_MS, HOUR_MS, Rejected, Rules, day_end_ms
from streams.orders.models import CatalogEntry
from tests.unit.factories import (
    Crash,
    LossyTable,
    catalog_of,
    comparable,
    entry,
    item,
    kinds,
    numbered,
    order,
    raw,
    run_batch,
    v1,
)

DAILY = "daily|2025-08-01|web|CA|0"


def rec(order_id: str = "ORD-1", customer: str = "CUST-1", **fields: Any) -> bytes:
    return raw(v1(order_id=order_id, customer_id=customer, **fields))


class CrashingTable(dict[Any, Any]):
    """A dict-backed table whose worker dies after ``limit`` writes (None: never)."""

    def __init__(self, limit: int | None) -> None:
        super().__init__()
        self.limit = limit

    def __setitem__(self, key: Any, value: Any) -> None:
        if self.limit is not None:
            if self.limit == 0:
                raise Crash(key)
            self.limit -= 1
        super().__setitem__(key, value)


def mixed_stream() -> list[bytes | None]:
    """Records touching shared keys: repeat customers, a duplicate, rejects, two days."""
    return [
        rec("ORD-1", "CUST-1"),
        rec("ORD-2", "CUST-2", items=[item("PROD-002", 2, "243.82")]),
        rec("ORD-3", "CUST-1", status="pending"),
        b"[1, 2]",
        rec("ORD-4", "CUST-3", status="cancelled"),
        rec("ORD-1", "CUST-1"),
        rec("ORD-5", "CUST-2", timestamp="2025-08-02T09:00:00Z"),
        rec("ORD-6", "CUST-9", items=[item("PROD-404", 1, "1.00")]),
        rec("ORD-7", "CUST-1", channel="mobile"),
        rec(
            "ORD-8",
            "CUST-4",
            timestamp="2025-08-02T10:00:00Z",
            items=[item("PROD-003", 3, "258.95")],
        ),
        rec("ORD-9", "CUST-3"),
        rec("ORD-10", "CUST-2"),
    ]


def clean_run(catalog: dict[str, CatalogEntry]) -> dict[Any, Any]:
    table: dict[Any, Any] = {}
    run_batch(table, numbered(mixed_stream()), catalog)
    return comparable(table)


def test_order_is_counted_in_daily_hourly_and_product_figures(catalog: Any) -> None:
    """One order adds its orders, cents and units under its status to every figure."""
    table: dict[Any, Any] = {}
    run_batch(
        table, numbered([rec(status="pending", items=[item("PROD-001", 2, "248.06")])]), catalog
    )
    expected = [1, 49612, 2]
    assert table[DAILY]["s"] == {"pending": expected}
    assert table["hourly|2025-08-01T12|web|0"]["s"] == {"pending": expected}
    assert table["product|2025-08-01|PROD-001|0"]["s"] == {"pending": expected}


def test_duplicate_order_id_counts_once(catalog: Any) -> None:
    """The same order id sent again at a later offset is counted once and reported duplicate."""
    table: dict[Any, Any] = {}
    outcomes = run_batch(table, numbered([rec(), rec(), rec("ORD-2")]), catalog)
    later = run_batch(table, numbered([rec()], start=3), catalog)
    assert kinds(outcomes + later) == ["applied", "duplicate", "applied", "duplicate"]
    assert table[DAILY]["s"]["confirmed"] == [2, 2 * 24806, 2]


def test_redelivered_record_after_flush_changes_nothing(catalog: Any) -> None:
    """A record delivered again at the same offset after a flush is replayed, not recounted."""
    table: dict[Any, Any] = {}
    records = numbered([rec("ORD-1"), rec("ORD-2", "CUST-2")])
    run_batch(table, records, catalog)
    before = comparable(table)
    outcomes = run_batch(table, records[1:], catalog, wall_ms=99)
    assert [(o.kind, o.rejected) for o in outcomes] == [("replayed", None)]
    assert comparable(table) == before


def test_redelivered_malformed_record_is_not_dead_lettered_again(catalog: Any) -> None:
    """A malformed record redelivered after a flush is replayed instead of rejected twice."""
    table: dict[Any, Any] = {}
    records = numbered([b"{not json", rec()])
    assert kinds(run_batch(table, records, catalog)) == ["rejected", "applied"]
    assert kinds(run_batch(table, records, catalog)) == ["replayed", "replayed"]


def test_rejected_record_stays_uncounted_after_the_catalog_learns_its_product(
    catalog: dict[str, CatalogEntry],
) -> None:
    """An order rejected as unknown_product before a restart is not counted on redelivery."""
    table: dict[Any, Any] = {}
    records = numbered([rec("ORD-1"), rec("ORD-2", items=[item("PROD-999", 1, "5.00")])])
    first = run_batch(table, records, catalog)
    assert first[1].rejected is not None
    assert first[1].rejected.reason == "unknown_product"
    before = comparable(table)
    learned = {**catalog, **catalog_of(entry("PROD-999", "5.00"))}
    assert kinds(run_batch(table, records, learned)) == ["replayed", "replayed"]
    assert comparable(table) == before


@pytest.mark.parametrize("survivors", [0.0, 0.1, 0.5, 0.9, -1])
def test_crash_during_flush_then_full_replay_equals_a_clean_run(
    catalog: dict[str, CatalogEntry], survivors: float
) -> None:
    """A worker dying part-way through writing a batch, then redoing it, counts everything once."""
    clean = clean_run(catalog)
    limit = len(clean) - 1 if survivors == -1 else int(len(clean) * survivors)
    table = CrashingTable(limit)
    with pytest.raises(Crash):
        run_batch(table, numbered(mixed_stream()), catalog)
    assert len(table) == limit
    table.limit = None
    run_batch(table, numbered(mixed_stream()), catalog, wall_ms=2)
    assert comparable(table) == clean


@pytest.mark.parametrize("survivors", [0, 3])
def test_crash_in_a_later_batch_then_full_replay_equals_a_clean_run(
    catalog: dict[str, CatalogEntry], survivors: int
) -> None:
    """A worker dying in its second batch, then redoing the stream from the start, counts once."""
    records = numbered(mixed_stream())
    half = len(records) // 2
    table = CrashingTable(None)
    run_batch(table, records[:half], catalog)
    table.limit = survivors
    with pytest.raises(Crash):
        run_batch(table, records[half:], catalog)
    table.limit = None
    run_batch(table, records, catalog, wall_ms=2)
    assert comparable(table) == clean_run(catalog)


class RecordingTable(dict[Any, Any]):
    """A dict-backed table that notes the keys written."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[Any] = []

    def __setitem__(self, key: Any, value: Any) -> None:
        self.written.append(key)
        super().__setitem__(key, value)


@pytest.mark.parametrize("seed", range(60))
def test_any_subset_of_a_flush_then_full_replay_equals_a_clean_run(
    catalog: dict[str, CatalogEntry], seed: int
) -> None:
    """Whichever of a batch's keys a crash let through (a failed produce request can
    deliver any subset of a phase), redoing the batch counts every customer, repeat
    customer and order once: no key has to be written before another but the clock."""
    rng = random.Random(seed)
    table = LossyTable(lambda _key: rng.random() < 0.5)
    with pytest.raises(Crash):
        run_batch(table, numbered(mixed_stream()), catalog)
    plain: dict[Any, Any] = dict(table)
    run_batch(plain, numbered(mixed_stream()), catalog, wall_ms=2)
    assert comparable(plain) == clean_run(catalog)


def test_a_customer_counted_by_an_earlier_version_stays_new_or_repeat(
    catalog: dict[str, CatalogEntry],
) -> None:
    """Values written with a count ``n`` (no offsets): a customer with one counted order
    becomes a repeat customer on its next; one with more is not counted as repeat again."""
    table: dict[Any, Any] = {
        "customer|CUST-1": {"n": 1, "c": 24806, "_o": 0},
        "customer|CUST-2": {"n": 7, "c": 99000, "_o": 1},
        customers_key(0): {"customers": 2, "repeat": 1, "orders": 8, "cents": 0, "hist": [0] * 8},
    }
    records = [rec("ORD-A", "CUST-1"), rec("ORD-B", "CUST-2"), rec("ORD-C", "CUST-1")]
    assert kinds(run_batch(table, numbered(records, start=5), catalog)) == ["applied"] * 3
    summary = table[customers_key(0)]
    assert (summary["customers"], summary["repeat"], summary["orders"]) == (2, 2, 11)
    assert table["customer|CUST-1"]["f"] == [-1, 5]
    assert table["customer|CUST-2"]["f"] == [-1, -1]


@pytest.mark.parametrize(
    "stored",
    [{"ids": {}, "_o": 0}, {"ids": {"ORD-X": [0, 20290, 1]}, "_o": 0}, {"n": 0, "_o": 0}],
    ids=["ids-only", "ids-without-od", "n-zero"],
)
def test_odd_values_of_earlier_versions_count_the_next_order(
    catalog: dict[str, CatalogEntry], stored: dict[str, Any]
) -> None:
    """A customer value with ``ids`` but no count or no ``od`` (found by a probe reading
    the code): its next order is applied, not failed as a processing error."""
    table: dict[Any, Any] = {"customer|CUST-1": dict(stored)}
    assert kinds(run_batch(table, numbered([rec("ORD-A")], start=5), catalog)) == ["applied"]
    assert table["customer|CUST-1"]["f"] == [5]
    assert table[customers_key(0)]["customers"] == 1


def test_a_repeat_customers_value_is_not_written_again(catalog: dict[str, CatalogEntry]) -> None:
    """Past its second counted order, a customer's value is read, never rewritten: one
    changelog record per order fewer."""
    table = RecordingTable()
    run_batch(table, numbered([rec("ORD-1"), rec("ORD-2")]), catalog)
    table.written.clear()
    run_batch(table, numbered([rec("ORD-3")], start=2), catalog)
    written = table.written
    assert "customer|CUST-1" not in written
    assert "order|CUST-1|ORD-3" in written


def test_order_older_than_retention_is_late() -> None:
    """An order further behind the partition's newest order than the retention is rejected."""
    rules = Rules(retention_ms=10 * DAY_MS)
    placed = order()
    with pytest.raises(Rejected) as caught:
        check_lateness(placed, placed.event_ms + 10 * DAY_MS + 1, rules)
    assert caught.value.reason == "late"
    assert check_lateness(placed, placed.event_ms + 10 * DAY_MS, rules) is True


@pytest.mark.parametrize(
    ("after_day_end", "revision"),
    [(-HOUR_MS, False), (0, False), (5 * 60_000 - 1, False), (5 * 60_000, True), (DAY_MS, True)],
)
def test_order_arriving_after_its_day_and_grace_is_a_revision(
    after_day_end: int, revision: bool
) -> None:
    """An order whose day closed more than the grace period ago revises that day's figures."""
    placed = order()
    high = day_end_ms(placed.event_ms) + after_day_end
    assert check_lateness(placed, high, Rules(grace_ms=5 * 60_000)) is revision


def test_first_order_of_a_partition_is_never_late() -> None:
    """Without a partition clock yet, no order is late or a revision."""
    assert check_lateness(order(timestamp="2000-01-01T00:00:00Z"), None, Rules()) is False


def test_late_orders_in_the_stream(catalog: Any) -> None:
    """Behind the stream: a day late is counted as a revision, beyond retention is rejected."""
    table: dict[Any, Any] = {}
    records = numbered(
        [
            rec("ORD-1", timestamp="2025-09-30T12:00:00Z"),
            rec("ORD-2", timestamp="2025-09-29T12:00:00Z"),
            rec("ORD-3", timestamp="2025-08-01T12:00:00Z"),
        ]
    )
    outcomes = run_batch(table, records, catalog)
    assert [(o.kind, o.revision) for o in outcomes] == [
        ("applied", False),
        ("applied", True),
        ("rejected", False),
    ]
    assert outcomes[2].rejected is not None
    assert outcomes[2].rejected.reason == "late"
    assert DAILY not in table
    assert table[clock_key(0)]["max_ms"] == order(timestamp="2025-09-30T12:00:00Z").event_ms


def test_customer_figures_count_repeat_customers(catalog: Any) -> None:
    """Customers, repeat customers and orders are counted once per customer across orders."""
    table: dict[Any, Any] = {}
    stream = [
        rec("ORD-1", "CUST-1"),
        rec("ORD-2", "CUST-2"),
        rec("ORD-3", "CUST-1", status="pending"),
        rec("ORD-4", "CUST-1"),
        rec("ORD-5", "CUST-3"),
    ]
    run_batch(table, numbered(stream[:3]), catalog)
    run_batch(table, numbered(stream[3:], start=3), catalog)
    summary = table[customers_key(0)]
    assert (summary["customers"], summary["repeat"], summary["orders"]) == (3, 1, 5)
    assert summary["cents"] == 5 * 24806


def test_cancelled_orders_are_left_out_of_customer_figures_but_deduplicated(catalog: Any) -> None:
    """A cancelled order adds no customer figures, and resending its id is still a duplicate."""
    table: dict[Any, Any] = {}
    stream = [
        rec("ORD-1", "CUST-1", status="cancelled"),
        rec("ORD-1", "CUST-1", status="confirmed"),
        rec("ORD-2", "CUST-1"),
    ]
    assert kinds(run_batch(table, numbered(stream), catalog)) == ["applied", "duplicate", "applied"]
    summary = table[customers_key(0)]
    assert (summary["customers"], summary["repeat"], summary["orders"]) == (1, 0, 1)
    assert table[DAILY]["s"] == {"cancelled": [1, 24806, 1], "confirmed": [1, 24806, 1]}


@pytest.mark.parametrize(
    ("cents", "bucket"),
    [(1, 0), (2_499, 0), (2_500, 1), (9_999, 2), (10_000, 3), (249_999, 6), (250_000, 7)],
)
def test_order_value_histogram_bucket_boundaries(cents: int, bucket: int) -> None:
    """Each bucket holds orders from its lower bound up to, not including, its upper bound."""
    assert bucket_of(cents) == bucket


def test_order_values_land_in_their_histogram_bucket() -> None:
    """Orders of 24.99 and 25.00 fall in the first and second value buckets."""
    shop = catalog_of(entry("P-A", "24.99"), entry("P-B", "25.00"))
    table: dict[Any, Any] = {}
    stream = [
        rec("ORD-1", items=[item("P-A", 1, "24.99")]),
        rec("ORD-2", items=[item("P-B", 1, "25.00")]),
    ]
    run_batch(table, numbered(stream), shop)
    hist = table[customers_key(0)]["hist"]
    assert len(hist) == len(VALUE_BUCKETS) + 1
    assert hist[:2] == [1, 1]
    assert sum(hist) == 2
