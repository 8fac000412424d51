"""The dashboards and rules against a real Prometheus scraping exporters of the contract."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from streams.common.web import route_latency
from streams.flowlogs import metrics as flowlogs_metrics
from streams.launches import metrics as launches_metrics
from streams.orders.logic import REASONS
from streams.orders.metrics import ALERT_KINDS
from streams.orders.metrics import TASKS as orders_tasks
from streams.telemetry.metrics import IngestMetrics, WorkerMetrics
from streams.timeseries import metrics as timeseries_metrics
from tests.dashboards.contract import CHANNELS, PIPELINES, STATUSES
from tests.support.prometheus import (
    Prometheus,
    PrometheusError,
    dashboard_queries,
    running_prometheus,
    serving_registry,
)


def orders_registry(stream_time: float) -> CollectorRegistry:
    """A registry exporting the whole orders metric contract with a child per label value."""
    from faust.sensors.prometheus import FaustMetrics

    registry = CollectorRegistry()

    def counter(name: str, labels: tuple[str, ...] = ()) -> Counter:
        return Counter(name, name, labels, registry=registry)

    counter("streams_orders_received_total").inc(100)
    counter("streams_orders_duplicates_total").inc(2)
    counter("streams_orders_late_accepted_total").inc(1)
    counter("streams_orders_batch_failures_total").inc(0)
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
    for reason in REASONS:
        dead.labels(reason=reason).inc(0)
    for check in ("missing_city", "customer_unknown_format"):
        quality.labels(check=check).inc(1)
    for kind in ("final", "revision"):
        reports.labels(kind=kind).inc(0)
    for kind in ALERT_KINDS:
        alerts.labels(kind=kind).inc(0)
    failures = counter("streams_orders_task_failures_total", ("task",))
    for task in orders_tasks:
        failures.labels(task=task).inc(0)
    Gauge("streams_orders_low_stock_products", "low", registry=registry).set(2)
    Gauge("streams_orders_view_records", "held", registry=registry).set(2000)
    Gauge("streams_orders_stream_time_seconds", "wm", registry=registry).set(stream_time)
    Histogram("streams_orders_processing_latency_seconds", "latency", registry=registry).observe(
        0.2
    )
    Histogram(
        "streams_orders_batch_size", "batch", buckets=(1, 10, 100, 1000), registry=registry
    ).observe(20)

    latency = route_latency(registry, "streams_orders")
    latency.labels("/orders/revenue/daily", "GET", "200").observe(0.02)

    faust = FaustMetrics.create(registry, "faust")
    faust.topic_partition_end_offset.labels(topic="orders.raw", partition=0).set(120)
    faust.topic_partition_offset_commited.labels(topic="orders.raw", partition=0).set(100)
    faust.total_events.inc(100)
    faust.events_runtime_latency.observe(3.0)
    return registry


def telemetry_worker_registry() -> CollectorRegistry:
    """A registry exporting what a telemetry worker exports, built by its own metric factory."""
    registry = CollectorRegistry()
    metrics = WorkerMetrics.create(registry)
    metrics.records.inc(100)
    metrics.readings.inc(1000)
    metrics.duplicates.inc(3)
    metrics.windows_closed.labels("event_time").inc(10)
    metrics.close_delay.observe(0.4)
    metrics.open_windows.set(50)
    metrics.config_version.set(2)
    for device in ("router-1", "switch-7"):
        metrics.busiest_devices.labels(device).set(120)
    metrics.batch_readings.observe(500)
    latency = route_latency(registry, "streams_telemetry")
    latency.labels("/telemetry/devices/{device_id}/windows", "GET", "200").observe(0.01)
    return registry


def telemetry_ingest_registry(lag: int) -> CollectorRegistry:
    """A registry exporting what the ingest service exports, built by its own metric factory."""
    registry = CollectorRegistry()
    metrics = IngestMetrics.create(registry)
    metrics.requests.labels("202").inc(10)
    metrics.readings.inc(1000)
    metrics.latency.observe(0.01)
    metrics.inflight.set(5)
    metrics.lag.set(lag)
    return registry


def flowlogs_worker_registry() -> CollectorRegistry:
    """A registry exporting what a flow-logs worker exports, built by its own factory."""
    from faust.sensors.prometheus import FaustMetrics

    registry = CollectorRegistry()
    metrics = flowlogs_metrics.WorkerMetrics.create(registry)
    metrics.chunks.inc(100)
    metrics.flows.inc(50000)
    metrics.windows_closed.inc(10)
    metrics.lake_files.inc(20)
    metrics.lake_seconds.observe(0.3)
    # Not created at start by the factory: exported once they first move.
    metrics.dead_letters.labels("invalid_chunk").inc(0)
    metrics.task_failures.labels("mirror").inc(0)
    latency = route_latency(registry, flowlogs_metrics.PREFIX)
    latency.labels("/flowlogs/summary", "GET", "200").observe(0.05)
    faust = FaustMetrics.create(registry, "faust")
    faust.topic_partition_end_offset.labels(topic="flowlogs.records", partition=0).set(120)
    faust.topic_partition_offset_commited.labels(topic="flowlogs.records", partition=0).set(100)
    return registry


def flowlogs_reader_registry(now: float) -> CollectorRegistry:
    """A registry exporting what a flow-logs reader exports, built by its own factory."""
    registry = CollectorRegistry()
    metrics = flowlogs_metrics.ReaderMetrics.create(registry)
    metrics.objects.labels("ingested").inc(10)
    metrics.records.inc(50000)
    metrics.bytes.inc(1 << 20)
    metrics.newest_seen.set(now)
    metrics.newest_ingested.set(now - 60)
    metrics.pending.set(2)
    metrics.object_seconds.observe(0.8)
    metrics.task_failures.labels("reader").inc(0)  # not created at start by the factory
    return registry


def timeseries_worker_registry() -> CollectorRegistry:
    """A registry exporting what a time-series worker exports, built by its own factory."""
    from faust.sensors.prometheus import FaustMetrics

    registry = CollectorRegistry()
    metrics = timeseries_metrics.Metrics.create(registry)
    metrics.requests.labels("/series", "POST", "201").observe(0.02)
    metrics.requests.labels("/series/{id}", "GET", "404").observe(0.002)
    metrics.requests.labels("/series/{id}/points", "POST", "503").observe(0.3)
    metrics.applied.labels("create", "201").inc(10)
    metrics.points_written.inc(1000)
    metrics.write_wait.labels("here").observe(0.01)
    # Not created at start by the factory: exported once they first move.
    metrics.dead_letters.labels("invalid_command").inc(0)
    metrics.task_failures.labels("expire_answers").inc(0)
    faust = FaustMetrics.create(registry, "faust")
    faust.topic_partition_end_offset.labels(topic="timeseries.writes", partition=0).set(120)
    faust.topic_partition_offset_commited.labels(topic="timeseries.writes", partition=0).set(100)
    faust.total_events.inc(100)
    faust.events_runtime_latency.observe(3.0)
    return registry


def launches_worker_registry(now: float) -> CollectorRegistry:
    """A registry exporting what a launches worker exports, built by its own factory."""
    from faust.sensors.prometheus import FaustMetrics

    registry = CollectorRegistry()
    metrics = launches_metrics.Metrics.create(registry)
    metrics.rows_written.set(205)
    metrics.loads.labels(launches_metrics.WRITTEN).inc()
    metrics.rejected.labels(launches_metrics.INVALID_JSON).inc()
    metrics.run_seconds.set(0.2)
    metrics.last_success.set(now)
    metrics.last_record.set(now)
    metrics.ran(succeeded=True)
    faust = FaustMetrics.create(registry, "faust")
    faust.topic_partition_end_offset.labels(topic="launches.raw", partition=0).set(207)
    faust.topic_partition_offset_commited.labels(topic="launches.raw", partition=0).set(207)
    faust.total_events.inc(207)
    faust.events_runtime_latency.observe(0.5)
    return registry


def launches_job_registry(now: float) -> CollectorRegistry:
    """A registry holding what one successful run of the launches batch job reports."""
    registry = CollectorRegistry()
    metrics = launches_metrics.Metrics.create(registry)
    metrics.rows_written.set(205)
    metrics.loads.labels(launches_metrics.UNCHANGED).inc()
    metrics.run_seconds.set(1.5)
    metrics.last_success.set(now)
    metrics.ran(succeeded=True)
    return registry


@pytest.fixture(scope="module")
def contract_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """A real Prometheus with every pipeline's rules scraping fake targets of each job (two,
    one for the launches worker, one object's only writer, and the batch job)."""
    now = time.time()
    registries = {
        "orders": [orders_registry(now), orders_registry(now)],
        "telemetry": [telemetry_worker_registry(), telemetry_worker_registry()],
        "telemetry-ingest": [telemetry_ingest_registry(30), telemetry_ingest_registry(40)],
        "flowlogs": [flowlogs_worker_registry(), flowlogs_worker_registry()],
        "flowlogs-reader": [flowlogs_reader_registry(now), flowlogs_reader_registry(now)],
        "timeseries": [timeseries_worker_registry(), timeseries_worker_registry()],
        "launches": [launches_worker_registry(now)],
        # Served as a target of that job, as the Pushgateway's series look when scraped
        # with honor_labels.
        "streams_launches": [launches_job_registry(now)],
    }
    assert registries.keys() == {job for pipeline in PIPELINES for job in pipeline.jobs}
    rule_files = [pipeline.rules for pipeline in PIPELINES]
    with contextlib.ExitStack() as stack:
        targets = {
            job: [stack.enter_context(serving_registry(registry)) for registry in exporters]
            for job, exporters in registries.items()
        }
        prom = stack.enter_context(
            running_prometheus(targets, rule_files, tmp_path_factory.mktemp("contract"))
        )
        # rate() needs two samples per series: wait for the third scrape of each target.
        prom.wait_for("min(count_over_time(up[1m])) >= 3", timeout=30)
        yield prom


@pytest.mark.integration
def test_every_dashboard_query_parses_in_prometheus(contract_prometheus: Prometheus) -> None:
    """A real Prometheus accepts every dashboard query and rule expression (no HTTP 400)."""
    queries = [query for pipeline in PIPELINES for query in pipeline.expressions()]
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
        for pipeline in PIPELINES
        for title, expr in dashboard_queries(pipeline.dashboard)
        if not _has_data(contract_prometheus, expr)
    ]

    assert not empty


@pytest.mark.integration
def test_recording_rules_evaluate_on_contract_data(contract_prometheus: Prometheus) -> None:
    """The recording rules evaluate without error and record the dead-letter ratio and lags."""
    contract_prometheus.wait_for("job:streams_orders_dead_letters:ratio_rate5m")
    lag = contract_prometheus.wait_for('job_topic:faust_consumer_lag:records{topic="orders.raw"}')
    # Both ingest replicas measure the same group's lag (30 and 40): it counts once.
    readings_lag = contract_prometheus.wait_for("job:streams_telemetry_consumer_lag_records:max")

    assert float(lag[0]["value"][1]) == 40.0  # two workers, 120 fetched - 100 committed each
    assert float(readings_lag[0]["value"][1]) == 40.0
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
