"""Pure rules for one order: decode, upgrade, validate against the catalog, enrich.

Nothing here touches Kafka, Faust or a clock, so every rule is unit-tested directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, TypeVar

import orjson
from pydantic import ValidationError

from streams.common.mirror import text_or_json_key
from streams.common.partitioning import partition_for
from streams.orders.decode import read_order
from streams.orders.models import (
    CatalogEntry,
    InventoryRow,
    Order,
    OrderV1,
    OrderV2,
    upgrade_v1,
    upgrade_v2,
)

DAY_MS = 86_400_000
HOUR_MS = 3_600_000

#: Every dead-letter reason this pipeline uses (the metric's ``reason`` label).
REASONS = (
    "decode_error",
    "unknown_schema",
    "invalid",
    "unknown_product",
    "price_mismatch",
    "total_mismatch",
    "late",
    "future_timestamp",
    "wrong_key",
    "processing_error",
)


#: Any of these marks a v1 order, so a v1 order missing one of them is "invalid".
V1_FIELDS = frozenset({"order_id", "customer_id", "items", "shipping_address"})


class Rejected(Exception):
    """An order that cannot be counted; ``reason`` is one of REASONS."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Rules:
    """The business rules a deployment may tune (see OrdersSettings)."""

    grace_ms: int = 5 * 60_000
    retention_ms: int = 45 * DAY_MS
    #: Allowed relative difference between an item's price and the catalog price.
    price_tolerance: Decimal = Decimal(0)
    revenue_statuses: frozenset[str] = frozenset({"confirmed"})
    #: Orders stamped further than this ahead of the clock are dead-lettered (None: no
    #: bound). They would otherwise move stream time and make every real order late.
    max_future_ms: int | None = None
    #: Partitions of orders.raw, to check each record's key and partition against its
    #: customer (None: not checked).
    partitions: int | None = None
    #: Figures (daily, hourly, per product) of days further than this behind their
    #: partition are deleted from the table, and so from every view (None: kept).
    history_ms: int | None = None

    def forgotten_before(self, high_mark: int) -> str | None:
        """The first day whose figures are still kept when a partition is at
        ``high_mark`` (earlier days are deleted), or None when all are kept."""
        return None if self.history_ms is None else day_of(high_mark - self.history_ms)


#: The event times an order may carry: from the Unix epoch to the last year whose day
#: and hour labels, and the day after them, the calendar still has. Outside it an order
#: is invalid: an order of year 25 was labelled '25-08-01' (strftime does not pad) and
#: stopped the daily reports, one of year 1 made the weekly sweep's horizon year 0.
EARLIEST_MS = 0
LATEST_MS = int(datetime(9999, 1, 1, tzinfo=UTC).timestamp() * 1000)
#: The largest order total counted: the table's figures are 64-bit integers of cents
#: (what orjson writes), so sums of valid but absurd orders (a $999,999,999,999.99
#: product ordered 10,000 times) would overflow them and stop the partition's writes.
#: At this bound the sum of 9 million such orders still fits.
MAX_ORDER_CENTS = 10**12


def check_bounds(order: Order) -> None:
    """Reject an order stamped before 1970 or in year 9999 or later (its total is
    bounded by ``check_against_catalog``, once its prices are known to be the catalog's)."""
    if not EARLIEST_MS <= order.event_ms < LATEST_MS:
        raise Rejected(
            "invalid", f"timestamp {order.event_time.isoformat()} is not in years 1970-9998"
        )


def check_event_time(order: Order, clock_ms: int, rules: Rules) -> None:
    """Reject an order stamped more than ``max_future_ms`` after ``clock_ms``.

    ``clock_ms`` is the earlier of the record's Kafka timestamp and the processing
    clock: fixed for a record, so a replay after a crash judges it the same way, and a
    producer cannot push it forward with a forged record timestamp.
    """
    if rules.max_future_ms is not None and order.event_ms > clock_ms + rules.max_future_ms:
        ahead = (order.event_ms - clock_ms) / 1000
        raise Rejected("future_timestamp", f"{ahead:.0f} s ahead of the clock")


def check_key(order: Order, key: bytes | None, partition: int, rules: Rules) -> None:
    """Reject a record whose key is not its customer id, or that sits in another
    partition than Kafka's default partitioner gives that id: a customer's orders must
    share a partition, or deduplication and per-customer figures silently split."""
    if rules.partitions is None:
        return
    expected = order.customer_id.encode()
    if key != expected:
        shown = key[:80].decode(errors="replace") if key is not None else None
        raise Rejected("wrong_key", f"key {shown!r}, customer_id {order.customer_id!r}")
    home = partition_for(expected, rules.partitions)
    if home != partition:
        raise Rejected(
            "wrong_key",
            f"customer {order.customer_id} belongs in partition {home} of {rules.partitions}",
        )


def parse_order(raw: bytes | None) -> Order:
    """Decode any known version of an order and upgrade it to the current model."""
    data = raw or b""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        obj = None
    if type(obj) is dict:
        order = read_order(obj)
        if order is not None:
            return order
    return parse_by_models(data)


def parse_by_models(data: bytes) -> Order:
    """``parse_order`` through the pydantic models: the spec, and the path of every
    record the fast reader (decode.py) is not sure of, rejections among them."""
    try:
        if b'"schema_version"' not in data and b'"order_id"' in data:
            # The common case, parsed straight from bytes by pydantic's JSON parser; any
            # rejection is classified precisely by the general path below.
            try:
                return upgrade_v1(OrderV1.model_validate_json(data))
            except ValidationError:
                pass
        return _parse_any(data)
    except OverflowError:
        # A valid offset on a date at the edge of datetime's range (year 1 at +01:00,
        # year 9999 at -01:00) leaves it when it is converted to UTC.
        raise Rejected("invalid", "timestamp: out of range once converted to UTC") from None


def _parse_any(raw: bytes) -> Order:
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Rejected("decode_error", f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise Rejected("decode_error", f"expected a JSON object, got {type(obj).__name__}")
    version = obj.get("schema_version")
    if version is not None and type(version) is not int:
        raise Rejected("unknown_schema", f"schema_version must be an integer, got {version!r}")
    try:
        if version == 2:
            return upgrade_v2(OrderV2.model_validate(obj))
        if version in (None, 1) and V1_FIELDS & obj.keys():
            return upgrade_v1(OrderV1.model_validate(obj))
    except ValidationError as exc:
        raise Rejected("invalid", describe(exc)) from None
    raise Rejected("unknown_schema", f"schema_version={version!r}, fields={sorted(obj)[:12]}")


def describe(exc: ValidationError) -> str:
    """One line naming each failing field, e.g. ``items.0.quantity: greater than 0``."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False)[:8]:
        where = ".".join(str(p) for p in error["loc"]) or "(root)"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


Reference = TypeVar("Reference", CatalogEntry, InventoryRow)


def reference_record(model: type[Reference], key: bytes | str | None, raw: Any) -> Reference:
    """A catalog entry or inventory row, checked before anything reads it.

    ``raw`` is the record's bytes or its decoded JSON. Raises Rejected: ``invalid``
    (the detail names each failing field) or ``wrong_key`` (the key is not the
    product id: the newest value per key would then describe another product).
    """
    try:
        if isinstance(raw, bytes | None):
            row = model.model_validate_json(raw or b"")
        else:
            row = model.model_validate(raw)
    except ValidationError as exc:
        raise Rejected("invalid", describe(exc)) from None
    # Keys are read as every worker's mirror reads them: plain text, or JSON (Faust's).
    shown = text_or_json_key(key) if isinstance(key, bytes) else key
    if shown != row.product_id:
        raise Rejected("wrong_key", f"key {shown!r}, product_id {row.product_id!r}")
    return row


def check_against_catalog(order: Order, catalog: Mapping[str, CatalogEntry], rules: Rules) -> None:
    """Reject unknown products, prices off the catalog, totals that disagree, and
    totals over ``MAX_ORDER_CENTS`` ($10,000,000,000) as ``invalid``."""
    for item in order.items:
        entry = catalog.get(item.product_id)
        if entry is None:
            raise Rejected("unknown_product", f"{item.product_id} is not in the catalog")
        listed = _cents_of(entry.price)
        if abs(item.unit_price_cents - listed) > rules.price_tolerance * listed:
            raise Rejected(
                "price_mismatch",
                f"{item.product_id}: {item.unit_price_cents / 100:.2f} vs catalog {entry.price}",
            )
    if order.total_cents is not None and order.total_cents != order.items_cents:
        raise Rejected(
            "total_mismatch",
            f"total {order.total_cents} cents, items sum to {order.items_cents} cents",
        )
    if order.items_cents > MAX_ORDER_CENTS:
        raise Rejected(
            "invalid",
            f"total {order.items_cents / 100:.2f} is over {MAX_ORDER_CENTS // 100:,} (USD)",
        )


@lru_cache(maxsize=4096)
def _cents_of(price: Decimal) -> int:
    """A catalog price in cents (Decimal arithmetic is slow; a catalog has few prices)."""
    return int(price * 100)


def quality_issues(order: Order) -> list[str]:
    """Completeness findings that do not reject an order but are counted."""
    issues = []
    if not order.city:
        issues.append("missing_city")
    if order.country != "US":
        issues.append("non_us_country")
    return issues


def day_of(ms: int) -> str:
    return day_label(ms // DAY_MS)


def hour_of(ms: int) -> str:
    return hour_label(ms // HOUR_MS)


# Formatting dates is a hot spot at thousands of orders a second; few distinct ones.
@lru_cache(maxsize=4096)
def day_label(day: int) -> str:
    """Day number ``day`` (days since the Unix epoch, UTC) as ``YYYY-MM-DD``."""
    return datetime.fromtimestamp(day * DAY_MS / 1000, UTC).strftime("%Y-%m-%d")


@lru_cache(maxsize=65536)
def hour_label(hour: int) -> str:
    """Hour number ``hour`` (hours since the Unix epoch, UTC) as ``YYYY-MM-DDTHH``."""
    return datetime.fromtimestamp(hour * HOUR_MS / 1000, UTC).strftime("%Y-%m-%dT%H")


def day_end_ms(ms: int) -> int:
    return (ms // DAY_MS + 1) * DAY_MS


# Four amounts per one-line order are formatted; prices and line amounts repeat (the
# catalog's), so most are found here.
@lru_cache(maxsize=16384)
def money(cents: int) -> str:
    """Cents as an exact decimal string, e.g. 95108 -> '951.08'."""
    if cents < 0:
        return "-" + money(-cents)
    return f"{cents // 100}.{cents % 100:02d}"


def enrich(
    order: Order,
    catalog: Mapping[str, CatalogEntry],
    inventory: Mapping[str, Mapping[str, Any]],
    rules: Rules,
    *,
    revision: bool,
) -> dict[str, Any]:
    """The enriched order written to orders.enriched and the Parquet copy.

    A product no longer in the catalog (removed between a crash and the replay of an
    order counted before it, whose verdict stands) is enriched as ``UNLISTED``."""
    items = []
    for item in order.items:
        entry = catalog.get(item.product_id) or UNLISTED
        stock = inventory.get(item.product_id) or _NO_STOCK
        items.append(
            {
                "product_id": item.product_id,
                "quantity": item.quantity,
                "unit_price": money(item.unit_price_cents),
                "amount": money(item.amount_cents),
                "category": entry.category,
                "brand": entry.brand,
                "available_quantity": stock.get("available_quantity"),
                "warehouse": stock.get("warehouse_location"),
            }
        )
    status = str(order.status)  # the plain string (Enum's .value is slow)
    return {
        "order_id": order.order_id,
        "customer_id": order.customer_id,
        "event_time": order.event_time.isoformat().replace("+00:00", "Z"),
        "date": day_label(order.event_ms // DAY_MS),
        "channel": order.channel,
        "status": status,
        "country": order.country,
        "region": order.region,
        "city": order.city,
        "total": money(order.items_cents),
        "units": order.units,
        "counts_as_revenue": status in rules.revenue_statuses,
        "revision": revision,
        "schema_version": order.schema_version,
        "items": items,
    }


_NO_STOCK: Mapping[str, Any] = {}

#: What an order's line names for a product the catalog no longer lists.
UNLISTED = CatalogEntry.model_construct(
    product_id="", category="unlisted", brand="unlisted", price=Decimal(0)
)
