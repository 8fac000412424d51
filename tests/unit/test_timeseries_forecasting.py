"""``GET /series/{id}/forecast`` (streams/timeseries/forecasting.py): its parameters, each
bad one a 400 naming it; its answer in the documented shape; what cannot be answered
(past year 9999, beyond float64, too few points) a 422 saying which field."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from streams.common.errors import BadRequest, HttpError, Unprocessable
from streams.timeseries import forecasting, models
from streams.timeseries.forecast import (
    METHOD_CONSTANT,
    Interval,
    NotEnoughPoints,
    forecast,
)
from streams.timeseries.points import LATEST_MS, iso

HOUR_MS = 3_600_000
T0 = 1_700_000_000_000
SERIES = "e" * 32


def hourly(n: int) -> np.ndarray[tuple[int], np.dtype[np.int64]]:
    return T0 + HOUR_MS * np.arange(n, dtype=np.int64)


def daily_shape(n: int) -> np.ndarray[tuple[int], np.dtype[np.float64]]:
    rng = np.random.default_rng(7)
    t = np.arange(n)
    values: np.ndarray[tuple[int], np.dtype[np.float64]] = (
        50 + np.sin(2 * np.pi * t / 24) + 0.1 * rng.standard_normal(n)
    )
    return values


def refused(query: dict[str, str]) -> HttpError:
    with pytest.raises(BadRequest) as error:
        forecasting.parameters(query)
    return error.value


# -- parameters ---------------------------------------------------------------------------


@pytest.mark.parametrize("query", [{}, {"horizon": ""}, {"level": "80", "season": "24"}])
def test_horizon_is_required_and_a_missing_one_is_named(query: dict[str, str]) -> None:
    error = refused(query)
    assert error.status == 400
    assert error.details == {"parameter": "horizon"}
    assert "horizon" in error.message


@pytest.mark.parametrize("horizon", ["0", "-1", "10001", "1.5", "abc", "1e3", "²"])
def test_a_horizon_out_of_1_to_10000_is_a_400(horizon: str) -> None:
    assert refused({"horizon": horizon}).details == {"parameter": "horizon"}


@pytest.mark.parametrize("horizon", [1, 96, 10_000])
def test_horizons_from_1_to_10000_are_taken(horizon: int) -> None:
    assert forecasting.parameters({"horizon": str(horizon)})[0] == horizon


@pytest.mark.parametrize(
    ("level", "levels"),
    [
        (None, (80.0, 95.0)),
        ("", (80.0, 95.0)),
        ("80,95", (80.0, 95.0)),
        ("95,80", (95.0, 80.0)),
        ("50", (50.0,)),
        ("99.9", (99.9,)),
        ("0.5", (0.5,)),
        (" 80", (80.0,)),
        ("80, 95", (80.0, 95.0)),  # ?level=80,+95
        ("10,20,30,40,50", (10.0, 20.0, 30.0, 40.0, 50.0)),
    ],
)
def test_levels_are_percentages_strictly_between_0_and_100(
    level: str | None, levels: tuple[float, ...]
) -> None:
    query = {"horizon": "5"} if level is None else {"horizon": "5", "level": level}
    assert forecasting.parameters(query) == (5, levels, None)


@pytest.mark.parametrize(
    "level",
    [
        "0",
        "100",
        "100.0",
        "-5",
        "abc",
        "1e2",
        "5e1",
        "nan",
        "inf",
        "80,",
        "80,,95",
        "80;95",
        "0x50",
        "10,20,30,40,50,60",
        "10,20,30,40,50,60,70,80",
    ],
)
def test_a_bad_level_or_too_many_is_a_400_naming_level(level: str) -> None:
    assert refused({"horizon": "5", "level": level}).details == {"parameter": "level"}


def test_more_than_five_levels_are_refused_as_too_many() -> None:
    error = refused({"horizon": "5", "level": "10,20,30,40,50,60"})
    assert "5" in error.message


@pytest.mark.parametrize(
    ("season", "expected"),
    [(None, None), ("", None), ("0", 0), ("1", 1), ("24", 24), ("10000", 10_000)],
)
def test_season_absent_is_detected_0_or_1_is_none_else_its_points(
    season: str | None, expected: int | None
) -> None:
    query = {"horizon": "5"} if season is None else {"horizon": "5", "season": season}
    assert forecasting.parameters(query)[2] == expected


@pytest.mark.parametrize("season", ["-1", "10001", "2.5", "daily"])
def test_a_season_out_of_range_is_a_400_naming_it(season: str) -> None:
    assert refused({"horizon": "5", "season": season}).details == {"parameter": "season"}


def test_the_points_read_are_the_fit_window_or_two_seasons() -> None:
    assert forecasting.points_needed(2_000, None) == 2_000
    assert forecasting.points_needed(2_000, 0) == 2_000
    assert forecasting.points_needed(2_000, 24) == 2_000
    assert forecasting.points_needed(2_000, 1_500) == 3_000


# -- answers ------------------------------------------------------------------------------


def test_a_forecast_answers_in_its_documented_shape() -> None:
    """Hourly points with a daily shape: the answer fits ForecastAnswer, goes on hourly
    from the last point, and each point carries its bands in the order asked, wider for
    the higher level."""
    n = 24 * 10
    result = forecast(hourly(n), daily_shape(n), 6, levels=(80.0, 95.0))

    answer = forecasting.answer(SERIES, result)

    models.ForecastAnswer.model_validate(answer)
    assert json.loads(json.dumps(answer)) == answer
    assert answer["id"] == SERIES
    assert (answer["season"], answer["season_detected"]) == (24, True)
    assert answer["step_seconds"] == 3600.0
    assert answer["fit_points"] == n
    last = T0 + HOUR_MS * (n - 1)
    assert [p["ts"] for p in answer["points"]] == [iso(last + HOUR_MS * h) for h in range(1, 7)]
    for point in answer["points"]:
        inner, outer = point["intervals"]
        assert (inner["level"], outer["level"]) == (80.0, 95.0)
        assert outer["lower"] < inner["lower"] < point["value"] < inner["upper"] < outer["upper"]
        assert 48 < point["value"] < 52


def test_a_constant_series_forecasts_itself_in_the_same_shape() -> None:
    result = forecast(hourly(10), np.full(10, 3.5), 2, levels=(90.0,))

    answer = forecasting.answer(SERIES, result)

    models.ForecastAnswer.model_validate(answer)
    assert answer["method"] == METHOD_CONSTANT
    assert answer["fit"]["mase"] is None
    assert [p["value"] for p in answer["points"]] == [3.5, 3.5]
    assert answer["points"][0]["intervals"] == [{"level": 90.0, "lower": 3.5, "upper": 3.5}]


def test_a_forecast_up_to_the_end_of_year_9999_is_answered_past_it_a_422() -> None:
    times = LATEST_MS - 10_000 + 1000 * np.arange(10, dtype=np.int64)  # last: LATEST - 1 s
    values = np.arange(10, dtype=np.float64)

    last = forecasting.answer(SERIES, forecast(times, values, 1))
    with pytest.raises(Unprocessable) as past:
        forecasting.answer(SERIES, forecast(times, values, 2))

    assert [p["ts"] for p in last["points"]] == ["9999-12-31T23:59:59.999Z"]
    assert past.value.status == 422
    assert past.value.body()["detail"] == {"field": "horizon"}
    models.Error.model_validate(past.value.body())


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_forecast_beyond_float64_is_a_422_not_infinities() -> None:
    """Values climbing to near the float64 maximum forecast past it: a 422 on the value,
    never an answer holding infinities (which JSON cannot carry)."""
    result = forecast(hourly(20), np.linspace(0, 1.7e308, 20), 50)
    assert not np.isfinite(result.mean).all()

    with pytest.raises(Unprocessable) as refused_:
        forecasting.answer(SERIES, result)

    assert refused_.value.status == 422
    assert refused_.value.body()["detail"] == {"field": "value"}


def test_an_infinite_interval_bound_alone_is_a_422() -> None:
    result = forecast(hourly(10), np.arange(10, dtype=np.float64), 3, levels=(95.0,))
    band = result.intervals[0]
    upper = band.upper.copy()
    upper[-1] = np.inf
    widened = dataclasses.replace(result, intervals=(Interval(95.0, band.lower, upper),))
    assert np.isfinite(widened.mean).all()

    with pytest.raises(Unprocessable) as refused_:
        forecasting.answer(SERIES, widened)

    assert refused_.value.body()["detail"] == {"field": "value"}


@pytest.mark.parametrize(("n", "season"), [(3, None), (7, 0), (30, 24)])
def test_too_few_points_for_the_model_or_the_season_is_a_422_on_points(
    n: int, season: int | None
) -> None:
    with pytest.raises(NotEnoughPoints) as raised:
        forecast(hourly(n), daily_shape(n), 5, season=season)

    error = forecasting.unprocessable(raised.value)

    assert error.status == 422
    assert error.body() == {"error": str(raised.value), "detail": {"field": "points"}}
    models.Error.model_validate(error.body())
