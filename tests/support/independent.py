"""An independent oracle of what the orders web views answer.

From the bytes of the records in orders.raw and the catalog fixture, it computes what a
user must see at ``GET /orders/revenue/daily``, ``/orders/products/top``,
``/orders/customers`` and ``/orders/quality`` once every record was counted. It uses
json and Decimal only and imports nothing from ``streams`` (nor pydantic): a rule the
product gets wrong is not repeated here. The rules, as README.md states them:

- A record is decoded (``decode_error``: not a JSON object), its schema recognised
  (``unknown_schema``: v1, v1.1 with ``total_amount``, v2 in cents, nothing else),
  its fields checked (``invalid``: required fields, formats, positive quantities and
  prices with at most two decimals), then checked against the catalog
  (``unknown_product``, ``price_mismatch``: the price must equal the catalog's,
  ``total_mismatch``: a stated total must equal the items' sum), then for lateness
  (``late``: more than the retention, 45 days, behind the latest order its partition
  accepted before it, duplicates included). A rejected record counts only as a dead
  letter under that reason.
- An accepted order whose customer already has an accepted order with the same id is
  a duplicate: the first in its partition's offset order counts, whatever the later
  copy says.
- Days are UTC dates of the order's own timestamp; revenue counts the revenue statuses
  (``confirmed`` by default); customer figures leave cancelled orders out.

Restrictions. Where the answer hangs on an implementation detail rather than on a rule,
the oracle raises ``OutOfScope`` instead of guessing, so a test never passes or fails on
a guess:

- values a lax validator may coerce or not: numbers sent as strings, non-integral or
  boolean quantities, amounts with trailing zeros past two decimals or of 13 digits and
  more, timestamps that are not ``YYYY-MM-DDTHH:MM:SS[.ffffff](Z|±HH:MM)`` (or the same
  without a zone, which is plainly invalid);
- an order with both an unknown product and a price off the catalog (which reason
  names it depends on the order the items are checked in);
- an order within a second of the retention horizon (the product's clock is in
  milliseconds);
- a duplicate whose first copy is within two days of the retention horizon (the
  product forgets order ids older than that, by whole days);
- one customer's accepted orders in more than one partition (orders.raw is keyed by
  customer, so "first in offset order" is only defined within one partition), or a
  valid order whose record key is not its customer id: the worker dead-letters those
  as ``wrong_key``, and also a record in another partition than Kafka's default
  partitioner gives its key, which the oracle does not recompute (any producer sending
  with the customer id as key puts it there);
- an order stamped after ``sent_from``, the earliest moment a record may have been
  sent: whether it is dead-lettered as ``future_timestamp`` depends on when its record
  was sent and processed;
- one order id used by two customers (duplicates are defined within a customer);
- a counted order more than the retention behind its partition's newest order: the
  worker may keep figures for a bounded history only (longer than the retention).

Values are checked as JSON (``json.loads`` with exact decimals); invalid UTF-8 and
JSON constants like ``NaN`` are decode errors.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, Protocol

CATALOG_JSON = Path(__file__).resolve().parents[2] / "producers" / "fixtures" / "catalog.json"
RETENTION = timedelta(days=45)
REVENUE_STATUSES = frozenset({"confirmed"})
STATUSES = frozenset({"confirmed", "pending", "cancelled"})
#: Upper bounds of the order-value ranges of /orders/customers, in dollars; each range
#: holds its lower bound, not its upper one; the last range is open.
VALUE_BOUNDS = tuple(Decimal(bound) for bound in ("25", "50", "100", "250", "500", "1000", "2500"))
CENT = Decimal("0.01")
MAX_LINES = 500
MAX_QUANTITY = 10_000
#: What the figures can hold: moments from 1970 to the end of 9998, totals to $10 billion.
FIRST_MOMENT = datetime(1970, 1, 1, tzinfo=UTC)
END_OF_MOMENTS = datetime(9999, 1, 1, tzinfo=UTC)
MAX_TOTAL = Decimal(10_000_000_000)

TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
CHANNEL = re.compile(r"[a-z][a-z0-9_-]{0,31}")
COUNTRY = re.compile(r"[A-Z]{2}")
REGION = re.compile(r"[A-Z0-9]{1,3}")
LOCAL_TIME = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?"
AWARE = re.compile(LOCAL_TIME + r"(Z|[+-]\d{2}:\d{2})")
NAIVE = re.compile(LOCAL_TIME)
#: Any of these fields marks an order without ``schema_version`` as v1.
V1_MARKERS = ("order_id", "customer_id", "items", "shipping_address")


class OutOfScope(Exception):
    """The input needs a rule the oracle deliberately leaves undecided (module docstring)."""


class Rejected(Exception):
    """A record that is a dead letter; ``reason`` is the label /orders/quality shows."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


class RawRecord(Protocol):
    """A record of orders.raw as read back from the broker."""

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...


@dataclass(frozen=True)
class Product:
    category: str
    brand: str
    price: Decimal


def load_catalog(path: Path = CATALOG_JSON) -> dict[str, Product]:
    """The catalog fixture as plain values, prices exact."""
    entries = json.loads(path.read_text(), parse_float=Decimal)
    return {
        str(e["product_id"]): Product(str(e["category"]), str(e["brand"]), Decimal(e["price"]))
        for e in entries
    }


@dataclass(frozen=True)
class Line:
    product_id: str
    quantity: int
    price: Decimal


@dataclass(frozen=True)
class Order:
    order_id: str
    customer_id: str
    at: datetime
    channel: str
    region: str
    status: str
    lines: tuple[Line, ...]
    total: Decimal | None

    @property
    def amount(self) -> Decimal:
        return sum((line.quantity * line.price for line in self.lines), Decimal(0))

    @property
    def units(self) -> int:
        return sum(line.quantity for line in self.lines)

    @property
    def day(self) -> str:
        return self.at.astimezone(UTC).date().isoformat()


class _Fields:
    """Reads an order's fields, noting every failure: any plainly invalid field makes the
    order invalid, even if another one is out of the oracle's scope."""

    def __init__(self) -> None:
        self.invalid: list[str] = []
        self.unsure: list[str] = []

    def verdict(self) -> None:
        if self.invalid:
            raise Rejected("invalid", "; ".join(self.invalid))
        if self.unsure:
            raise OutOfScope("; ".join(self.unsure))

    def obj(self, value: Any, where: str) -> dict[str, Any]:
        if isinstance(value, dict):
            return value
        self.invalid.append(f"{where}: not an object")
        return {}

    def text(self, value: Any, pattern: re.Pattern[str], where: str) -> str:
        if isinstance(value, str) and pattern.fullmatch(value):
            return value
        self.invalid.append(f"{where}: {value!r}")
        return ""

    def optional_text(self, value: Any, where: str) -> None:
        if value is not None and not isinstance(value, str):
            self.invalid.append(f"{where}: {value!r}")

    def status(self, value: Any) -> str:
        if isinstance(value, str) and value in STATUSES:
            return value
        self.invalid.append(f"status: {value!r}")
        return ""

    def currency(self, container: Mapping[str, Any]) -> None:
        if container.get("currency", "USD") != "USD":
            self.invalid.append(f"currency: {container['currency']!r}")

    def moment(self, value: Any, where: str) -> datetime:
        if isinstance(value, str) and AWARE.fullmatch(value):
            try:
                moment = datetime.fromisoformat(value).astimezone(UTC)
            except ValueError:
                self.invalid.append(f"{where}: no such moment {value!r}")
            else:
                if FIRST_MOMENT <= moment < END_OF_MOMENTS:
                    return moment
                self.invalid.append(f"{where}: {value!r} is outside 1970-9998")
        elif isinstance(value, int | Decimal) or (
            isinstance(value, str) and not NAIVE.fullmatch(value)
        ):
            self.unsure.append(f"{where}: {value!r} may or may not read as a moment")
        else:
            self.invalid.append(f"{where}: {value!r} is not a moment with a time zone")
        return datetime.min.replace(tzinfo=UTC)

    def count(self, value: Any, where: str, *, most: int | None = MAX_QUANTITY) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            if value > 0 and (most is None or value <= most):
                return value
            self.invalid.append(f"{where}: {value} out of range")
        elif value is None or isinstance(value, list | dict):
            self.invalid.append(f"{where}: {value!r}")
        else:
            self.unsure.append(f"{where}: {value!r} is not a JSON integer")
        return 0

    def money(self, value: Any, where: str) -> Decimal:
        if value is None or isinstance(value, list | dict):
            self.invalid.append(f"{where}: {value!r}")
        elif isinstance(value, bool) or not isinstance(value, int | Decimal):
            self.unsure.append(f"{where}: {value!r} is not a JSON number")
        else:
            amount = Decimal(value)
            exponent = amount.as_tuple().exponent
            assert isinstance(exponent, int)  # JSON numbers are finite
            if amount <= 0:
                self.invalid.append(f"{where}: {amount} is not positive")
            elif exponent < -2 and amount != amount.quantize(CENT):
                self.invalid.append(f"{where}: {amount} has more than two decimals")
            elif exponent < -2 or amount >= 10**12:
                self.unsure.append(f"{where}: {amount} is written unusually")
            else:
                return amount
        return Decimal(0)

    def lines(self, value: Any, where: str) -> list[dict[str, Any]]:
        if isinstance(value, list) and 1 <= len(value) <= MAX_LINES:
            return [self.obj(line, f"{where}.{i}") for i, line in enumerate(value)]
        self.invalid.append(f"{where}: not a list of 1 to {MAX_LINES} lines")
        return []


def read_order(raw: bytes | None) -> Order:
    """One record's bytes as an order, or ``Rejected`` with the dead letter's reason."""
    try:
        obj = json.loads((raw or b"").decode("utf-8"), parse_float=Decimal, parse_constant=_bad)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Rejected("decode_error", str(exc)) from None
    if not isinstance(obj, dict):
        raise Rejected("decode_error", f"a JSON {type(obj).__name__}, not an object")
    version = obj.get("schema_version")
    if version == 2 and type(version) is int:
        return _v2(obj)
    if (version is None or (version == 1 and type(version) is int)) and any(
        name in obj for name in V1_MARKERS
    ):
        return _v1(obj)
    raise Rejected("unknown_schema", f"schema_version={version!r}")


def _bad(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _v1(obj: dict[str, Any]) -> Order:
    f = _Fields()
    address = f.obj(obj.get("shipping_address"), "shipping_address")
    lines = tuple(
        Line(
            f.text(item.get("product_id"), TOKEN, f"items.{i}.product_id"),
            f.count(item.get("quantity"), f"items.{i}.quantity"),
            f.money(item.get("unit_price"), f"items.{i}.unit_price"),
        )
        for i, item in enumerate(f.lines(obj.get("items"), "items"))
    )
    order = Order(
        order_id=f.text(obj.get("order_id"), TOKEN, "order_id"),
        customer_id=f.text(obj.get("customer_id"), TOKEN, "customer_id"),
        at=f.moment(obj.get("timestamp"), "timestamp"),
        channel=f.text(obj.get("channel"), CHANNEL, "channel"),
        region=f.text(address.get("state"), REGION, "shipping_address.state"),
        status=f.status(obj.get("status")),
        lines=lines,
        total=None
        if obj.get("total_amount") is None
        else f.money(obj["total_amount"], "total_amount"),
    )
    f.text(address.get("country"), COUNTRY, "shipping_address.country")
    f.optional_text(address.get("city"), "shipping_address.city")
    f.currency(obj)
    f.verdict()
    return order


def _v2(obj: dict[str, Any]) -> Order:
    f = _Fields()
    customer = f.obj(obj.get("customer"), "customer")
    shipping = f.obj(obj.get("shipping"), "shipping")
    lines = tuple(
        Line(
            f.text(line.get("sku"), TOKEN, f"lines.{i}.sku"),
            f.count(line.get("qty"), f"lines.{i}.qty"),
            Decimal(f.count(line.get("unit_price_cents"), f"lines.{i}.unit_price_cents", most=None))
            / 100,
        )
        for i, line in enumerate(f.lines(obj.get("lines"), "lines"))
    )
    total_cents = obj.get("total_cents")
    order = Order(
        order_id=f.text(obj.get("id"), TOKEN, "id"),
        customer_id=f.text(customer.get("id"), TOKEN, "customer.id"),
        at=f.moment(obj.get("created_at"), "created_at"),
        channel=f.text(obj.get("source"), CHANNEL, "source"),
        region=f.text(shipping.get("region"), REGION, "shipping.region"),
        status=f.status(obj.get("status")),
        lines=lines,
        total=None
        if total_cents is None
        else Decimal(f.count(total_cents, "total_cents", most=None)) / 100,
    )
    f.optional_text(customer.get("email"), "customer.email")
    f.text(shipping.get("country"), COUNTRY, "shipping.country")
    f.optional_text(shipping.get("city"), "shipping.city")
    f.currency(obj)
    f.verdict()
    return order


def check_catalog(order: Order, catalog: Mapping[str, Product]) -> None:
    unknown = [line.product_id for line in order.lines if line.product_id not in catalog]
    off = [
        line.product_id
        for line in order.lines
        if line.product_id in catalog and line.price != catalog[line.product_id].price
    ]
    if unknown and off:
        raise OutOfScope(f"{order.order_id}: unknown {unknown} and prices off {off}")
    if unknown:
        raise Rejected("unknown_product", ", ".join(unknown))
    if off:
        raise Rejected("price_mismatch", ", ".join(off))
    if order.total is not None and order.total != order.amount:
        raise Rejected("total_mismatch", f"{order.total} vs items {order.amount}")
    if order.amount > MAX_TOTAL:
        raise Rejected("invalid", f"{order.order_id}: total {order.amount} over {MAX_TOTAL}")


def check_lateness(order: Order, high_mark: datetime | None, retention: timedelta) -> None:
    if high_mark is None:
        return
    behind = high_mark - order.at
    if abs(behind - retention) < timedelta(seconds=1):
        raise OutOfScope(f"{order.order_id} is {behind} behind, at the retention horizon")
    if behind > retention:
        raise Rejected("late", f"{behind} behind its partition")


def _dollars(amount: Decimal) -> str:
    return f"{amount:.2f}"


@dataclass
class Answers:
    """What the views must answer: built by ``answers()`` from every record of orders.raw."""

    counted: list[Order]
    received: int
    duplicates: int
    dead_letters: Counter[str]
    catalog: Mapping[str, Product]
    revenue_statuses: frozenset[str] = REVENUE_STATUSES

    def counted_ids(self) -> set[str]:
        return {order.order_id for order in self.counted}

    def revenue_daily(self) -> list[dict[str, Any]]:
        """``GET /orders/revenue/daily``: one row per date, channel and region."""
        groups: dict[tuple[str, str, str], dict[str, list[Any]]] = defaultdict(dict)
        for order in self.counted:
            figures = groups[(order.day, order.channel, order.region)].setdefault(
                order.status, [0, Decimal(0), 0]
            )
            figures[0] += 1
            figures[1] += order.amount
            figures[2] += order.units
        rows = []
        for (day, channel, region), by_status in sorted(groups.items()):
            paying = [v for status, v in by_status.items() if status in self.revenue_statuses]
            rows.append(
                {
                    "date": day,
                    "channel": channel,
                    "region": region,
                    "revenue": _dollars(sum((v[1] for v in paying), Decimal(0))),
                    "orders": sum(v[0] for v in paying),
                    "orders_all_statuses": sum(v[0] for v in by_status.values()),
                    "by_status": {
                        status: {"orders": n, "amount": _dollars(amount), "units": units}
                        for status, (n, amount, units) in sorted(by_status.items())
                    },
                }
            )
        return rows

    def top_products(self, by: str = "revenue", limit: int = 10) -> list[dict[str, Any]]:
        """``GET /orders/products/top?by=&limit=``: over orders whose status is revenue;
        ties go to the smaller product id."""
        units: Counter[str] = Counter()
        revenue: dict[str, Decimal] = defaultdict(Decimal)
        orders: dict[str, set[tuple[str, str]]] = defaultdict(set)
        for order in self.counted:
            if order.status not in self.revenue_statuses:
                continue
            for line in order.lines:
                units[line.product_id] += line.quantity
                revenue[line.product_id] += line.quantity * line.price
                orders[line.product_id].add((order.customer_id, order.order_id))
        measure: Mapping[str, Any] = units if by == "units" else revenue
        ranked = sorted(orders, key=lambda product: (-measure[product], product))[:limit]
        return [
            {
                "product_id": product,
                "category": self.catalog[product].category,
                "brand": self.catalog[product].brand,
                "units": units[product],
                "revenue": _dollars(revenue[product]),
                "orders": len(orders[product]),
            }
            for product in ranked
        ]

    def customers(self) -> dict[str, Any]:
        """``GET /orders/customers``: every figure leaves cancelled orders out."""
        values: dict[str, list[Decimal]] = defaultdict(list)
        for order in self.counted:
            if order.status != "cancelled":
                values[order.customer_id].append(order.amount)
        amounts = [amount for per_customer in values.values() for amount in per_customer]
        customers, orders = len(values), len(amounts)
        repeat = sum(1 for per_customer in values.values() if len(per_customer) > 1)
        average = sum(amounts, Decimal(0)) / orders if orders else Decimal(0)
        in_range = [0] * (len(VALUE_BOUNDS) + 1)
        for amount in amounts:
            in_range[sum(1 for bound in VALUE_BOUNDS if amount >= bound)] += 1
        lows = (Decimal(0), *VALUE_BOUNDS)
        labels = [
            f"{_dollars(lo)}-{_dollars(hi)}" for lo, hi in zip(lows, VALUE_BOUNDS, strict=False)
        ]
        labels.append(f"{_dollars(VALUE_BOUNDS[-1])}+")
        return {
            "customers": customers,
            "repeat_customers": repeat,
            "repeat_rate": round(repeat / customers, 4) if customers else 0.0,
            "orders": orders,
            "orders_per_customer": round(orders / customers, 4) if customers else 0.0,
            "average_order_value": _dollars(average.quantize(CENT, rounding=ROUND_HALF_UP)),
            "order_value_distribution": [
                {"range": label, "orders": n} for label, n in zip(labels, in_range, strict=True)
            ],
        }

    def quality(self) -> dict[str, Any]:
        """``GET /orders/quality``: every record once, by what became of it."""
        rejected = sum(self.dead_letters.values())
        return {
            "received": self.received,
            "counted": len(self.counted),
            "duplicates": self.duplicates,
            "dead_letters": dict(sorted(self.dead_letters.items())),
            "dead_letter_rate": round(rejected / self.received, 6) if self.received else 0.0,
        }

    def pages(self) -> dict[str, Any]:
        """Each view's path (as a user would request it) and its answer."""
        return {
            "/orders/revenue/daily": self.revenue_daily(),
            "/orders/products/top?by=units&limit=100": self.top_products("units", 100),
            "/orders/products/top?by=revenue&limit=100": self.top_products("revenue", 100),
            "/orders/products/top?by=units&limit=5": self.top_products("units", 5),
            "/orders/products/top": self.top_products(),
            "/orders/customers": self.customers(),
            "/orders/quality": self.quality(),
        }


def answers(
    records: Iterable[RawRecord],
    catalog: Mapping[str, Product],
    *,
    sent_from: datetime,
    revenue_statuses: frozenset[str] = REVENUE_STATUSES,
    retention: timedelta = RETENTION,
) -> Answers:
    """Every record of orders.raw, each partition in offset order, to the views' answers.

    ``sent_from`` is a moment no record was sent before (a test takes the time before
    it produces): orders stamped after it are out of scope (module docstring).
    """
    by_partition: dict[int, list[RawRecord]] = defaultdict(list)
    for record in records:
        by_partition[record.partition].append(record)
    counted: list[Order] = []
    dead: Counter[str] = Counter()
    duplicates = received = 0
    home: dict[str, int] = {}
    owner: dict[str, str] = {}
    first_seen: dict[tuple[str, str], datetime] = {}
    for partition, in_partition in sorted(by_partition.items()):
        high_mark: datetime | None = None
        kept: list[Order] = []
        for record in sorted(in_partition, key=lambda r: r.offset):
            received += 1
            try:
                order = read_order(record.value)
                if record.key != order.customer_id.encode():
                    raise OutOfScope(f"{order.order_id}: key {record.key!r}, not its customer")
                if order.at > sent_from:
                    raise OutOfScope(f"{order.order_id} is stamped after its record was sent")
                check_catalog(order, catalog)
                check_lateness(order, high_mark, retention)
            except Rejected as rejected:
                dead[rejected.reason] += 1
                continue
            high_mark = order.at if high_mark is None else max(high_mark, order.at)
            if home.setdefault(order.customer_id, partition) != partition:
                raise OutOfScope(f"customer {order.customer_id} in two partitions")
            if owner.setdefault(order.order_id, order.customer_id) != order.customer_id:
                raise OutOfScope(f"order id {order.order_id} used by two customers")
            seen = first_seen.get((order.customer_id, order.order_id))
            if seen is None:
                first_seen[(order.customer_id, order.order_id)] = order.at
                kept.append(order)
                continue
            if high_mark - seen > retention - timedelta(days=2):
                raise OutOfScope(f"{order.order_id}: a duplicate of an order near the horizon")
            duplicates += 1
        if high_mark is not None and any(high_mark - o.at > retention for o in kept):
            raise OutOfScope(f"partition {partition} counts orders past the retention horizon")
        counted.extend(kept)
    return Answers(counted, received, duplicates, dead, catalog, revenue_statuses)


def answer_diff(path: str, actual: Any, expected: Any) -> str:
    """Empty when equal; else a short account of how ``actual`` differs from ``expected``."""
    if actual == expected:
        return ""
    if isinstance(actual, list) and isinstance(expected, list):
        extra = [row for row in actual if row not in expected]
        missing = [row for row in expected if row not in actual]
        return (
            f"{path}: {len(actual)} rows, {len(expected)} expected; {len(extra)} unexpected, "
            f"e.g. {extra[:1]}; {len(missing)} missing, e.g. {missing[:1]}"
        )
    if isinstance(actual, dict) and isinstance(expected, dict):
        differ = {
            key: (actual.get(key), expected.get(key))
            for key in sorted(set(actual) | set(expected))
            if actual.get(key) != expected.get(key)
        }
        return f"{path}: (actual, expected) {differ}"
    return f"{path}: {actual!r} != {expected!r}"
