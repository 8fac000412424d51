"""Daily reports and hourly spikes and drops, computed incrementally (streams.orders.reports)."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from streams.orders.analytics import AggregateIndex
from streams.orders.logic import DAY_MS, HOUR_MS, Rules, day_of, hour_of
from streams.orders.reports import (
    Closing,
    Detector,
    HeldReports,
    Rescoring,
    anomalies,
    day_end,
    day_report,
    due_reports,
    hour_start,
    is_closed,
    newest_report,
)

RULES = Rules()
CLOSING = Closing(grace_ms=300_000, idle_close_ms=900_000)
AUG = int(datetime(2025, 8, 1, tzinfo=UTC).timestamp() * 1000)
CHANNELS = ("web", "mobile", "api")


def figures(**by_status: tuple[int, int, int]) -> dict[str, Any]:
    """A table value: per status, [orders, cents, units]."""
    return {"s": {status: list(counts) for status, counts in by_status.items()}, "_o": 1}


def full_recomputation(
    daily: Mapping[str, Any],
    reported: Mapping[str, Mapping[str, Any]],
    stream_ms: int | None,
    now_ms: int,
    arrived_ms: int | None,
) -> list[dict[str, Any]]:
    """The reporter's former rule: every date ever seen, every tick, against all keys."""
    newest: dict[str, Mapping[str, Any]] = {}
    for report in reported.values():
        if report["date"] not in newest or report["revision"] > newest[report["date"]]["revision"]:
            newest[report["date"]] = report
    due = []
    for date in sorted({key.split("|")[1] for key in daily}):
        closed_by = is_closed(day_end(date), stream_ms, now_ms, arrived_ms, CLOSING)
        if closed_by is None:
            continue
        last = newest.get(date)
        revision = 0 if last is None else int(last["revision"]) + 1
        report = day_report(date, daily, RULES, revision, closed_by)
        changed = (report["rows"], report["orders_all_statuses"])
        if last is None or (last["rows"], last["orders_all_statuses"]) != changed:
            due.append(report)
    return due


def test_incremental_reports_equal_a_full_recomputation() -> None:
    """Over random updates (late revisions of old days, unchanged rewrites, deletions) and
    a stream time that jumps, stalls, goes back or goes quiet, each tick issues exactly
    the reports a look at every day would."""
    rng = random.Random(2025)
    index, daily = AggregateIndex(), dict[str, Any]()
    pending: set[str] = set()
    incremental: dict[str, dict[str, Any]] = {}
    recomputed: dict[str, dict[str, Any]] = {}
    stream = now = AUG
    for _ in range(300):
        head = (stream - AUG) // DAY_MS
        for _ in range(rng.choice([0, 0, 1, 3, 8])):
            back = rng.choice([0, 0, 0, 1, 1, 2, rng.randint(0, max(head, 0))])
            date = day_of(AUG + (head - back) * DAY_MS)
            region, p = rng.choice(["CA", "TX"]), rng.randint(0, 2)
            key = f"daily|{date}|{rng.choice(CHANNELS)}|{region}|{p}"
            value = figures(confirmed=(rng.randint(1, 3), 100, 1))
            if rng.random() < 0.3:  # a status outside revenue: changes the day's orders only
                value["s"]["pending"] = [rng.randint(1, 3), 50, 1]
            if rng.random() < 0.04:
                daily.pop(key, None)
                index.on_record("changelog", key, None)
            else:
                daily[key] = value
                index.on_record("changelog", key, value)
        stream += rng.choice([0, 0, HOUR_MS, 5 * HOUR_MS, 20 * HOUR_MS, -6 * HOUR_MS])
        now = max(now, stream) + rng.choice([0, 60_000, 3 * HOUR_MS])
        arrived = now - rng.choice([0, 60_000, 20 * 60_000])
        stream_ms = None if rng.random() < 0.05 else stream

        pending |= index.take_touched_dates()
        reports, settled = due_reports(
            pending,
            index.daily_by_date,
            lambda date: newest_report(date, incremental),
            RULES,
            CLOSING,
            stream_ms,
            now,
            arrived,
        )
        pending -= settled
        assert reports == full_recomputation(daily, recomputed, stream_ms, now, arrived)
        incremental.update((r["id"], r) for r in reports)
        recomputed.update((r["id"], r) for r in reports)
    kinds = [r["kind"] for r in incremental.values()]
    assert kinds.count("final") > 30 and kinds.count("revision") > 100
    assert {r["closed_by"] for r in incremental.values()} == {"event_time", "idle"}


@dataclass
class Ticks:
    """The reporter's ticks over ``index`` at a fixed stream time: the dates touched
    since the last tick join the pending ones, and the reports due are sent."""

    index: AggregateIndex
    stream: int
    pending: set[str] = field(default_factory=set)
    sent: dict[str, dict[str, Any]] = field(default_factory=dict)

    def tick(self) -> tuple[list[dict[str, Any]], set[str]]:
        self.pending |= self.index.take_touched_dates()
        reports, settled = due_reports(
            self.pending,
            self.index.daily_by_date,
            lambda d: newest_report(d, self.sent),
            RULES,
            CLOSING,
            self.stream,
            self.stream,
            self.stream,
        )
        self.pending -= settled
        self.sent.update((r["id"], r) for r in reports)
        return reports, settled


def test_a_tick_looks_only_at_open_and_changed_days() -> None:
    """Once a month of days is reported, a late order for one old day makes that day
    the only closed one looked at, and it gets a revision."""
    index = AggregateIndex()
    for day in range(31):
        index.on_record(
            "t", f"daily|{day_of(AUG + day * DAY_MS)}|web|CA|0", figures(confirmed=(1, 1, 1))
        )
    reporter = Ticks(index, AUG + 30 * DAY_MS + 12 * HOUR_MS)

    reports, settled = reporter.tick()
    assert len(reports) == len(settled) == 30 and reporter.pending == {"2025-08-31"}
    index.on_record("t", "daily|2025-08-03|web|CA|1", figures(confirmed=(1, 1, 1)))
    reports, settled = reporter.tick()
    assert settled == {"2025-08-03"}
    assert [(r["id"], r["kind"], r["orders"]) for r in reports] == [
        ("2025-08-03/r1", "revision", 2)
    ]


def test_a_late_order_of_a_status_outside_revenue_revises_the_day() -> None:
    """A closed day's report counts orders of every status: a late pending or cancelled
    order leaves its revenue rows alone but changes that count, so it is revised (an
    adversarial probe saw r0 keep 3 orders of all statuses while the view showed 5)."""
    index = AggregateIndex()
    key = "daily|2025-08-01|web|CA|0"
    index.on_record("t", key, figures(confirmed=(3, 74418, 3)))
    reporter = Ticks(index, AUG + 3 * DAY_MS)

    first, _settled = reporter.tick()
    assert [(r["id"], r["orders_all_statuses"]) for r in first] == [("2025-08-01/r0", 3)]
    index.on_record("t", key, figures(confirmed=(3, 74418, 3), pending=(1, 999, 1)))
    index.on_record(
        "t", key, figures(confirmed=(3, 74418, 3), pending=(1, 999, 1), cancelled=(1, 5, 1))
    )
    revised, _settled = reporter.tick()
    assert [(r["id"], r["revenue"], r["orders"], r["orders_all_statuses"]) for r in revised] == [
        ("2025-08-01/r1", "744.18", 3, 5)
    ]
    reporter.pending.add("2025-08-01")  # looked at again, unchanged: no third report
    assert reporter.tick() == ([], {"2025-08-01"})


def newest_in(
    store: Mapping[str, Mapping[str, Any]],
) -> Callable[[str], Mapping[str, Any] | None]:
    return lambda date: newest_report(date, store)


def report(date: str, revision: int) -> dict[str, Any]:
    return {"id": f"{date}/r{revision}", "date": date, "revision": revision}


def test_held_reports_keep_whole_dates_within_the_days_before_the_newest() -> None:
    held = HeldReports(days=2)
    for date, revision in [
        ("2025-08-01", 0),
        ("2025-08-01", 1),
        ("2025-08-02", 0),
        ("2025-08-03", 0),
    ]:
        held.on_record(f"{date}/r{revision}", report(date, revision))
    assert len(held.by_id) == 4
    held.on_record("2025-08-04/r0", report("2025-08-04", 0))  # 08-01 is 3 days back
    assert sorted(held.by_id) == ["2025-08-02/r0", "2025-08-03/r0", "2025-08-04/r0"]
    held.on_record("2025-08-01/r2", report("2025-08-01", 2))  # re-read, too old: not held
    held.on_record("2025-08-02/r1", report("2025-08-02", 1))
    held.on_record("2025-08-03/r0", None)  # a tombstone
    held.on_record("not-a-report", report("x", 0))
    assert sorted(held.by_id) == ["2025-08-02/r0", "2025-08-02/r1", "2025-08-04/r0"]


def test_held_reports_leave_the_reporter_every_report_it_needs() -> None:
    """Days of figures kept 10 days behind the highest partition, as the sweep deletes
    them, late orders within that horizon, and the reports held only for the 10 days
    before the newest report: each tick issues exactly the reports that holding every
    report ever sent would, and no more than 11 dates are held."""
    rng = random.Random(14)
    rules = Rules(history_ms=10 * DAY_MS)
    index = AggregateIndex()
    held, every = HeldReports(days=10), dict[str, dict[str, Any]]()
    pending: set[str] = set()
    mark = AUG
    for _ in range(400):
        mark += rng.choice([0, HOUR_MS, 7 * HOUR_MS, DAY_MS])
        forgotten = rules.forgotten_before(mark)
        assert forgotten is not None
        for _ in range(rng.choice([0, 1, 3])):
            back = rng.choice([0, 0, 1, rng.randint(0, 10)]) * DAY_MS
            date = day_of(max(AUG, mark - back))
            if date >= forgotten:  # older orders are dead-lettered as late
                key = f"daily|{date}|web|CA|{rng.randint(0, 1)}"
                index.on_record("t", key, figures(confirmed=(rng.randint(1, 3), 100, 1)))
        for key in [k for k in index.by_kind["daily"] if k.split("|")[1] < forgotten]:
            index.on_record("t", key, None)  # the weekly sweep, at once here
        pending |= index.take_touched_dates()
        answers = [
            due_reports(
                pending, index.daily_by_date, newest_in(store),
                RULES, CLOSING, mark, mark, mark, forgotten,
            )
            for store in (held.by_id, every)
        ]  # fmt: skip
        assert answers[0] == answers[1]
        reports, settled = answers[0]
        pending -= settled
        for r in reports:
            held.on_record(r["id"], r)
            every[r["id"]] = r
        assert len({r["date"] for r in held.by_id.values()}) <= 11
    assert len({r["date"] for r in every.values()}) > 50
    assert sum(r["kind"] == "revision" for r in every.values()) > 20


def hourly_index(counts: Mapping[str, Mapping[int, int]], partitions: int = 2) -> AggregateIndex:
    """An index of hourly figures: per channel, orders per hour start (each at $12.34),
    split over partitions."""
    index = AggregateIndex()
    for channel, hours in counts.items():
        for start, orders in hours.items():
            for p in range(partitions):
                share = orders // partitions + (p < orders % partitions)
                if share:
                    value = figures(confirmed=(share, 1234 * share, share))
                    index.on_record("t", f"hourly|{hour_of(start)}|{channel}|{p}", value)
    return index


def random_hours(rng: random.Random, start: int, hours: int) -> dict[int, int]:
    """Orders per hour with a daily rhythm, noise, and rare spikes and outages."""
    level = rng.choice([5, 40, 300])
    series = {}
    for h in range(hours):
        rhythm = 1 + 0.5 * ((h % 24) in range(9, 18))
        orders = max(0, round(rng.gauss(level * rhythm, (level * rhythm) ** 0.5)))
        if rng.random() < 0.02:
            orders = rng.choice([0, orders * 6])
        series[start + h * HOUR_MS] = orders
    return series


@pytest.mark.parametrize("alert_hours", [24, 168, 45 * 24])
def test_recent_alerts_equal_the_full_history_computation(alert_hours: int) -> None:
    """On 2,000 hours of random series, the bounded window issues exactly the alerts the
    whole history gives for the hours in its alert span, and the same newest z-scores."""
    rng = random.Random(alert_hours)
    index = hourly_index({channel: random_hours(rng, AUG, 2000) for channel in CHANNELS})
    closed_before = AUG + 2000 * HOUR_MS
    everything = anomalies(index, RULES, closed_before, Detector(alert_hours=10**6))
    windowed = anomalies(index, RULES, closed_before, Detector(alert_hours=alert_hours))
    recent = [
        a
        for a in everything.alerts
        if hour_start(a["hour"]) >= closed_before - alert_hours * HOUR_MS
    ]
    assert windowed.alerts == recent
    assert len(recent) > 0 and len(everything.alerts) > len(recent)
    assert windowed.latest == pytest.approx(everything.latest, rel=1e-9)
    assert windowed.hours_walked == len(CHANNELS) * Detector(alert_hours=alert_hours).window_hours


def test_one_order_from_1990_keeps_a_tick_bounded() -> None:
    """An order stamped in 1990 among 60 days of 2025 data makes a tick walk no more than
    the window per channel (not 35 years of hours), and changes no alert."""
    rng = random.Random(1990)
    start = AUG - 60 * DAY_MS
    counts = {channel: random_hours(rng, start, 60 * 24) for channel in CHANNELS}
    closed_before = start + 60 * DAY_MS
    detector = Detector()
    without = anomalies(hourly_index(counts), RULES, closed_before, detector)
    ancient = int(datetime(1990, 1, 1, tzinfo=UTC).timestamp() * 1000)
    counts["web"] = {ancient: 1, **counts["web"]}
    counts["fax"] = {ancient: 1}
    scores = anomalies(hourly_index(counts), RULES, closed_before, detector)
    assert scores.hours_walked == 4 * detector.window_hours < 5_000
    assert scores.alerts == without.alerts and without.alerts


def test_the_first_warmup_hours_of_a_channel_never_alert() -> None:
    """A tenfold hour three hours into a channel's data raises nothing; the same hour
    twenty hours in is an orders and a revenue spike."""
    hours = {AUG + h * HOUR_MS: 10 for h in range(30)}
    hours[AUG + 3 * HOUR_MS] = hours[AUG + 20 * HOUR_MS] = 100
    scores = anomalies(hourly_index({"web": hours}), RULES, AUG + 30 * HOUR_MS, Detector())
    assert {(a["kind"], a["hour"]) for a in scores.alerts} == {
        ("orders_spike", "2025-08-01T20"),
        ("revenue_spike", "2025-08-01T20"),
    }
    assert scores.alerts[0]["id"] == "orders_spike:web:2025-08-01T20"


def test_a_late_revision_is_rescored_inside_the_window_only() -> None:
    """Late orders that make an hour 100 hours back a spike raise its alert; the same
    for an hour older than the window raise none (the full history would)."""
    hours = {AUG + h * HOUR_MS: 10 for h in range(1300)}
    closed_before = AUG + 1300 * HOUR_MS
    detector = Detector()
    assert anomalies(hourly_index({"web": hours}), RULES, closed_before, detector).alerts == []
    recent, old = closed_before - 100 * HOUR_MS, closed_before - 1250 * HOUR_MS
    hours[recent] = hours[old] = 200
    index = hourly_index({"web": hours})
    alerted = {a["hour"] for a in anomalies(index, RULES, closed_before, detector).alerts}
    assert alerted == {hour_of(recent)}
    everything = anomalies(index, RULES, closed_before, Detector(alert_hours=10**6))
    assert {a["hour"] for a in everything.alerts} == {hour_of(recent), hour_of(old)}


def test_ticks_that_rescore_only_moved_channels_send_every_alert() -> None:
    """Over a live stream with late orders for closed hours, ticks that score only the
    channels whose scores can have moved send the alerts and show the z-scores of ticks
    that score every channel, and most of them walk no hour at all."""
    rng = random.Random(8)
    index, rescoring, detector = AggregateIndex(), Rescoring(), Detector(alert_hours=24)
    sent: set[str] = set()
    expected: set[str] = set()
    gauges: dict[tuple[str, str], float] = {}
    walked = []
    open_hour = AUG
    for _ in range(300):
        for _ in range(rng.randint(0, 3)):
            back = 0 if rng.random() < 0.9 else rng.randint(1, 60)
            key = f"hourly|{hour_of(open_hour - back * HOUR_MS)}|{rng.choice(CHANNELS)}|0"
            before = index.by_kind["hourly"].get(key, figures(confirmed=(0, 0, 0)))
            n = before["s"]["confirmed"][0] + rng.choice([1, 1, 1, 40])
            index.on_record("t", key, figures(confirmed=(n, 1234 * n, n)))
        open_hour += HOUR_MS * (rng.random() < 0.25)
        channels = rescoring.channels(
            index.take_touched_hours(), open_hour, index.hourly_by_channel
        )
        scores = anomalies(index, RULES, open_hour, detector, channels)
        rescoring.done(open_hour)
        sent |= {a["id"] for a in scores.alerts}
        gauges.update(scores.latest)
        walked.append(scores.hours_walked)

        every = anomalies(index, RULES, open_hour, detector)
        expected |= {a["id"] for a in every.alerts}
        assert sent == expected
        assert gauges == every.latest
    assert len(sent) > 5 and walked.count(0) > len(walked) / 2
