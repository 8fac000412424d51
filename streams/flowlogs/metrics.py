"""Every metric of the flow-logs pipeline, built in one place with the registry passed in.

Labels stay low-cardinality: outcomes, reasons and alert kinds from fixed sets, never
an address, an ENI or an object key.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

PREFIX = "streams_flowlogs"
ALERT_KINDS = ("port_scan", "exfiltration", "long_lived", "new_country")
#: Why a line or an object was dead-lettered (parse.py's and the reader's reasons).
DEAD_LETTER_REASONS = (
    "malformed_line", "invalid_field", "future_timestamp", "corrupt_object",
    "unreadable_header", "missing_fields", "unreadable_object", "too_large",
    "processing_error", "invalid_chunk", "changed_object",
)  # fmt: skip
#: Why the worker dead-letters a record of flowlogs.records.
WORKER_DEAD_LETTER_REASONS = ("invalid_chunk", "processing_error")
OBJECT_OUTCOMES = ("ingested", "dead_lettered")
TASKS = ("reader", "mirror", "sweep")


def _name(thing: str) -> str:
    return f"{PREFIX}_{thing}"


def reason_label(reason: str) -> str:
    return reason if reason in DEAD_LETTER_REASONS else "other"


@dataclass(frozen=True)
class ReaderMetrics:
    objects: Counter
    records: Counter
    bytes: Counter
    dead_letters: Counter
    source_errors: Counter
    newest_seen: Gauge
    newest_ingested: Gauge
    pending: Gauge
    object_seconds: Histogram
    task_failures: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> ReaderMetrics:
        metrics = cls(
            objects=Counter(
                _name("objects"), "Objects read, by outcome", ["outcome"], registry=registry
            ),
            records=Counter(
                _name("records"),
                "Log records (flows, NODATA, SKIPDATA) published to flowlogs.records",
                registry=registry,
            ),
            bytes=Counter(_name("object_bytes"), "Bytes of objects read", registry=registry),
            dead_letters=Counter(
                _name("dead_letters"),
                "Lines or objects sent to flowlogs.dlq, by reason",
                ["reason"],
                registry=registry,
            ),
            source_errors=Counter(
                _name("source_errors"),
                "Failed listings or reads of the source (retried)",
                registry=registry,
            ),
            newest_seen=Gauge(
                _name("newest_object_seen_timestamp_seconds"),
                "Delivery time of the newest object listed (its key's time, else now)",
                registry=registry,
            ),
            newest_ingested=Gauge(
                _name("newest_object_ingested_timestamp_seconds"),
                "Delivery time of the newest object ingested",
                registry=registry,
            ),
            pending=Gauge(
                _name("objects_pending"),
                "Objects this reader owns that are listed but not yet ingested",
                registry=registry,
            ),
            object_seconds=Histogram(
                _name("object_seconds"),
                "Time to read, parse and publish one object",
                buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
                registry=registry,
            ),
            task_failures=Counter(
                _name("task_failures"),
                "Background tasks that raised (logged, retried)",
                ["task"],
                registry=registry,
            ),
        )
        for outcome in OBJECT_OUTCOMES:
            metrics.objects.labels(outcome)
        for reason in DEAD_LETTER_REASONS:
            metrics.dead_letters.labels(reason)
        metrics.task_failures.labels("reader")
        return metrics


@dataclass(frozen=True)
class WorkerMetrics:
    chunks: Counter
    duplicate_chunks: Counter
    replayed: Counter
    flows: Counter
    late_for_detection: Counter
    windows_closed: Counter
    alerts: Counter
    dead_letters: Counter
    batch_failures: Counter
    task_failures: Counter
    lake_files: Counter
    lake_seconds: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry) -> WorkerMetrics:
        metrics = cls(
            chunks=Counter(_name("chunks"), "Chunks counted", registry=registry),
            duplicate_chunks=Counter(
                _name("duplicate_chunks"),
                "Chunks sent again by a reader (already counted, skipped)",
                registry=registry,
            ),
            replayed=Counter(
                _name("replayed_chunks"),
                "Chunks read again after a restart (already applied, skipped)",
                registry=registry,
            ),
            flows=Counter(
                _name("flows_aggregated"),
                "Log records aggregated into the rollups and the lake",
                registry=registry,
            ),
            late_for_detection=Counter(
                _name("late_for_detection"),
                "Flows counted but not scanned by the detectors: their window had closed, or "
                "held its most rows already",
                registry=registry,
            ),
            windows_closed=Counter(
                _name("windows_closed"), "VPC windows closed for detection", registry=registry
            ),
            alerts=Counter(_name("alerts"), "Alerts raised, by kind", ["kind"], registry=registry),
            dead_letters=Counter(
                _name("worker_dead_letters"),
                "Records of flowlogs.records sent to flowlogs.dlq, by reason",
                ["reason"],
                registry=registry,
            ),
            batch_failures=Counter(
                _name("batch_failures"),
                "Failed attempts at a batch (retried)",
                registry=registry,
            ),
            task_failures=Counter(
                _name("worker_task_failures"),
                "Background tasks that raised (logged, retried)",
                ["task"],
                registry=registry,
            ),
            lake_files=Counter(
                _name("lake_files"), "Parquet files written to the lake", registry=registry
            ),
            lake_seconds=Histogram(
                _name("lake_write_seconds"),
                "Time to write one batch to the lake",
                buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
                registry=registry,
            ),
        )
        for kind in ALERT_KINDS:
            metrics.alerts.labels(kind)
        for reason in WORKER_DEAD_LETTER_REASONS:
            metrics.dead_letters.labels(reason)
        for task in ("mirror", "sweep"):
            metrics.task_failures.labels(task)
        return metrics
