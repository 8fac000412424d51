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

Spikes and drops. For each channel, the hourly orders and revenue of closed hours form
a series (hours without orders count as zero). An EWMA tracks its mean and variance
(weight ``ORDERS_ANOMALY_ALPHA`` for the newest hour); after a warm-up of
``ORDERS_ANOMALY_WARMUP_HOURS``, an hour whose z-score ``(x - mean) / sd`` exceeds
``ORDERS_ANOMALY_Z`` in absolute value is a spike (positive) or a drop (negative).
The standard deviation has a floor (10% of the mean; for order counts also Poisson
noise, the square root of the mean), so a steady history does not make every small
wobble an anomaly, and a spike after a flat history still scores.
The EWMA adapts to trends and daily rhythm faster than a long moving average, and
recomputing it from the stored hours makes alerts deterministic.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from streams.orders.analytics import revenue_daily
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
    daily: Mapping[str, Any],
    reported: Mapping[str, Mapping[str, Any]],
    rules: Rules,
    closing: Closing,
    stream_ms: int | None,
    now_ms: int,
    arrived_ms: int | None,
) -> list[dict[str, Any]]:
    """Reports to emit now: a final one for newly closed days, a revision where figures moved.

    ``reported`` maps each date to its newest report.
    """
    dates = sorted({key.split("|")[1] for key in daily})
    due = []
    for date in dates:
        closed_by = is_closed(day_end(date), stream_ms, now_ms, arrived_ms, closing)
        if closed_by is None:
            continue
        last = reported.get(date)
        revision = 0 if last is None else int(last["revision"]) + 1
        report = day_report(date, daily, rules, revision, closed_by)
        if last is None or last["rows"] != report["rows"]:
            due.append(report)
    return due


def newest_reports(reports: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    newest: dict[str, Mapping[str, Any]] = {}
    for report in reports:
        current = newest.get(report["date"])
        if current is None or report["revision"] > current["revision"]:
            newest[report["date"]] = report
    return newest


@dataclass(frozen=True)
class Detector:
    z: float = 3.0
    alpha: float = 0.3
    warmup: int = 6


def hourly_series(
    hourly: Mapping[str, Any], rules: Rules
) -> dict[str, dict[str, dict[str, float]]]:
    """channel -> hour -> {"orders": n, "revenue": usd} (not cancelled; revenue statuses)."""
    series: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
    for key, value in hourly.items():
        _, hour, channel, _p = key.split("|")
        point = series[channel].setdefault(hour, {"orders": 0.0, "revenue": 0.0})
        for status, (orders, cents, _units) in value.get("s", {}).items():
            if status != "cancelled":
                point["orders"] += orders
            if status in rules.revenue_statuses:
                point["revenue"] += cents / 100
    return series


@lru_cache(maxsize=65536)
def hour_start(hour: str) -> int:
    return int(datetime.strptime(hour, "%Y-%m-%dT%H").replace(tzinfo=UTC).timestamp() * 1000)


def noise_floor(mean: float, measure: str) -> float:
    """The least standard deviation assumed: 10% of the mean, and for order counts
    Poisson noise (the square root of the mean). Without it a perfectly steady history
    has no variance, and no spike after it could be scored."""
    floor = 0.1 * abs(mean)
    if measure == "orders":
        floor = max(floor, math.sqrt(abs(mean)))
    return floor


def anomalies(
    series: Mapping[str, Mapping[str, Mapping[str, float]]],
    closed_before_ms: int,
    detector: Detector,
) -> tuple[list[dict[str, Any]], dict[tuple[str, str], float]]:
    """Alerts for every anomalous closed hour, and the newest z-score per channel/measure."""
    alerts: list[dict[str, Any]] = []
    latest: dict[tuple[str, str], float] = {}
    for channel, points in sorted(series.items()):
        if not points:
            continue
        first = hour_start(min(points))
        hours = range(first, closed_before_ms, HOUR_MS)
        for measure in ("orders", "revenue"):
            mean = var = 0.0
            for seen, start in enumerate(hours):
                label = hour_of(start)
                x = points.get(label, {}).get(measure, 0.0)
                if seen == 0:
                    mean = x
                    continue
                sd = max(math.sqrt(var), noise_floor(mean, measure))
                z = (x - mean) / sd if sd > 0 else 0.0
                latest[(channel, measure)] = z
                if seen >= detector.warmup and abs(z) > detector.z:
                    kind = f"{measure}_{'spike' if z > 0 else 'drop'}"
                    alerts.append(
                        {
                            "id": f"{kind}:{channel}:{label}",
                            "kind": kind,
                            "channel": channel,
                            "hour": label,
                            "value": round(x, 2),
                            "expected": round(mean, 2),
                            "zscore": round(z, 2),
                        }
                    )
                diff = x - mean
                mean += detector.alpha * diff
                var = (1 - detector.alpha) * (var + detector.alpha * diff * diff)
    return alerts, latest
