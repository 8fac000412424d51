"""Season length of a series: peaks of the autocorrelation of the detrended series (pure).

The series is detrended by its least-squares line (a trend would otherwise make every lag
look correlated), and its autocorrelation r_k computed for lags 1 to a third of the
window (a season must repeat at least three times to be told from a slow wave; the
Holt-Winters start needs two). A lag is a candidate season when r_k is

- a local peak (r_k >= both neighbours: a multiple of a season peaks too, a mere slow
  decay does not);
- significant: above z / sqrt(n), the white-noise bound, with z taken so that the chance
  of ANY lag passing on white noise is FALSE_ALARM (a one-sided Bonferroni share over the
  candidate lags, so long windows with many lags do not find seasons in noise);
- prominent: at least that bound above the lowest r_j before it, so the wiggles on the
  slow decay of a random walk do not count.

The candidate with the highest r_k is near the season or a multiple of it (a season of 24
also peaks at 48). The period that folds the series best (see fold_score) is then taken
within REFINE_SHARE of it, among the divisors of that, and within REFINE_SHARE of that.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

MIN_PERIOD = 2
#: A season must repeat this many times in the window to be found.
MIN_CYCLES = 3
#: Chance that white noise is given a season, shared over all candidate lags.
FALSE_ALARM = 0.05
#: Periods within this share of the lag found are tried too (see fold_score).
REFINE_SHARE = 0.1


def detect_season(values: FloatArray) -> int | None:
    """The season length (in points) of ``values``, or None when no lag is significant."""
    n = len(values)
    max_period = n // MIN_CYCLES
    if max_period < MIN_PERIOD:
        return None
    residuals = detrended(values)
    acf = autocorrelation(residuals, max_period + 1)
    lags = np.arange(MIN_PERIOD, max_period + 1)
    z = NormalDist().inv_cdf(1.0 - FALSE_ALARM / len(lags))
    bound = z / math.sqrt(n)
    at_lag = acf[lags]
    is_peak = (at_lag >= acf[lags - 1]) & (at_lag >= acf[lags + 1])
    lowest_before = np.minimum.accumulate(acf)[lags - 1]
    passing = lags[is_peak & (at_lag > bound) & (at_lag - lowest_before > bound)]
    if passing.size == 0:
        return None
    best = int(passing[np.argmax(acf[passing])])
    refined = _best_fold(residuals, _around(best, max_period))
    fundamental = _best_fold(
        residuals, [d for d in range(MIN_PERIOD, refined + 1) if refined % d == 0]
    )
    return _best_fold(residuals, _around(fundamental, max_period))


def _around(period: int, max_period: int) -> range:
    reach = max(1, round(period * REFINE_SHARE))
    return range(max(MIN_PERIOD, period - reach), min(max_period, period + reach) + 1)


def _best_fold(residuals: FloatArray, periods: Sequence[int]) -> int:
    return min(periods, key=lambda period: fold_score(residuals, period))


def fold_score(residuals: FloatArray, period: int) -> float:
    """How badly the means of the phases of ``period`` fit the series, Akaike-penalised
    for their number: n ln(RSS / n) + 2 * period (phase dispersion minimisation). Lower is
    better. Two uses: a multiple of the season fits the same signal with more means, so
    scores worse than the season; and the autocorrelation peak of a smooth season is so
    flat that noise moves it a lag or two, while a period a lag off drifts out of phase
    over the window, which folding, using every point, tells apart."""
    n = len(residuals)
    phase = np.arange(n) % period
    sums = np.bincount(phase, residuals, period)
    total = float(np.sum(residuals * residuals))
    explained = float(np.sum(sums * sums / np.bincount(phase, minlength=period)))
    rss = max(total - explained, total * 1e-12)  # an exact fold leaves only rounding
    return n * math.log(rss / n) + 2.0 * period


def detrended(values: FloatArray) -> FloatArray:
    """``values`` minus their least-squares line."""
    intercept, slope, _ = decomposition(values, 0)
    residuals: FloatArray = values - (intercept + slope * np.arange(len(values)))
    return residuals


def autocorrelation(values: FloatArray, max_lag: int) -> FloatArray:
    """r_0..r_max_lag with the biased estimator (sums divided by n, not n - k): long lags,
    resting on few pairs, are shrunk towards zero. Zeros when ``values`` is constant."""
    centred = values - values.mean()
    size = 1 << (2 * len(centred) - 1).bit_length()  # zero-padded: no wrap-around
    spectrum = np.fft.rfft(centred, size)
    autocovariance = np.fft.irfft(spectrum * np.conj(spectrum), size)[: max_lag + 1]
    if autocovariance[0] <= 0.0:
        return np.zeros(max_lag + 1)
    acf: FloatArray = autocovariance / autocovariance[0]
    return acf


def decomposition(values: FloatArray, period: int) -> tuple[float, float, FloatArray]:
    """The least-squares line of ``values`` (intercept, slope) and the mean of the values
    minus the line at each phase of ``period`` over the full seasons, centred to sum to
    zero (empty when ``period`` is 0): the classical start of Holt-Winters."""
    t = np.arange(len(values), dtype=np.float64)
    slope, intercept = np.polyfit(t, values, 1)
    if period == 0:
        return float(intercept), float(slope), np.zeros(0)
    cycles = len(values) // period
    residuals = (values - (intercept + slope * t))[: cycles * period]
    phases: FloatArray = residuals.reshape(cycles, period).mean(axis=0)
    return float(intercept), float(slope), phases - phases.mean()
