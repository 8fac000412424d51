"""The metrics of a series, or of its points in a time range (pure, numpy).

Decided, and documented in docs/timeseries.md:

- ``std`` is the population standard deviation (ddof=0, as numpy and pandas' ``std(ddof=0)``):
  the spread of the points held, not an estimate for a larger population.
- Percentiles interpolate linearly between the two nearest points (numpy's default,
  Excel's ``PERCENTILE.INC``, R's type 7).
- ``mean_interval_seconds`` is (last - first) / (count - 1): the mean gap between
  consecutive points.
- ``slope_per_second`` is the least-squares slope of value over time in seconds, with
  times centred first (Unix milliseconds squared would lose precision in float64).
- The mean is computed with pairwise summation (numpy), exact enough for 16M points.
- No points: ``count`` 0 and every other figure null. One point: ``std`` 0, the
  interval and the slope null.
- Values near the float limit (1e308) are scaled down first, so no sum or difference
  overflows; a figure whose true value is beyond a float (a slope of 2e308 per second)
  is null.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from streams.timeseries.points import Points, iso

PERCENTILES = (50, 90, 95, 99)


def metrics(points: Points) -> dict[str, Any]:
    count = len(points)
    answer: dict[str, Any] = {"count": count}
    if count == 0:
        empty = ("min", "max", "mean", "std", "first", "last")
        answer.update(dict.fromkeys(empty))
        answer.update({f"p{p}": None for p in PERCENTILES})
        answer.update(mean_interval_seconds=None, slope_per_second=None)
        return answer
    largest = float(np.abs(points.values).max())
    scale = largest if largest > _SAFE else 1.0
    values = points.values / scale
    answer.update(
        min=float(points.values.min()),
        max=float(points.values.max()),
        mean=_scaled(values.mean(), scale),
        std=_scaled(values.std(), scale),
        first=iso(int(points.times[0])),
        last=iso(int(points.times[-1])),
    )
    for p, figure in zip(PERCENTILES, np.percentile(values, PERCENTILES), strict=True):
        answer[f"p{p}"] = _scaled(figure, scale)
    answer["mean_interval_seconds"] = _mean_interval(points)
    slope = _slope(Points(points.times, values))
    answer["slope_per_second"] = None if slope is None else _scaled(slope, scale)
    return answer


#: Above this magnitude values are scaled to at most 1 before any arithmetic.
_SAFE = 1e150


def _scaled(figure: Any, scale: float) -> float | None:
    with np.errstate(over="ignore"):
        value = float(figure) * scale
    return value if np.isfinite(value) else None


def _mean_interval(points: Points) -> float | None:
    if len(points) < 2:
        return None
    return float(points.times[-1] - points.times[0]) / 1000 / (len(points) - 1)


def _slope(points: Points) -> float | None:
    if len(points) < 2:
        return None
    seconds = (points.times - points.times[0]).astype(np.float64) / 1000
    centred = seconds - seconds.mean()
    # Sums of products, not np.dot: no BLAS call (its thread pool costs more than the
    # product), and numpy's pairwise summation is as exact.
    spread = float(np.sum(centred * centred))
    if spread == 0.0:
        return None
    return float(np.sum(centred * (points.values - points.values.mean())) / spread)
