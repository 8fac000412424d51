"""The fast order reader (streams/orders/decode.py) against the pydantic models, its spec.

``parse_order`` takes the fast reader's order when it gives one and the models' path
otherwise; these tests check that the two agree on every input: the same order, or the
same rejection with the same reason and detail.
"""

from __future__ import annotations

import copy
import itertools
import random
from typing import Any

import orjson
import pytest

from producers.orders import Faults, OrderGenerator, load_catalog, to_v2, to_v11
from streams.orders.decode import read_order
from streams.orders.logic import Rejected, parse_by_models, parse_order
from streams.orders.models import Order
from tests.unit.factories import raw, v1

Outcome = tuple[str, Any, Any]


def outcome(parse: Any, value: bytes | None) -> Outcome:
    try:
        order: Order = parse(value)
    except Rejected as rejected:
        return ("rejected", rejected.reason, rejected.detail)
    return ("order", order, order.event_time.isoformat())


def assert_same(value: bytes | None) -> None:
    assert outcome(parse_order, value) == outcome(parse_by_models, value or b"")


def generated(count: int, seed: int = 5) -> list[dict[str, Any]]:
    generator = OrderGenerator(load_catalog(), seed=seed, faults=Faults(variants=0.3))
    return [orjson.loads(value) for _key, value in itertools.islice(generator, count)]


def test_the_orders_channels_send_take_the_fast_path_unchanged() -> None:
    """Every generated v1, v1.1 and v2 order is read without the models, and the order
    equals the models' own."""
    for obj in generated(300):
        for form in (obj, to_v11(obj), to_v2(obj)) if "order_id" in obj else (obj,):
            fast = read_order(form)
            assert fast is not None, form
            assert fast == parse_by_models(raw(form))


def v2() -> dict[str, Any]:
    return to_v2(v1())


def changed(base: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """``base`` with the field at ``path`` set to ``value`` (``MISSING`` deletes it)."""
    out = copy.deepcopy(base)
    target = out
    for step in path[:-1]:
        target = target[step]
    if value is MISSING and isinstance(target, dict):
        target.pop(path[-1], None)
    elif value is MISSING:
        target.pop(path[-1])
    else:
        target[path[-1]] = value
    return out


MISSING = object()

#: Values every field is tried with: wrong types, numbers as strings, edges, hostile forms.
ODD_VALUES: list[Any] = [
    MISSING, None, True, False, 0, 1, -1, 2, 10_000, 10_001, 2**31, 2**63 - 1, 2**64 - 1,
    0.0, -0.0, 0.01, 0.001, 0.5, 1.0, 29.99, 29.999, 248.06, 1e-5, 1e11, 999999999999.99,
    1e12, 1e15, 1e16, 1.7e308, "", " ", "1", "248.06", "ORD-1", "ORD-1\n", "\nORD-1",
    "ÖRD-1", "x" * 64, "x" * 65, "web", "WEB", "web\n", "US", "us", "CA", "CAL", "ABCD",
    "confirmed", "CONFIRMED", "shipped", "USD", "usd", "EUR", [], {}, [1], {"a": 1},
    "2025-08-01T12:00:00Z", "2025-08-01T12:00:00", "2025-08-01 12:00:00Z",
    "2025-08-01T12:00Z", "2025-08-01T12:00:00z", "2025-08-01t12:00:00Z",
    "2025-08-01T12:00:00.1234567Z", "2025-08-01T12:00:00.5+02:00", "2025-08-01T12:00:00+0200",
    "2025-08-01T12:00:00+23:59", "2025-08-01T12:00:00+24:00", "2025-08-01T12:00:00-01:75",
    "2025-02-30T12:00:00Z", "2025-08-01T23:59:60Z", "2025-08-01T24:00:00Z",
    "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0000-01-01T00:00:00Z",
    "\uff12\uff10\uff12\uff15-08-01T12:00:00Z", "1754049600", 1754049600, 1754049600.5,
]  # fmt: skip

V1_PATHS: list[tuple[Any, ...]] = [
    ("order_id",), ("customer_id",), ("timestamp",), ("channel",), ("status",), ("items",),
    ("currency",), ("total_amount",), ("shipping_address",), ("shipping_address", "country"),
    ("shipping_address", "state"), ("shipping_address", "city"), ("items", 0),
    ("items", 0, "product_id"), ("items", 0, "quantity"), ("items", 0, "unit_price"),
    ("schema_version",),
]  # fmt: skip

V2_PATHS: list[tuple[Any, ...]] = [
    ("schema_version",), ("id",), ("customer",), ("customer", "id"), ("customer", "email"),
    ("created_at",), ("source",), ("lines",), ("lines", 0), ("lines", 0, "sku"),
    ("lines", 0, "qty"), ("lines", 0, "unit_price_cents"), ("shipping",),
    ("shipping", "country"), ("shipping", "region"), ("shipping", "city"), ("status",),
    ("total_cents",), ("currency",),
]  # fmt: skip


@pytest.mark.parametrize(
    ("base", "path"),
    [(v1, p) for p in V1_PATHS] + [(v2, p) for p in V2_PATHS],
    ids=lambda x: ".".join(map(str, x)) if isinstance(x, tuple) else x.__name__,
)
def test_every_field_with_odd_values_is_judged_as_the_models_judge_it(
    base: Any, path: tuple[Any, ...]
) -> None:
    """Missing fields, wrong types, strings for numbers, edge values: the same outcome."""
    for value in ODD_VALUES:
        assert_same(raw(changed(base(), path, value)))


def with_item_count(base: dict[str, Any], key: str, count: int) -> bytes:
    return raw({**base, key: base[key] * count})


@pytest.mark.parametrize(
    "value",
    [
        None,
        b"",
        b" ",
        b"\xff\xfe",
        raw(v1()).replace(b"San Francisco", b"San \xff Francisco"),
        raw(v1()).replace(b"San Francisco", b"\\ud800"),
        raw(v1()).replace(b"248.06", b"NaN"),
        raw(v1()).replace(b"248.06", b"Infinity"),
        raw(v1()).replace(b"248.06", b"-Infinity"),
        raw(v1()).replace(b"248.06", b"1e999"),
        raw(v1()).replace(b"248.06", b"1" + b"0" * 400),
        raw(v1()).replace(b"248.06", b"248.060"),
        raw(v1()).replace(b"248.06", b"248.0600000000000001"),
        raw(v1()).replace(b"248.06", b"2.4806e2"),
        raw(v1()).replace(b"248.06", b"24806E-2"),
        raw(v1()).replace(b'"quantity":1', b'"quantity":1.0'),
        raw(v1()).replace(b'"quantity":1', b'"quantity":' + b"9" * 30),
        raw(v1()).replace(b'"order_id":"ORD-1"', b'"order_id":"ORD-1","order_id":"ORD-2"'),
        raw(v1()).replace(b'"order_id":"ORD-1"', b'"order_id":"bad id","order_id":"ORD-2"'),
        raw(v1()).replace(b'"order_id":"ORD-1"', b'"order_id":"ORD-2","order_id":"bad id"'),
        raw(v1()).replace(b'"order_id"', b'"order\\u005fid"'),
        raw(v1()).replace(b'"status":"confirmed"', b'"status":"confirmed","schema_version":null'),
        raw(v1()).replace(b'"status":"confirmed"', b'"status":"confirmed","schema_version":1'),
        raw(v1()).replace(b"{", b"{ ", 1),
        raw(v1()) + b"\n",
        raw(v1()) + b" x",
        b"[" * 5000 + b"]" * 5000,
        raw(v1(city=None)).replace(b"null", b"[" * 2000 + b"]" * 2000),
        raw(v2()).replace(b'"schema_version":2', b'"schema_version":2.0'),
        raw(v2()).replace(b'"schema_version":2', b'"schema_version":"2"'),
        raw(v2()).replace(b'"schema_version":2', b'"schema_version":true'),
        raw(v2()).replace(b'"schema_version":2', b'"schema_version":2,"schema_version":2'),
        with_item_count(v1(), "items", 500),
        with_item_count(v1(), "items", 501),
        with_item_count(v2(), "lines", 500),
        with_item_count(v2(), "lines", 501),
        raw({**v1(), "extra": {"deep": [1, 2, {"x": None}]}, "gift": True}),
        raw([v1()]),
        raw("order"),
    ],
)
def test_hostile_records_are_judged_as_the_models_judge_them(value: bytes | None) -> None:
    """Non-JSON, non-UTF-8, NaN and infinities, huge numbers, duplicate keys, deep
    nesting, empty bodies: the same order or the same dead letter as before."""
    assert_same(value)


def mutations(obj: Any, rng: random.Random) -> Any:
    """``obj`` with one leaf replaced by a random odd value."""
    out = copy.deepcopy(obj)
    paths = list(_leaves(out, ()))
    path = rng.choice(paths)
    return changed(out, path, rng.choice(ODD_VALUES))


def _leaves(obj: Any, at: tuple[Any, ...]) -> Any:
    if at:
        yield at
    children = (
        obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    )
    for key, child in children:
        yield from _leaves(child, (*at, key))


def test_randomly_broken_orders_are_judged_as_the_models_judge_them() -> None:
    """Seeded random breakage of generated orders of every version: the same outcome."""
    rng = random.Random(17)
    for obj in generated(150, seed=9):
        forms = (obj, to_v11(obj), to_v2(obj)) if "order_id" in obj else (obj,)
        for form in forms:
            broken = form
            for _ in range(rng.randint(1, 3)):
                broken = mutations(broken, rng)
            assert_same(raw(broken))
