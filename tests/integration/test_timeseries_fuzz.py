"""The time-series API fuzzed from its own OpenAPI document (schemathesis) on live workers,
and the methods each documented route answers checked against the document.

Every answer must be one the document describes: a documented status and content type, a
body of the documented schema, and never a 5xx (not even the documented 503: the workers
are serving and no rebalance is under way). Requests the document calls invalid must be
refused. Cases are drawn from a fixed seed (``derandomize``), so a failure found here is
found again in CI; a failure is reported with the request (as curl) and the answer.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, BaseSchema, Case, CheckFunction, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.timeseries import Answer, TimeSeriesWorkers, call, serving
from tests.support.workers import Worker

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

Operation = APIOperation[Any, Any, Any, Any]
AnyCase = Case[Any]

ENV = {"TIMESERIES_PARTITIONS": "4"}
#: What every answer is checked for; schemathesis' other default checks judge the API by
#: rules the document does not state (that any schema-valid body is accepted, say).
CHECKS: list[CheckFunction] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,  # negative cases only: a request the document forbids is refused
]
FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,  # a fixed seed: CI draws the same cases every run
    database=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    print_blob=False,
)
#: Every method a client may send to a path (CONNECT names no path).
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")
HOUR = 3600
START = 1_767_225_600  # 2026-01-01T00:00:00Z


def start_serving(timeseries: TimeSeriesWorkers, count: int) -> list[Worker]:
    workers = [timeseries.start(ENV) for _ in range(count)]
    for worker in workers:
        serving(worker)
    return workers


def created(url: str, body: dict[str, Any]) -> str:
    answer = call(url + "/series", "POST", body)
    assert answer.status == 201, answer
    series_id: str = answer.body["id"]
    return series_id


def seed(url: str) -> tuple[list[str], str]:
    """Series that exist, for the fuzzer to read and append to: one long enough to
    forecast (hourly, a daily season), one of two points, one empty; and one for DELETE."""
    seasonal = [
        {"ts": START + i * HOUR, "value": 10 + 5 * math.sin(2 * math.pi * i / 24) + i / 50}
        for i in range(24 * 7)
    ]
    two = [{"ts": START, "value": 1}, {"ts": "2026-01-01T01:00:00Z", "value": 2.5}]
    ids = [
        created(url, {"name": "seasonal", "points": seasonal}),
        created(url, {"name": "two", "points": two}),
        created(url, {}),
    ]
    return ids, created(url, {"name": "to delete", "points": seasonal[:3]})


def fetch_schema(url: str) -> tuple[dict[str, Any], BaseSchema]:
    answer = call(url + "/openapi.json")
    assert answer.status == 200, answer
    document: dict[str, Any] = answer.body
    # A copy: the loader may rewrite what it is given.
    return document, schemathesis.openapi.from_dict(json.loads(json.dumps(document)))


def operations(schema: BaseSchema) -> list[Operation]:
    """The document's operations."""
    found: list[Operation] = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):  # an operation schemathesis cannot read is a finding too
            raise result.err()
        found.append(result.ok())
    assert found, "the document names no operation"
    return found


def cases(
    operation: Operation, ids: Sequence[str], modes: Sequence[GenerationMode]
) -> st.SearchStrategy[AnyCase]:
    """Cases of ``operation``: all generated, and for a path with an id, as many again on
    the ids of real series (a generated id is almost never one)."""
    strategies: list[st.SearchStrategy[AnyCase]] = []
    takes_input = bool(operation.body) or any(True for _ in operation.iter_parameters())
    for mode in modes:
        if mode is GenerationMode.NEGATIVE and not takes_input:
            continue  # nothing to make invalid
        strategies.append(operation.as_strategy(generation_mode=mode))
        if "{id}" in operation.path:
            strategies.extend(
                operation.as_strategy(generation_mode=mode, path_parameters={"id": series_id})
                for series_id in ids
            )
    return st.one_of(strategies)


def fuzz(
    schema: BaseSchema,
    urls: Sequence[str],
    ids: Sequence[str],
    doomed: str,
    *,
    examples: int,
    modes: Sequence[GenerationMode] = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE),
) -> list[str]:
    """Each operation's boundary cases, then its generated ones, sent to ``urls`` in turn;
    the failures, described."""
    failures: list[str] = []
    turn = itertools.count()
    with requests.Session() as session:

        def send(case: AnyCase) -> None:
            url = urls[next(turn) % len(urls)]
            case.call_and_validate(base_url=url, session=session, checks=CHECKS, timeout=30)

        for operation in operations(schema):
            label = f"{operation.method.upper()} {operation.path}"
            # DELETE gets a series of its own: the others keep theirs.
            real = [doomed] if operation.method.upper() == "DELETE" else ids
            failures.extend(
                f"{label} (boundary case): {found}"
                for found in boundary(operation, real[0], modes, send)
            )
            # Bodies get more cases: a bad point hides behind the first bad one. DELETE gets
            # fewer: after the first, its real series is gone like the generated ones.
            budget = examples * 3 if operation.body else examples
            if operation.method.upper() == "DELETE":
                budget = examples // 2

            @settings(FUZZ, max_examples=budget)
            @given(case=cases(operation, real, modes))
            def generated(case: AnyCase) -> None:
                send(case)

            try:
                generated()
            # Schemathesis' FailureGroup is a BaseExceptionGroup, not an Exception.
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{label}:\n{describe(exc)}")
    return failures


def boundary(
    operation: Operation,
    real_id: str,
    modes: Sequence[GenerationMode],
    send: Callable[[AnyCase], None],
) -> list[str]:
    """Schemathesis' coverage phase: the document's boundary values (empty strings, each
    wrong type, a missing field, another content type, every unexpected method) sent once,
    and once more on a real series' id; the failures, one report per kind."""
    schema = operation.schema
    config = schema.config.generation_for(operation=operation, phase="coverage")
    found: dict[tuple[str, ...], str] = {}
    rounds = [None, real_id] if "{id}" in operation.path else [None]
    for series_id in rounds:
        for case in schema.iter_coverage_cases(
            operation, generation_modes=list(modes), generation_config=config
        ):
            if series_id is not None:
                case.path_parameters = {**case.path_parameters, "id": series_id}
            try:
                send(case)
            except FailureGroup as exc:
                kind = tuple(sorted({failure.title for failure in exc.exceptions}))
                found.setdefault(kind, str(exc))
    return list(found.values())


def describe(exc: BaseException) -> str:
    """The failure with hypothesis' falsifying example and schemathesis' report (curl,
    status, body); each of several distinct failures hypothesis found."""
    lines = [f"{type(exc).__name__}: {exc}", *getattr(exc, "__notes__", [])]
    if isinstance(exc, BaseExceptionGroup) and not isinstance(exc, FailureGroup):
        lines.extend(describe(inner) for inner in exc.exceptions)
    return "\n".join(lines)


def test_the_api_answers_as_its_document_says_to_fuzzed_requests(
    timeseries: TimeSeriesWorkers,
) -> None:
    """Positive and negative cases of every operation, on one worker: no 5xx, every answer
    documented (status, content type, schema), every invalid request refused."""
    (worker,) = start_serving(timeseries, 1)
    ids, doomed = seed(worker.url)
    _, schema = fetch_schema(worker.url)
    failures = fuzz(schema, [worker.url], ids, doomed, examples=40)
    assert not failures, "\n\n".join(failures)
    assert worker.alive()


def test_two_workers_answer_fuzzed_requests_as_the_document_says(
    timeseries: TimeSeriesWorkers,
) -> None:
    """Requests alternate between two workers, so reads of a series the other worker owns
    are forwarded and writes sent through the other's partitions: the answers obey the
    document all the same."""
    first, second = start_serving(timeseries, 2)
    ids, doomed = seed(first.url)
    _, schema = fetch_schema(second.url)
    failures = fuzz(
        schema,
        [first.url, second.url],
        ids,
        doomed,
        examples=10,
        modes=(GenerationMode.POSITIVE,),
    )
    assert not failures, "\n\n".join(failures)
    assert first.alive() and second.alive()


def header(answer: Answer, name: str) -> str:
    return {key.lower(): value for key, value in answer.headers.items()}.get(name.lower(), "")


def is_json(answer: Answer) -> bool:
    return header(answer, "Content-Type").split(";", 1)[0].strip() == "application/json"


def allow(answer: Answer) -> set[str]:
    return {
        method.strip().upper() for method in header(answer, "Allow").split(",") if method.strip()
    }


def misfits(
    allowed: set[str], operation: dict[str, Any] | None, answer: Answer, *, head: bool
) -> list[str]:
    """What ``answer`` to a method the path documents (``operation``) or not (None) gets
    wrong; ``allowed``: the methods the path documents, with HEAD for GET."""
    if operation is not None:
        statuses = sorted(operation["responses"])
        return [
            what
            for ok, what in (
                (answer.status != 405, "a documented method refused"),
                (str(answer.status) in statuses, f"a status in {statuses}"),
                (answer.status < 500, "no server error"),
                # Every 404 is JSON: a series' and a path the worker lacks.
                (answer.status != 404 or is_json(answer), "a JSON 404 (no such series)"),
            )
            if not ok
        ]
    body_ok = isinstance(answer.body, dict) and isinstance(answer.body.get("error"), str)
    return [
        what
        for ok, what in (
            (answer.status == 405, "405"),
            (allow(answer) == allowed, f"Allow: {', '.join(sorted(allowed))}"),
            (is_json(answer), "application/json"),
            (head or body_ok, 'a body {"error": ...}'),
        )
        if not ok
    ]


def test_every_documented_route_answers_and_other_methods_are_a_json_405(
    timeseries: TimeSeriesWorkers,
) -> None:
    """What the worker serves is what the document says: each documented (method, path)
    is routed (no 405, no 404 but a series' own), HEAD is answered as GET, and every other
    method is a JSON 405 whose Allow header lists exactly the documented methods (and
    HEAD with GET)."""
    (worker,) = start_serving(timeseries, 1)
    document, _ = fetch_schema(worker.url)
    assert document["paths"], "the document names no path"
    one = [{"ts": START, "value": 1.0}]
    kept, doomed = created(worker.url, {"points": one}), created(worker.url, {})
    bodies = {("POST", "/series"): {}, ("POST", "/series/{id}/points"): {"points": one}}
    problems: list[str] = []
    for path, operations_of_path in document["paths"].items():
        documented = {method.upper() for method in operations_of_path}
        allowed = documented | ({"HEAD"} if "GET" in documented else set())
        for method in METHODS:
            # DELETE takes a series of its own: the other calls find theirs.
            target = worker.url + path.replace("{id}", doomed if method == "DELETE" else kept)
            body = bodies.get((method, path))
            answer = call(target, method, body) if body is not None else call(target, method)
            operation = operations_of_path.get("get" if method == "HEAD" else method.lower())
            wrong = misfits(
                allowed, operation if method in allowed else None, answer, head=method == "HEAD"
            )
            if wrong:
                problems.append(
                    f"{method} {path}: expected {'; '.join(wrong)}; got {answer.status} "
                    f"Content-Type={header(answer, 'Content-Type')!r} "
                    f"Allow={header(answer, 'Allow')!r} body={answer.body!r}"
                )
    assert not problems, "\n".join(problems)
