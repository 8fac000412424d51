"""The memory benchmark's input (the same orders every day) and its growth figures."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest

from bench.memory import EVERY_DAYS, START, growth, growths, marks, orders


def test_every_day_holds_the_same_number_of_orders_in_time_order() -> None:
    """Growth per day of event time compares like with like only if every day has
    ``per_day`` orders, and the worker reads them in event-time order."""
    stamps = [orjson.loads(value)["timestamp"] for _key, value in orders(4_000, days=3)]
    assert stamps == sorted(stamps)
    assert stamps[0] == START.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert Counter(s[:10] for s in stamps) == {
        "2025-08-01": 4_000,
        "2025-08-02": 4_000,
        "2025-08-03": 4_000,
    }


def test_marks_are_every_ten_days_and_the_last() -> None:
    assert marks(90) == [10, 20, 30, 40, 50, 60, 70, 80, 90]
    assert marks(25) == [10, 20, 25]


def test_growth_is_per_day_between_two_marks() -> None:
    rows = [
        {"day": 10, "rss_mb": 250.0, "view_records": 11_000},
        {"day": 70, "rss_mb": 370.0, "view_records": 70_000},
        {"day": 90, "rss_mb": 410.0, "view_records": 70_000},
    ]
    assert growth(rows, "rss_mb", 10, 90) == pytest.approx(2.0)
    assert growth(rows, "view_records", 70, 90) == 0.0
    assert growth(rows, "rss_mb", 20, 90) is None  # no sample at day 20
    assert growth(rows, "rss_mb", 90, 90) is None


def test_growths_cover_the_whole_span_its_second_half_and_its_last_twenty_days() -> None:
    rows = [
        {
            "day": d,
            "rss_mb": float(d),
            "rocksdb_memory_mb": d / 4,
            "rss_less_rocksdb_mb": d * 3 / 4,
            "view_records": 0,
            "reports": d,
            "rocksdb_wal_mb": 0.0,
        }
        for d in marks(180)
    ]
    spans = [
        (g["from_day"], g["to_day"], g["rss_mb"], g["rss_less_rocksdb_mb"])
        for g in growths(rows, 180)
    ]
    assert spans == [(EVERY_DAYS, 180, 1.0, 0.75), (90, 180, 1.0, 0.75), (160, 180, 1.0, 0.75)]
    assert [(g["from_day"], g["to_day"]) for g in growths(rows[:10], 90)] == [
        (EVERY_DAYS, 90),
        (40, 90),
        (70, 90),
    ]
