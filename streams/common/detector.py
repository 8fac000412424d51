"""The one spike-and-drop test of every pipeline: EWMA or z-score, noise floor, decision (pure).

An observation ``x`` is scored against what came before it: a centre and a spread,
either the exponentially weighted moving mean and variance (weight ``alpha`` for the
newest observation, three numbers of state ``(n, mean, variance)``) or the mean and
population standard deviation of a list of past values. The spread is floored (an
absolute floor, a share of the level and, for counts, Poisson noise), because a
perfectly steady history has no variance and every wobble after it would score
infinitely. ``z = (x - centre) / spread``; beyond the limit, positive is a spike and
negative a drop.

The orders reporter scores one number at a time, the telemetry workers whole columns
of series at once (numpy) and then one series at a time to write the reasons. Both
forms are here side by side and share the update arithmetic (``ewma_step`` runs on
floats and arrays alike); every operation is an IEEE one numpy does exactly as Python
does, in the same order, so the column form is bit-identical to the scalar one
(tests/unit/test_detector.py compares them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar, overload

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
Counts = npt.NDArray[np.int64]
#: ``(n, mean, variance)``: observations seen and their weighted mean and variance.
Ewma = tuple[int, float, float]
Num = TypeVar("Num", float, Floats)

EMPTY: Ewma = (0, 0.0, 0.0)


@dataclass(frozen=True)
class Floor:
    """The least spread assumed: ``absolute``, ``relative`` times the level, and with
    ``poisson`` the square root of the level (the noise of a count)."""

    absolute: float = 0.0
    relative: float = 0.0
    poisson: bool = False


def ewma_step(mean: Num, variance: Num, x: Num, alpha: float) -> tuple[Num, Num]:
    """Mean and variance after one more observation (West's incremental form)."""
    diff = x - mean
    step = alpha * diff
    # diff * step == alpha * diff * diff bit for bit: IEEE products commute.
    return mean + step, (1 - alpha) * (variance + diff * step)


def ewma_update(state: Ewma, x: float, alpha: float) -> Ewma:
    """``state`` after observing ``x``; the first observation is the mean, with no variance."""
    n, mean, variance = state
    if n == 0:
        return 1, x, 0.0
    mean, variance = ewma_step(mean, variance, x, alpha)
    return n + 1, mean, variance


def ewma_update_columns(
    n: Counts, mean: Floats, variance: Floats, x: Floats, alpha: float
) -> tuple[Counts, Floats, Floats]:
    """``ewma_update`` on every column position at once."""
    stepped_mean, stepped_variance = ewma_step(mean, variance, x, alpha)
    first = n == 0
    return n + 1, np.where(first, x, stepped_mean), np.where(first, 0.0, stepped_variance)


def ewma_memory(alpha: float, forgotten: float = 1e-12) -> int:
    """Observations after which the EWMA's starting point weighs at most ``forgotten``.

    An EWMA started that many observations ago gives the same scores, to about that
    precision, as one started at the beginning of time: the past beyond is forgotten.
    """
    if alpha >= 1:
        return 1
    return math.ceil(math.log(forgotten) / math.log(1 - alpha))


def past_stats(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population standard deviation of ``values``, each exactly summed."""
    centre = math.fsum(values) / len(values)
    return centre, math.sqrt(math.fsum((x - centre) ** 2 for x in values) / len(values))


def noise_floor(centre: float, floor: Floor) -> float:
    least = max(floor.absolute, floor.relative * abs(centre))
    return max(least, math.sqrt(abs(centre))) if floor.poisson else least


def noise_floors(centre: Floats, floor: Floor) -> Floats:
    """``noise_floor`` of every column position."""
    least = np.maximum(floor.absolute, floor.relative * np.abs(centre))
    return np.maximum(least, np.sqrt(np.abs(centre))) if floor.poisson else least


def zscore(x: float, centre: float, spread: float, floor: Floor) -> float:
    """Deviations of ``x`` from ``centre``; 0 when even the floor is zero (no level at all)."""
    deviation = max(spread, noise_floor(centre, floor))
    return (x - centre) / deviation if deviation > 0 else 0.0


def zscores(x: Floats, centre: Floats, spread: Floats, floor: Floor) -> Floats:
    """``zscore`` of every column position."""
    deviation = np.maximum(spread, noise_floors(centre, floor))
    out = np.zeros(np.broadcast(x, centre, deviation).shape)
    return np.divide(x - centre, deviation, out=out, where=deviation > 0)


def ewma_zscore(state: Ewma, x: float, floor: Floor) -> float:
    """``x`` scored against an EWMA state."""
    _n, mean, variance = state
    return zscore(x, mean, math.sqrt(variance), floor)


def ewma_zscores(mean: Floats, variance: Floats, x: Floats, floor: Floor) -> Floats:
    """``ewma_zscore`` of every column position."""
    return zscores(x, mean, np.sqrt(variance), floor)


@overload
def is_anomalous(z: float, limit: float) -> bool: ...
@overload
def is_anomalous(z: Floats, limit: float) -> npt.NDArray[np.bool_]: ...
def is_anomalous(z: float | Floats, limit: float) -> bool | npt.NDArray[np.bool_]:
    """Strictly beyond ``limit`` deviations either way (NaN never is)."""
    if isinstance(z, np.ndarray):
        return np.abs(z) > limit
    return abs(z) > limit


def direction(z: float) -> str:
    return "spike" if z > 0 else "drop"
