"""The API's request and answer shapes as pydantic models: the OpenAPI document is built
from them (openapi.py), and the tests check the real answers against them.

Checking of request bodies is requests.py's (fast, exact error details); these models
describe the same rules for clients and the fuzzer.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

#: Strict: ``true`` is no time and ``"1.5"`` no value, as requests.py decides.
Timestamp = StrictStr | StrictInt | StrictFloat


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PointIn(Strict):
    ts: Timestamp = Field(
        description="ISO 8601 with an offset (2026-12-03T10:00:00Z) or Unix seconds; kept "
        "to the millisecond, years 1900-9999"
    )
    value: StrictFloat | StrictInt = Field(description="a finite number", allow_inf_nan=False)


class CreateSeries(Strict):
    name: str | None = Field(None, max_length=256)
    points: list[PointIn] = Field(default_factory=list)


class AppendPoints(Strict):
    points: list[PointIn]


class Written(Strict):
    id: str = Field(pattern="^[0-9a-f]{32}$")
    count: int = Field(description="points the series holds after the write")


class PointOut(Strict):
    ts: str = Field(description="ISO 8601 in UTC with milliseconds")
    value: float


class PageRows(Strict):
    id: str
    points: list[PointOut]
    next: str | None = Field(description="cursor of the next page; null on the last")


class PageColumns(Strict):
    id: str
    timestamps: list[int] = Field(description="Unix milliseconds")
    values: list[float]
    next: str | None


class SeriesMetrics(Strict):
    count: int
    min: float | None
    max: float | None
    mean: float | None
    std: float | None = Field(description="population standard deviation (ddof=0)")
    p50: float | None
    p90: float | None
    p95: float | None
    p99: float | None
    first: str | None
    last: str | None
    mean_interval_seconds: float | None
    slope_per_second: float | None


class SeriesSummary(Strict):
    id: str = Field(pattern="^[0-9a-f]{32}$")
    name: str | None
    count: int = Field(description="points held")
    created: str
    first: str | None = Field(description="time of the first point")


class SeriesList(Strict):
    count: int = Field(description="series stored, over every worker")
    items: list[SeriesSummary]
    next: str | None = Field(description="cursor of the next page; null on the last")


class Band(Strict):
    level: float
    lower: float
    upper: float


class ForecastPoint(Strict):
    ts: str
    value: float = Field(description="the forecast mean")
    intervals: list[Band]


class FitFigures(Strict):
    mae: float
    rmse: float
    mase: float | None
    alpha: float
    beta: float
    gamma: float
    phi: float


class ForecastAnswer(Strict):
    id: str
    method: str
    season: int | None = Field(description="points per season, null when none")
    season_detected: bool
    fit_points: int
    step_seconds: float
    fit: FitFigures
    points: list[ForecastPoint]


class Document(BaseModel):
    """This OpenAPI document."""

    openapi: str
    paths: dict[str, Any]


class Error(BaseModel):
    error: str
    detail: Any = None


def model_schemas() -> dict[str, type[BaseModel]]:
    """Every model the document names, by name."""
    models: tuple[type[BaseModel], ...] = (
        PointIn,
        CreateSeries,
        AppendPoints,
        Written,
        PointOut,
        PageRows,
        PageColumns,
        SeriesMetrics,
        SeriesSummary,
        SeriesList,
        Band,
        ForecastPoint,
        FitFigures,
        ForecastAnswer,
        Document,
        Error,
    )
    return {model.__name__: model for model in models}
