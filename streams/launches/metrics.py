"""Every metric of the launches ETL, built in one place with the registry passed in.

The same names in both ways to run it: the worker serves them on ``/metrics``; the
batch job, which exits, writes them as a node_exporter textfile
(``LAUNCHES_METRICS_FILE``) and/or pushes them to a Pushgateway
(``LAUNCHES_PUSHGATEWAY_URL``), where its counters are one run's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

PREFIX = "streams_launches"
#: A record that is not JSON (the worker's records; the batch job retries the request).
INVALID_JSON = "invalid_json"
#: A record that breaks the rule of models.py.
INVALID_LAUNCH = "invalid_launch"
#: The worker's record that failed alone (streams.common.batches' reason; not imported
#: from there: that module needs Faust, which the batch job's image does not carry).
PROCESSING_ERROR = "processing_error"
REJECTION_REASONS = (INVALID_JSON, INVALID_LAUNCH, PROCESSING_ERROR)
#: What a load did: wrote the object, or found it holding these bytes already.
WRITTEN, UNCHANGED = "written", "unchanged"
TASKS = ("rewrite",)


def _name(thing: str) -> str:
    return f"{PREFIX}_{thing}"


@dataclass(frozen=True)
class Metrics:
    rows_written: Gauge  # rows of the object as last loaded
    rejected: Counter  # by reason
    loads: Counter  # by result: written or unchanged
    run_seconds: Gauge  # the last run (batch) or rewrite (worker), start to loaded
    last_success: Gauge  # unix time of the last load that succeeded
    last_run: Gauge  # unix time the last run (batch) or rewrite (worker) ended
    last_run_success: Gauge  # 1 if it succeeded, 0 if it failed
    last_record: Gauge  # worker: unix time of the last valid record applied
    task_failures: Counter  # worker: failed rewrites (retried)
    batch_failures: Counter  # worker: failed attempts at a batch of launches.raw (retried)

    @classmethod
    def create(cls, registry: CollectorRegistry) -> Metrics:
        metrics = cls(
            rows_written=Gauge(
                _name("rows_written"),
                "Rows of launches.parquet as last loaded (written or found unchanged)",
                registry=registry,
            ),
            rejected=Counter(
                _name("records_rejected"),
                "Launch records rejected (the worker: dead-lettered), by reason",
                ["reason"],
                registry=registry,
            ),
            loads=Counter(
                _name("loads"),
                "Loads of launches.parquet, by result (written, unchanged)",
                ["result"],
                registry=registry,
            ),
            run_seconds=Gauge(
                _name("run_duration_seconds"),
                "Duration of the last run (batch: process start to loaded; worker: rewrite)",
                registry=registry,
            ),
            last_success=Gauge(
                _name("last_success_timestamp_seconds"),
                "Unix time of the last successful load",
                registry=registry,
            ),
            last_run=Gauge(
                _name("last_run_timestamp_seconds"),
                "Unix time the last run (batch) or rewrite (worker) ended, failed or not",
                registry=registry,
            ),
            last_run_success=Gauge(
                _name("last_run_success"),
                "1 if the last run (batch) or rewrite (worker) loaded the object, 0 if it failed",
                registry=registry,
            ),
            last_record=Gauge(
                _name("last_record_timestamp_seconds"),
                "Worker: Unix time the last valid record of launches.raw was applied",
                registry=registry,
            ),
            task_failures=Counter(
                _name("task_failures"),
                "Failures of a background task (retried on its next tick)",
                ["task"],
                registry=registry,
            ),
            batch_failures=Counter(
                _name("batch_failures"),
                "Failed attempts at a batch of launches.raw (retried)",
                registry=registry,
            ),
        )
        # Exported at 0 from the start: an alert on increase() fires on the first one.
        for reason in REJECTION_REASONS:
            metrics.rejected.labels(reason)
        for result in (WRITTEN, UNCHANGED):
            metrics.loads.labels(result)
        for task in TASKS:
            metrics.task_failures.labels(task)
        return metrics

    def ran(self, succeeded: bool) -> None:
        """Record the end of a run (batch) or rewrite (worker)."""
        self.last_run.set(time.time())
        self.last_run_success.set(1 if succeeded else 0)
