"""The documented shapes (models.py, the OpenAPI document's source) hold the answers the
real code gives, and the bodies it accepts; what it refuses, the models refuse too."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from streams.common.errors import HttpError
from streams.common.exactly_once import PartitionState
from streams.timeseries import models, reads, requests, store
from streams.timeseries.points import Points
from streams.timeseries.stats import metrics

POINTS = Points(np.array([1000, 2500, 4000], np.int64), np.array([1.5, -2.0, 7.25]))


def test_pages_metrics_and_write_answers_fit_their_models() -> None:
    models.PageRows.model_validate(reads.page_answer("a" * 32, POINTS, 5000, "rows"))
    models.PageColumns.model_validate(reads.page_answer("a" * 32, POINTS, None, "columns"))
    models.SeriesMetrics.model_validate(metrics(POINTS))
    models.SeriesMetrics.model_validate(metrics(Points(POINTS.times[:0], POINTS.values[:0])))
    table: dict[str, Any] = {}
    answer = store.apply(
        PartitionState(table), {"op": "create", "id": "b" * 32, "rid": "r", "at": 0}, POINTS, 0
    )
    models.Written.model_validate(answer["body"])


@pytest.mark.parametrize(
    "body",
    [
        {
            "name": "cpu",
            "points": [{"ts": 1, "value": 2.5}, {"ts": "2026-12-03T10:00:00Z", "value": 3}],
        },
        {},
        {"points": []},
    ],
)
def test_bodies_the_api_accepts_fit_the_create_model(body: dict[str, Any]) -> None:
    requests.create(body, key=None, request_id="r", now_ms=0, max_points=10)
    models.CreateSeries.model_validate(body)


@pytest.mark.parametrize(
    "body",
    [
        {"nam": "x"},
        {"points": [{"ts": 1, "value": "1.5"}]},
        {"points": [{"ts": True, "value": 1}]},
        {"points": [{"ts": 1, "value": True}]},
        {"name": 5},
        {"points": [{"ts": 1}]},
        {"points": [{"ts": 1, "value": 1, "x": 0}]},
    ],
)
def test_bodies_the_api_refuses_the_model_refuses(body: dict[str, Any]) -> None:
    with pytest.raises(HttpError) as refused:
        requests.create(body, key=None, request_id="r", now_ms=0, max_points=10)
    models.Error.model_validate(refused.value.body())
    with pytest.raises(ValidationError):
        models.CreateSeries.model_validate(body)


def test_every_model_has_a_json_schema() -> None:
    for name, model in models.model_schemas().items():
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        assert schema["title"] == name
