"""Dashboards and rules name only what each pipeline's code exports, and all of it."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from tests.dashboards.contract import (
    FAUST,
    Pipeline,
    each_pipeline,
    exported_series,
    metric_family,
    metric_names,
    selectors,
    with_recorded,
)
from tests.support.prometheus import dashboard_queries


def test_metric_name_extraction_sees_through_promql_syntax() -> None:
    """The contract check finds metric names and ignores functions, labels and durations."""
    expr = (
        'sum by (job, le) (rate(a_total{job="orders", x=~"b|c"}[5m] offset 35m))'
        " / on (job) group_left sqrt(clamp_min(b:rec:rate5m, 1e-3 / 300)) > bool 5"
    )

    assert metric_names(expr) == {"a_total", "b:rec:rate5m"}


def test_selectors_find_each_selection_with_its_label_matchers() -> None:
    """selectors lists every selection of the named series with its matchers, and no other."""
    expr = 'sum by (status) (rate(a_total{job="x", status=~"429|503"}[1m])) / b_total + a_total'

    assert selectors(expr, ["a_total"]) == [
        ("a_total", {"job": ("=", "x"), "status": ("=~", "429|503")}),
        ("a_total", {}),
    ]


def test_recording_rules_are_followed_to_the_series_they_read() -> None:
    """with_recorded adds the expression of every recorded series used, transitively."""
    recorded = {"r2": "r1 / 2", "r1": "rate(x_total[5m])", "unused": "y"}

    found = with_recorded(["r2 > 1"], recorded)

    assert sorted(found) == sorted(["r2 > 1", "r1 / 2", "rate(x_total[5m])"])


def test_faust_metric_names_match_faust_sensor() -> None:
    """The Faust names in the contract are exactly those Faust's Prometheus sensor exports."""
    from faust.sensors.prometheus import FaustMetrics

    def create(registry: CollectorRegistry) -> object:
        return FaustMetrics.create(registry, "faust")

    assert exported_series(create) == FAUST


@each_pipeline
def test_dashboard_and_rules_use_only_contract_metrics(pipeline: Pipeline) -> None:
    """Every metric a dashboard query or a rule names is exported by the pipeline or recorded."""
    known = pipeline.contract | pipeline.recorded().keys()
    unknown = [
        (where, name)
        for where, expr in pipeline.expressions()
        for name in metric_names(expr) - known
    ]

    assert not unknown


@each_pipeline
def test_dashboard_shows_every_metric_of_every_job(pipeline: Pipeline) -> None:
    """Each metric the pipeline exports is on its dashboard, selected with its own job."""
    queries = (expr for _, expr in dashboard_queries(pipeline.dashboard))
    shown = with_recorded(queries, pipeline.recorded())

    for job, series in pipeline.jobs.items():
        selected = {
            metric_family(name)
            for expr in shown
            for name, matchers in selectors(expr, series)
            if matchers.get("job") == ("=", job)
        }
        assert {metric_family(name) for name in series} - selected == set(), job


@each_pipeline
def test_pipeline_series_are_always_selected_with_their_job(pipeline: Pipeline) -> None:
    """Every selection of a pipeline series, in queries, rules and rule tests, names its job."""
    places = pipeline.expressions() + pipeline.test_series()
    # A series two jobs export (launches: the worker's and the batch job's) names either.
    jobs: dict[str, set[tuple[str, str]]] = {}
    for job, series in pipeline.jobs.items():
        for name in series:
            jobs.setdefault(name, set()).add(("=", job))
    wrong = [
        (where, name, matchers.get("job"))
        for where, expr in places
        for name, matchers in selectors(expr, jobs)
        if matchers.get("job") not in jobs[name]
    ]

    assert not wrong


@each_pipeline
def test_label_values_are_those_the_code_emits(pipeline: Pipeline) -> None:
    """Label matchers in queries, rules and rule tests use only values the code emits."""
    places = pipeline.expressions() + pipeline.test_series()
    recorded = pipeline.recorded()
    reads = {
        name: metric_names(" ".join(with_recorded([expr], recorded)))
        for name, expr in recorded.items()
    }

    def carriers(series: str) -> set[str]:
        """The series itself and every recorded series computed from it."""
        return {series} | {name for name, read in reads.items() if series in read}

    unknown = [
        (where, label, value)
        for (series, label), values in pipeline.label_values.items()
        for where, expr in places
        for _, matchers in selectors(expr, carriers(series))
        if label in matchers
        for value in matchers[label][1].split("|")
        if value not in values
    ]

    assert {series for series, _ in pipeline.label_values} <= pipeline.contract
    assert not unknown
