"""What each pipeline exports, and helpers to read its rules and dashboard.

A `Pipeline` names its dashboard, rule file and rule tests (all by the pipeline's name),
and the series each of its Prometheus jobs exports. The tests run every check once per
pipeline in PIPELINES: a new pipeline gets them all by being added there.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from streams.common.web import route_latency
from streams.flowlogs import metrics as flowlogs_metrics
from streams.launches import metrics as launches_metrics
from streams.launches import report as launches_report
from streams.orders import metrics as orders_metrics
from streams.orders.logic import REASONS
from streams.telemetry import metrics as telemetry_metrics
from streams.timeseries import metrics as timeseries_metrics
from streams.timeseries.commands import OPS as TIMESERIES_OPS
from tests.support.prometheus import alert_expressions, dashboard_queries, recording_expressions

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "dashboards" / "prometheus"
COMPOSE_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
GRAFANA_DIR = ROOT / "dashboards" / "grafana"
DASHBOARDS = sorted((GRAFANA_DIR / "dashboards").glob("*.json"))
DATASOURCE_UID = "prometheus"
#: Where Compose runs every pipeline process's web server (and /metrics).
WEB_PORT = 6066

# The metric contract of the orders pipeline, as queried (counters with `_total`).
ORDERS_COUNTERS = [
    "streams_orders_received_total",
    "streams_orders_accepted_total",
    "streams_orders_revenue_usd_total",
    "streams_orders_duplicates_total",
    "streams_orders_dead_letters_total",
    "streams_orders_late_accepted_total",
    "streams_orders_quality_issues_total",
    "streams_orders_reports_total",
    "streams_orders_alerts_total",
    "streams_orders_batch_failures_total",
    "streams_orders_task_failures_total",
]
ORDERS_GAUGES = [
    "streams_orders_stream_time_seconds",
    "streams_orders_low_stock_products",
    "streams_orders_view_records",
    "streams_orders_anomaly_zscore",
]
ORDERS_HISTOGRAMS = [
    "streams_orders_processing_latency_seconds",
    "streams_orders_batch_size",
]
# Faust's sensor metrics, from faust.sensors.prometheus.FaustMetrics.create(registry, "faust").
FAUST_COUNTERS = [
    "faust_messages_received_total",
    "faust_messages_received_per_topic_total",
    "faust_total_events_total",
    "faust_total_events_per_stream_total",
    "faust_table_operations_total",
    "faust_topic_messages_sent_total",
    "faust_total_sent_messages_total",
    "faust_total_error_messages_sent_total",
    "faust_assignment_operations_total",
    "faust_http_status_codes_total",
]
FAUST_GAUGES = [
    "faust_active_messages",
    "faust_messages_received_per_topics_partition",
    "faust_total_active_events",
    "faust_total_rebalances",
    "faust_total_rebalances_recovering",
    "faust_metrics_by_name",
    "faust_topic_partition_end_offset",
    "faust_topic_partition_offset_commited",
]
FAUST_HISTOGRAMS = [
    "faust_events_runtime_ms",
    "faust_producer_send_latency",
    "faust_producer_error_send_latency",
    "faust_assign_latency",
    "faust_rebalance_done_consumer_latency",
    "faust_rebalance_done_latency",
    "faust_http_latency",
    "faust_consumer_commit_latency",
]
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")
# The series a metric family is queried by, per prometheus_client type.
SERIES_SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": HISTOGRAM_SERIES}
CHANNELS = ("web", "mobile", "api")
STATUSES = ("confirmed", "pending", "cancelled")
SEVERITIES = {"critical", "warning", "info"}


def series_names(
    counters: Iterable[str] = (), gauges: Iterable[str] = (), histograms: Iterable[str] = ()
) -> frozenset[str]:
    """Series names as queried: counters and gauges as given, histograms' three series."""
    return frozenset(
        {*counters, *gauges, *(name + suffix for name in histograms for suffix in HISTOGRAM_SERIES)}
    )


def exported_series(create: Callable[[CollectorRegistry], object]) -> frozenset[str]:
    """Series names as queried of every metric `create` registers (in a throwaway registry)."""
    registry = CollectorRegistry()
    create(registry)
    return frozenset(
        family.name + suffix
        for family in registry.collect()
        for suffix in SERIES_SUFFIXES[family.type]
    )


FAUST = series_names(FAUST_COUNTERS, FAUST_GAUGES, FAUST_HISTOGRAMS)


@dataclass(frozen=True)
class Pipeline:
    """A pipeline's observability assets and the metric contract they are checked against."""

    name: str
    title: str
    rows: tuple[str, ...]
    #: Prometheus job -> the pipeline's own series its targets export. The dashboard shows
    #: each of them, and every query selects them with that job.
    jobs: Mapping[str, frozenset[str]]
    #: (series, label) -> every value the code emits, read from the code.
    label_values: Mapping[tuple[str, str], tuple[str, ...]]
    #: Jobs of `jobs` no Compose service is scraped for: a process that exits and pushes
    #: its series with this job label (kept by scraping the Pushgateway with honor_labels).
    pushed: tuple[str, ...] = ()

    @property
    def scraped_jobs(self) -> list[str]:
        """The jobs Prometheus scrapes the pipeline's own processes for."""
        return [job for job in self.jobs if job not in self.pushed]

    @property
    def dashboard(self) -> Path:
        return GRAFANA_DIR / "dashboards" / f"{self.name}.json"

    @property
    def rules(self) -> Path:
        return PROMETHEUS_DIR / "rules" / f"{self.name}.yml"

    @property
    def rule_tests(self) -> Path:
        return PROMETHEUS_DIR / "tests" / f"{self.name}.test.yml"

    @property
    def contract(self) -> frozenset[str]:
        """Every series its dashboard and rules may name: its own, Faust's and `up`."""
        return frozenset({"up", *FAUST}.union(*self.jobs.values()))

    def recorded(self) -> dict[str, str]:
        """Recorded series name -> PromQL, for each recording rule of the pipeline."""
        return dict(recording_expressions(self.rules))

    def expressions(self) -> list[tuple[str, str]]:
        """(where, PromQL) for every dashboard query and rule of the pipeline."""
        rules = recording_expressions(self.rules) + alert_expressions(self.rules)
        return [
            (f"{self.dashboard.name}: {title}", expr)
            for title, expr in dashboard_queries(self.dashboard)
        ] + [(f"{self.rules.name}: {name}", expr) for name, expr in rules]

    def test_series(self) -> list[tuple[str, str]]:
        """(test name, series) for every input series of the pipeline's promtool tests."""
        return [
            (case["name"], series["series"])
            for case in load_yaml(self.rule_tests)["tests"]
            for series in case.get("input_series", [])
        ]


ORDERS = Pipeline(
    name="orders",
    title="Orders",
    rows=("Business", "Data quality", "Operations"),
    jobs={
        "orders": series_names(ORDERS_COUNTERS, ORDERS_GAUGES, ORDERS_HISTOGRAMS)
        | exported_series(lambda registry: route_latency(registry, orders_metrics.PREFIX))
    },
    label_values={
        ("streams_orders_dead_letters_total", "reason"): REASONS,
        ("streams_orders_alerts_total", "kind"): orders_metrics.ALERT_KINDS,
        ("streams_orders_task_failures_total", "task"): orders_metrics.TASKS,
    },
)
TELEMETRY = Pipeline(
    name="telemetry",
    title="Telemetry",
    rows=("Ingest", "Processing", "Windows and anomalies"),
    jobs={
        "telemetry": exported_series(telemetry_metrics.WorkerMetrics.create)
        | exported_series(lambda registry: route_latency(registry, telemetry_metrics.PREFIX)),
        "telemetry-ingest": exported_series(telemetry_metrics.IngestMetrics.create),
    },
    label_values={
        ("streams_telemetry_dead_letters_total", "reason"): telemetry_metrics.DEAD_LETTER_REASONS,
        ("streams_telemetry_windows_closed_total", "trigger"): telemetry_metrics.CLOSE_TRIGGERS,
        ("streams_telemetry_alerts_total", "kind"): telemetry_metrics.ALERT_KINDS,
        ("streams_telemetry_ingest_requests_total", "status"): telemetry_metrics.INGEST_STATUSES,
        ("streams_telemetry_task_failures_total", "task"): telemetry_metrics.TASKS,
    },
)
FLOWLOGS = Pipeline(
    name="flowlogs",
    title="Flow logs",
    rows=("Reader", "Data quality", "Detection", "Operations"),
    jobs={
        "flowlogs": exported_series(flowlogs_metrics.WorkerMetrics.create)
        | exported_series(lambda registry: route_latency(registry, flowlogs_metrics.PREFIX)),
        "flowlogs-reader": exported_series(flowlogs_metrics.ReaderMetrics.create),
    },
    label_values={
        # reason_label() sends a reason outside DEAD_LETTER_REASONS as "other".
        ("streams_flowlogs_dead_letters_total", "reason"): (
            *flowlogs_metrics.DEAD_LETTER_REASONS,
            flowlogs_metrics.reason_label("unknown"),
        ),
        ("streams_flowlogs_worker_dead_letters_total", "reason"): (
            flowlogs_metrics.WORKER_DEAD_LETTER_REASONS
        ),
        ("streams_flowlogs_objects_total", "outcome"): flowlogs_metrics.OBJECT_OUTCOMES,
        ("streams_flowlogs_alerts_total", "kind"): flowlogs_metrics.ALERT_KINDS,
        ("streams_flowlogs_task_failures_total", "task"): flowlogs_metrics.TASKS,
        ("streams_flowlogs_worker_task_failures_total", "task"): flowlogs_metrics.TASKS,
    },
)
TIMESERIES = Pipeline(
    name="timeseries",
    title="Time series",
    rows=("API", "Writes", "Operations"),
    # Metrics.create builds the request histogram (route_latency) with the rest.
    jobs={"timeseries": exported_series(timeseries_metrics.Metrics.create)},
    label_values={
        ("streams_timeseries_commands_applied_total", "op"): TIMESERIES_OPS,
        # batch.py dead-letters records that are no command; the batch runner those that
        # fail alone on every retry.
        ("streams_timeseries_dead_letters_total", "reason"): timeseries_metrics.DEAD_LETTER_REASONS,
        ("streams_timeseries_task_failures_total", "task"): timeseries_metrics.TASKS,
    },
)
LAUNCHES_SERIES = exported_series(launches_metrics.Metrics.create)
LAUNCHES = Pipeline(
    name="launches",
    title="SpaceX launches",
    rows=("Object", "Loads and records", "Operations"),
    # Both ways of running it export the same names (one Metrics.create): the worker,
    # scraped, and the batch job, pushed under its own job. The batch job reports the
    # worker-only series (failure counters, the last record applied) at 0: they are not
    # its series on the dashboard.
    jobs={
        "launches": LAUNCHES_SERIES,
        launches_report.JOB: LAUNCHES_SERIES
        - {
            "streams_launches_task_failures_total",
            "streams_launches_batch_failures_total",
            "streams_launches_last_record_timestamp_seconds",
        },
    },
    label_values={
        ("streams_launches_records_rejected_total", "reason"): launches_metrics.REJECTION_REASONS,
        ("streams_launches_loads_total", "result"): (
            launches_metrics.WRITTEN,
            launches_metrics.UNCHANGED,
        ),
        ("streams_launches_task_failures_total", "task"): launches_metrics.TASKS,
    },
    pushed=(launches_report.JOB,),
)
PIPELINES = (ORDERS, TELEMETRY, FLOWLOGS, TIMESERIES, LAUNCHES)
each_pipeline = pytest.mark.parametrize("pipeline", PIPELINES, ids=[p.name for p in PIPELINES])


def promtool(*args: str | Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run promtool with `args` (and `stdin` as its input, e.g. for `check metrics`)."""
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool is not on PATH: run `make prometheus` (apt-get install prometheus), "
            "or `make test`, which installs it"
        )
    return subprocess.run(
        [path, *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# A PromQL expression reduced to its metric names: strings, label matchers, grouping
# clauses, ranges, offsets and numbers go first; identifiers then followed by "(" are
# functions or aggregations, the rest are metric names or keywords.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^}]*\}")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_RANGE = re.compile(r"\[[^\]]*\]")
_OFFSET = re.compile(r"\boffset\s+-?\w+")
_NUMBER = re.compile(r"(?<![\w:.])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_KEYWORDS = {
    "and",
    "or",
    "unless",
    "atan2",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "inf",
    "nan",
}


def metric_names(expr: str) -> set[str]:
    for pattern in (_STRING, _MATCHERS, _GROUPING, _RANGE, _OFFSET, _NUMBER):
        expr = pattern.sub(" ", expr)
    names = set()
    for match in _IDENTIFIER.finditer(expr):
        if expr[match.end() :].lstrip().startswith("("):
            continue
        if match.group().lower() not in _KEYWORDS:
            names.add(match.group())
    return names


_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?")
_MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')


def selectors(expr: str, names: Iterable[str]) -> list[tuple[str, dict[str, tuple[str, str]]]]:
    """Where `expr` selects one of `names`: (name, {label: (operator, value)}) each time."""
    wanted = set(names)
    found = []
    for match in _SELECTOR.finditer(expr):
        if match.group(1) in wanted:
            matchers = {m[0]: (m[1], m[2]) for m in _MATCHER.findall(match.group(2) or "")}
            found.append((match.group(1), matchers))
    return found


def with_recorded(exprs: Iterable[str], recorded: Mapping[str, str]) -> list[str]:
    """`exprs` plus, transitively, the expressions of the recording rules they use."""
    todo, found = list(exprs), []
    seen: set[str] = set()
    while todo:
        expr = todo.pop()
        found.append(expr)
        for name in (metric_names(expr) & recorded.keys()) - seen:
            seen.add(name)
            todo.append(recorded[name])
    return found


def metric_family(sample_name: str) -> str:
    for suffix in (*HISTOGRAM_SERIES, "_total"):
        if sample_name.endswith(suffix):
            return sample_name.removesuffix(suffix)
    return sample_name


def load_yaml(path: Path) -> Any:
    import yaml

    return yaml.safe_load(path.read_text())
