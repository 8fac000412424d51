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
- ``verdict|<p>``: what the partition's latest batch decided for each record past the
  clock (``to``: the last offset decided; ``r``: the rejected offsets by reason), written
  before the batch's other keys: a batch read again after a crash follows it, so an
  order counted (or dead-lettered) before the crash is never judged again against a
  catalog or a wall clock that moved in between

Per customer (orders.raw is keyed by customer, so a customer lives in one partition):

- ``customer|<id>``: ``f``, the offsets of the customer's first two counted orders
  (-1 where an earlier version counted one, ``n``, at an offset not kept): what tells a
  new customer from a repeat one, whichever of a batch's keys a crash let through. It
  no longer changes once it holds two, and is then not written again;
- ``order|<customer id>|<order id>``: one small value per order id seen (offset, UTC
  day, counted), for deduplication within the customer's orders. Keys older than the
  retention horizon are deleted each week of event time (retention.py): such an
  order can only come back late, and is then rejected before deduplication. So no
  value grows with a customer's history, and the table holds the horizon's order ids,
  not every id ever seen.

Everything counted per customer excludes cancelled orders; none of these keys is
mirrored (no view needs them).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from streams.common.exactly_once import OFFSET, PartitionState, Value
from streams.orders.logic import (
    DAY_MS,
    HOUR_MS,
    Rejected,
    Rules,
    day_end_ms,
    day_label,
    hour_label,
)
from streams.orders.models import Order

#: Counted orders whose offsets a customer's value keeps: all a new customer and a
#: repeat customer are told apart by.
REPEAT = 2

#: Upper bounds (in cents) of the order-value histogram buckets; the last is open.
VALUE_BUCKETS = (2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000)


def clock_key(partition: int) -> str:
    return f"clock|{partition}"


def customer_key(customer_id: str) -> str:
    return f"customer|{customer_id}"


def order_key(customer_id: str, order_id: str) -> str:
    return f"order|{customer_id}|{order_id}"


def verdict_key(partition: int) -> str:
    return f"verdict|{partition}"


def sweep_key(partition: int) -> str:
    return f"sweep|{partition}"


def customers_key(partition: int) -> str:
    return f"customers|{partition}"


def bucket_of(cents: int) -> int:
    for index, bound in enumerate(VALUE_BUCKETS):
        if cents < bound:
            return index
    return len(VALUE_BUCKETS)


def empty_value() -> Value:
    return {}


@dataclass
class Applied:
    """What one record did: ``kind`` is applied, duplicate, replayed or rejected."""

    kind: str
    order: Order | None = None
    rejected: Rejected | None = None
    revision: bool = False
    issues: list[str] = field(default_factory=list)
    #: Its outputs are sent (again): True for an applied order, and for one whose keys
    #: a crash let through before its clock, since its outputs share their wait.
    emits: bool = False


def watermark(aggregates: PartitionState, partition: int) -> int | None:
    clock = aggregates.get(clock_key(partition))
    return None if clock is None or clock.get("max_ms") is None else int(clock["max_ms"])


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
    customer_id = order.customer_id
    # Read only: a repeat customer's value no longer changes, and is not written again.
    customer = customers.peek(customer_key(customer_id))
    seen = customers.get(order_key(customer_id, order.order_id))
    first = seen["o"] if seen is not None else _legacy_offset(customer, order.order_id)
    if first is not None and first != offset:
        return "duplicate"

    status = str(order.status)  # the plain string, a table key (Enum's .value is slow)
    counted = status != "cancelled"
    # From the offsets the customer's value keeps, whatever part of a flush a crash let
    # through: the summary may be written before or after the customer's value.
    before = orders_before(customer, offset)
    # Each value has its own offset guard: a crash in the middle of a flush leaves some
    # keys written and others not, and only the others count the order again.
    changed = False
    if _changes_customer(customer, counted):
        oldest_day = _oldest_day(high_mark, order, rules)
        stored = customers.get(customer_key(customer_id))
        changed = _count_customer(customers, order, offset, stored, counted, oldest_day)
    changed |= _remember_id(customers, order, offset, seen, counted)
    changed |= _count_figures(aggregates, order, offset, partition, status)
    if counted:
        changed |= _count_summary(aggregates, partition, offset, before, order.items_cents)
    return "applied" if changed else "replayed"


def _count_customer(
    customers: PartitionState,
    order: Order,
    offset: int,
    stored: Value | None,
    counted: bool,
    oldest_day: int,
) -> bool:
    value = claim(customers, customer_key(order.customer_id), offset, stored, _new_customer)
    if value is None:
        return False
    if "f" not in value:  # an earlier version's count: its orders' offsets are unknown
        value["f"] = [-1] * min(int(value.pop("n", 0)), REPEAT)
        value.pop("c", None)
    if "ids" in value:  # written by an earlier version: it ages out, never grows
        prune_customer_ids(value, oldest_day)
        if not value["ids"]:
            value.pop("ids")
            value.pop("od", None)
    if counted and len(value["f"]) < REPEAT:
        value["f"].append(offset)
    value[OFFSET] = offset
    return True


def orders_before(customer: Value | None, offset: int) -> int:
    """How many of the customer's counted orders precede the one at ``offset``, up to
    ``REPEAT``: from the offsets of its first ones, so the answer is the same when a
    record is applied again after a crash wrote its customer's value but not the
    partition's summary."""
    if customer is None:
        return 0
    firsts = customer.get("f")
    if firsts is None:  # an earlier version's count, written after the summary
        return min(int(customer.get("n", 0)), REPEAT)
    return bisect_left(firsts, offset)  # ascending: each appended above the value's offset


def _changes_customer(customer: Value | None, counted: bool) -> bool:
    """Whether an order changes its customer's value: one of its first ``REPEAT``
    counted orders, or a value an earlier version wrote (rewritten in this form)."""
    if customer is None:
        return counted
    firsts = customer.get("f")
    return firsts is None or "ids" in customer or (counted and len(firsts) < REPEAT)


def _remember_id(
    customers: PartitionState, order: Order, offset: int, stored: Value | None, counted: bool
) -> bool:
    key = order_key(order.customer_id, order.order_id)
    value = claim(customers, key, offset, stored, empty_value)
    if value is None:
        return False
    value.update(o=offset, d=order.event_ms // DAY_MS, c=int(counted))
    value[OFFSET] = offset
    return True


def _count_figures(
    aggregates: PartitionState, order: Order, offset: int, partition: int, status: str
) -> bool:
    changed = False
    for key, cents, units in _counted_keys(order, partition):
        value = claim(aggregates, key, offset, aggregates.get(key), empty_value)
        if value is not None:
            counts = value.setdefault("s", {}).setdefault(status, [0, 0, 0])
            counts[0] += 1
            counts[1] += cents
            counts[2] += units
            value[OFFSET] = offset
            changed = True
    return changed


def _count_summary(
    aggregates: PartitionState, partition: int, offset: int, before: int, cents: int
) -> bool:
    key = customers_key(partition)
    value = claim(aggregates, key, offset, aggregates.get(key), _new_summary)
    if value is None:
        return False
    value["orders"] += 1
    value["cents"] += cents
    value["hist"][bucket_of(cents)] += 1
    if before == 0:
        value["customers"] += 1
    elif before == 1:
        value["repeat"] += 1
    value[OFFSET] = offset
    return True


def claim(
    state: PartitionState, key: str, offset: int, value: Value | None, new: Callable[[], Value]
) -> Value | None:
    """``value`` (what ``state`` holds at ``key``, a new one if None) to change for the
    record at ``offset``, or None if that record was applied to it already: what
    ``PartitionState.update`` does, without a closure per key and record. The caller
    stamps the offset (``value[OFFSET]``) after its change, as ``update`` does."""
    if value is None:
        value = new()
        state.put(key, value)
        return value
    return None if value.get(OFFSET, -1) >= offset else value


def _counted_keys(order: Order, p: int) -> list[tuple[str, int, int]]:
    """The per-status counters one order adds to: (key, cents, units)."""
    ms, cents, units = order.event_ms, order.items_cents, order.units
    daily, hourly, product = _figure_keys(
        ms // DAY_MS, ms // HOUR_MS, order.channel, order.region, p
    )
    suffix = f"|{p}"
    keys = [(daily, cents, units), (hourly, cents, units)]
    items = order.items
    if len(items) == 1:
        item = items[0]
        keys.append((product + item.product_id + suffix, item.amount_cents, item.quantity))
        return keys
    # One key per product: an order listing a product on two lines adds both to it in
    # one update (two updates under one offset would count the second line as applied).
    products: dict[str, list[int]] = {}
    for item in items:
        figures = products.setdefault(item.product_id, [0, 0])
        figures[0] += item.amount_cents
        figures[1] += item.quantity
    keys.extend((product + pid + suffix, amount, qty) for pid, (amount, qty) in products.items())
    return keys


# Orders of a batch share few days, hours, channels and regions: their keys are built
# once, not per order.
@lru_cache(maxsize=16384)
def _figure_keys(day: int, hour: int, channel: str, region: str, p: int) -> tuple[str, str, str]:
    """The daily and hourly keys, and the product keys' prefix (``product|<date>|``)."""
    date = day_label(day)
    return (
        f"daily|{date}|{channel}|{region}|{p}",
        f"hourly|{hour_label(hour)}|{channel}|{p}",
        f"product|{date}|",
    )


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
    return {"f": []}


def _oldest_day(high_mark: int | None, order: Order, rules: Rules) -> int:
    newest = order.event_ms if high_mark is None else max(high_mark, order.event_ms)
    return (newest - rules.retention_ms) // DAY_MS


def prune_customer_ids(value: Value, oldest_day: int) -> None:
    """Forget order ids an earlier version kept in the customer's value once they are
    older than the retention horizon. ``value["od"]`` is the oldest day remembered, so
    the map is only rebuilt when something has actually aged out."""
    ids = value["ids"]
    if ids and value.get("od", -1) < oldest_day:
        value["ids"] = ids = {k: v for k, v in ids.items() if v[1] >= oldest_day}
        value["od"] = min((v[1] for v in ids.values()), default=oldest_day)


def flush_partition(state: PartitionState, partition: int) -> int:
    """Write a batch's keys of ``partition``: its verdicts first (PartitionBatch follows
    them when the batch is read again), the clock last (process_record relies on it),
    the others in between in any order (each carries its own offset guard)."""
    return state.flush(first=verdict_key(partition), last=clock_key(partition))


def _new_summary() -> Value:
    return {"customers": 0, "repeat": 0, "orders": 0, "cents": 0, "hist": [0] * 8}
