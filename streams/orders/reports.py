"""When a day is final, what its report says, and spikes and drops per channel (pure).

Closing a day. Stream time is the smallest event-time high mark over the partitions;
one that received nothing for a minute is idle and left out (it would hold every day
open; Flink calls this idleness). Day D closes when

- stream time passes the end of D plus the grace period (``ORDERS_GRACE_SECONDS``), or
- the wall clock passes the end of D plus ``ORDERS_IDLE_CLOSE_SECONDS`` (15 min) and
  no partition has received a record for that period minus the grace period; so a
  quiet stream still closes yesterday within 15 minutes of midnight.

A closed day gets a ``final`` report (revision 0). Orders that arrive later still
count (up to the retention horizon); if they change the figures, the day gets a new
report with the next revision number. Report ids are ``<date>/r<revision>``.

The reporter looks again only at the days that may need a report: those not closed
when it last looked, and those whose figures changed since (the index tells it). A
day closed and unchanged since its last look cannot need one: its report would be
the one already issued. So a tick costs the changed and still open days' keys, not
every day of the history, and issues exactly the reports a look at every day would.

Spikes and drops. For each channel, the hourly orders and revenue of closed hours form
a series (hours without orders count as zero). An EWMA tracks its mean and variance
(weight ``ORDERS_ANOMALY_ALPHA`` for the newest hour); after a warm-up of
``ORDERS_ANOMALY_WARMUP_HOURS``, an hour whose z-score ``(x - mean) / sd`` exceeds
``ORDERS_ANOMALY_Z`` in absolute value is a spike (positive) or a drop (negative).
The standard deviation has a floor (10% of the mean; for order counts also Poisson
noise, the square root of the mean), so a steady history does not make every small
wobble an anomaly, and a spike after a flat history still scores.
The EWMA adapts to trends and daily rhythm faster than a long moving average, and
recomputing it from the stored hours makes alerts deterministic. The arithmetic is the
shared detector's (streams/common/detector.py).

A bounded window of hours. Each tick scores a window ending at the last closed hour,
not every hour from a channel's first: one order stamped decades back would otherwise
make every tick walk hundreds of thousands of empty hours. The EWMA forgets
geometrically (an hour k hours back weighs ``(1 - alpha) ** k``), so started
``ewma_memory(alpha)`` hours earlier (78 for alpha 0.3: the start weighs under 1e-12;
never fewer than the warm-up) it scores every later hour as the whole history would.
Alerts come from the ``alert_hours`` after that run-in, which the reporter sets to the
retention horizon (``ORDERS_RETENTION_DAYS``, 45 days), behind which orders are
dead-lettered as late. So nothing changes for a user in those hours: a late order
re-scores its hour as before, and a replay of up to 45 days (the sample is 31) is
alerted whole even if stream time passes all of it between two ticks. What changes:
an hour older than the window is no longer scored, so a revision of it (possible only
through a partition's very first orders, or one far behind the others) raises no
alert. Warm-up counts from the channel's first hour in the window; as the run-in is at
least the warm-up, a truncated window's alert span is past it either way, and the
first warm-up hours of a channel's data never alert. A tick walks at most
``window_hours`` hours per channel, and only for the channels whose scores can have
moved (``Rescoring``): all of them when an hour closes, else those with a revised
closed hour; so the window is walked about once an hour, not every tick.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from streams.common.detector import (
    EMPTY,
    Floor,
    direction,
    ewma_memory,
    ewma_update,
    ewma_zscore,
    is_anomalous,
)
from streams.orders.analytics import AggregateIndex, revenue_daily
from streams.orders.logic import HOUR_MS, Rules, hour_of, money

ACTIVE_PARTITION_MS = 60_000


@dataclass(frozen=True)
class Closing:
    """When days and hours close (from OrdersSettings)."""

    grace_ms: int
    idle_close_ms: int


def stream_time(
    clocks: Mapping[int, Mapping[str, Any]], partitions: int, now_ms: int, since_ms: int
) -> int | None:
    """The event time every live partition has reached (None while it is unknown).

    A partition with no clock yet may still hold records nobody has read: stream time
    waits for it, until the reporter has run for a minute (an empty partition).
    A partition whose clock has not moved for a minute is idle and left out.
    """
    unseen = partitions - len(clocks)
    if unseen > 0 and now_ms - since_ms < ACTIVE_PARTITION_MS:
        return None
    marks = [
        (int(c["max_ms"]), int(c["wall_ms"]))
        for c in clocks.values()
        if c.get("max_ms") is not None
    ]
    if not marks:
        return None
    active = [m for m, wall in marks if now_ms - wall < ACTIVE_PARTITION_MS]
    return min(active) if active else max(m for m, _ in marks)


def last_arrival(clocks: Mapping[int, Mapping[str, Any]]) -> int | None:
    walls = [int(c["wall_ms"]) for c in clocks.values() if c.get("wall_ms") is not None]
    return max(walls) if walls else None


def is_closed(
    end_ms: int, stream_ms: int | None, now_ms: int, arrived_ms: int | None, closing: Closing
) -> str | None:
    """How the period ending at ``end_ms`` closed: "event_time", "idle" or None (open)."""
    if stream_ms is not None and stream_ms >= end_ms + closing.grace_ms:
        return "event_time"
    quiet = closing.idle_close_ms - closing.grace_ms
    if now_ms >= end_ms + closing.idle_close_ms and (
        arrived_ms is None or now_ms - arrived_ms >= quiet
    ):
        return "idle"
    return None


@lru_cache(maxsize=4096)
def day_end(date: str) -> int:
    start = datetime.strptime(date, "%Y-%m-%d").replace(tzinfo=UTC)
    return int((start + timedelta(days=1)).timestamp() * 1000)


def day_report(
    date: str, daily: Mapping[str, Any], rules: Rules, revision: int, closed_by: str
) -> dict[str, Any]:
    """The report of ``date`` from its daily keys (other dates' keys are left out)."""
    rows = revenue_daily(daily, rules, date_from=date, date_to=date)
    cents = sum(int(row["revenue"].replace(".", "")) for row in rows)
    return {
        "id": f"{date}/r{revision}",
        "date": date,
        "revision": revision,
        "kind": "final" if revision == 0 else "revision",
        "closed_by": closed_by,
        "revenue": money(cents),
        "orders": sum(row["orders"] for row in rows),
        "orders_all_statuses": sum(row["orders_all_statuses"] for row in rows),
        "rows": [{k: row[k] for k in ("channel", "region", "revenue", "orders")} for row in rows],
    }


def due_reports(
    pending: Iterable[str],
    daily_by_date: Mapping[str, Mapping[str, Any]],
    newest: Callable[[str], Mapping[str, Any] | None],
    rules: Rules,
    closing: Closing,
    stream_ms: int | None,
    now_ms: int,
    arrived_ms: int | None,
    forgotten_before: str | None = None,
) -> tuple[list[dict[str, Any]], set[str]]:
    """Reports to emit now among the ``pending`` dates, and the dates settled.

    ``pending`` are the dates that may need a report (open when last looked at, or
    changed since); ``newest`` gives a date's newest report. A closed date is settled:
    it needs no new look until its figures change. Once the reports are emitted, the
    caller drops the settled dates from its pending set. Dates before
    ``forgotten_before`` are past the history the tables keep: their figures are being
    deleted (partition by partition), which is no revision, so they are settled as
    they are.
    """
    due, settled = [], set()
    for date in sorted(pending):
        if forgotten_before is not None and date < forgotten_before:
            settled.add(date)
            continue
        closed_by = is_closed(day_end(date), stream_ms, now_ms, arrived_ms, closing)
        if closed_by is None:
            continue
        settled.add(date)
        keys = daily_by_date.get(date)
        if not keys:  # every key deleted: no figures, nothing to report
            continue
        last = newest(date)
        revision = 0 if last is None else int(last["revision"]) + 1
        report = day_report(date, keys, rules, revision, closed_by)
        if last is None or _figures(last) != _figures(report):
            due.append(report)
    return due, settled


def _figures(report: Mapping[str, Any]) -> tuple[Any, Any]:
    """What a revision must change: the rows (revenue statuses) and the orders of any
    status (a late pending or cancelled order changes only those)."""
    return report["rows"], report.get("orders_all_statuses")


def newest_report(date: str, *stores: Mapping[str, Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The newest report of ``date`` found in ``stores`` (by id). Revisions are numbered
    from 0 without gaps, so this costs the date's revisions, not every report."""
    newest = None
    for revision in itertools.count():
        report_id = f"{date}/r{revision}"
        found = next((store[report_id] for store in stores if report_id in store), None)
        if found is None:
            break
        newest = found
    return newest


def report_day(report_id: str) -> datetime | None:
    """The day of a report id ``<date>/r<revision>`` (a tombstone has only its id);
    None for an id of another shape, which no reporter sends."""
    try:
        return datetime.strptime(report_id.partition("/")[0], "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return None


@dataclass
class HeldReports:
    """The daily reports a worker holds, by id: every revision of each date within
    ``days`` days before the newest report's date; older ones stay in the compacted
    topic (and the Parquet copy has their orders). A bound by date, not by count, so a
    date is held with all its revisions or not at all.

    With ``days`` = ``ORDERS_HISTORY_DAYS``, the reporter finds every date it may still
    report on: a date gets a report only once some partition has orders of it, so the
    newest report's date is at most the day of the highest partition's mark, and the
    reporter settles the dates more than ``days`` behind that mark unreported
    (due_reports' ``forgotten_before``); those are all it lets go of. Reports arrive in
    the order sent, from one partition, so every worker holds the same dates.
    """

    days: int
    by_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: ISO date -> its reports' ids
    ids_by_date: dict[str, set[str]] = field(default_factory=dict)
    #: The first date held (ISO), once a report was seen.
    first_date: str = ""

    def on_record(self, report_id: str, report: dict[str, Any] | None) -> None:
        day = report_day(report_id)
        if day is None:
            return
        date = day.strftime("%Y-%m-%d")
        if report is None:
            self.by_id.pop(report_id, None)
            self.ids_by_date.get(date, set()).discard(report_id)
            return
        first = (day - timedelta(days=self.days)).strftime("%Y-%m-%d")
        if first > self.first_date:
            self.first_date = first
            self._let_go_before(first)
        if date < self.first_date:
            return
        self.by_id[report_id] = report
        self.ids_by_date.setdefault(date, set()).add(report_id)

    def _let_go_before(self, first: str) -> None:
        # About one date a day of event time: walking the few dates held is cheap.
        for date in [d for d in self.ids_by_date if d < first]:
            for report_id in self.ids_by_date.pop(date):
                self.by_id.pop(report_id, None)


@dataclass(frozen=True)
class Detector:
    z: float = 3.0
    alpha: float = 0.3
    warmup: int = 6
    #: Hours back from the last closed hour whose alerts can still be issued.
    alert_hours: int = 45 * 24

    @property
    def run_in_hours(self) -> int:
        """Hours of EWMA before the alert span: past them the start is forgotten."""
        return max(ewma_memory(self.alpha), self.warmup)

    @property
    def window_hours(self) -> int:
        return self.run_in_hours + self.alert_hours


#: The least standard deviation assumed per measure: 10% of the mean, and for order
#: counts Poisson noise (the square root of the mean). Without it a perfectly steady
#: history has no variance, and no spike after it could be scored.
FLOORS = {"orders": Floor(relative=0.1, poisson=True), "revenue": Floor(relative=0.1)}
MEASURES = tuple(FLOORS)


@dataclass
class Scores:
    """A tick's anomalies: alerts in the alert span, the newest z-score per channel and
    measure, and how many channel-hours were walked (bounded by the window)."""

    alerts: list[dict[str, Any]] = field(default_factory=list)
    latest: dict[tuple[str, str], float] = field(default_factory=dict)
    hours_walked: int = 0


@lru_cache(maxsize=65536)
def hour_start(hour: str) -> int:
    return int(datetime.strptime(hour, "%Y-%m-%dT%H").replace(tzinfo=UTC).timestamp() * 1000)


def hour_point(values: Iterable[Mapping[str, Any]], rules: Rules) -> tuple[float, float]:
    """Orders (not cancelled) and revenue in dollars (revenue statuses) of one hour."""
    orders = revenue = 0.0
    for value in values:
        for status, (count, cents, _units) in value.get("s", {}).items():
            if status != "cancelled":
                orders += count
            if status in rules.revenue_statuses:
                revenue += cents / 100
    return orders, revenue


def anomalies(
    index: AggregateIndex,
    rules: Rules,
    closed_before_ms: int,
    detector: Detector,
    channels: Iterable[str] | None = None,
) -> Scores:
    """Alerts for anomalous closed hours of the alert span, and the newest z-scores, of
    ``channels`` (default: every channel)."""
    scores = Scores()
    window_start = closed_before_ms - detector.window_hours * HOUR_MS
    alert_from = closed_before_ms - detector.alert_hours * HOUR_MS
    for channel in sorted(index.hourly_by_channel if channels is None else channels):
        hours, first = index.hourly_by_channel.get(channel), index.first_hour(channel)
        if hours is None or first is None:
            continue
        walk = range(max(hour_start(first), window_start), closed_before_ms, HOUR_MS)
        labels = [hour_of(start) for start in walk]
        points = [hour_point(hours.get(label, {}).values(), rules) for label in labels]
        scores.hours_walked += len(labels)
        for m, measure in enumerate(MEASURES):
            state = EMPTY
            for seen, (start, label, point) in enumerate(zip(walk, labels, points, strict=True)):
                x = point[m]
                if seen > 0:
                    z = ewma_zscore(state, x, FLOORS[measure])
                    scores.latest[(channel, measure)] = z
                    if (
                        seen >= detector.warmup
                        and start >= alert_from
                        and is_anomalous(z, detector.z)
                    ):
                        scores.alerts.append(
                            _alert(measure, direction(z), channel, label, x, state[1], z)
                        )
                state = ewma_update(state, x, detector.alpha)
    return scores


@dataclass
class Rescoring:
    """Which channels a tick must score again. A channel's scores depend only on its
    closed hours in the window: they stay as they are until an hour closes (the window
    moves: every channel) or a closed hour of that channel is revised. So most ticks
    score nothing, and the window is walked about once an hour."""

    closed_before_ms: int | None = None
    #: channel -> earliest hour touched since the last scoring
    touched: dict[str, str] = field(default_factory=dict)

    def channels(
        self, touched: Mapping[str, str], closed_before_ms: int, known: Iterable[str]
    ) -> list[str]:
        for channel, hour in touched.items():
            if channel not in self.touched or hour < self.touched[channel]:
                self.touched[channel] = hour
        if closed_before_ms != self.closed_before_ms:
            return sorted(known)
        closed = [c for c, hour in self.touched.items() if hour_start(hour) < closed_before_ms]
        return sorted(set(closed) & set(known))

    def done(self, closed_before_ms: int) -> None:
        """The channels returned were scored and their alerts sent."""
        self.closed_before_ms = closed_before_ms
        self.touched.clear()


def _alert(
    measure: str, way: str, channel: str, hour: str, x: float, mean: float, z: float
) -> dict[str, Any]:
    kind = f"{measure}_{way}"
    return {
        "id": f"{kind}:{channel}:{hour}",
        "kind": kind,
        "channel": channel,
        "hour": hour,
        "value": round(x, 2),
        "expected": round(mean, 2),
        "zscore": round(z, 2),
    }
