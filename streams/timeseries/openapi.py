"""The API's routes, and the OpenAPI 3.1 document built from them and the models (pure).

``ROUTES`` is the one list of what the API serves: the workers register their views
from it, so the document cannot name a route that does not exist, nor miss one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streams.timeseries import models

ERRORS = {
    "400": "a bad parameter or a body that is not JSON",
    "404": "no such series",
    "405": "a method this route does not take",
    "413": "a body or a series over its limit",
    "415": "a body that is not application/json",
    "401": "a missing or wrong X-API-Key (when the server has one)",
    "422": "a body that breaks a rule (detail names the field)",
    "503": "not ready, or the owner of the series unreachable: retry",
}


@dataclass(frozen=True)
class Parameter:
    name: str
    where: str  # "path", "query" or "header"
    description: str
    required: bool = False
    schema: tuple[tuple[str, Any], ...] = (("type", "string"),)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    summary: str
    answers: dict[str, str | None]  # status -> model name (None: no body)
    body: str | None = None  # model name of the request body
    parameters: tuple[Parameter, ...] = field(default_factory=tuple)


SERIES_ID = Parameter("id", "path", "the series' id (32 hex digits)", required=True)


def _integer(low: int, high: int) -> tuple[tuple[str, Any], ...]:
    return (("type", "integer"), ("minimum", low), ("maximum", high))


IDEMPOTENCY = Parameter(
    "Idempotency-Key", "header", "a retried request with the same key is applied once"
)
RANGE = (
    Parameter("start", "query", "first time included: ISO 8601 with an offset, or Unix seconds"),
    Parameter("end", "query", "first time excluded"),
)
PAGE = (
    Parameter(
        "limit",
        "query",
        "points per page (default and cap: the server's page limit)",
        schema=_integer(1, 10_000),
    ),
    Parameter("cursor", "query", "the next field of the previous page"),
    Parameter(
        "format",
        "query",
        "rows (default) or columns",
        schema=(("type", "string"), ("enum", ["rows", "columns"])),
    ),
)
FORECAST = (
    Parameter("horizon", "query", "points to forecast", required=True, schema=_integer(1, 10_000)),
    Parameter("level", "query", "interval levels in percent, comma-separated (default 80,95)"),
    Parameter(
        "season",
        "query",
        "points per season (0: none; absent: detected)",
        schema=_integer(0, 10_000),
    ),
)
LISTING = (
    Parameter("limit", "query", "series per page (default 100)", schema=_integer(1, 10_000)),
    Parameter("cursor", "query", "the next field of the previous page"),
)

ROUTES: tuple[Route, ...] = (
    Route(
        "post", "/series", "Create a series, with points or none",
        {"201": "Written"}, body="CreateSeries", parameters=(IDEMPOTENCY,),
    ),
    Route(
        "post", "/series/{id}/points", "Append points (the last value of a time wins)",
        {"200": "Written"}, body="AppendPoints", parameters=(SERIES_ID, IDEMPOTENCY),
    ),
    Route(
        "get", "/series", "The count of series stored, and a page of them in id order",
        {"200": "SeriesList"}, parameters=LISTING,
    ),
    Route(
        "get", "/series/{id}", "The series' points in a range, page by page",
        {"200": "PageRows|PageColumns"}, parameters=(SERIES_ID, *RANGE, *PAGE),
    ),
    Route(
        "get", "/series/{id}/metrics", "Count, extremes, mean, spread, percentiles, trend",
        {"200": "SeriesMetrics"}, parameters=(SERIES_ID, *RANGE),
    ),
    Route(
        "get", "/series/{id}/forecast", "Future points with prediction intervals",
        {"200": "ForecastAnswer"}, parameters=(SERIES_ID, *FORECAST),
    ),
    Route(
        "delete", "/series/{id}", "Delete a series; afterwards 404 everywhere",
        {"204": None}, parameters=(SERIES_ID, IDEMPOTENCY),
    ),
    Route("get", "/openapi.json", "This document", {"200": "Document"}),
)  # fmt: skip


def document(version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``ROUTES``."""
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Time-series API", "version": version},
        "paths": paths,
        "components": {"schemas": _schemas()},
    }


def _operation(route: Route) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, model in route.answers.items():
        responses[status] = {"description": "success"}
        if model is not None:
            responses[status]["content"] = _json(model)
    for status, why in ERRORS.items():
        responses.setdefault(status, {"description": why, "content": _json("Error")})
    operation: dict[str, Any] = {
        "summary": route.summary,
        "operationId": f"{route.method}_{route.path}".replace("/", "_").strip("_"),
        "parameters": [_parameter(p) for p in route.parameters],
        "responses": responses,
    }
    if route.body is not None:
        operation["requestBody"] = {"required": True, "content": _json(route.body)}
    return operation


def _json(model: str) -> dict[str, Any]:
    """``Name`` or ``A|B`` (one of them) as a response's or body's content."""
    refs = [{"$ref": f"#/components/schemas/{name}"} for name in model.split("|")]
    return {"application/json": {"schema": refs[0] if len(refs) == 1 else {"oneOf": refs}}}


def _parameter(parameter: Parameter) -> dict[str, Any]:
    described = {
        "name": parameter.name,
        "in": parameter.where,
        "required": parameter.required,
        "description": parameter.description,
        "schema": dict(parameter.schema),
    }
    if parameter.where == "query" and not parameter.required:
        described["allowEmptyValue"] = True  # ?limit= is the same as no limit
    return described


def _schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for name, model in models.model_schemas().items():
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[name] = schema
    return schemas
