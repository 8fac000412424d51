"""Answers of the web views, computed from the mirrored tables (pure).

Each table key ends with its source partition; these functions add partitions up.
Revenue counts only the statuses in ``Rules.revenue_statuses`` (by default
``confirmed``: a pending order may still fail, a cancelled one never pays).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from streams.orders.aggregates import VALUE_BUCKETS
from streams.orders.logic import Rules, money
from streams.orders.models import CatalogEntry

Value = Mapping[str, Any]
KINDS = ("daily", "hourly", "product", "customers", "clock")


class AggregateIndex:
    """The mirrored ``orders-aggregates`` table split by key kind, kept current by a listener.

    The reporter reads two more groupings, so that its tick costs what changed, not the
    whole history: daily keys by date, with the dates touched since it last asked, and
    hourly keys by channel and hour, with each channel's first hour and earliest hour
    touched since it last asked. They hold the same value objects as ``by_kind``.
    """

    def __init__(self) -> None:
        self.by_kind: dict[str, dict[str, Value]] = {kind: {} for kind in KINDS}
        #: date -> daily key -> value
        self.daily_by_date: dict[str, dict[str, Value]] = {}
        #: channel -> hour -> hourly key -> value
        self.hourly_by_channel: dict[str, dict[str, dict[str, Value]]] = {}
        self._first_hour: dict[str, str] = {}
        self._touched: set[str] = set()
        self._touched_hours: dict[str, str] = {}

    def on_record(self, _topic: str, key: str, value: Value | None) -> None:
        kind = key.split("|", 1)[0]
        table = self.by_kind.get(kind)
        if table is None:
            return
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
        if kind == "daily":
            date = key.split("|", 2)[1]
            _file(self.daily_by_date, date, key, value)
            self._touched.add(date)
        elif kind == "hourly":
            _, hour, channel, _p = key.split("|")
            self._file_hour(channel, hour, key, value)

    def _file_hour(self, channel: str, hour: str, key: str, value: Value | None) -> None:
        hours = self.hourly_by_channel.setdefault(channel, {})
        _file(hours, hour, key, value)
        touched = self._touched_hours.get(channel)
        if touched is None or hour < touched:
            self._touched_hours[channel] = hour
        first = self._first_hour.get(channel)
        if not hours:
            del self.hourly_by_channel[channel]
            self._first_hour.pop(channel, None)
        elif first is None or hour < first:
            self._first_hour[channel] = hour
        elif hour == first and hour not in hours:
            # Hourly keys are not deleted in normal operation: a scan here is rare.
            self._first_hour[channel] = min(hours)

    def first_hour(self, channel: str) -> str | None:
        """The channel's earliest hour with figures."""
        return self._first_hour.get(channel)

    def take_touched_dates(self) -> set[str]:
        """Dates whose daily figures changed since the last call."""
        touched, self._touched = self._touched, set()
        return touched

    def take_touched_hours(self) -> dict[str, str]:
        """Per channel, the earliest hour whose figures changed since the last call."""
        touched, self._touched_hours = self._touched_hours, {}
        return touched


def _file(groups: dict[str, dict[str, Value]], group: str, key: str, value: Value | None) -> None:
    if value is not None:
        groups.setdefault(group, {})[key] = value
        return
    members = groups.get(group)
    if members is not None:
        members.pop(key, None)
        if not members:
            del groups[group]


def _in_range(date: str, date_from: str | None, date_to: str | None) -> bool:
    return (date_from is None or date >= date_from) and (date_to is None or date <= date_to)


def revenue_daily(
    daily: Mapping[str, Value],
    rules: Rules,
    *,
    date_from: str | None = None,
    date_to: str | None = None,
    channel: str | None = None,
    region: str | None = None,
) -> list[dict[str, Any]]:
    """One row per date, channel and region: revenue (a decimal string) and orders."""
    groups: dict[tuple[str, str, str], dict[str, list[int]]] = {}
    for key, value in daily.items():
        _, date, ch, reg, _p = key.split("|")
        if not _in_range(date, date_from, date_to) or channel not in (None, ch):
            continue
        if region not in (None, reg):
            continue
        by_status = groups.setdefault((date, ch, reg), {})
        for status, (orders, cents, units) in value.get("s", {}).items():
            counts = by_status.setdefault(status, [0, 0, 0])
            counts[0] += orders
            counts[1] += cents
            counts[2] += units
    rows = []
    for (date, ch, reg), by_status in sorted(groups.items()):
        counted = [c for s, c in by_status.items() if s in rules.revenue_statuses]
        rows.append(
            {
                "date": date,
                "channel": ch,
                "region": reg,
                "revenue": money(sum(c[1] for c in counted)),
                "orders": sum(c[0] for c in counted),
                "orders_all_statuses": sum(c[0] for c in by_status.values()),
                "by_status": {
                    s: {"orders": c[0], "amount": money(c[1]), "units": c[2]}
                    for s, c in sorted(by_status.items())
                },
            }
        )
    return rows


def top_products(
    products: Mapping[str, Value],
    catalog: Mapping[str, CatalogEntry],
    rules: Rules,
    *,
    by: str = "revenue",
    limit: int = 10,
    date_from: str | None = None,
    date_to: str | None = None,
) -> list[dict[str, Any]]:
    """Products ranked by units or revenue, over orders whose status counts as revenue."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for key, value in products.items():
        _, date, product, _p = key.split("|")
        if not _in_range(date, date_from, date_to):
            continue
        for status, (orders, cents, units) in value.get("s", {}).items():
            if status in rules.revenue_statuses:
                total = totals[product]
                total[0] += orders
                total[1] += cents
                total[2] += units
    rank = 2 if by == "units" else 1
    ordered = sorted(totals.items(), key=lambda kv: (-kv[1][rank], kv[0]))[:limit]
    rows = []
    for product, (orders, cents, units) in ordered:
        entry = catalog.get(product)
        rows.append(
            {
                "product_id": product,
                "category": entry.category if entry else None,
                "brand": entry.brand if entry else None,
                "units": units,
                "revenue": money(cents),
                "orders": orders,
            }
        )
    return rows


def customer_patterns(summaries: Iterable[Value]) -> dict[str, Any]:
    """Repeat rate, orders per customer and the order value distribution (not cancelled)."""
    customers = repeat = orders = cents = 0
    hist = [0] * (len(VALUE_BUCKETS) + 1)
    for value in summaries:
        customers += value["customers"]
        repeat += value["repeat"]
        orders += value["orders"]
        cents += value["cents"]
        hist = [a + b for a, b in zip(hist, value["hist"], strict=True)]
    bounds = [0, *VALUE_BUCKETS]
    labels = [f"{money(lo)}-{money(hi)}" for lo, hi in zip(bounds, VALUE_BUCKETS, strict=False)]
    labels.append(f"{money(VALUE_BUCKETS[-1])}+")
    return {
        "customers": customers,
        "repeat_customers": repeat,
        "repeat_rate": round(repeat / customers, 4) if customers else 0.0,
        "orders": orders,
        "orders_per_customer": round(orders / customers, 4) if customers else 0.0,
        "average_order_value": money((2 * cents + orders) // (2 * orders)) if orders else "0.00",
        "order_value_distribution": [
            {"range": label, "orders": count} for label, count in zip(labels, hist, strict=True)
        ],
    }


def inventory_status(
    inventory: Mapping[str, Value],
    products: Mapping[str, Value],
    rules: Rules,
    threshold: int,
) -> list[dict[str, Any]]:
    """Stock per product with units sold and turnover (units sold / units available)."""
    sold: dict[str, int] = defaultdict(int)
    for key, value in products.items():
        product = key.split("|")[2]
        for status, (_orders, _cents, units) in value.get("s", {}).items():
            if status in rules.revenue_statuses:
                sold[product] += units
    rows = []
    for product, row in sorted(inventory.items()):
        available = int(row["available_quantity"])
        rows.append(
            {
                "product_id": product,
                "available_quantity": available,
                "warehouse": row.get("warehouse_location"),
                "last_updated": row.get("last_updated"),
                "units_sold": sold.get(product, 0),
                "turnover": round(sold.get(product, 0) / available, 4) if available else None,
                "low_stock": available < threshold,
            }
        )
    return rows


def data_quality(clocks: Iterable[Value]) -> dict[str, Any]:
    """Exact record counts by outcome over every partition, and the share rejected."""
    outcomes: dict[str, int] = defaultdict(int)
    for clock in clocks:
        for outcome, count in clock.get("n", {}).items():
            outcomes[outcome] += count
    received = sum(outcomes.values())
    rejected = {k.split(":", 1)[1]: v for k, v in sorted(outcomes.items()) if ":" in k}
    return {
        "received": received,
        "counted": outcomes.get("applied", 0),
        "duplicates": outcomes.get("duplicate", 0),
        "dead_letters": rejected,
        "dead_letter_rate": round(sum(rejected.values()) / received, 6) if received else 0.0,
    }
