"""The dashboards and rules against a real Prometheus scraping exporters of the contract."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from streams.orders.metrics import ALERT_KINDS
from tests.dashboards.contract import (
    CHANNELS,
    DASHBOARDS,
    DEAD_LETTER_REASONS,
    RULES,
    STATUSES,
)
from tests.support.prometheus import (
    Prometheus,
    PrometheusError,
    alert_expressions,
    dashboard_queries,
    recording_expressions,
    running_prometheus,
    serving_registry,
)


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
