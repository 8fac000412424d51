"""The ingest's refusal rules: in-flight gate, group lag and Retry-After (backpressure.py)."""

from __future__ import annotations

import time

from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from streams.telemetry.backpressure import (
    RETRY_MAX,
    STALE_INTERVALS,
    InflightGate,
    LagMonitor,
    group_lag,
    retry_after,
)
from streams.telemetry.metrics import IngestMetrics

TP = [TopicPartition("telemetry.readings", p) for p in range(3)]


def test_the_gate_admits_up_to_its_limit_and_frees_on_release() -> None:
    """Readings fit until the limit; a request that would exceed it is refused whole."""
    registry = CollectorRegistry()
    gate = InflightGate(100, IngestMetrics.create(registry).inflight)
    assert gate.reserve(60)
    assert not gate.reserve(41)
    assert gate.reserve(40)
    assert gate.full()
    assert registry.get_sample_value("streams_telemetry_ingest_inflight_readings") == 100
    gate.release(60)
    assert not gate.full()
    assert gate.reserve(60)
    assert not gate.reserve(101 - 40)


def test_lag_counts_from_the_commit_or_the_start_of_the_partition() -> None:
    """Committed partitions lag by end minus commit; uncommitted ones by end minus start."""
    ends = {TP[0]: 100, TP[1]: 50, TP[2]: 30}
    starts = {TP[0]: 0, TP[1]: 0, TP[2]: 10}
    assert group_lag(ends, starts, {TP[0]: 90, TP[1]: -1}) == 10 + 50 + 20
    assert group_lag(ends, starts, {TP[0]: 100, TP[1]: 50, TP[2]: 30}) == 0


def test_retry_after_follows_the_drain_rate_within_bounds() -> None:
    """Retry-After is the time the workers need to get under the limit, 1 to 30 s."""
    assert retry_after(1_500, 1_000, drain_per_s=100.0, interval=1.0) == 5
    assert retry_after(1_001, 1_000, drain_per_s=100_000.0, interval=1.0) == 1
    assert retry_after(10**9, 1_000, drain_per_s=1.0, interval=1.0) == RETRY_MAX


def test_retry_after_grows_with_the_excess_while_workers_stand_still() -> None:
    """With no progress measured, the further over the limit, the longer the wait."""
    waits = [retry_after(lag, 1_000, None, 1.0) for lag in (1_001, 3_000, 10**6)]
    assert waits == sorted(waits)
    assert waits[0] >= 1
    assert waits[-1] == RETRY_MAX


def test_lag_over_the_limit_refuses_until_the_measurement_is_stale() -> None:
    """A fresh lag over the limit refuses; one that could not be re-measured for
    STALE_INTERVALS intervals no longer does (ingest fails open)."""
    gauge = IngestMetrics.create(CollectorRegistry()).lag
    monitor = LagMonitor("127.0.0.1:9", "telemetry", "t", limit=10, interval=1.0, gauge=gauge)
    assert monitor.refusal() is None
    monitor.lag, monitor.measured_at = 10, time.monotonic()
    assert monitor.refusal() is None
    monitor.lag = 11
    assert monitor.refusal() == retry_after(11, 10, None, 1.0)
    monitor.measured_at -= STALE_INTERVALS + 1
    assert monitor.refusal() is None
