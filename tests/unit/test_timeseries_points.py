"""Points as requests give them: every accepted and refused form of a time and a value."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from streams.timeseries.points import (
    EARLIEST_MS,
    LATEST_MS,
    PointError,
    Points,
    as_rows,
    iso,
    parse_points,
    parse_time,
)


@pytest.mark.parametrize(
    ("raw", "ms"),
    [
        ("2026-12-03T10:00:00Z", 1_796_292_000_000),
        ("2026-12-03T11:00:00+01:00", 1_796_292_000_000),
        ("2026-12-03T10:00:00.2504Z", 1_796_292_000_250),
        ("2026-12-03T10:00:00.2506Z", 1_796_292_000_251),
        (1_796_292_000, 1_796_292_000_000),
        (1_796_292_000.25, 1_796_292_000_250),
        (-1, -1000),
        ("1900-01-01T00:00:00Z", EARLIEST_MS),
        ("9999-12-31T23:59:59.999Z", LATEST_MS),
    ],
)
def test_times_in_iso_8601_with_an_offset_or_unix_seconds(raw: Any, ms: int) -> None:
    assert parse_time(raw) == ms


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("2026-12-03T10:00:00", "offset is required"),
        ("yesterday", "ISO 8601"),
        ("", "ISO 8601"),
        (True, "not a boolean"),
        (None, "ISO 8601"),
        ([1], "ISO 8601"),
        (float("nan"), "finite"),
        (float("inf"), "finite"),
        (10**20, "outside years"),
        # Finite seconds whose milliseconds are not (found by the fuzzer: an OverflowError).
        (1e308, "finite"),
        (-1e308, "finite"),
        ("1899-12-31T23:59:59Z", "outside years"),
        ("9999-12-31T23:59:59-01:00", "outside years"),
        ("0001-01-01T00:00:00+01:00", "outside years"),
    ],
)
def test_times_refused_say_why(raw: Any, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_time(raw)


@pytest.mark.parametrize("value", ["1.5", True, None, float("nan"), float("-inf"), 10**400, [1]])
def test_values_must_be_finite_numbers(value: Any) -> None:
    with pytest.raises(PointError) as refused:
        parse_points([{"ts": 0, "value": 1.0}, {"ts": 1, "value": value}], limit=10)
    assert (refused.value.index, refused.value.field) == (1, "value")


@pytest.mark.parametrize(
    ("point", "field"),
    [({"ts": 1}, "value"), ({"value": 1}, "ts"), ({"ts": 1, "value": 1, "x": 2}, "x"), (5, "")],
)
def test_a_point_missing_or_with_an_unknown_field_is_named(point: Any, field: str) -> None:
    with pytest.raises(PointError) as refused:
        parse_points([point], limit=10)
    assert refused.value.field == field


def test_points_come_sorted_and_the_last_of_a_time_wins() -> None:
    points = parse_points(
        [
            {"ts": 3, "value": 3.0},
            {"ts": 1, "value": 1.0},
            {"ts": "1970-01-01T00:00:03Z", "value": 33.0},
            {"ts": 2, "value": 2.0},
        ],
        limit=10,
    )
    assert points.times.tolist() == [1000, 2000, 3000]
    assert points.values.tolist() == [1.0, 2.0, 33.0]


def test_too_many_points_or_no_list_is_refused() -> None:
    with pytest.raises(ValueError, match="at most 2"):
        parse_points([{"ts": 1, "value": 1}] * 3, limit=2)
    with pytest.raises(ValueError, match="must be a list"):
        parse_points({"ts": 1}, limit=2)
    assert len(parse_points([], limit=2)) == 0


def test_answers_give_times_in_utc_with_milliseconds() -> None:
    assert iso(1_796_292_000_250) == "2026-12-03T10:00:00.250Z"
    assert iso(EARLIEST_MS) == "1900-01-01T00:00:00.000Z"
    assert iso(-1) == "1969-12-31T23:59:59.999Z"


def test_rows_give_each_time_as_iso_does_across_the_whole_span() -> None:
    rng = np.random.default_rng(4)
    times = np.sort(
        np.concatenate(
            [rng.integers(EARLIEST_MS, LATEST_MS, 5_000), [EARLIEST_MS, -1, 0, 999, LATEST_MS]]
        )
    ).astype(np.int64)
    rows = as_rows(Points(times, times.astype(np.float64)))
    assert [row["ts"] for row in rows] == [iso(ms) for ms in times.tolist()]
    assert [row["value"] for row in rows] == times.astype(np.float64).tolist()
