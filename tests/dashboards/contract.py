"""What the orders workers export, and helpers to read rules and dashboards."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from streams.orders.logic import REASONS

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


def metric_family(sample_name: str) -> str:
    for suffix in (*HISTOGRAM_SERIES, "_total"):
        if sample_name.endswith(suffix):
            return sample_name.removesuffix(suffix)
    return sample_name


def load_yaml(path: Path) -> Any:
    import yaml

    return yaml.safe_load(path.read_text())
