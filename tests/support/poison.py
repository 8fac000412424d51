"""Hostile inputs for the poison test (tests/integration/test_poison.py), each with what
must become of it.

Every record the test writes is a ``Sent``: its bytes, where it goes, and the
dead-letter reasons it must produce (none for a record that must count). The builders
are pure and seeded. Nothing here imports the product's rules: ``partition_for`` only
says which partition Kafka's default partitioner gives a key, and the expectations are
README.md's and the issue's, written out case by case.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Literal

import orjson
from aiokafka import AIOKafkaProducer

from producers.orders import fixture, inventory_records
from streams.common.partitioning import partition_for

RAW, INVENTORY, CATALOG, READINGS = (
    "orders.raw",
    "orders.inventory",
    "orders.catalog",
    "telemetry.readings",
)
ORDER_PARTITIONS, READING_PARTITIONS = 4, 6
#: (interface, metric, value, ts in epoch ms, seq): a reading as a group holds it.
Row = tuple[str, str, float, int, int]
Counted = tuple[tuple[str, tuple[Row, ...]], ...]
#: Where a record goes in the orders replay: before every real order, after a fifth
#: of them, spread among them, or after all of them.
Place = Literal["start", "before", "between", "after"]
PLACES: tuple[Place, ...] = ("start", "before", "between", "after")


@dataclass(frozen=True)
class Sent:
    """One record the test writes and what must become of it.

    ``letters``: the dead-letter reasons it must produce (one per refused group of a
    telemetry array record); ``counts``: the (device, readings) of it that must be
    windowed; ``judged``: the independent orders oracle (tests/support/independent.py)
    decides it too, where the rest is out of its scope; ``coerced``: a string or a
    boolean sent for a number, which a lax validator would coerce.
    """

    topic: str
    key: bytes | None
    value: bytes | None
    name: str
    letters: tuple[str, ...] = ()
    partition: int | None = None
    timestamp_ms: int | None = None
    place: Place = "between"
    judged: bool = True
    coerced: bool = False
    counts: Counted = ()


def send(bootstrap: str, records: Sequence[Sent]) -> None:
    """Write ``records`` in order through one producer, and return once Kafka has
    acknowledged every one (each partition keeps their order)."""

    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
        await producer.start()
        try:
            acks = [
                await producer.send(
                    r.topic, r.value, key=r.key, partition=r.partition, timestamp_ms=r.timestamp_ms
                )
                for r in records
            ]
            await asyncio.gather(*acks)
        finally:
            await producer.stop()

    asyncio.run(run())


def repeated_bad_values(records: Iterable[Sent]) -> list[tuple[str, bytes | None]]:
    """(topic, value) of records to be dead-lettered whose bytes are not their own in
    their topic: a dead letter is traced back to its record by them."""
    seen = Counter((r.topic, r.value) for r in records if r.letters)
    return [key for key, n in seen.items() if n > 1]


# Orders ---------------------------------------------------------------------------

ORDER_TIME = "2025-08-15T12:00:00Z"  # inside the sample's 31 days
CATALOG_PRICES: dict[str, float] = {
    str(e["product_id"]): float(e["price"]) for e in json.loads(fixture("catalog.json").read_text())
}
#: (order id, customer id) -> the order as a dict, or its raw bytes (None: no value).
Build = Callable[[str, str], dict[str, Any] | bytes | None]


def home(key: str, partitions: int = ORDER_PARTITIONS) -> int:
    return partition_for(key.encode(), partitions)


def order(order_id: str, customer: str, **changes: Any) -> dict[str, Any]:
    """A valid v1 order of one PROD-001 at its catalog price."""
    value: dict[str, Any] = {
        "order_id": order_id,
        "customer_id": customer,
        "timestamp": ORDER_TIME,
        "channel": "web",
        "items": [{"product_id": "PROD-001", "quantity": 1, "unit_price": 248.06}],
        "shipping_address": {"country": "US", "state": "CA", "city": "San Diego"},
        "status": "confirmed",
    }
    value.update(changes)
    return value


def item(**changes: Any) -> Build:
    """An order whose one item has ``changes``."""
    line = {"product_id": "PROD-001", "quantity": 1, "unit_price": 248.06, **changes}
    return lambda o, c: order(o, c, items=[line])


def changed(**changes: Any) -> Build:
    return lambda o, c: order(o, c, **changes)


def without(name: str) -> Build:
    return lambda o, c: {k: v for k, v in order(o, c).items() if k != name}


def raw(text: bytes) -> Build:
    """Bytes with the order id in place of ``@`` (so each record's bytes are its own)."""
    return lambda o, c: text.replace(b"@", o.encode())


def swapped(part: bytes, by: bytes) -> Build:
    """A valid order's bytes with their first ``part`` written otherwise."""
    return lambda o, c: orjson.dumps(order(o, c)).replace(part, by, 1)


def v2(**changes: Any) -> Build:
    """A valid v2 order (two PROD-002 in cents) with ``changes``."""

    def build(order_id: str, customer: str) -> dict[str, Any]:
        value: dict[str, Any] = {
            "schema_version": 2,
            "id": order_id,
            "customer": {"id": customer, "email": "someone@example.com"},
            "created_at": ORDER_TIME,
            "source": "mobile",
            "lines": [{"sku": "PROD-002", "qty": 2, "unit_price_cents": 24382}],
            "shipping": {"country": "US", "region": "TX", "city": "Austin"},
            "status": "confirmed",
            "total_cents": 48764,
            "currency": "USD",
        }
        return {**value, **changes}

    return build


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def shifted(by: int) -> Callable[[str], int]:
    """``by`` partitions after the one Kafka's default partitioner gives a customer."""
    return lambda customer: (home(customer) + by) % ORDER_PARTITIONS


@dataclass(frozen=True)
class Case:
    """One hostile order: ``reason`` None for one that must count. ``key`` and
    ``partition`` (of the customer it is sent for) default to Kafka's own choice for
    the customer id as key."""

    name: str
    reason: str | None
    build: Build
    place: Place = "between"
    judged: bool = True
    coerced: bool = False
    key: Callable[[str], bytes | None] | None = None
    partition: Callable[[str], int] | None = None
    timestamp_ms: int | None = None


FUTURE, WRONG_KEY, DECODE, SCHEMA, INVALID = (
    "future_timestamp",
    "wrong_key",
    "decode_error",
    "unknown_schema",
    "invalid",
)
UNKNOWN, PRICE, TOTAL, LATE = "unknown_product", "price_mismatch", "total_mismatch", "late"


def order_cases(now: datetime, neighbour: Callable[[str], str]) -> list[Case]:
    """Every kind of bad order, and valid extras that look hostile but must count.

    ``neighbour(customer)`` is another sample customer of the same partition.
    """
    c, u = Case, partial(Case, judged=False)  # u: out of the oracle's scope
    ahead = int((now + timedelta(days=2)).timestamp() * 1000)
    channel = "".join(random.Random(20).choices("abcdefghijklmnopqrstuvwxyz0123456789", k=500))
    line2 = {"sku": "PROD-002", "qty": 2, "unit_price_cents": 24382}
    one = [{"product_id": "PROD-001", "quantity": 1, "unit_price": 248.06}]
    return [
        # Ahead of the clock: one before the real orders of each partition, more among them.
        u("year 2999", FUTURE, changed(timestamp="2999-01-01T00:00:00Z"), "start"),
        u("year 2999", FUTURE, changed(timestamp="2999-12-31T23:59:59Z"), "start"),
        u("year 2999", FUTURE, changed(timestamp="2999-06-01T00:00:00+14:00"), "start"),
        u("year 2999", FUTURE, changed(timestamp="2999-01-01T00:00:00.001Z"), "start"),
        u("year 2999", FUTURE, changed(timestamp="2999-02-01T00:00:00Z"), "before"),
        u("3 hours ahead", FUTURE, changed(timestamp=stamp(now + timedelta(hours=3))), "start"),
        u("10 minutes ahead", FUTURE, changed(timestamp=stamp(now + timedelta(minutes=10)))),
        u("an hour ahead, its record 2 days ahead", FUTURE,
          changed(timestamp=stamp(now + timedelta(hours=1))), timestamp_ms=ahead),
        # Keys and partitions that are not the customer's.
        u("no key", WRONG_KEY, changed(), key=lambda _: None),
        u("empty key", WRONG_KEY, changed(), key=lambda _: b""),
        u("the order id as key", WRONG_KEY, changed(), key=lambda _: b"POISON-KEY"),
        u("a stranger's key", WRONG_KEY, changed(), key=lambda _: b"CUST-NOBODY"),
        u("a neighbour's key", WRONG_KEY, changed(), key=lambda cu: neighbour(cu).encode()),
        *(u(f"partition +{n}", WRONG_KEY, changed(), partition=shifted(n)) for n in (1, 2, 3)),
        # Bytes that are no JSON object.
        c("truncated JSON", DECODE, raw(b'{"order_id": "@", "items": [')),
        c("a JSON array", DECODE, raw(b'[1, 2, 3, "@"]')),
        c("a JSON string", DECODE, raw(b'"@"')),
        c("text", DECODE, raw(b"@ is not JSON")),
        c("invalid UTF-8", DECODE, raw(b"\xff\xfe@")),
        c("null", DECODE, raw(b"null"), "after"),
        c("empty value", DECODE, raw(b"")),
        c("no value (a tombstone)", DECODE, lambda o, cu: None),
        c("invalid UTF-8 in a city", DECODE, swapped(b"San Diego", b"San \xff\xfeDiego")),
        c("NaN price", DECODE, swapped(b"248.06", b"NaN")),
        c("Infinity price", DECODE, swapped(b"248.06", b"Infinity")),
        c("-Infinity quantity", DECODE, swapped(b'"quantity":1', b'"quantity":-Infinity')),
        u("price 1e999", DECODE, swapped(b"248.06", b"1e999")),
        u("nested 100,000 deep", DECODE, lambda o, cu: b"[" * 10**5 + o.encode() + b"]" * 10**5),
        c("950 kB of garbage", DECODE, lambda o, cu: b"{" + o.encode() + b"x" * 950_000, "after"),
        # Versions nobody knows.
        c("schema_version 9", SCHEMA, lambda o, cu: {"schema_version": 9, "id": o}),
        c("schema_version 3 of a v1 order", SCHEMA, changed(schema_version=3)),
        c('schema_version "1"', SCHEMA, changed(schema_version="1")),
        c("schema_version true", SCHEMA, changed(schema_version=True)),
        c("schema_version 1.0", SCHEMA, swapped(b'"status"', b'"schema_version":1.0,"status"')),
        c("an object with no order field", SCHEMA, raw(b'{"note": "@"}')),
        # Fields no figure can be made of.
        c("negative quantity", INVALID, item(quantity=-2)),
        c("zero quantity", INVALID, item(quantity=0)),
        u("fractional quantity", INVALID, item(quantity=1.5)),
        c("quantity of 31 digits", INVALID, swapped(b'"quantity":1', b'"quantity":1' + b"0" * 30)),
        c("quantity 10,001", INVALID, item(quantity=10_001)),
        c("quantity null", INVALID, item(quantity=None)),
        u("price 1e300", INVALID, swapped(b"248.06", b"1e300")),
        c("price 0", INVALID, item(unit_price=0)),
        c("negative price", INVALID, item(unit_price=-248.06)),
        c("price with 3 decimals", INVALID, swapped(b"248.06", b"248.061")),
        c("price as a list", INVALID, item(unit_price=[248.06])),
        c("naive timestamp", INVALID, changed(timestamp="2025-08-15T12:00:00")),
        c("February 30", INVALID, changed(timestamp="2025-02-30T12:00:00Z")),
        u("timestamp 'yesterday'", INVALID, changed(timestamp="yesterday")),
        u("year 10000", INVALID, changed(timestamp="10000-01-01T00:00:00Z")),
        u("year 10000 in UTC", INVALID, changed(timestamp="9999-12-31T23:00:00-05:00")),
        u("year 0 in UTC", INVALID, changed(timestamp="0001-01-01T00:30:00+01:00")),
        c("year 25", INVALID, changed(timestamp="0025-08-01T10:00:00Z")),
        c("a second before 1970", INVALID, changed(timestamp="1969-12-31T23:59:59Z")),
        c("year 9999", INVALID, changed(timestamp="9999-06-01T00:00:00Z")),
        c("no status", INVALID, without("status")),
        c("status 'shipped'", INVALID, changed(status="shipped")),
        c("no items", INVALID, without("items")),
        c("no customer_id", INVALID, without("customer_id")),
        c("empty items", INVALID, changed(items=[])),
        c("items an object", INVALID, changed(items=one[0])),
        c("501 items", INVALID, changed(items=one * 501)),
        c("customer_id with '|'", INVALID, lambda o, cu: order(o, f"{cu}|x"),
          key=lambda cu: f"{cu}|x".encode()),
        c("order_id of 65 characters", INVALID, lambda o, cu: order(o.ljust(65, "X"), cu)),
        c("channel of 500 random characters", INVALID, changed(channel=channel)),
        c("channel 'Web'", INVALID, changed(channel="Web")),
        c("channel with an emoji", INVALID, changed(channel="web\U0001f6d2")),
        c("currency EUR", INVALID, changed(currency="EUR")),
        c("country 'us'", INVALID, changed(shipping_address={"country": "us", "state": "CA"})),
        c("state 'California'", INVALID,
          changed(shipping_address={"country": "US", "state": "California"})),
        c("shipping_address null", INVALID, changed(shipping_address=None)),
        c("v2, negative qty", INVALID, v2(lines=[{**line2, "qty": -2}], total_cents=None)),
        u("v2, fractional cents", INVALID, v2(lines=[{**line2, "unit_price_cents": 24382.5}])),
        # Strings and booleans for numbers: the oracle leaves coercion open; the issue
        # lists them as invalid.
        u("quantity a string", INVALID, item(quantity="1"), coerced=True),
        u("price a string", INVALID, item(unit_price="248.06"), coerced=True),
        u("quantity true", INVALID, item(quantity=True), coerced=True),
        u("total_amount a string", INVALID, changed(total_amount="248.06"), coerced=True),
        # Valid orders the catalog refuses.
        c("unknown product", UNKNOWN, item(product_id="PROD-999")),
        c("product id in lower case", UNKNOWN, item(product_id="prod-001")),
        c("price off by a cent", PRICE, item(unit_price=248.07)),
        c("price 999999999999.99", PRICE, swapped(b"248.06", b"999999999999.99")),
        c("v2, price off by a cent", PRICE,
          v2(lines=[{**line2, "unit_price_cents": 24381}], total_cents=48762)),
        c("total of 1.00", TOTAL, changed(total_amount=1.00)),
        c("v2, total off by a cent", TOTAL, v2(total_cents=48765)),
        # Too old: 58 days and more behind the real orders of their partition.
        c("June among August orders", LATE, changed(timestamp="2025-06-01T00:00:00Z")),
        c("June after August orders", LATE, changed(timestamp="2025-06-02T00:00:00Z"), "after"),
        # Valid orders, hostile in looks only: they count.
        c("a channel nobody configured", None, changed(channel="partner_b2b"), "start"),
        c("a channel nobody configured", None,
          changed(channel="kiosk-7", status="pending"), "after"),
        c("v1.1 with total and currency", None, changed(total_amount=248.06, currency="USD")),
        c("v2 in cents", None, v2()),
        c("unknown extra fields", None, changed(coupon={"code": "X"}, gift=True)),
        c("PROD-003 after its bad catalog entries", None,
          item(product_id="PROD-003", unit_price=CATALOG_PRICES["PROD-003"]), "after"),
        c("PROD-002 after entries keyed wrongly", None,
          item(product_id="PROD-002", unit_price=CATALOG_PRICES["PROD-002"], quantity=3),
          "after"),
    ]  # fmt: skip


def orders_poison(sample: Sequence[dict[str, Any]], now: datetime) -> list[Sent]:
    """``order_cases`` as records, sent for sample customers (one per partition in
    turn), so the poison shares partitions with real orders."""
    hosts: dict[int, str] = {}
    others: dict[int, str] = {}
    for line in sample:
        customer = str(line["customer_id"])
        hosts.setdefault(home(customer), customer)
        if customer != hosts[home(customer)]:
            others.setdefault(home(customer), customer)
    out = []
    for n, case in enumerate(order_cases(now, lambda cu: others[home(cu)]), 1):
        customer = hosts[n % ORDER_PARTITIONS]
        built = case.build(f"POISON-{n:03d}", customer)
        out.append(
            Sent(
                RAW,
                case.key(customer) if case.key else customer.encode(),
                orjson.dumps(built) if isinstance(built, dict) else built,
                case.name,
                letters=(case.reason,) if case.reason else (),
                partition=case.partition(customer) if case.partition else None,
                timestamp_ms=case.timestamp_ms,
                place=case.place,
                judged=case.judged,
                coerced=case.coerced,
            )
        )
    return out


def duplicates(lines: Sequence[bytes], sample: Sequence[dict[str, Any]]) -> list[Sent]:
    """Sample orders sent again after all of them: verbatim, and once with another
    status (the first copy is the one that counts)."""
    again = [
        Sent(RAW, str(sample[i]["customer_id"]).encode(), lines[i], "duplicate", place="after")
        for i in range(0, 400, 20)
    ]
    first = sample[1]
    other = {**first, "status": "cancelled" if first["status"] != "cancelled" else "confirmed"}
    key = str(first["customer_id"]).encode()
    again.append(Sent(RAW, key, orjson.dumps(other), "duplicate, other status", place="after"))
    return again


def interleave(sample: Sequence[Sent], poison: Sequence[Sent], gaps: int = 4) -> list[Sent]:
    """The replay: ``start`` records, a fifth of the sample, ``before`` records, the
    rest of the sample with ``between`` records spread over ``gaps`` gaps, ``after``."""
    placed = {p: [r for r in poison if r.place == p] for p in PLACES}
    size = len(sample) // (gaps + 1)
    out = [*placed["start"], *sample[:size], *placed["before"]]
    for gap in range(gaps):
        end = size * (gap + 2) if gap < gaps - 1 else len(sample)
        out += [*sample[size * (gap + 1) : end], *placed["between"][gap::gaps]]
    return [*out, *placed["after"]]


# Reference data ----------------------------------------------------------------------


def inventory_poison(workdir: Path) -> list[Sent]:
    """Bad inventory rows: CSV rows as producers/orders.py sends them, then JSON."""
    rows = {
        "PROD-004,abc,WH-NY,2025-08-29T00:00:00Z": "non-numeric stock",
        "PROD-004,,WH-NY,2025-08-29T00:00:00Z": "empty stock",
        "PROD-004,-5,WH-NY,2025-08-29T00:00:00Z": "negative stock",
        "PROD-004,1e12,WH-NY,2025-08-29T00:00:00Z": "stock 1e12",
        "PROD-004,2.5,WH-NY,2025-08-29T00:00:00Z": "fractional stock",
        "PROD-004,99999999999,WH-NY,2025-08-29T00:00:00Z": "stock past 32 bits",
        "PROD-004,7,WH-NY,yesterday": "time 'yesterday'",
        "PROD-004,8,WH-NY,2025-08-29T00:00:00": "naive time",
        "PROD-004,9,WH-NY": "a missing column",
    }
    path = workdir / "inventory-poison.csv"
    header = "product_id,available_quantity,warehouse_location,last_updated"
    path.write_text("\n".join([header, *rows]) + "\n")
    out = [
        Sent(INVENTORY, key, value, name, (INVALID,))
        for (key, value), name in zip(inventory_records(path), rows.values(), strict=True)
    ]

    def row(**changes: Any) -> bytes:
        base = {"product_id": "PROD-004", "available_quantity": 11, "warehouse_location": "WH-NY",
                "last_updated": "2025-08-29T00:00:00Z"}  # fmt: skip
        return orjson.dumps({**base, **changes})

    def bad(key: bytes | None, value: bytes, name: str, reason: str = INVALID, **kw: Any) -> Sent:
        return Sent(INVENTORY, key, value, name, (reason,), **kw)

    p4 = b"PROD-004"
    return [
        *out,
        bad(p4, row(available_quantity=1e12), "stock 1e12, a JSON number"),
        bad(p4, row(available_quantity=2.5), "stock 2.5, a JSON number"),
        bad(p4, row(available_quantity=None), "stock null"),
        bad(p4, row(available_quantity=True), "stock true", coerced=True),
        bad(p4, b"PROD-004;12;WH-NY", "not JSON"),
        bad(p4, b"[13]", "a JSON array"),
        bad(p4, row(warehouse_location="W" * 129), "warehouse of 129 characters"),
        bad(b"PROD|004", row(product_id="PROD|004"), "product id with '|'"),
        bad(b"PROD-005", row(available_quantity=1), "keyed by another product", WRONG_KEY),
        bad(None, row(available_quantity=2), "no key", WRONG_KEY),
    ]


def catalog_poison() -> list[Sent]:
    """Bad catalog entries; applied, each would change a product's price or looks."""

    def entry(product: str = "PROD-003", **changes: Any) -> bytes:
        base = {"product_id": product, "category": "Poison", "brand": "Poison", "price": 1.25,
                "launch_date": "2025-01-01T00:00:00Z"}  # fmt: skip
        return orjson.dumps({**base, **changes})

    def bad(value: bytes, name: str, key: bytes | None = b"PROD-003", why: str = INVALID) -> Sent:
        return Sent(CATALOG, key, value, name, (why,))

    return [
        bad(entry(price="abc"), "non-numeric price"),
        bad(entry(price=-1), "negative price"),
        bad(entry(price=1.234), "price with 3 decimals"),
        bad(entry(price=None), "price null"),
        bad(entry(price=0), "price 0"),
        bad(entry().replace(b"1.25", b"NaN"), "price NaN"),
        bad(entry(launch_date="2025-01-01T00:00:00"), "naive launch date"),
        bad(entry(category="C" * 129), "category of 129 characters"),
        bad(b'{"product_id": "PROD-003", "price": ', "not JSON"),
        bad(entry("PROD-002"), "keyed by another product", b"PROD-001", WRONG_KEY),
        bad(entry("PROD-002", brand="NoKey"), "no key", None, WRONG_KEY),
    ]


# Telemetry ---------------------------------------------------------------------------

WINDOW_MS, GRACE_MS, POLL_MS = 10_000, 1_000, 2_000
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a window boundary, in the past
SERIES = (("eth0", "util"), ("eth0", "rx_bytes"), ("chassis", "temp_c"))
#: A value no fleet reading has (they have 3 decimals at most), replaced in the bytes.
MARK = 0.123456789
#: The largest magnitude a reading may have (streams/telemetry/models.py): a window's
#: sums stay finite. A device whose one window holds the extremes, summed exactly.
EXTREME_DEVICE, LIMIT = "pz-extreme", 1e100
EXTREMES = (LIMIT, -LIMIT, LIMIT, 5.0, -LIMIT)
HUGE_DEVICE = "pz-huge"  # readings of 1.7e308: each finite, their sum is not


def device_in(prefix: str, partition: int) -> str:
    """The first ``<prefix>-<n>`` that Kafka's default partitioner puts in ``partition``."""
    n = 0
    while partition_for(f"{prefix}-{n}".encode(), READING_PARTITIONS) != partition:
        n += 1
    return f"{prefix}-{n}"


def group(device: str, rows: Iterable[Sequence[Any]]) -> dict[str, Any]:
    return {"device_id": device, "readings": [list(r) for r in rows]}


class Fleet:
    """Seeded readings: each device's sequence numbers go up by one per reading."""

    def __init__(self, seed: int = 5) -> None:
        self.rng = random.Random(seed)
        self.seqs: Counter[str] = Counter()

    def value(self, metric: str) -> float:
        if metric == "rx_bytes":
            return float(self.rng.randrange(10**12))
        if metric == "util":
            return round(self.rng.uniform(0, 100), 3)
        return round(self.rng.uniform(-40, 90), 2)

    def polls(self, device: str, window: int, count: int = 5, at_ms: int = 0) -> tuple[Row, ...]:
        rows = []
        for k in range(count):
            ts = START_MS + window * WINDOW_MS + at_ms + k * POLL_MS
            for interface, metric in SERIES:
                self.seqs[device] += 1
                rows.append((interface, metric, self.value(metric), ts, self.seqs[device]))
        return tuple(rows)

    def at(self, device: str, ts: int, value: float = 1.0) -> Row:
        self.seqs[device] += 1
        return ("eth0", "util", value, ts, self.seqs[device])


def keyed(device: str, rows: Sequence[Row], name: str, **options: Any) -> Sent:
    """A group keyed by its device: the form any Kafka producer writes."""
    value = orjson.dumps(group(device, rows))
    return Sent(READINGS, device.encode(), value, name, counts=((device, tuple(rows)),), **options)


def array(partition: int, groups: Sequence[tuple[str, Sequence[Row]]], name: str) -> Sent:
    """Groups of one partition's devices, unkeyed: the ingest's form; they all count."""
    value = orjson.dumps([group(d, rows) for d, rows in groups])
    counts = tuple((d, tuple(rows)) for d, rows in groups)
    return Sent(READINGS, None, value, name, partition=partition, counts=counts)


def readings_poison(now_ms: int) -> list[Sent]:
    """Good records in both forms, each kind of bad one, and array records mixing them.

    A record's ``counts`` are the readings of it that must be windowed; each of its
    other readings must come back in one of its dead letters.
    """
    fleet = Fleet()
    ks, a1, a2 = ([device_in(prefix, p) for p in range(READING_PARTITIONS)]
                  for prefix in ("pz-k", "pz-a", "pz-b"))  # fmt: skip
    out: list[Sent] = []
    for window in range(3):
        polls = [keyed(d, fleet.polls(d, window), "a device's poll") for d in ks]
        # A record sent twice in a row: its readings count once.
        out += [*polls[:2], polls[1], *polls[2:]] if window == 0 else polls
        out += [
            array(p, [(a[p], fleet.polls(a[p], window)) for a in (a1, a2)], "2 devices' polls")
            for p in range(READING_PARTITIONS)
        ]

    n = iter(range(1, 1000))

    def refused(name: str, *rows: Sequence[Any], text: bytes = b"", **group_: Any) -> Sent:
        """A keyed record of a device of its own (``pz-bad-<n>``), invalid: its
        ``rows``, the group with ``group_`` changed, or ``text`` for its value."""
        device = group_.pop("device_id", f"pz-bad-{next(n)}")
        value = orjson.dumps({**group(device, rows or [("eth0", "util", MARK, START_MS, 1)]),
                              **group_})  # fmt: skip
        if text:
            value = value.replace(b"%r" % MARK, text)
        return Sent(READINGS, device.encode(), value, name, (INVALID,))

    def one(device: str, window: int) -> list[Row]:
        return list(fleet.polls(device, window, count=1))

    day = now_ms + 86_400_000
    out += [
        refused("NaN value", text=b"NaN"),
        refused("Infinity value", text=b"Infinity"),
        refused("-Infinity value", text=b"-Infinity"),
        refused("value 1e999", text=b"1e999"),
        refused("value a string", text=b'"0.5"'),
        refused("value true", text=b"true"),
        refused("ts in year 10000", ("eth0", "util", 1.0, 253_402_300_800_000, 1)),
        refused("negative ts", ("eth0", "util", 1.0, -1, 1)),
        refused("ts an ISO string", ("eth0", "util", 1.0, "2026-01-01T00:00:00Z", 1)),
        refused("negative seq", ("eth0", "util", 1.0, START_MS, -1)),
        refused("seq of 2**63", ("eth0", "util", 1.0, START_MS, 2**63)),
        refused("interface with '|'", ("eth|0", "util", 1.0, START_MS, 1)),
        refused("empty metric", ("eth0", "", 1.0, START_MS, 1)),
        refused("a reading of 4 fields", ("eth0", "util", 1.0, START_MS)),
        refused("device id with '|'", device_id="pz|1"),
        refused("device id of 129 characters", device_id="d" * 129),
        refused("no readings", readings=[]),
        refused("an extra field", site="lab"),
        Sent(READINGS, b"pz-bad-text", b"pz-bad-text eth0 util 1.0", "not JSON", (INVALID,)),
        Sent(READINGS, b"pz-bad-number", b"42", "a JSON number", (INVALID,)),
        Sent(READINGS, b"pz-bad-empty", b"{}", "an empty object", (INVALID,)),
        Sent(READINGS, b"pz-bad-none", None, "no value (a tombstone)", (INVALID,)),
        # Keys and partitions that are not the device's (and a good device's readings).
        Sent(READINGS, ks[0].encode(), orjson.dumps(group(ks[1], one(ks[1], 1))),
             "key of another device", (INVALID,)),
        Sent(READINGS, ks[2].encode(), orjson.dumps(group(ks[2], one(ks[2], 1))),
             "its key, another partition", (INVALID,), partition=3),
        Sent(READINGS, ks[3].encode(), orjson.dumps([group(ks[3], one(ks[3], 1)),
             group(ks[4], one(ks[4], 1))]), "a keyed array of two devices", (INVALID,)),
        Sent(READINGS, None, orjson.dumps(group(ks[0], one(ks[0], 1))),
             "an unkeyed group in another partition", (INVALID,), partition=3),
        Sent(READINGS, None, b"[]", "an empty array", (INVALID,), partition=0),
        Sent(READINGS, None, b'["pz-bad-string"]', "an array of a string", (INVALID,),
             partition=1),
        # Ahead of the clock (a day, year 2999, an hour in a record stamped 2 days ahead);
        # the readings beside them in their group count.
        replace(keyed(ks[3], [*(kept := fleet.polls(ks[3], 3)), fleet.at(ks[3], day),
                fleet.at(ks[3], day + 1)], "a poll and 2 readings a day ahead"),
                counts=((ks[3], kept),), letters=(FUTURE,)),
        replace(keyed(ks[4], [fleet.at(ks[4], 32_503_680_000_000)], "a reading in 2999"),
                counts=(), letters=(FUTURE,)),
        replace(keyed(ks[5], [fleet.at(ks[5], now_ms + 3_600_000)], "an hour ahead"),
                counts=(), letters=(FUTURE,), timestamp_ms=now_ms + 2 * 86_400_000),
    ]  # fmt: skip

    # Array records mixing good groups with bad ones: each bad group alone is refused.
    for p in range(READING_PARTITIONS):
        good, bad = group(a1[p], rows := fleet.polls(a1[p], 3)), a2[p]
        ahead = group(bad, [fleet.at(bad, day)])
        counted: Counted = ((a1[p], rows),)
        wrong = a2[(p + 1) % READING_PARTITIONS]
        part = fleet.polls(bad, 3)
        groups, letters, name = [
            ([good, group(bad, [("eth0", "util", MARK, START_MS + 30_000, 9)])], (INVALID,), "NaN"),
            ([good, group(wrong, one(wrong, 3))], (INVALID,), "another partition's device"),
            ([good, ahead], (FUTURE,), "a day ahead"),
            ([group(bad, [("eth|0", "util", 1.0, START_MS, 1)]), ahead, good], (INVALID, FUTURE),
             "'|' in an interface, and a day ahead"),
            ([good, group(bad, [*part, *ahead["readings"]])], (FUTURE,), "partly a day ahead"),
            ([good, {**group(bad, one(bad, 3)), "x": 1}], (INVALID,), "an extra field"),
        ][p]  # fmt: skip
        value = orjson.dumps(groups).replace(b"%r" % MARK, b"NaN")  # the standard parser's NaN
        counts = (*counted, (bad, part)) if p == 4 else counted
        out.append(Sent(READINGS, None, value, f"good and bad groups: {name}", letters,
                        partition=p, counts=counts))  # fmt: skip

    # Late: a device's window 0, a reading past its end plus grace (which closes it on
    # event time), then readings for window 0 again.
    late = device_in("pz-late", 0)
    fresh = (fleet.at(late, START_MS + WINDOW_MS + 4_000),)
    closer = fleet.at(late, START_MS + WINDOW_MS + GRACE_MS + 1_000)
    also = fleet.polls(a1[0], 4)
    out += [
        keyed(late, fleet.polls(late, 0), "window 0"),
        keyed(late, [closer], "a reading past window 0's end and grace"),
        replace(keyed(late, [fleet.at(late, START_MS + 5_000), *fresh], "a late and a fresh"),
                counts=((late, fresh),), letters=(LATE,)),
        replace(keyed(late, [fleet.at(late, START_MS + 1), fleet.at(late, START_MS + 9_999)],
                "two late readings"), counts=(), letters=(LATE,)),
        replace(array(0, [(late, [fleet.at(late, START_MS + 7_000)]), (a1[0], also)],
                "a late group and a good one"), counts=((a1[0], also),), letters=(LATE,)),
    ]  # fmt: skip

    # Values at the largest magnitude allowed count (their mean is exactly 1.0), beyond
    # it (each finite, their sum not) they are refused.
    extreme = [("eth0", "util", v, START_MS + k * POLL_MS, k + 1) for k, v in enumerate(EXTREMES)]
    huge = [("eth0", "util", 1.7e308, START_MS + k * POLL_MS, k + 1) for k in range(5)]
    return [
        *out,
        keyed(EXTREME_DEVICE, extreme, "readings of plus and minus 1e100"),
        Sent(READINGS, HUGE_DEVICE.encode(), orjson.dumps(group(HUGE_DEVICE, huge)),
             "readings of 1.7e308", (INVALID,)),
    ]  # fmt: skip


# The HTTP ingest ---------------------------------------------------------------------


@dataclass(frozen=True)
class Post:
    """A request to ``POST /telemetry`` and the answer it must get: ``field`` is what
    each entry of a 422's ``detail`` must name (``loc`` ends with it), and ``counts``
    the readings a 202 must see windowed."""

    name: str
    body: bytes
    status: int
    field: str | None = None
    content_type: str = "application/json"
    counts: Counted = ()


NDJSON = "application/x-ndjson"


def iso_ms(ms: int) -> str:
    return stamp(datetime.fromtimestamp(ms / 1000, UTC))


def ingest_posts(now_ms: int) -> list[Post]:
    """Accepted requests (JSON arrays, NDJSON, one object) and one refused request per
    kind of bad reading, all for devices of their own (``http-*``)."""
    fleet = Fleet(seed=9)
    posts = []

    def readings(device: str, rows: Sequence[Row], iso: bool) -> list[bytes]:
        return [orjson.dumps({"device_id": device, "interface": i, "metric": m, "value": v,
                              "ts": iso_ms(ts) if iso else ts, "seq": s})
                for i, m, v, ts, s in rows]  # fmt: skip

    for window in range(3):
        groups = tuple((f"http-{d}", fleet.polls(f"http-{d}", window)) for d in range(4))
        body = [r for n, (d, rows) in enumerate(groups) for r in readings(d, rows, n % 2 == 0)]
        posts.append(Post("4 devices' readings", b"[" + b",".join(body) + b"]", 202, counts=groups))
        rows = fleet.polls("http-nd", window)
        ndjson = b"\n".join(readings("http-nd", rows, True)) + b"\n"
        posts.append(Post("NDJSON", ndjson, 202, None, NDJSON, (("http-nd", rows),)))
    rows = fleet.polls("http-one", 0, count=1)[:1]
    posts.append(Post("one reading", readings("http-one", rows, True)[0], 202,
                      counts=(("http-one", rows),)))  # fmt: skip

    n = iter(range(1, 1000))

    def bad(field: str, text: bytes, name: str) -> Post:
        """One reading whose ``field`` is written as ``text``, alone in a request."""
        reading = {"device_id": f"http-bad-{next(n)}", "interface": "eth0", "metric": "util",
                   "value": 0.5, "ts": START_MS, "seq": 1}  # fmt: skip
        fields = [b'"%s":%s' % (k.encode(), text if k == field else orjson.dumps(v))
                  for k, v in reading.items()]  # fmt: skip
        return Post(name, b"[{" + b",".join(fields) + b"}]", 422, field)

    good = b'{"device_id":"http-mixed","interface":"eth0","metric":"util","value":1.0,'
    posts += [
        bad("value", b"NaN", "NaN value"),
        bad("value", b"Infinity", "Infinity value"),
        bad("value", b"-Infinity", "-Infinity value"),
        bad("value", b"1e999", "value 1e999"),
        bad("value", b"1.7e308", "value 1.7e308"),
        bad("value", b'"0.5"', "value as a string"),
        bad("value", b"true", "value true"),
        bad("value", b"null", "value null"),
        bad("ts", b"253402300800000", "ts in year 10000"),
        bad("ts", b'"10000-01-01T00:00:00Z"', "ISO ts in year 10000"),
        bad("ts", b"-1", "negative ts"),
        bad("ts", b'"1969-12-31T23:59:59Z"', "ts before 1970"),
        bad("ts", b"%d" % (now_ms + 86_400_000), "ts a day ahead"),
        bad("ts", b'"2999-01-01T00:00:00Z"', "ts in 2999"),
        bad("ts", b'"2026-01-01T00:00:00"', "naive ts"),
        bad("device_id", b'"http|1"', "device id with '|'"),
        bad("interface", b'"eth|0"', "interface with '|'"),
        bad("metric", b'""', "empty metric"),
        bad("seq", b"-1", "negative seq"),
        bad("seq", b"9223372036854775808", "seq of 2**63"),
        Post("a good reading and a NaN one", b"[%s,%s]" % (
             good + b'"ts":%d,"seq":1}' % START_MS,
             good.replace(b"1.0", b"NaN") + b'"ts":%d,"seq":2}' % START_MS), 422, "value"),
        Post("NDJSON, line 2 NaN", b"%s\n%s\n" % (
             good + b'"ts":%d,"seq":3}' % START_MS,
             good.replace(b"1.0", b"NaN") + b'"ts":%d,"seq":4}' % START_MS), 422, "value", NDJSON),
        Post("not JSON", b"{nope", 400),
        Post("an empty body", b"", 400),
        Post("a JSON number", b"42", 400),
        Post("plain text", b"http-text eth0 util 1.0", 415, content_type="text/plain"),
    ]  # fmt: skip
    return posts
