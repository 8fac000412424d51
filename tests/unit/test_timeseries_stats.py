"""Series metrics against Python's statistics module (an independent computation)."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence

import numpy as np
import pytest

from streams.timeseries.points import Points
from streams.timeseries.stats import metrics


def points(times_s: Sequence[float], values: Sequence[float]) -> Points:
    return Points(np.array([round(t * 1000) for t in times_s], np.int64), np.array(values))


@pytest.mark.parametrize("seed", range(5))
def test_metrics_equal_the_statistics_modules(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randrange(2, 3000)
    times = sorted(rng.sample(range(1_700_000_000, 1_700_000_000 + 10 * n), n))
    values = [rng.gauss(50, 20) + 0.01 * (t - times[0]) for t in times]
    got = metrics(points(times, values))
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    slope, _ = statistics.linear_regression(times, values)
    expected = {
        "count": n,
        "min": min(values),
        "max": max(values),
        "mean": statistics.fmean(values),
        "std": statistics.pstdev(values),
        "p50": cuts[49],
        "p90": cuts[89],
        "p95": cuts[94],
        "p99": cuts[98],
        "mean_interval_seconds": (times[-1] - times[0]) / (n - 1),
        "slope_per_second": slope,
    }
    for name, value in expected.items():
        assert math.isclose(got[name], value, rel_tol=1e-9, abs_tol=1e-9), name
    assert got["first"].startswith("2023-11-14T") and got["last"].endswith("Z")


def test_no_points_give_a_count_of_zero_and_nulls() -> None:
    got = metrics(points([], []))
    assert got["count"] == 0
    assert all(value is None for name, value in got.items() if name != "count")


def test_one_point_has_no_spread_interval_or_slope() -> None:
    got = metrics(points([1_700_000_000], [4.0]))
    assert (got["std"], got["p99"], got["min"]) == (0.0, 4.0, 4.0)
    assert got["mean_interval_seconds"] is None and got["slope_per_second"] is None


def test_huge_values_and_times_keep_their_precision() -> None:
    """Centred times: a slope of exactly 2 per second over Unix times near 2^31."""
    times = [2_000_000_000 + k for k in range(1000)]
    got = metrics(points(times, [1e12 + 2.0 * k for k in range(1000)]))
    assert got["slope_per_second"] == pytest.approx(2.0, rel=1e-9)
    big = metrics(points([0, 1, 2], [1e308, -1e308, 1e308]))
    assert big["max"] == 1e308 and big["min"] == -1e308
    assert big["mean"] == pytest.approx(1e308 / 3)
    assert big["std"] == pytest.approx(statistics.pstdev([1.0, -1.0, 1.0]) * 1e308)
    assert big["p50"] == 1e308
    assert big["slope_per_second"] is None or math.isfinite(big["slope_per_second"])
