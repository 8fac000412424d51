"""Forecasts of one series: accuracy against naive baselines, interval coverage, season
detection and refusals of what cannot be forecast (streams/timeseries/forecast.py)."""

from __future__ import annotations

from functools import cache

import numpy as np
import numpy.typing as npt
import pytest

from streams.timeseries.forecast import (
    METHOD_CONSTANT,
    METHOD_SEASONAL,
    METHOD_TREND,
    Forecast,
    ForecastInputError,
    NotEnoughPoints,
    forecast,
)
from streams.timeseries.seasonality import detect_season

FloatArray = npt.NDArray[np.float64]
T0 = 1_700_000_000  # Unix seconds
HOUR = 3600
ORIGINS = 3  # rolling forecast origins, one season apart


def seasonal_series(period: int, noise: float, seed: int, n: int) -> FloatArray:
    """A level, a trend of a fifth of the season's amplitude per season, a daily shape of
    two harmonics, and Gaussian noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    shape = np.sin(2 * np.pi * t / period) + 0.5 * np.sin(4 * np.pi * t / period + 1.0)
    values: FloatArray = 50.0 + 0.2 * t / period + shape + noise * rng.standard_normal(n)
    return values


def times(n: int, step: int = HOUR) -> npt.NDArray[np.int64]:
    return T0 + step * np.arange(n, dtype=np.int64)


def mase(actual: FloatArray, predicted: FloatArray, history: FloatArray, period: int) -> float:
    """Mean absolute error over the in-sample MAE of the seasonal naive forecast."""
    scale = np.mean(np.abs(history[period:] - history[:-period]))
    return float(np.mean(np.abs(actual - predicted)) / scale)


@cache
def rolling(period: int, noise: float, seed: int) -> tuple[float, float, float, float]:
    """MASE of the forecast, naive and seasonal naive, and the 95 % interval's coverage,
    over ORIGINS origins, each forecasting one season from the 7 seasons before it."""
    train = 7 * period
    values = seasonal_series(period, noise, seed, train + ORIGINS * period)
    scores: list[tuple[float, float, float]] = []
    covered = 0
    for origin in range(train, train + ORIGINS * period, period):
        history, actual = values[:origin], values[origin : origin + period]
        result = forecast(times(origin), history, period, levels=(95,))
        naive = np.full(period, history[-1])
        scores.append((
            mase(actual, result.mean, history, period),
            mase(actual, naive, history, period),
            mase(actual, history[-period:], history, period),
        ))  # fmt: skip
        band = result.intervals[0]
        covered += int(np.sum((actual >= band.lower) & (actual <= band.upper)))
    model, naive_mase, seasonal_mase = np.mean(scores, axis=0)
    return float(model), float(naive_mase), float(seasonal_mase), covered / (ORIGINS * period)


SEASONAL_CASES = [
    (period, noise, seed) for period in (24, 96) for noise in (0.2, 0.6) for seed in range(3)
]


@pytest.mark.parametrize(("period", "noise", "seed"), SEASONAL_CASES)
def test_seasonal_forecast_beats_naive_and_seasonal_naive(
    period: int, noise: float, seed: int
) -> None:
    """On a trending seasonal series, the forecast's MASE is below both naive baselines'."""
    model, naive, seasonal_naive, _ = rolling(period, noise, seed)
    assert model < naive
    assert model < seasonal_naive


@pytest.mark.parametrize(("period", "noise", "seed"), SEASONAL_CASES)
def test_95_percent_interval_covers_most_held_out_points(
    period: int, noise: float, seed: int
) -> None:
    """The 95 % interval holds 85-100 % of the points that followed, over rolling origins."""
    *_, coverage = rolling(period, noise, seed)
    assert 0.85 <= coverage <= 1.0


@pytest.mark.parametrize("seed", range(3))
def test_trending_series_without_season_beats_naive(seed: int) -> None:
    """A line with noise gets Holt's damped trend, closer to what follows than the last value."""
    rng = np.random.default_rng(seed)
    values = 20.0 + 0.5 * np.arange(400) + 3.0 * rng.standard_normal(400)
    model, naive = [], []
    for origin in (300, 325, 350):
        result = forecast(times(origin), values[:origin], 24)
        actual, history = values[origin : origin + 24], values[:origin]
        assert result.method == METHOD_TREND and result.season is None
        model.append(mase(actual, result.mean, history, 1))
        naive.append(mase(actual, np.full(24, history[-1]), history, 1))
    assert np.mean(model) < np.mean(naive)


@pytest.mark.parametrize("period", [7, 12, 24, 96, 168])
def test_detects_the_season_of_seasonal_series(period: int) -> None:
    """The season length is found exactly, on every seed, for daily and weekly shapes."""
    found = {detect_season(seasonal_series(period, 0.3, seed, 6 * period)) for seed in range(5)}
    assert found == {period}


def test_finds_no_season_in_white_noise() -> None:
    """White noise gets no season on (nearly) every seed, at several lengths."""
    found = [
        detect_season(np.random.default_rng(seed).standard_normal(n))
        for n in (50, 672, 2000)
        for seed in range(10)
    ]
    assert sum(period is not None for period in found) <= 2


def test_forecast_reports_a_detected_season() -> None:
    """A seasonal series is forecast by Holt-Winters with the season it detected."""
    result = forecast(times(24 * 14), seasonal_series(24, 0.3, 0, 24 * 14), 48)
    assert (result.method, result.season, result.season_detected) == (METHOD_SEASONAL, 24, True)
    assert result.fit.mase is not None and result.fit.mase < 1.0
    assert result.fit.mae > 0.0 and result.fit.rmse >= result.fit.mae


def test_a_given_season_is_used_and_zero_means_none() -> None:
    """The caller's season is used as given; 0 asks for no season at all."""
    values = seasonal_series(24, 0.3, 0, 24 * 14)
    given = forecast(times(len(values)), values, 24, season=24)
    assert (given.season, given.season_detected) == (24, False)
    none = forecast(times(len(values)), values, 24, season=0)
    assert (none.method, none.season) == (METHOD_TREND, None)


def test_intervals_nest_and_widen_with_the_horizon() -> None:
    """The 80 % interval lies inside the 95 % one, and neither narrows further out."""
    values = seasonal_series(24, 0.5, 1, 24 * 10)
    result = forecast(times(len(values)), values, 72)
    eighty, ninety_five = result.intervals
    assert (eighty.level, ninety_five.level) == (80, 95)
    assert np.all(ninety_five.lower < eighty.lower) and np.all(eighty.upper < ninety_five.upper)
    assert np.all(eighty.lower <= result.mean) and np.all(result.mean <= eighty.upper)
    width = ninety_five.upper - ninety_five.lower
    assert np.all(np.diff(width) >= 0) and width[-1] > width[0]


def test_future_timestamps_continue_at_the_median_interval() -> None:
    """Irregular sampling: future points are the median interval apart, integers kept."""
    gaps = np.array([60, 60, 61, 59, 60, 300, 60, 60, 60, 60, 60], dtype=np.int64)
    stamps = T0 + np.concatenate(([0], np.cumsum(gaps)))
    values = np.linspace(1.0, 2.0, len(stamps)) + 0.01 * np.sin(np.arange(len(stamps)))
    result = forecast(stamps, values, 3)
    assert result.timestamps.dtype == np.int64 and result.step == 60
    assert result.timestamps.tolist() == [stamps[-1] + 60, stamps[-1] + 120, stamps[-1] + 180]
    as_float = forecast(stamps.astype(np.float64) + 0.5, values, 2)
    assert as_float.timestamps.tolist() == [stamps[-1] + 60.5, stamps[-1] + 120.5]


def test_a_constant_series_forecasts_itself_with_zero_width_intervals() -> None:
    """No NaN and no division by zero: the constant, exactly, with no spread."""
    result = forecast(times(50), np.full(50, 3.5), 10)
    assert result.method == METHOD_CONSTANT and result.fit.mase is None
    assert result.mean.tolist() == [3.5] * 10
    for band in result.intervals:
        assert band.lower.tolist() == band.upper.tolist() == [3.5] * 10


@pytest.mark.parametrize(("offset", "scale"), [(1e12, 1e9), (1e-9, 1e-12), (-5e150, 1e148)])
def test_huge_and_tiny_magnitudes_forecast_the_same_shape(offset: float, scale: float) -> None:
    """Shifting and scaling the series shifts and scales its forecast, finite throughout."""
    values = seasonal_series(24, 0.3, 2, 24 * 8)
    base = forecast(times(len(values)), values, 24)
    moved = forecast(times(len(values)), offset + scale * values, 24)
    assert moved.season == base.season == 24
    np.testing.assert_allclose(moved.mean, offset + scale * base.mean, rtol=1e-9)
    upper = moved.intervals[1].upper
    assert np.isfinite(upper).all()
    np.testing.assert_allclose(upper, offset + scale * base.intervals[1].upper, rtol=1e-9)


def test_long_series_are_fitted_on_a_capped_window() -> None:
    """Only the last max_fit_points points are fitted, so any length answers fast."""
    values = seasonal_series(96, 0.3, 0, 10_000)
    assert forecast(times(10_000), values, 96).fit_points == 2_000
    capped = forecast(times(10_000), values, 96, max_fit_points=800)
    assert (capped.fit_points, capped.season) == (800, 96)


def test_too_few_points_are_refused() -> None:
    """A handful of points, or fewer than two of the seasons asked for, is NotEnoughPoints."""
    with pytest.raises(NotEnoughPoints, match="at least 8 points, got 5"):
        forecast(times(5), np.arange(5.0), 3)
    with pytest.raises(NotEnoughPoints, match="season of 24 points needs at least 48"):
        forecast(times(30), np.arange(30.0), 3, season=24)
    assert issubclass(NotEnoughPoints, ValueError)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"horizon": 0}, "horizon"),
        ({"levels": (80, 100)}, "percentages"),
        ({"levels": (0,)}, "percentages"),
        ({"season": -1}, "season"),
        ({"timestamps": times(20)[::-1]}, "increasing"),
        ({"timestamps": times(19)}, "19 timestamps for 20 values"),
    ],
)
def test_bad_requests_are_refused(change: dict[str, object], message: str) -> None:
    """Each unanswerable request raises a ForecastInputError (a ValueError) saying why."""
    request: dict[str, object] = {"timestamps": times(20), "values": np.arange(20.0), "horizon": 5}
    with pytest.raises(ForecastInputError, match=message):
        forecast(**{**request, **change})  # type: ignore[arg-type]


def test_non_finite_values_are_a_programming_error() -> None:
    """The API refuses NaN before the forecast; one getting through trips an assertion."""
    values = np.arange(20.0)
    values[3] = np.nan
    with pytest.raises(AssertionError):
        forecast(times(20), values, 5)


def test_forecast_fields_line_up() -> None:
    """Every array has one entry per future point; the method and fit window are named."""
    result: Forecast = forecast(times(100), np.sin(np.arange(100) / 2.0), 7, levels=(50, 99))
    assert len(result.timestamps) == len(result.mean) == 7
    assert [band.level for band in result.intervals] == [50, 99]
    assert all(len(band.lower) == len(band.upper) == 7 for band in result.intervals)
    assert result.fit_points == 100
