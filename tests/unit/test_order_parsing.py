"""Decoding and upgrading every known order version (streams.orders.logic.parse_order)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from producers.orders import OrderGenerator, load_catalog, to_v2, to_v11
from streams.orders.logic import Rejected, day_of, money, parse_order
from streams.orders.models import Order
from tests.unit.factories import item, order, raw, v1


def generated_v1_orders(count: int) -> list[dict[str, Any]]:
    generator = OrderGenerator(load_catalog(), seed=11)
    return [orjson.loads(next(generator)[1]) for _ in range(count)]


def business_fields(parsed: Order) -> Order:
    """The order without what legitimately differs between versions: total and version."""
    return dataclasses.replace(parsed, total_cents=None, schema_version=0)


def rejection(obj: Any) -> Rejected:
    with pytest.raises(Rejected) as caught:
        parse_order(obj if isinstance(obj, bytes | None) else raw(obj))
    return caught.value


@pytest.mark.parametrize("generated", generated_v1_orders(10), ids=lambda o: o["order_id"])
def test_all_versions_of_an_order_upgrade_to_the_same_order(generated: dict[str, Any]) -> None:
    """A channel sending v1, v1.1 or v2 of an order yields the same counted order."""
    parsed = [parse_order(raw(form)) for form in (generated, to_v11(generated), to_v2(generated))]
    assert business_fields(parsed[1]) == business_fields(parsed[0])
    assert business_fields(parsed[2]) == business_fields(parsed[0])


def test_upgraded_orders_keep_their_declared_total_and_version() -> None:
    """v1 has no declared total; v1.1 and v2 carry theirs in cents with their version."""
    generated = generated_v1_orders(1)[0]
    plain, v11, v2 = (parse_order(raw(f)) for f in (generated, to_v11(generated), to_v2(generated)))
    assert (plain.total_cents, plain.schema_version) == (None, 1)
    assert (v11.total_cents, v11.schema_version) == (plain.items_cents, 1)
    assert (v2.total_cents, v2.schema_version) == (plain.items_cents, 2)


def test_money_is_exact_cents() -> None:
    """Three items at 29.99 are worth exactly 89.97."""
    parsed = order(items=[item("PROD-001", 3, "29.99")])
    assert parsed.items_cents == 8997
    assert money(parsed.items_cents) == "89.97"


def test_sums_that_drift_in_floating_point_stay_exact() -> None:
    """Prices such as 0.10 and 0.20 add up to exactly 0.30, also against a declared total."""
    items = [item("PROD-001", 1, "0.10"), item("PROD-002", 1, "0.20"), item("PROD-003", 3, "0.10")]
    parsed = order(items=items, total_amount=0.6)
    assert parsed.items_cents == parsed.total_cents == 60


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"items": [item(price="29.999")]}, "items.0.unit_price"),
        ({"items": [item(quantity=0)]}, "items.0.quantity"),
        ({"items": [item(quantity=-2)]}, "items.0.quantity"),
        ({"items": []}, "items"),
        ({"timestamp": "2025-08-01T12:00:00"}, "timestamp"),
        ({"status": "shipped"}, "status"),
        ({"currency": "EUR"}, "currency"),
        ({"total_amount": 10.005}, "total_amount"),
        ({"customer_id": None}, "customer_id"),
        ({"shipping_address": {"country": "US"}}, "shipping_address.state"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_invalid_v1_field_is_named(changes: dict[str, Any], field: str) -> None:
    """An order with a bad field is rejected as invalid and the detail names that field."""
    rejected = rejection(v1(**changes))
    assert rejected.reason == "invalid"
    assert f"{field}:" in rejected.detail


@pytest.mark.parametrize("missing", ["customer_id", "timestamp", "channel", "items", "status"])
def test_missing_v1_field_is_named(missing: str) -> None:
    """A v1 order without a required field is rejected as invalid, naming the field."""
    obj = v1()
    del obj[missing]
    rejected = rejection(obj)
    assert rejected.reason == "invalid"
    assert f"{missing}: Field required" in rejected.detail


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("lines", 0, "qty"), 0, "lines.0.qty"),
        (("created_at",), "2025-08-01T12:00:00", "created_at"),
        (("currency",), "GBP", "currency"),
        (("status",), "lost", "status"),
    ],
)
def test_invalid_v2_field_is_named(path: tuple[Any, ...], value: Any, field: str) -> None:
    """A v2 order with a bad field is rejected as invalid and the detail names that field."""
    obj = to_v2(v1())
    target = obj
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    rejected = rejection(obj)
    assert rejected.reason == "invalid"
    assert f"{field}:" in rejected.detail


@pytest.mark.parametrize("value", [b"{", b'{"order_id": "ORD-X", "items": [', b"", None, b"\xff"])
def test_non_json_is_a_decode_error(value: bytes | None) -> None:
    """A record that is not JSON at all is dead-lettered as a decode error."""
    assert rejection(value).reason == "decode_error"


@pytest.mark.parametrize("value", [b"[1, 2, 3]", b'"order"', b"42", b"null", b"true"])
def test_json_that_is_not_an_object_is_a_decode_error(value: bytes) -> None:
    """A JSON array, string, number or null is dead-lettered as a decode error."""
    assert rejection(value).reason == "decode_error"


@pytest.mark.parametrize(
    "obj",
    [
        {"schema_version": 9, "id": "ORD-FUTURE"},
        {**v1(), "schema_version": 9},
        {"foo": 1, "bar": [2]},
        {},
    ],
    ids=["v9", "v1-fields-as-v9", "unknown-fields", "empty"],
)
def test_unknown_format_is_unknown_schema(obj: dict[str, Any]) -> None:
    """A future version or an object with no known fields is dead-lettered as unknown_schema."""
    assert rejection(obj).reason == "unknown_schema"


def test_unknown_extra_fields_are_ignored() -> None:
    """Fields a channel adds before we know them do not change or reject the order."""
    base = v1()
    extended = {
        **base,
        "gift_wrap": True,
        "items": [{**base["items"][0], "color": "red"}],
        "shipping_address": {**base["shipping_address"], "zip": "94105"},
    }
    assert parse_order(raw(extended)) == parse_order(raw(base))


@pytest.mark.parametrize("form", [lambda o: o, to_v2], ids=["v1", "v2"])
def test_timestamps_with_an_offset_are_converted_to_utc(form: Any) -> None:
    """An order placed at 23:30 at UTC-2 on 1 August belongs to 2 August (UTC)."""
    parsed = parse_order(raw(form(v1(timestamp="2025-08-01T23:30:00-02:00"))))
    assert parsed.event_time == datetime(2025, 8, 2, 1, 30, tzinfo=UTC)
    assert parsed.event_time.utcoffset() == timedelta(0)
    assert day_of(parsed.event_ms) == "2025-08-02"
