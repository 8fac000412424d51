"""Every metric of the time-series workers, built in one place with the registry passed in.

Requests are timed by :func:`streams.common.web.route_latency` (route pattern, method,
status): its ``_count`` series is the status-code counter of each route. Labels stay
low-cardinality: ops, statuses and reasons from fixed sets, never a series id.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from streams.common.batches import PROCESSING_ERROR
from streams.common.web import route_latency

PREFIX = "streams_timeseries"
#: A record of timeseries.writes that is no write command.
INVALID_COMMAND = "invalid_command"
#: A command on another partition than its series': applied, it could never be read.
MISPLACED_COMMAND = "misplaced_command"
DEAD_LETTER_REASONS = (INVALID_COMMAND, MISPLACED_COMMAND, PROCESSING_ERROR)
TASKS = ("expire_answers",)


def _name(thing: str) -> str:
    return f"{PREFIX}_{thing}"


@dataclass(frozen=True)
class Metrics:
    requests: Histogram  # by route, method, status
    applied: Counter  # commands applied, by op and status
    points_written: Counter
    dead_letters: Counter  # by reason
    batch_failures: Counter
    write_wait: Histogram  # from the command's send to its answer, by where it was awaited
    waiting: Gauge
    answers_expired: Counter
    task_failures: Counter  # by task

    @classmethod
    def create(cls, registry: CollectorRegistry) -> Metrics:
        metrics = cls(
            requests=route_latency(registry, PREFIX),
            applied=Counter(
                _name("commands_applied"),
                "Write commands applied, by op and the status answered",
                ["op", "status"],
                registry=registry,
            ),
            points_written=Counter(
                _name("points_written"),
                "Points sent in accepted creates and appends (repeated times included)",
                registry=registry,
            ),
            dead_letters=Counter(
                _name("dead_letters"),
                "Records of timeseries.writes dead-lettered, by reason",
                ["reason"],
                registry=registry,
            ),
            batch_failures=Counter(
                _name("batch_failures"),
                "Failed attempts at a batch of timeseries.writes (retried)",
                registry=registry,
            ),
            write_wait=Histogram(
                _name("write_wait_seconds"),
                "From a write command sent to its answer, by where the answer was awaited",
                ["where"],
                buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
                registry=registry,
            ),
            waiting=Gauge(
                _name("requests_waiting"),
                "Write requests awaiting their answer on this worker",
                registry=registry,
            ),
            answers_expired=Counter(
                _name("answers_expired"),
                "Kept answers forgotten after TIMESERIES_ANSWERS_DAYS",
                registry=registry,
            ),
            task_failures=Counter(
                _name("task_failures"),
                "Failures of a background task (retried on its next tick)",
                ["task"],
                registry=registry,
            ),
        )
        # Exported at 0 from the start: an alert on increase() fires on the first one.
        for reason in DEAD_LETTER_REASONS:
            metrics.dead_letters.labels(reason)
        for task in TASKS:
            metrics.task_failures.labels(task)
        return metrics
