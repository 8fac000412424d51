"""Hostile inputs cost one dead letter each and move nothing else (orders and telemetry)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry, Counter
from pydantic import ValidationError

from streams.common.background import guarded
from streams.common.exactly_once import PartitionState
from streams.common.labels import allowed
from streams.common.partitioning import partition_for
from streams.orders.aggregates import flush_partition, watermark
from streams.orders.logic import Rejected, Rules, reference_record
from streams.orders.models import CatalogEntry, InventoryRow
from streams.orders.partition_batch import process_record
from streams.telemetry.models import ReadingGroup, beyond, decode_each_group, decode_groups
from tests.unit.factories import bundled_catalog, entry, item, raw, v1

NOW_MS = 1_754_049_600_000  # 2025-08-01T12:00:00Z
RULES = Rules(max_future_ms=300_000, partitions=4)


def keyed(customer: str = "CUST-1") -> tuple[bytes, int]:
    """The key and partition Kafka's default partitioner gives a customer's orders."""
    return customer.encode(), partition_for(customer.encode(), 4)


def run(records: list[tuple[bytes, bytes | None, int]], *, partition: int) -> list[Any]:
    """Process (value, key, kafka timestamp ms) records of one partition; their outcomes."""
    table: dict[Any, Any] = {}
    state = PartitionState(table)
    catalog = bundled_catalog()
    outcomes = [
        process_record(
            value, partition, offset, NOW_MS, state, state, catalog, RULES, key=key, record_ms=ts
        )
        for offset, (value, key, ts) in enumerate(records)
    ]
    flush_partition(state, partition)
    return [outcomes, table]


def test_an_order_from_year_2999_is_a_dead_letter_and_real_orders_after_it_count() -> None:
    """A far-future order is rejected as future_timestamp and never moves stream time."""
    key, partition = keyed()
    future = raw(v1(order_id="ORD-F", timestamp="2999-01-01T00:00:00Z"))
    real = [raw(v1(order_id=f"ORD-{i}", timestamp="2025-08-01T11:00:00Z")) for i in range(3)]

    outcomes, table = run(
        [(future, key, NOW_MS), *[(r, key, NOW_MS) for r in real]], partition=partition
    )

    assert outcomes[0].rejected.reason == "future_timestamp"
    assert [o.kind for o in outcomes[1:]] == ["applied"] * 3
    assert watermark(PartitionState(table), partition) == NOW_MS - 3_600_000


@pytest.mark.parametrize(
    "stamp",
    ["0025-08-01T10:00:00Z", "0001-01-15T00:00:00Z", "1969-12-31T23:59:59Z",
     "1970-01-01T00:30:00+01:00", "9999-01-01T00:00:00Z", "9999-12-31T23:59:59Z"],
)  # fmt: skip
def test_an_order_outside_the_years_the_figures_hold_is_invalid(stamp: str) -> None:
    """The first order of a partition stamped before 1970 or in year 9999 is a dead
    letter, not counted: an adversarial probe saw year 25 labelled '25-08-01' stop the
    daily reports for good, and year 1 make the weekly sweep fail after the batch had
    counted it. Orders after it count and stream time is theirs."""
    key, partition = keyed()
    odd = raw(v1(order_id="ORD-ODD", timestamp=stamp))
    real = raw(v1(order_id="ORD-REAL", timestamp="2025-08-01T11:00:00Z"))

    outcomes, table = run([(odd, key, NOW_MS), (real, key, NOW_MS)], partition=partition)

    assert (outcomes[0].rejected.reason, outcomes[1].kind) == ("invalid", "applied")
    assert "1970-9998" in outcomes[0].rejected.detail
    assert watermark(PartitionState(table), partition) == NOW_MS - 3_600_000
    assert not [k for k in table if "|00" in k or "|1969" in k or "|9999" in k]


def test_the_first_and_last_moments_the_figures_hold_count() -> None:
    key, partition = keyed()
    rules = Rules(partitions=4)  # no bound on the future here: only the years are judged
    state = PartitionState({})
    kinds = [
        process_record(
            raw(v1(order_id=f"ORD-{i}", timestamp=stamp)), partition, i, NOW_MS, state, state,
            bundled_catalog(), rules, key=key, record_ms=NOW_MS,
        ).kind
        for i, stamp in enumerate(["1970-01-01T00:00:00Z", "9998-12-31T23:59:59Z"])
    ]  # fmt: skip
    assert kinds == ["applied", "applied"]


def test_an_order_total_the_figures_cannot_hold_is_invalid() -> None:
    """Valid catalog prices and quantities can still add up past what a 64-bit figure
    holds: a probe's 19 orders of a $999,999,999,999.99 product, 10,000 each, made every
    later order of the partition fail (orjson refuses the sum). An order over
    $10,000,000,000 is a dead letter; one at the bound counts."""
    key, partition = keyed()
    catalog = {
        "PROD-BIG": entry("PROD-BIG", "999999999999.99"),
        "PROD-1M": entry("PROD-1M", "1000000.00"),
    }

    big, million = item("PROD-BIG", 10_000, "999999999999.99"), item("PROD-1M", 10_000, "1000000")
    orders = [
        v1(order_id="ORD-HUGE", items=[big]),
        v1(order_id="ORD-BOUND", items=[million]),
        v1(order_id="ORD-OVER", items=[million, item("PROD-1M", 1, "1000000")]),
    ]
    state = PartitionState({})
    outcomes = [
        process_record(
            raw(o), partition, i, NOW_MS, state, state, catalog, RULES, key=key, record_ms=NOW_MS
        )
        for i, o in enumerate(orders)
    ]
    assert [o.kind for o in outcomes] == ["rejected", "applied", "rejected"]
    rejections = [o.rejected for o in outcomes if o.rejected is not None]
    assert [r.reason for r in rejections] == ["invalid", "invalid"]
    assert "over 10,000,000,000" in rejections[0].detail


def test_the_skew_is_judged_against_the_earlier_of_record_time_and_clock() -> None:
    """A forged record timestamp in the future does not let a future order through."""
    key, partition = keyed()
    ahead = raw(v1(timestamp="2025-08-01T12:10:00Z"))  # 10 minutes after NOW_MS

    forged, _ = run([(ahead, key, NOW_MS + 3_600_000)], partition=partition)
    assert forged[0].rejected.reason == "future_timestamp"

    old_record, _ = run([(ahead, key, NOW_MS - 86_400_000)], partition=partition)
    assert old_record[0].rejected.reason == "future_timestamp"

    near = raw(v1(timestamp="2025-08-01T12:04:00Z"))
    fine, _ = run([(near, key, NOW_MS)], partition=partition)
    assert fine[0].kind == "applied"


@pytest.mark.parametrize(
    ("key", "partition_shift"),
    [(None, 0), (b"CUST-2", 0), (b"", 0), (b"CUST-1", 1)],
    ids=["no-key", "another-customer", "empty", "wrong-partition"],
)
def test_a_record_whose_key_or_partition_is_not_its_customers_is_a_dead_letter(
    key: bytes | None, partition_shift: int
) -> None:
    """A wrong key would split a customer's dedup and figures: wrong_key, nothing counted."""
    _, home = keyed("CUST-1")
    outcomes, table = run([(raw(v1()), key, NOW_MS)], partition=(home + partition_shift) % 4)

    assert outcomes[0].rejected.reason == "wrong_key"
    assert not [k for k in table if not k.startswith(("clock|", "verdict|"))]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"available_quantity": "abc"}, "invalid"),
        ({"available_quantity": ""}, "invalid"),
        ({"available_quantity": -1}, "invalid"),
        ({"available_quantity": 10**12}, "invalid"),
        ({"available_quantity": 1.5}, "invalid"),
        ({"last_updated": "yesterday"}, "invalid"),
        ({"last_updated": "2025-08-01T00:00:00"}, "invalid"),
        ({"product_id": "PROD-002"}, "wrong_key"),
    ],
)
def test_an_inventory_row_is_checked_before_anything_reads_it(
    row: dict[str, Any], reason: str
) -> None:
    """Non-numeric, negative, huge or fractional stock, naive times, wrong keys: rejected."""
    good = {
        "product_id": "PROD-001",
        "available_quantity": 5,
        "warehouse_location": "WH-1",
        "last_updated": "2025-08-01T00:00:00Z",
    }
    with pytest.raises(Rejected) as caught:
        reference_record(InventoryRow, b"PROD-001", orjson.dumps({**good, **row}))
    assert caught.value.reason == reason
    assert reference_record(InventoryRow, "PROD-001", good).available_quantity == 5


@pytest.mark.parametrize(
    "value",
    [
        b"not json",
        b'{"product_id": "PROD-001", "category": "Home", "brand": "Acme", "price": "abc"}',
        b'{"product_id": "PROD-001", "category": "Home", "brand": "Acme", "price": -1}',
        b'{"product_id": "PROD-001", "category": "Home", "brand": "Acme", "price": 1.234}',
    ],
)
def test_a_catalog_entry_is_checked_before_anything_reads_it(value: bytes) -> None:
    """A catalog entry with no valid price is invalid."""
    with pytest.raises(Rejected) as caught:
        reference_record(CatalogEntry, b"PROD-001", value)
    assert caught.value.reason == "invalid"


def group(device: str = "sw-1", **row: Any) -> bytes:
    reading = {"interface": "eth0", "metric": "util", "value": 1.5, "ts": NOW_MS, "seq": 1}
    reading.update(row)
    body = orjson.dumps({"device_id": device, "readings": [list(reading.values())]})
    return body.replace(b'"NAN"', b"NaN").replace(b'"INF"', b"Infinity")


@pytest.mark.parametrize(
    "value",
    [
        group(value="NAN"),
        group(value="INF"),
        group().replace(b"1.5", b"1e999"),
        group().replace(b"1.5", b"-Infinity"),
        group(ts=253_402_300_800_000),  # year 10000
        group(ts=-1),
        group(seq=2**63),
        group(device="sw|1"),
        group(interface="eth|0"),
        group(metric=""),
        group(device="x" * 129),
        group(value="1.5"),
        group(value=True),
        group().replace(b"1.5", b"1.7e308"),
    ],
    ids=[
        "nan", "infinity", "overflow", "-infinity", "year-10000", "before-1970",
        "seq-64-bit", "separator-in-device", "separator-in-interface", "empty-metric",
        "long-device", "value-as-string", "value-as-bool", "sum-would-overflow",
    ],
)  # fmt: skip
def test_a_kafka_record_gets_the_ingests_rules(value: bytes) -> None:
    """What the HTTP ingest refuses, a record written straight to Kafka is refused too."""
    with pytest.raises(ValidationError):
        decode_groups(value)


def test_one_bad_group_of_an_array_record_is_refused_alone() -> None:
    """In an array record, the valid groups are kept and the invalid one named."""
    value = b"[" + group("sw-1") + b"," + group("sw-2", value="NAN") + b"]"

    found = decode_each_group(value)

    assert found[0] == ReadingGroup.model_validate_json(group("sw-1"))
    assert isinstance(found[1], tuple)
    assert "finite" in found[1][1]


def test_readings_beyond_the_skew_are_split_off() -> None:
    """Readings after the bound go apart, in order; the rest are kept as they were."""
    rows = [("e", "m", 1.0, 10, 1), ("e", "m", 2.0, 30, 2), ("e", "m", 3.0, 20, 3)]

    assert beyond(rows, 30) == (rows, [])
    assert beyond(rows, 20) == ([rows[0], rows[2]], [rows[1]])


def test_label_values_outside_the_allow_list_are_other() -> None:
    """A channel nobody configured becomes ``other`` in metrics: bounded series."""
    assert allowed("web", {"web", "api"}) == "web"
    assert allowed("x" * 1000, {"web", "api"}) == "other"


def test_a_guarded_task_failure_is_counted_and_swallowed() -> None:
    """A timer body that raises is logged and counted; cancellation still stops it."""
    failures = Counter("t_task_failures", "", ["task"], registry=CollectorRegistry())

    @guarded(failures, "tick")
    async def broken() -> None:
        raise ValueError("bad row")

    @guarded(failures, "tick")
    async def stopping() -> None:
        raise asyncio.CancelledError

    asyncio.run(broken())
    asyncio.run(broken())
    assert failures.labels("tick")._value.get() == 2
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(stopping())


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_an_order_whose_time_leaves_the_calendar_in_utc_is_invalid(stamp: str) -> None:
    """Year 1 at +01:00 or year 9999 at -01:00: one `invalid` dead letter, not a crash."""
    key, partition = keyed()
    outcomes, _ = run([(raw(v1(timestamp=stamp)), key, NOW_MS)], partition=partition)

    assert outcomes[0].rejected.reason == "invalid"


def test_reference_keys_are_read_as_the_mirror_reads_them() -> None:
    """A JSON-quoted key (Faust's form) names the same product as a plain one."""
    row = {"product_id": "PROD-049", "category": "Home", "brand": "Acme", "price": "1.00"}
    assert reference_record(CatalogEntry, b'"PROD-049"', orjson.dumps(row)).product_id == "PROD-049"
    with pytest.raises(Rejected):
        reference_record(CatalogEntry, b'"PROD-048"', orjson.dumps(row))
