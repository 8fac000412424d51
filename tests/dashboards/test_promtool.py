"""Prometheus config, alert rules and the Grafana dashboard for the orders pipeline."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from streams.orders.logic import REASONS
from streams.orders.metrics import ALERT_KINDS
from tests.support.prometheus import (
    Prometheus,
    PrometheusError,
    alert_expressions,
    dashboard_queries,
    iter_panels,
    recording_expressions,
    running_prometheus,
    serving_registry,
)

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "dashboards" / "prometheus"
COMPOSE_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULES = PROMETHEUS_DIR / "rules" / "orders.yml"
RULE_TESTS = PROMETHEUS_DIR / "tests" / "orders.test.yml"
GRAFANA_DIR = ROOT / "dashboards" / "grafana"
DASHBOARDS = sorted((GRAFANA_DIR / "dashboards").glob("*.json"))
ORDERS_DASHBOARD = GRAFANA_DIR / "dashboards" / "orders.json"
DATASOURCE_UID = "prometheus"

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
]
ORDERS_GAUGES = [
    "streams_orders_stream_time_seconds",
    "streams_orders_low_stock_products",
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
CONTRACT = {
    "up",
    *ORDERS_COUNTERS,
    *ORDERS_GAUGES,
    *FAUST_COUNTERS,
    *FAUST_GAUGES,
    *(
        name + suffix
        for name in ORDERS_HISTOGRAMS + FAUST_HISTOGRAMS
        for suffix in HISTOGRAM_SERIES
    ),
}
CHANNELS = ("web", "mobile", "api")
STATUSES = ("confirmed", "pending", "cancelled")
# The pipeline's own label values, read from the code that emits them.
DEAD_LETTER_REASONS = REASONS
SEVERITIES = {"critical", "warning", "info"}


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool is not on PATH: run `make prometheus` (apt-get install prometheus), "
            "or `make test`, which installs it"
        )
    return subprocess.run(
        [path, *map(str, args)], capture_output=True, text=True, timeout=120, check=False
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


def test_metric_name_extraction_sees_through_promql_syntax() -> None:
    """The contract check finds metric names and ignores functions, labels and durations."""
    expr = (
        'sum by (job, le) (rate(a_total{job="orders", x=~"b|c"}[5m] offset 35m))'
        " / on (job) group_left sqrt(clamp_min(b:rec:rate5m, 1e-3 / 300)) > bool 5"
    )

    assert metric_names(expr) == {"a_total", "b:rec:rate5m"}


# --- promtool -----------------------------------------------------------------------


def test_compose_config_is_valid_with_its_rule_files(tmp_path: Path) -> None:
    """The compose Prometheus config passes promtool and finds its rules relative to itself."""
    # Checked on a copy of the directory as Compose mounts it (/etc/prometheus), which
    # proves the relative `rules/*.yml` needs nothing outside that directory.
    mounted = shutil.copytree(PROMETHEUS_DIR, tmp_path / "etc-prometheus")

    result = promtool("check", "config", mounted / "prometheus.yml")

    assert result.returncode == 0, result.stdout + result.stderr
    found = re.search(r"SUCCESS: (\d+) rule files found", result.stdout + result.stderr)
    assert found, result.stdout + result.stderr
    assert int(found.group(1)) == len(list((PROMETHEUS_DIR / "rules").glob("*.yml")))


def test_rules_are_valid() -> None:
    """promtool accepts every rule file."""
    rule_files = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))

    result = promtool("check", "rules", *rule_files)

    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass() -> None:
    """Each alert fires on its synthetic series and stays silent on a healthy one."""
    result = promtool("test", "rules", RULE_TESTS)

    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_severity_and_annotations() -> None:
    """Every alert carries a known severity label and summary and description annotations."""
    rules = [rule for group in _yaml(RULES)["groups"] for rule in group["rules"] if "alert" in rule]

    assert rules
    for rule in rules:
        assert rule.get("labels", {}).get("severity") in SEVERITIES, rule["alert"]
        assert rule.get("annotations", {}).get("summary"), rule["alert"]
        assert rule.get("annotations", {}).get("description"), rule["alert"]


def test_every_alert_is_unit_tested() -> None:
    """Every alert in the rule file appears in the promtool unit tests."""
    tested = {
        case["alertname"]
        for group in _yaml(RULE_TESTS)["tests"]
        for case in group.get("alert_rule_test", [])
    }

    assert {name for name, _ in alert_expressions(RULES)} <= tested


# --- the dashboard JSON ---------------------------------------------------------------


def test_dashboards_are_well_formed() -> None:
    """Each dashboard has a title, a uid, unique panel ids and queries only our datasource."""
    assert DASHBOARDS
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        assert dashboard.get("title"), path.name
        assert dashboard.get("uid"), path.name
        panels = list(iter_panels(dashboard))
        ids = [panel.get("id") for panel in panels]
        assert None not in ids, path.name
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
        for panel in panels:
            assert panel.get("title"), f"{path.name}: panel {panel['id']} has no title"
            if panel.get("type") == "row":
                continue
            assert panel.get("datasource", {}).get("uid") == DATASOURCE_UID, panel["title"]
            assert panel.get("targets"), panel["title"]
            for target in panel["targets"]:
                assert target.get("datasource", {}).get("uid") == DATASOURCE_UID, panel["title"]
                assert target.get("expr"), panel["title"]


def test_orders_dashboard_has_its_rows_and_panels_do_not_overlap() -> None:
    """The Orders dashboard has the Business, Data quality and Operations rows on a clean grid."""
    dashboard = json.loads(ORDERS_DASHBOARD.read_text())
    panels = list(iter_panels(dashboard))

    assert (dashboard["uid"], dashboard["title"]) == ("orders", "Orders")
    rows = [panel["title"] for panel in panels if panel["type"] == "row"]
    assert rows == ["Business", "Data quality", "Operations"]
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        area = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not area & cells, f"{panel['title']} overlaps another panel"
        cells |= area


def test_grafana_provisioning_points_at_prometheus_and_the_dashboards() -> None:
    """Grafana provisions the default Prometheus datasource and loads the dashboard folder."""
    datasources = _yaml(GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml")
    providers = _yaml(GRAFANA_DIR / "provisioning" / "dashboards" / "provider.yml")

    [datasource] = datasources["datasources"]
    assert datasource["uid"] == DATASOURCE_UID
    assert datasource["url"] == "http://prometheus:9090"
    assert datasource["isDefault"] is True
    [provider] = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def test_dashboards_and_rules_use_only_contract_metrics() -> None:
    """Every metric named by a dashboard query or a rule is in the pipeline's metric contract."""
    recorded = {name for name, _ in recording_expressions(RULES)}
    unknown = []
    for path in DASHBOARDS:
        for title, expr in dashboard_queries(path):
            unknown += [(path.name, title, name) for name in metric_names(expr) - CONTRACT]
    for name, expr in recording_expressions(RULES) + alert_expressions(RULES):
        unknown += [
            (RULES.name, name, metric) for metric in metric_names(expr) - CONTRACT - recorded
        ]

    assert not unknown


def test_faust_metric_names_match_faust_sensor() -> None:
    """The Faust names in the contract are exactly those Faust's Prometheus sensor exports."""
    from faust.sensors.prometheus import FaustMetrics

    registry = CollectorRegistry()
    FaustMetrics.create(registry, "faust")
    exported = {
        sample.name
        for family in registry.collect()
        for sample in family.samples
        if not sample.name.endswith("_created")
    }
    expected = {
        *FAUST_COUNTERS,
        *FAUST_GAUGES,
        *(name + suffix for name in FAUST_HISTOGRAMS for suffix in HISTOGRAM_SERIES),
    }

    # Labelled metrics export no sample before their first use: compare family names too.
    families = {family.name for family in registry.collect()}
    assert exported <= expected
    assert {_family(name) for name in expected} == families


# --- the queries against a real Prometheus ------------------------------------------


def contract_registry(stream_time: float) -> CollectorRegistry:
    """A registry exporting the whole orders metric contract with a child per label value."""
    from faust.sensors.prometheus import FaustMetrics

    registry = CollectorRegistry()

    def counter(name: str, labels: tuple[str, ...] = ()) -> Counter:
        return Counter(name, name, labels, registry=registry)

    counter("streams_orders_received_total").inc(100)
    counter("streams_orders_duplicates_total").inc(2)
    counter("streams_orders_late_accepted_total").inc(1)
    accepted = counter("streams_orders_accepted_total", ("channel", "status"))
    revenue = counter("streams_orders_revenue_usd_total", ("channel",))
    dead = counter("streams_orders_dead_letters_total", ("reason",))
    quality = counter("streams_orders_quality_issues_total", ("check",))
    reports = counter("streams_orders_reports_total", ("kind",))
    alerts = counter("streams_orders_alerts_total", ("kind",))
    zscore = Gauge("streams_orders_anomaly_zscore", "z", ("channel", "measure"), registry=registry)
    for channel in CHANNELS:
        revenue.labels(channel=channel).inc(250.0)
        for status in STATUSES:
            accepted.labels(channel=channel, status=status).inc(10)
        for measure in ("orders", "revenue"):
            zscore.labels(channel=channel, measure=measure).set(0.5)
    for reason in DEAD_LETTER_REASONS:
        dead.labels(reason=reason).inc(0)
    for check in ("missing_city", "customer_unknown_format"):
        quality.labels(check=check).inc(1)
    for kind in ("final", "revision"):
        reports.labels(kind=kind).inc(0)
    for kind in ALERT_KINDS:
        alerts.labels(kind=kind).inc(0)
    Gauge("streams_orders_low_stock_products", "low", registry=registry).set(2)
    Gauge("streams_orders_stream_time_seconds", "wm", registry=registry).set(stream_time)
    Histogram("streams_orders_processing_latency_seconds", "latency", registry=registry).observe(
        0.2
    )
    Histogram(
        "streams_orders_batch_size", "batch", buckets=(1, 10, 100, 1000), registry=registry
    ).observe(20)

    faust = FaustMetrics.create(registry, "faust")
    faust.topic_partition_end_offset.labels(topic="orders.raw", partition=0).set(120)
    faust.topic_partition_offset_commited.labels(topic="orders.raw", partition=0).set(100)
    faust.total_events.inc(100)
    faust.events_runtime_latency.observe(3.0)
    return registry


@pytest.fixture(scope="module")
def contract_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """A real Prometheus with the orders rules scraping two fake workers serving the contract."""
    now = time.time()
    with (
        serving_registry(contract_registry(now)) as worker_1,
        serving_registry(contract_registry(now)) as worker_2,
        running_prometheus(
            {"orders": [worker_1, worker_2]}, [RULES], tmp_path_factory.mktemp("contract")
        ) as prom,
    ):
        # rate() needs two samples per series: wait for the third scrape of each worker.
        prom.wait_for('min(count_over_time(up{job="orders"}[1m])) >= 3', timeout=30)
        yield prom


@pytest.mark.integration
def test_every_dashboard_query_parses_in_prometheus(contract_prometheus: Prometheus) -> None:
    """A real Prometheus accepts every dashboard query and rule expression (no HTTP 400)."""
    queries = [
        (f"{path.name}: {title}", expr)
        for path in DASHBOARDS
        for title, expr in dashboard_queries(path)
    ]
    queries += alert_expressions(RULES) + recording_expressions(RULES)
    errors = []
    for title, expr in queries:
        try:
            contract_prometheus.query(expr)
        except PrometheusError as error:
            errors.append((title, error.http_status, error.error))

    assert queries
    assert not errors


@pytest.mark.integration
def test_every_dashboard_panel_shows_data_from_the_contract(
    contract_prometheus: Prometheus,
) -> None:
    """Scraping workers that export the contract, every dashboard query returns data."""
    empty = [
        (title, expr)
        for path in DASHBOARDS
        for title, expr in dashboard_queries(path)
        if not _has_data(contract_prometheus, expr)
    ]

    assert not empty


@pytest.mark.integration
def test_recording_rules_evaluate_on_contract_data(contract_prometheus: Prometheus) -> None:
    """The recording rules evaluate without error and record the dead-letter ratio and lag."""
    contract_prometheus.wait_for("job:streams_orders_dead_letters:ratio_rate5m")
    lag = contract_prometheus.wait_for('job_topic:faust_consumer_lag:records{topic="orders.raw"}')

    assert float(lag[0]["value"][1]) == 40.0  # two workers, 120 fetched - 100 committed each
    unhealthy = [
        (rule["name"], rule.get("lastError"))
        for group in contract_prometheus.rule_groups()
        for rule in group["rules"]
        if rule["health"] == "err"
    ]
    assert not unhealthy


def _has_data(prom: Prometheus, expr: str) -> bool:
    try:
        return bool(prom.wait_for(expr, timeout=5))
    except TimeoutError:
        return False


def _family(sample_name: str) -> str:
    for suffix in (*HISTOGRAM_SERIES, "_total"):
        if sample_name.endswith(suffix):
            return sample_name.removesuffix(suffix)
    return sample_name


def _yaml(path: Path) -> Any:
    import yaml

    return yaml.safe_load(path.read_text())
