"""The damped additive Holt-Winters engine of forecast.py: the grid fit, runs of the
model over the series, h-step predictions and their spread (pure numpy).

forecast.py's docstring states the method; this module is its arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from streams.timeseries.seasonality import decomposition

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: The parameter grid: alpha, beta as a share of alpha, gamma as a share of 1 - alpha, phi.
GRID = (
    (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9),
    (0.0, 0.02, 0.1, 0.3),
    (0.0, 0.05, 0.15, 0.3, 0.5),
    (0.8, 0.9, 0.95, 0.98),
)
#: Fewer in-sample h-step errors than this say nothing of the spread at h.
MIN_HSTEP_ERRORS = 30


@dataclass(frozen=True)
class Model:
    """Holt-Winters fitted to a scaled window: parameters, and the state after each point."""

    values: FloatArray
    period: int  # 0: no season
    params: tuple[float, float, float, float]  # alpha, beta, gamma, phi
    warmup: int  # points not scored: the start is still settling
    errors: FloatArray  # one-step errors after the warm-up
    levels: FloatArray
    trends: FloatArray
    seasons: FloatArray  # the period start values, then s_t after each point t
    naive_mae: float  # one-step MAE of the (seasonal) naive forecast, for MASE


def fit(values: FloatArray, period: int) -> Model:
    """The grid point with the least one-step squared error, and its states."""
    shares = np.meshgrid(*(GRID if period else (*GRID[:2], (0.0,), GRID[3])), indexing="ij")
    alpha, beta_share, gamma_share, phi = (share.ravel() for share in shares)
    grid = (alpha, alpha * beta_share, (1.0 - alpha) * gamma_share, phi)
    start = decomposition(values, period)
    warmup = max(period, 2)
    with np.errstate(all="ignore"):  # a diverging grid point scores inf or NaN, and loses
        sse = grid_sse(values, period, grid, start, warmup)
    best = int(np.argmin(np.where(np.isfinite(sse), sse, np.inf)))
    params = (float(alpha[best]), float(grid[1][best]), float(grid[2][best]), float(phi[best]))
    errors, levels, trends, seasons = run(values, period, params, start)
    lag = max(period, 1)
    naive = np.abs(values[warmup:] - values[warmup - lag : len(values) - lag])
    return Model(
        values=values,
        period=period,
        params=params,
        warmup=warmup,
        errors=errors[warmup:],
        levels=levels,
        trends=trends,
        seasons=seasons,
        naive_mae=float(np.mean(naive)),
    )


def grid_sse(
    values: FloatArray,
    period: int,
    grid: tuple[FloatArray, ...],
    start: tuple[float, float, FloatArray],
    warmup: int,
) -> FloatArray:
    """The one-step SSE of every grid point, in one pass: numpy runs along the grid."""
    alpha, beta, gamma, phi = grid
    intercept, slope, phases = start
    level = np.full(len(alpha), intercept - slope)  # the line at t = -1
    trend = np.full(len(alpha), slope)
    seasons = np.repeat(phases[:, None], len(alpha), axis=1)  # a row per phase: contiguous
    sse = np.zeros(len(alpha))
    for t, y in enumerate(values.tolist()):
        damped = phi * trend
        base = level + damped
        error = y - base - seasons[t % period] if period else y - base
        level = base + alpha * error
        trend = damped + beta * error
        if period:
            seasons[t % period] += gamma * error
        if t >= warmup:
            sse += error * error
    return sse


def run(
    values: FloatArray,
    period: int,
    params: tuple[float, float, float, float],
    start: tuple[float, float, FloatArray],
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """One-step errors, levels, trends and seasons (start values first) of one grid point."""
    alpha, beta, gamma, phi = params
    intercept, slope, phases = start
    level, trend, seasons = intercept - slope, slope, phases.tolist()
    errors, levels, trends = [], [], []
    for t, y in enumerate(values.tolist()):
        damped = phi * trend
        season = seasons[t] if period else 0.0  # s_{t-m}: history index t, as m starts it
        error = y - level - damped - season
        level += damped + alpha * error
        trend = damped + beta * error
        seasons.append(season + gamma * error)
        errors.append(error)
        levels.append(level)
        trends.append(trend)
    return np.array(errors), np.array(levels), np.array(trends), np.array(seasons)


def predict(model: Model, origins: IntArray, steps: IntArray) -> FloatArray:
    """The ``steps``-ahead forecasts made after the points at ``origins`` (broadcast)."""
    phi = model.params[3]
    damped = phi * (1.0 - phi**steps) / (1.0 - phi)  # phi + ... + phi^h; phi < 1 on the grid
    mean: FloatArray = model.levels[origins] + damped * model.trends[origins]
    if model.period:
        m = model.period
        latest = m + origins + steps - m * -(-steps // m)  # the phase's last update by then
        mean = mean + model.seasons[latest]
    return mean


def forecast_sd(model: Model, horizon: int) -> FloatArray:
    """The standard deviation of the h-step error, h = 1..horizon (scaled units)."""
    sigma = float(np.sqrt(np.mean(model.errors**2)))
    alpha, beta, gamma, phi = model.params
    j = np.arange(1, horizon)
    phi_j = phi * (1.0 - phi**j) / (1.0 - phi)
    seasonal = (j % model.period == 0) if model.period else np.zeros(len(j), dtype=bool)
    c = alpha + beta * phi_j + gamma * seasonal
    analytic = sigma * np.sqrt(1.0 + np.concatenate(([0.0], np.cumsum(c * c))))
    measured = hstep_rms(model, horizon)
    sd = analytic.copy()
    sd[: len(measured)] = np.maximum(analytic[: len(measured)], measured)
    if 0 < len(measured) < horizon and analytic[len(measured) - 1] > 0:
        sd[len(measured) :] *= sd[len(measured) - 1] / analytic[len(measured) - 1]
    # In-sample errors are smaller than those to come, by the states and parameters fitted
    # to them: divide the squares by n - k, not n (as R's ets does), at most doubling sd.
    scored = len(model.errors)
    fitted = 6 + model.period  # alpha, beta, gamma, phi, the first level and trend, seasons
    optimism = math.sqrt(scored / max(scored - fitted, scored / 4))
    widening: FloatArray = optimism * np.maximum.accumulate(sd)
    return widening


def hstep_rms(model: Model, horizon: int) -> FloatArray:
    """RMS of the in-sample h-step errors, for each h with enough origins to measure it."""
    n = len(model.values)
    rms = []
    for h in range(1, min(horizon, n - model.warmup - MIN_HSTEP_ERRORS) + 1):
        origins = np.arange(model.warmup, n - h)
        errors = model.values[origins + h] - predict(model, origins, np.array(h))
        rms.append(float(np.sqrt(np.mean(errors * errors))))
    return np.array(rms)
