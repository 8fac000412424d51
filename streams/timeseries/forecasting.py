"""``GET /series/{id}/forecast``: its parameters, the points it needs, its answer (pure).

``horizon`` (required, 1..MAX_HORIZON points), ``level`` (percentages in (0, 100),
comma-separated, default 80,95), ``season`` (points per season; 0 or 1: none; absent:
detected). The model is forecast.py's; it sees at most the last ``max_fit_points``
points (or two seasons when a longer season is given), and only those are read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from streams.common.errors import BadRequest, Unprocessable
from streams.common.query import integer
from streams.timeseries.forecast import (
    DEFAULT_LEVELS,
    DEFAULT_MAX_FIT_POINTS,
    Forecast,
    ForecastInputError,
)
from streams.timeseries.points import LATEST_MS, iso

MAX_HORIZON = 10_000
MAX_LEVELS = 5
MAX_SEASON = 10_000
#: A level as written in a URL: ASCII digits, an optional fraction ("99.5").
_LEVEL = re.compile(r"[0-9]{1,2}(?:\.[0-9]{1,6})?")
#: The fit window: the last points the model sees (a 10-million-point series costs no
#: more than this).
MAX_FIT_POINTS = DEFAULT_MAX_FIT_POINTS


def parameters(query: Mapping[str, str]) -> tuple[int, tuple[float, ...], int | None]:
    """``horizon``, ``levels`` and ``season`` (None: detect); 400 naming a bad one."""
    if not query.get("horizon"):
        raise BadRequest(
            "horizon is required: the number of points to forecast", parameter="horizon"
        )
    horizon = integer(query, "horizon", 1, 1, MAX_HORIZON)
    levels = _levels(query.get("level"))
    season = integer(query, "season", -1, 0, MAX_SEASON) if query.get("season") else None
    return horizon, levels, season


def _levels(raw: str | None) -> tuple[float, ...]:
    if not raw:
        return DEFAULT_LEVELS
    levels: list[float] = []
    for text in raw.split(",")[: MAX_LEVELS + 1]:
        text = text.strip(" ")
        if not _LEVEL.fullmatch(text) or not 0 < float(text) < 100:
            raise BadRequest("level: percentages between 0 and 100, e.g. 80,95", parameter="level")
        level = float(text)
        levels.append(level)
    if len(levels) > MAX_LEVELS:
        raise BadRequest(f"level: at most {MAX_LEVELS} levels", parameter="level")
    return tuple(levels)


def unprocessable(error: ForecastInputError) -> Unprocessable:
    """A series the model cannot forecast as asked (too few points for it, or for the
    season given): 422."""
    return Unprocessable(str(error), detail={"field": "points"})


def points_needed(max_fit_points: int, season: int | None) -> int:
    """How many of the last points the model sees (forecast.py's fit window)."""
    return max(max_fit_points, 2 * (season or 0))


def answer(series_id: str, result: Forecast) -> dict[str, Any]:
    """The forecast as the API answers it; 422 if it would run past year 9999."""
    times = result.timestamps.tolist()
    bounds = [band.lower for band in result.intervals] + [band.upper for band in result.intervals]
    if not all(np.isfinite(array).all() for array in (result.mean, *bounds)):
        raise Unprocessable(
            "the series' values are too large to forecast in float64", detail={"field": "value"}
        )
    if times and times[-1] > LATEST_MS:
        raise Unprocessable("the forecast would run past year 9999", detail={"field": "horizon"})
    rows = []
    for i, (ts, mean) in enumerate(zip(times, result.mean.tolist(), strict=True)):
        intervals = [
            {"level": band.level, "lower": float(band.lower[i]), "upper": float(band.upper[i])}
            for band in result.intervals
        ]
        rows.append({"ts": iso(int(ts)), "value": mean, "intervals": intervals})
    fit = result.fit
    return {
        "id": series_id,
        "method": result.method,
        "season": result.season,
        "season_detected": result.season_detected,
        "fit_points": result.fit_points,
        "step_seconds": result.step / 1000,
        "fit": {
            "mae": fit.mae, "rmse": fit.rmse, "mase": fit.mase,
            "alpha": fit.alpha, "beta": fit.beta, "gamma": fit.gamma, "phi": fit.phi,
        },
        "points": rows,
    }  # fmt: skip
