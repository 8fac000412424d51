"""Every metric of the telemetry pipeline, built in one place with the registry passed in.

Labels stay low-cardinality: no device ids, except ``busiest_devices``, which holds at
most ``top`` series per worker at a time (the busiest devices of the last interval).
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

PREFIX = "streams_telemetry"
ALERT_KINDS = ("threshold", "zscore", "ewma", "flatline", "silent")
DEAD_LETTER_REASONS = ("invalid", "late", "future_timestamp", "processing_error")
#: The periodic and background work that runs guarded (streams/common/background.py).
TASKS = ("close_quiet_devices", "export_busiest_devices", "mirror")
CLOSE_TRIGGERS = ("event_time", "idle")
INGEST_STATUSES = ("202", "400", "401", "411", "413", "415", "422", "429", "503")


def _name(thing: str) -> str:
    return f"{PREFIX}_{thing}"


@dataclass(frozen=True)
class WorkerMetrics:
    """What a worker counts: readings, windows, alerts, dead letters, the live config."""

    records: Counter
    readings: Counter
    duplicates: Counter
    replayed: Counter
    dead_letters: Counter
    windows_closed: Counter
    close_delay: Histogram
    alerts: Counter
    open_windows: Gauge
    config_version: Gauge
    busiest_devices: Gauge
    batch_readings: Histogram
    batch_failures: Counter
    task_failures: Counter
    devices_expired: Counter
    devices: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> WorkerMetrics:
        metrics = cls(
            records=Counter(
                _name("records"), "Records (groups of readings) read", registry=registry
            ),
            readings=Counter(_name("readings"), "Readings put in a window", registry=registry),
            duplicates=Counter(
                _name("duplicate_readings"),
                "Readings whose device and sequence number were already in the window",
                registry=registry,
            ),
            replayed=Counter(
                _name("replayed_records"),
                "Records (devices' groups of records) read again after a restart and skipped",
                registry=registry,
            ),
            dead_letters=Counter(
                _name("dead_letters"),
                "Readings or records sent to telemetry.dlq",
                ["reason"],
                registry=registry,
            ),
            windows_closed=Counter(
                _name("windows_closed"),
                "Windows closed and emitted to telemetry.aggregates",
                ["trigger"],
                registry=registry,
            ),
            close_delay=Histogram(
                _name("window_close_delay_seconds"),
                "Wall-clock time from a window's end plus grace to its emission",
                buckets=(0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 300),
                registry=registry,
            ),
            alerts=Counter(
                _name("alerts"), "Anomalies found, by kind", ["kind"], registry=registry
            ),
            open_windows=Gauge(
                _name("open_windows"), "Windows open on this worker", registry=registry
            ),
            config_version=Gauge(
                _name("config_version"),
                "Version of the live configuration applied",
                registry=registry,
            ),
            busiest_devices=Gauge(
                _name("busiest_device_readings"),
                "Readings in the last interval of this worker's busiest devices",
                ["device"],
                registry=registry,
            ),
            batch_readings=Histogram(
                _name("batch_readings"),
                "Readings per processing batch",
                buckets=(10, 100, 1_000, 10_000, 50_000, 200_000),
                registry=registry,
            ),
            batch_failures=Counter(
                _name("batch_failures"),
                "Batches that failed and were tried again (none of a failed batch is committed)",
                registry=registry,
            ),
            task_failures=Counter(
                _name("task_failures"),
                "Timer and background task runs that failed (logged; tried again next tick)",
                ["task"],
                registry=registry,
            ),
            devices_expired=Counter(
                _name("devices_expired"),
                "Quiet devices forgotten after TELEMETRY_DEVICE_EXPIRY_SECONDS, state deleted",
                registry=registry,
            ),
            devices=Gauge(
                _name("devices"), "Devices whose state this worker holds", registry=registry
            ),
        )
        for task in TASKS:
            metrics.task_failures.labels(task)
        for reason in DEAD_LETTER_REASONS:
            metrics.dead_letters.labels(reason)
        for trigger in CLOSE_TRIGGERS:
            metrics.windows_closed.labels(trigger)
        for kind in ALERT_KINDS:
            metrics.alerts.labels(kind)
        return metrics


@dataclass(frozen=True)
class IngestMetrics:
    """What the ingest service counts: requests by status, readings, backpressure."""

    requests: Counter
    readings: Counter
    latency: Histogram
    inflight: Gauge
    lag: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> IngestMetrics:
        metrics = cls(
            requests=Counter(
                _name("ingest_requests"),
                "Ingest requests answered, by HTTP status",
                ["status"],
                registry=registry,
            ),
            readings=Counter(
                _name("ingest_readings"),
                "Readings accepted (acknowledged by Kafka, answered 202)",
                registry=registry,
            ),
            latency=Histogram(
                _name("ingest_request_seconds"),
                "Time to answer an ingest request",
                buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
                registry=registry,
            ),
            inflight=Gauge(
                _name("ingest_inflight_readings"),
                "Readings sent to Kafka and not yet acknowledged",
                registry=registry,
            ),
            lag=Gauge(
                _name("consumer_lag_records"),
                "Records of telemetry.readings the workers have not committed yet",
                registry=registry,
            ),
        )
        for status in INGEST_STATUSES:
            metrics.requests.labels(status)
        return metrics
