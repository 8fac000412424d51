"""Which window a reading belongs to, when it is due, and its figures (telemetry.windows)."""

from __future__ import annotations

import random
import statistics
from itertools import pairwise
from typing import Any

import pytest

from streams.telemetry.windows import Figures, due, percentile, series_values, window_for

MIN = 60_000
#: 2025-08-01T12:00:00Z, a whole minute and a whole five minutes after the epoch.
T0 = 1_754_049_600_000


def test_window_is_aligned_to_the_epoch() -> None:
    """A new window starts on a multiple of its size counted from the epoch."""
    assert window_for(T0 + 12_345, MIN, {}, 0) == (T0, T0 + MIN)
    assert window_for(T0, MIN, {}, 0) == (T0, T0 + MIN)
    assert window_for(T0 + 12_345, 5 * MIN, {}, 0) == (T0, T0 + 5 * MIN)


def test_window_end_is_exclusive() -> None:
    """A reading at a window's end belongs to the next window, even while the first is open."""
    assert window_for(T0 + MIN - 1, MIN, {T0: T0 + MIN}, 0) == (T0, T0 + MIN)
    assert window_for(T0 + MIN, MIN, {T0: T0 + MIN}, 0) == (T0 + MIN, T0 + 2 * MIN)


def test_reading_before_the_newest_closed_end_is_late() -> None:
    """A reading before the newest closed window's end has no window; one at that end has."""
    assert window_for(T0 - 1, MIN, {}, T0) is None
    assert window_for(T0 - 10 * MIN, MIN, {T0: T0 + MIN}, T0) is None
    assert window_for(T0, MIN, {}, T0) == (T0, T0 + MIN)


def test_open_window_keeps_the_size_it_opened_with() -> None:
    """After a resize, a reading inside an open window joins it, whatever the new size."""
    assert window_for(T0 + 4 * MIN, MIN, {T0: T0 + 5 * MIN}, 0) == (T0, T0 + 5 * MIN)


def test_resize_clips_a_new_window_against_open_windows() -> None:
    """A larger window opening beside open ones starts after the earlier, ends at the later."""
    open_windows = {T0 + MIN: T0 + 2 * MIN}
    assert window_for(T0 + 2 * MIN + 1, 5 * MIN, open_windows, 0) == (T0 + 2 * MIN, T0 + 5 * MIN)
    assert window_for(T0 + 1, 5 * MIN, open_windows, 0) == (T0, T0 + MIN)
    between = {T0: T0 + MIN, T0 + 3 * MIN: T0 + 4 * MIN}
    assert window_for(T0 + 2 * MIN, 5 * MIN, between, 0) == (T0 + MIN, T0 + 3 * MIN)


def test_resize_clips_a_new_window_at_the_closed_end() -> None:
    """A larger window never starts before the newest closed window's end."""
    assert window_for(T0 + 3 * MIN, 5 * MIN, {}, T0 + 2 * MIN) == (T0 + 2 * MIN, T0 + 5 * MIN)


def test_windows_never_overlap_through_resizes_and_closes() -> None:
    """Random readings, sizes and closes: each reading lands in its window, none overlap."""
    rng = random.Random(7)
    open_windows: dict[int, int] = {}
    closed = 0
    for step in range(3_000):
        size = rng.choice([1_000, 7_000, 60_000, 300_000])
        ts = T0 + rng.randrange(0, 3_600_000)
        window = window_for(ts, size, open_windows, closed)
        if window is None:
            assert ts < closed
        else:
            start, end = window
            assert start <= ts < end and start >= closed
            open_windows[start] = end
        spans = sorted(open_windows.items())
        assert all(end <= start for (_, end), (start, _) in pairwise(spans))
        if step % 50 == 49:
            for start, end in due(open_windows, T0 + step * 1_000, 5_000):
                closed = max(closed, end)
                del open_windows[start]


def test_due_lists_windows_oldest_first() -> None:
    """Windows whose end plus grace has passed come out oldest first; the others stay."""
    open_windows = {T0 + 2 * MIN: T0 + 3 * MIN, T0: T0 + MIN, T0 + MIN: T0 + 2 * MIN}
    assert due(open_windows, T0 + 2 * MIN + 5_000, 5_000) == [
        (T0, T0 + MIN),
        (T0 + MIN, T0 + 2 * MIN),
    ]


def test_window_is_due_exactly_at_end_plus_grace() -> None:
    """A window is due when the clock equals its end plus grace, not a millisecond before."""
    open_windows = {T0: T0 + MIN}
    assert due(open_windows, T0 + MIN + 4_999, 5_000) == []
    assert due(open_windows, T0 + MIN + 5_000, 5_000) == [(T0, T0 + MIN)]
    assert due(open_windows, T0 + MIN, 0) == [(T0, T0 + MIN)]


def test_percentile_matches_numpy_linear() -> None:
    """Every percentile of random data equals the inclusive (numpy 'linear') quantile."""
    rng = random.Random(11)
    for size in (2, 3, 7, 20, 101):
        values = sorted(rng.uniform(-100, 100) for _ in range(size))
        cuts = statistics.quantiles(values, n=100, method="inclusive")
        for k, expected in enumerate(cuts, start=1):
            assert percentile(values, k / 100) == pytest.approx(expected, rel=1e-12, abs=1e-12)
        assert percentile(values, 0.0) == values[0]
        assert percentile(values, 1.0) == values[-1]


def test_percentile_of_one_value_is_that_value() -> None:
    """With one value every percentile is that value."""
    assert percentile([42.5], 0.95) == 42.5
    assert Figures.of([42.5]) == Figures(count=1, min=42.5, max=42.5, mean=42.5, p95=42.5)


def test_percentile_of_two_values_interpolates() -> None:
    """Between two values the percentile is interpolated linearly."""
    assert percentile([10.0, 20.0], 0.95) == pytest.approx(19.5)
    assert percentile([10.0, 20.0], 0.5) == 15.0


def test_percentile_of_nothing_is_refused() -> None:
    """A percentile of no values, or the figures of an empty window, raise ValueError."""
    with pytest.raises(ValueError):
        percentile([], 0.5)
    with pytest.raises(ValueError):
        Figures.of([])


def test_figures_sort_unsorted_values() -> None:
    """Figures of values in any order are those of the sorted values."""
    figures = Figures.of([5.0, 1.0, 4.0, 2.0, 3.0])
    assert (figures.count, figures.min, figures.max, figures.mean) == (5, 1.0, 5.0, 3.0)
    assert figures.p95 == pytest.approx(4.8)


def test_p95_of_one_to_hundred_is_95_05() -> None:
    """The p95 of 1..100 is 95.05, as numpy and every data tool say."""
    shuffled = [float(v) for v in range(1, 101)]
    random.Random(3).shuffle(shuffled)
    figures = Figures.of(shuffled)
    assert figures.p95 == pytest.approx(95.05)
    assert figures.as_dict() == {"count": 100, "min": 1.0, "max": 100.0, "mean": 50.5, "p95": 95.05}


def test_mean_uses_exact_summation() -> None:
    """The mean loses nothing to rounding: 1e16, 1 and -1e16 average to one third."""
    assert Figures.of([1e16, 1.0, -1e16]).mean == 1 / 3
    assert Figures.of([0.1] * 10).mean == 0.1


def values_of(chunks: Any) -> tuple[dict[tuple[str, str], list[float]], int]:
    values = series_values(chunks)
    return values.as_dict(), values.duplicates


def test_duplicate_sequence_numbers_count_once_with_the_first_value() -> None:
    """A reading resent with the same seq, in any chunk, counts once with its first value."""
    chunks = [
        [{"readings": [("eth0", "utilization", 10.0, 0, 1), ("eth0", "utilization", 20.0, 0, 2)]}],
        [{"readings": [("eth0", "utilization", 99.0, 0, 1), ("eth0", "utilization", 30.0, 0, 3)]}],
        [{"readings": [("eth0", "utilization", 77.0, 0, 2)]}],
    ]
    assert values_of(chunks) == ({("eth0", "utilization"): [10.0, 20.0, 30.0]}, 2)


def test_same_sequence_number_in_other_series_is_not_a_duplicate() -> None:
    """Duplicates are found per interface and metric: one seq in three series is three values."""
    chunks = [
        [{"readings": [("eth0", "utilization", 1.0, 0, 1), ("eth1", "utilization", 2.0, 0, 1)]}],
        [{"readings": [("eth0", "errors", 3.0, 0, 1)]}],
    ]
    assert values_of(chunks) == (
        {("eth0", "utilization"): [1.0], ("eth1", "utilization"): [2.0], ("eth0", "errors"): [3.0]},
        0,
    )


def test_polls_of_one_layout_give_the_same_values_as_reading_by_reading() -> None:
    """The usual window (each record one poll of the same series) is read as a table;
    the figures equal the general path's, and a poll sent twice still counts once."""
    layout = [("eth0", "utilization"), ("eth0", "errors"), ("chassis", "cpu")]
    polls = [
        [{"readings": [(i, m, float(n * 10 + k), n * 1000, n) for k, (i, m) in enumerate(layout)]}]
        for n in range(4)
    ]
    expected = {series: [float(n * 10 + k) for n in range(4)] for k, series in enumerate(layout)}
    assert values_of(polls) == (expected, 0)
    assert series_values(polls).polls is not None  # read as a table
    reordered = [[{"readings": polls[0][0]["readings"][::-1]}], *polls[1:]]
    assert values_of(reordered) == (expected, 0)
    assert series_values(reordered).polls is None  # one poll in another order: general path
    assert values_of([*polls, polls[1]]) == (expected, 3)
