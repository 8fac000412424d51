"""The OpenAPI document built from the routes and models: every reference resolves,
every operation answers its errors in one shape, every route is documented once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from streams.timeseries import models, openapi


def references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


def test_every_reference_resolves_to_a_schema() -> None:
    doc = openapi.document("test")
    schemas = doc["components"]["schemas"]
    refs = set(references(doc))
    assert refs, "the document names its shapes by reference"
    for ref in refs:
        assert ref.startswith("#/components/schemas/")
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


def test_every_route_is_documented_with_its_errors_in_one_shape() -> None:
    doc = openapi.document("test")
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert documented == {(r.method, r.path) for r in openapi.ROUTES}
    assert len(openapi.ROUTES) == len(documented), "a route is declared twice"
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            placeholders = {part[1:-1] for part in path.split("/") if part.startswith("{")}
            in_path = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            assert placeholders == in_path, (method, path)
            for status in openapi.ERRORS:
                schema = operation["responses"][status]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}


def test_request_bodies_and_answers_name_models_that_exist() -> None:
    names = set(models.model_schemas())
    for route in openapi.ROUTES:
        assert route.body is None or route.body in names
        answered = {name for m in route.answers.values() if m is not None for name in m.split("|")}
        assert answered <= names
        assert set(route.answers) <= {"200", "201", "204"}
