"""How one source record changes the orders tables, idempotently (pure).

The ``orders-aggregates`` table holds per-source-partition partial figures; the last
key segment is the partition, so partitions never share a key and the views add them
up. Keys (all days and hours are UTC, from the order's own timestamp):

- ``daily|<date>|<channel>|<region>|<p>``: ``{"s": {status: [orders, cents, units]}}``
- ``hourly|<hour>|<channel>|<p>``: the same per hour (input of the anomaly detector)
- ``product|<date>|<product>|<p>``: the same per product and day
- ``customers|<p>``: customers, repeat customers, orders, cents, order-value histogram
- ``clock|<p>``: the partition's event-time high mark, the offset flushed last and
  how many records had each outcome (applied, duplicate, rejected:<reason>)

Per customer (orders.raw is keyed by customer, so a customer lives in one partition):

- ``customer|<id>``: counted orders ``n`` and their cents ``c`` (a fixed size);
- ``order|<customer id>|<order id>``: one small value per order id seen (offset, UTC
  day, counted), for deduplication within the customer's orders. Keys older than the
  retention horizon are deleted each week of event time (``expired_orders``): such an
  order can only come back late, and is then rejected before deduplication. So no
  value grows with a customer's history, and the table holds the horizon's order ids,
  not every id ever seen.

Everything counted per customer excludes cancelled orders; none of these keys is
mirrored (no view needs them).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from streams.common.exactly_once import PartitionState, Value
from streams.orders.logic import (
    DAY_MS,
    Rejected,
    Rules,
    check_against_catalog,
    check_event_time,
    check_key,
    day_end_ms,
    day_of,
    hour_of,
    parse_order,
    quality_issues,
)
from streams.orders.models import CatalogEntry, Order

WEEK_MS = 7 * DAY_MS

#: Upper bounds (in cents) of the order-value histogram buckets; the last is open.
VALUE_BUCKETS = (2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000)


def clock_key(partition: int) -> str:
    return f"clock|{partition}"


def customer_key(customer_id: str) -> str:
    return f"customer|{customer_id}"


def order_key(customer_id: str, order_id: str) -> str:
    return f"order|{customer_id}|{order_id}"


def sweep_key(partition: int) -> str:
    return f"sweep|{partition}"


def customers_key(partition: int) -> str:
    return f"customers|{partition}"


def bucket_of(cents: int) -> int:
    for index, bound in enumerate(VALUE_BUCKETS):
        if cents < bound:
            return index
    return len(VALUE_BUCKETS)


def _status_counts(status: str, orders: int, cents: int, units: int) -> Any:
    def apply(value: Value) -> None:
        counts = value.setdefault("s", {}).setdefault(status, [0, 0, 0])
        counts[0] += orders
        counts[1] += cents
        counts[2] += units

    return apply


def _empty() -> Value:
    return {}


@dataclass
class Applied:
    """What one record did: ``kind`` is applied, duplicate, replayed or rejected."""

    kind: str
    order: Order | None = None
    rejected: Rejected | None = None
    revision: bool = False
    issues: list[str] = field(default_factory=list)


def watermark(aggregates: PartitionState, partition: int) -> int | None:
    clock = aggregates.get(clock_key(partition))
    return None if clock is None or clock.get("max_ms") is None else int(clock["max_ms"])


def advance_clock(
    aggregates: PartitionState,
    partition: int,
    offset: int,
    event_ms: int | None,
    wall_ms: int,
    outcome: str,
) -> None:
    """Move the partition's clock past ``offset`` and count the record's outcome.

    Outcomes are ``applied``, ``duplicate`` or ``rejected:<reason>``; counted here, under
    the same offset guard, they are exact, unlike a worker's metrics, which restart
    from zero and see replays again.
    """

    def apply(value: Value) -> None:
        counts = value.setdefault("n", {})
        counts[outcome] = counts.get(outcome, 0) + 1
        known = value.get("max_ms")
        if event_ms is not None:
            value["max_ms"] = event_ms if known is None else max(int(known), event_ms)
        else:
            value["max_ms"] = known
        value["wall_ms"] = wall_ms

    aggregates.update(clock_key(partition), offset, apply, _empty)


def check_lateness(order: Order, high_mark: int | None, rules: Rules) -> bool:
    """Raise for orders older than the retention horizon; True if the order is a revision."""
    if high_mark is None:
        return False
    if high_mark - order.event_ms > rules.retention_ms:
        days = (high_mark - order.event_ms) / DAY_MS
        raise Rejected("late", f"{days:.1f} days behind the stream, beyond retention")
    return day_end_ms(order.event_ms) + rules.grace_ms <= high_mark


def apply_order(
    order: Order,
    offset: int,
    partition: int,
    aggregates: PartitionState,
    customers: PartitionState,
    rules: Rules,
    high_mark: int | None = None,
) -> str:
    """Count ``order`` once in every table; returns applied, duplicate or replayed.

    ``high_mark`` is the partition's event-time high mark before this order: ids older
    than it by the retention horizon are forgotten, since such an order can only come
    back late (and is then rejected before deduplication).
    """
    customer = customers.get(customer_key(order.customer_id))
    seen = customers.get(order_key(order.customer_id, order.order_id))
    first = seen["o"] if seen is not None else _legacy_offset(customer, order.order_id)
    if first is not None and first != offset:
        return "duplicate"

    counted = order.status.value != "cancelled"
    cents = order.items_cents
    # The partition's summary is written before any customer (flush_partition), so
    # whenever the summary still needs this order, the customer's value does too: its
    # count is the orders before this one.
    before = int(customer["n"]) if customer is not None else 0
    changed = customers.update(
        customer_key(order.customer_id),
        offset,
        _remember(counted, cents, _oldest_day(high_mark, order, rules)),
        _new_customer,
    )
    changed |= customers.update(
        order_key(order.customer_id, order.order_id),
        offset,
        _seen(order, offset, counted),
        _empty,
    )

    status = order.status.value
    for key, amount, units in _counted_keys(order, partition):
        changed |= aggregates.update(key, offset, _status_counts(status, 1, amount, units), _empty)
    if counted:
        changed |= aggregates.update(
            customers_key(partition), offset, _customer_summary(before, cents), _new_summary
        )
    return "applied" if changed else "replayed"


def _counted_keys(order: Order, p: int) -> list[tuple[str, int, int]]:
    """The per-status counters one order adds to: (key, cents, units)."""
    ms, cents = order.event_ms, order.items_cents
    day = day_of(ms)
    keys = [
        (f"daily|{day}|{order.channel}|{order.region}|{p}", cents, order.units),
        (f"hourly|{hour_of(ms)}|{order.channel}|{p}", cents, order.units),
    ]
    # One key per product: an order listing a product on two lines adds both to it in
    # one update (two updates under one offset would count the second line as applied).
    products: dict[str, list[int]] = {}
    for item in order.items:
        figures = products.setdefault(item.product_id, [0, 0])
        figures[0] += item.amount_cents
        figures[1] += item.quantity
    keys.extend(
        (f"product|{day}|{product}|{p}", cents, units)
        for product, (cents, units) in products.items()
    )
    return keys


def touch_order(
    order: Order, partition: int, aggregates: PartitionState, customers: PartitionState
) -> None:
    """Read (and so rewrite at flush) every key a replayed record had written."""
    customers.get(customer_key(order.customer_id))
    customers.get(order_key(order.customer_id, order.order_id))
    aggregates.get(customers_key(partition))
    for key, _cents, _units in _counted_keys(order, partition):
        aggregates.get(key)


def _legacy_offset(customer: Value | None, order_id: str) -> int | None:
    """An order id remembered in the customer's value by earlier versions (``ids``)."""
    seen = (customer or {}).get("ids", {}).get(order_id)
    return None if seen is None else int(seen[0])


def _new_customer() -> Value:
    return {"n": 0, "c": 0}


def _oldest_day(high_mark: int | None, order: Order, rules: Rules) -> int:
    newest = order.event_ms if high_mark is None else max(high_mark, order.event_ms)
    return (newest - rules.retention_ms) // DAY_MS


def _remember(counted: bool, cents: int, oldest_day: int) -> Any:
    def apply(value: Value) -> None:
        if "ids" in value:  # written by an earlier version: it ages out, never grows
            prune_customer_ids(value, oldest_day)
            if not value["ids"]:
                del value["ids"], value["od"]
        if counted:
            value["n"] += 1
            value["c"] += cents

    return apply


def _seen(order: Order, offset: int, counted: bool) -> Any:
    def apply(value: Value) -> None:
        value.update(o=offset, d=order.event_ms // DAY_MS, c=int(counted))

    return apply


def prune_customer_ids(value: Value, oldest_day: int) -> None:
    """Forget order ids an earlier version kept in the customer's value once they are
    older than the retention horizon. ``value["od"]`` is the oldest day remembered, so
    the map is only rebuilt when something has actually aged out."""
    ids = value["ids"]
    if ids and value.get("od", -1) < oldest_day:
        value["ids"] = ids = {k: v for k, v in ids.items() if v[1] >= oldest_day}
        value["od"] = min((v[1] for v in ids.values()), default=oldest_day)


def expired_orders(
    stored: Iterable[tuple[str, Value]], high_mark: int, rules: Rules
) -> Iterator[str]:
    """The ``order|`` keys (of ``stored``: key, value) past the retention horizon."""
    oldest_day = (high_mark - rules.retention_ms) // DAY_MS
    for key, value in stored:
        if int(value["d"]) < oldest_day:
            yield key


#: Table keys whose second segment is a day (or an hour of it): kept ``history_ms``.
FIGURES = ("daily|", "hourly|", "product|")


def expired_figures(keys: Iterable[str], high_mark: int, rules: Rules) -> Iterator[str]:
    """The figure keys (daily, hourly, per product) of days before the history kept."""
    first_kept = rules.forgotten_before(high_mark)
    if first_kept is None:
        return
    for key in keys:
        if key.split("|", 2)[1][:10] < first_kept:
            yield key


def flush_partition(state: PartitionState, partition: int) -> int:
    """Write a batch's keys of ``partition``: the customer summary first (apply_order
    relies on it), the clock last (process_record relies on it)."""
    return state.flush(last=clock_key(partition), first=customers_key(partition))


def sweep_due(aggregates: PartitionState, partition: int) -> int | None:
    """The event-time week to sweep expired order ids for, if the partition entered a
    new one since its last sweep; the sweep is recorded (written before the clock)."""
    high = watermark(aggregates, partition)
    if high is None:
        return None
    week = high // WEEK_MS
    done = aggregates.get(sweep_key(partition))
    if done is not None and int(done["week"]) >= week:
        return None
    aggregates.put(sweep_key(partition), {"week": week})
    return week


def _new_summary() -> Value:
    return {"customers": 0, "repeat": 0, "orders": 0, "cents": 0, "hist": [0] * 8}


def _customer_summary(before: int, cents: int) -> Any:
    def apply(value: Value) -> None:
        value["orders"] += 1
        value["cents"] += cents
        value["hist"][bucket_of(cents)] += 1
        if before == 0:
            value["customers"] += 1
        elif before == 1:
            value["repeat"] += 1

    return apply


def process_record(
    raw: bytes | None,
    partition: int,
    offset: int,
    wall_ms: int,
    aggregates: PartitionState,
    customers: PartitionState,
    catalog: Mapping[str, CatalogEntry],
    rules: Rules,
    *,
    key: bytes | None = None,
    record_ms: int | None = None,
) -> Applied:
    """Decode, check and count one record of orders.raw exactly once.

    ``key`` and ``record_ms`` are the Kafka record's key and timestamp: the key must be
    the customer id (when ``rules.partitions`` is set), and the order may not be
    stamped after ``min(record_ms, wall_ms)`` by more than ``rules.max_future_ms``.

    A record at or below the partition clock's offset was fully handled before a
    restart (the clock is flushed last): it changes nothing and emits nothing again,
    but its keys are rewritten so a changelog that lost them is healed.
    """
    replay = aggregates.applied(clock_key(partition), offset)
    high = watermark(aggregates, partition)
    try:
        order = parse_order(raw)
        if replay:
            touch_order(order, partition, aggregates, customers)
            return Applied("replayed", order=order)
        check_key(order, key, partition, rules)
        check_event_time(order, wall_ms if record_ms is None else min(record_ms, wall_ms), rules)
        check_against_catalog(order, catalog, rules)
        revision = check_lateness(order, high, rules)
    except Rejected as rejected:
        advance_clock(aggregates, partition, offset, None, wall_ms, f"rejected:{rejected.reason}")
        return Applied("replayed" if replay else "rejected", rejected=rejected)
    kind = apply_order(order, offset, partition, aggregates, customers, rules, high)
    # "replayed" here means a crash cut the flush after this record's keys but before
    # the clock: a clean run counted it as applied, and so must the clock.
    counted = "duplicate" if kind == "duplicate" else "applied"
    advance_clock(aggregates, partition, offset, order.event_ms, wall_ms, counted)
    return Applied(kind, order=order, revision=revision, issues=quality_issues(order))
