"""What a partition of the orders table forgets, once a week of event time (pure).

Order ids past the retention horizon (such an order can only come back late, and is
then rejected before deduplication) and figures past the history kept (they live on in
the daily reports and the Parquet copy). ``batch.forget_expired`` writes the sweep
after a batch's clock, so a record is never judged both before and after one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from streams.common.exactly_once import PartitionState, Value
from streams.orders.aggregates import sweep_key, watermark
from streams.orders.logic import DAY_MS, Rules

WEEK_MS = 7 * DAY_MS


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


def sweep_due(aggregates: PartitionState, partition: int) -> int | None:
    """The event-time week to sweep expired keys for, if the partition entered a new one
    since its last sweep (``swept`` records it once every deletion is written)."""
    high = watermark(aggregates, partition)
    if high is None:
        return None
    week = high // WEEK_MS
    done = aggregates.peek(sweep_key(partition))
    if done is not None and int(done["week"]) >= week:
        return None
    return week


def swept(week: int) -> Value:
    """The value of ``sweep|<p>`` once the sweep of ``week`` is written."""
    return {"week": week}
