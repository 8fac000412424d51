"""The ingest in front of paused workers: it refuses with 429 in bounded memory, accepts
again once they catch up, and every reading it accepted is aggregated."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import count
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.common.broker import EmbeddedBroker
from tests.integration.test_telemetry_ingest import post, rss_kib
from tests.support.telemetry import TelemetryProcesses, paused, read_aggregates, settle
from tests.support.workers import read_topic, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

BASE_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: in the past, so never "in the future"
WINDOW_MS = 10_000
DEVICES = [f"sw-{n:02d}" for n in range(40)]


@pytest.fixture
def telemetry(broker: EmbeddedBroker, tmp_path: Path) -> Iterator[TelemetryProcesses]:
    processes = TelemetryProcesses(broker.bootstrap, tmp_path)
    yield processes
    processes.stop_all()


def request(window: int) -> list[dict[str, Any]]:
    """Every device's readings of one window (40 devices, 120 readings): each request
    fills windows of its own, so no accepted reading can arrive after its window closed."""
    start = BASE_MS + window * WINDOW_MS
    return [
        {"device_id": device, "interface": "eth0", "metric": metric, "value": window + n / 8,
         "ts": start + offset, "seq": window * 3 + n}
        for device in DEVICES
        for n, (metric, offset) in enumerate([("rx", 2_000), ("tx", 2_000), ("rx", 9_000)])
    ]  # fmt: skip


def test_paused_workers_make_the_ingest_refuse_then_every_accepted_reading_counts(
    broker: EmbeddedBroker, telemetry: TelemetryProcesses
) -> None:
    """With its workers SIGSTOPped the ingest answers 429 with an integer Retry-After in
    bounded memory, accepts again once they resume and catch up, and the windows count
    exactly the readings it answered 202."""
    windows = {"TELEMETRY_WINDOW_SECONDS": "10", "TELEMETRY_GRACE_SECONDS": "1"}
    workers = [telemetry.start(windows), telemetry.start(windows)]
    ingest = telemetry.start(
        {"TELEMETRY_INGEST_MAX_LAG_RECORDS": "200", "TELEMETRY_INGEST_LAG_INTERVAL_SECONDS": "0.5"},
        command="ingest",
    )
    assert ingest.proc is not None
    settle(*workers)  # readings flow once every worker has its partitions
    window = count()
    accepted = 0

    def send() -> tuple[int, dict[str, str]]:
        nonlocal accepted
        status, body, headers = post(ingest, request(next(window)))
        if status == 202:
            accepted += body["accepted"]
        return status, headers

    assert send()[0] == 202
    processed = "streams_telemetry_readings_total"
    first = len(request(0))
    wait_until(lambda: sum(w.metric(processed) for w in workers) >= first, what="first")

    def refused() -> dict[str, str] | None:
        status, headers = send()
        return headers if status == 429 else None

    with paused(*workers):
        assert int(wait_until(refused, what="a 429")["Retry-After"]) >= 1
        before = rss_kib(ingest.proc.pid)
        body = orjson.dumps([r for n in range(1_000, 1_160) for r in request(n)])  # ~2 MB
        assert all(post(ingest, body)[0] == 429 for _ in range(40))  # ~80 MB refused
        assert rss_kib(ingest.proc.pid) - before < 64 * 1024
        refused_accepted = accepted

    assert all(w.alive() for w in workers)
    # Their session expired while paused (10 s): allow for the group's rebalance.
    wait_until(lambda: send()[0] == 202, timeout=90, every=1.0, what="a 202 after resuming")
    assert accepted > refused_accepted
    assert ingest.metric("streams_telemetry_ingest_readings_total") == accepted

    def all_counted() -> bool:
        return read_aggregates(broker.bootstrap).readings() == accepted

    wait_until(all_counted, timeout=90, every=1.0, what="every accepted reading aggregated")
    found = read_aggregates(broker.bootstrap)
    assert found.conflicts == []
    assert read_topic(broker.bootstrap, "telemetry.dlq") == []
    print(f"\n{accepted} readings accepted, {len(found.reemitted)} windows re-emitted")
