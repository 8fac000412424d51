"""The streaming way with two workers: one writer at a time, and a writer that stood
still (SIGSTOP: a stalled VM, a long pause) never rolls the object back once it resumes
(break found by an adversarial probe). And deletions that empty the table empty the
object."""

from __future__ import annotations

import json
import signal
import time
from typing import Any

import pytest

from streams.common.broker import EmbeddedBroker
from tests.integration.s3_server import empty_bucket, s3
from tests.support.launches import expected_rows, object_rows, payload, s3_env
from tests.support.workers import Processes, Worker, produce, wait_until

pytestmark = pytest.mark.integration

BUCKET = "launches-failover"


@pytest.fixture
def endpoint(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    return empty_bucket(moto_endpoint, BUCKET, monkeypatch)


def start(workers: Processes, endpoint: str, debounce: float = 0.3) -> Worker:
    return workers.start({**s3_env(endpoint, BUCKET), "LAUNCHES_DEBOUNCE_SECONDS": str(debounce)})


def rows(endpoint: str) -> list[Any] | None:
    try:
        body = s3(endpoint).get_object(Bucket=BUCKET, Key="launches.parquet")["Body"].read()
    except s3(endpoint).exceptions.NoSuchKey:
        return None
    return object_rows(body)[1]


def send(bootstrap: str, records: list[dict[str, Any]]) -> None:
    produce(
        bootstrap, "launches.raw", [(r["id"].encode(), json.dumps(r).encode()) for r in records]
    )


def renamed(records: list[dict[str, Any]], tag: str) -> list[dict[str, Any]]:
    return [{**r, "name": f"{r['name']} ({tag})"} for r in records]


def writer_of(pair: list[Worker]) -> Worker:
    return wait_until(
        lambda: next((w for w in pair if w.metric("streams_launches_loads_total") > 0), None),
        timeout=60,
        what="a worker that loaded the object",
    )


def test_a_writer_that_stood_still_does_not_roll_the_object_back(
    broker: EmbeddedBroker, launches_workers: Processes, endpoint: str
) -> None:
    """Writer paused past its session with changes not yet written: the other takes
    over and writes newer versions; the paused one, resumed, never writes its stale
    table over them."""
    records = payload()
    pair = [start(launches_workers, endpoint, debounce=3.0) for _ in range(2)]
    send(broker.bootstrap, records)
    writer = writer_of(pair)
    standby = next(w for w in pair if w is not writer)
    wait_until(lambda: rows(endpoint) == expected_rows(records), timeout=60, what="first object")
    # Version x applied to the writer's table, its rewrite still waiting out the
    # debounce when the writer stops.
    sent_at = time.time()
    send(broker.bootstrap, renamed(records[:20], "x"))
    wait_until(
        lambda: writer.metric("streams_launches_last_record_timestamp_seconds") >= sent_at,
        timeout=30,
        what="version x applied",
    )
    assert writer.proc is not None
    writer.proc.send_signal(signal.SIGSTOP)
    try:
        wait_until(
            lambda: standby.metric("streams_launches_loads_total") > 0,
            timeout=90,
            what="the standby taking over",
        )
        second = renamed(records[:20], "y")
        send(broker.bootstrap, second)
        after_y = expected_rows(second + records[20:])
        wait_until(lambda: rows(endpoint) == after_y, timeout=60, what="version y written")
    finally:
        writer.proc.send_signal(signal.SIGCONT)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # the resumed worker's stale table: x, not y
        assert rows(endpoint) == after_y, "the object rolled back"
        time.sleep(0.2)


def test_tombstones_that_empty_the_table_empty_the_object(
    broker: EmbeddedBroker, launches_workers: Processes, endpoint: str
) -> None:
    """Every launch deleted: the object has no row, and its metric says so."""
    records = payload()[:5]
    worker = start(launches_workers, endpoint)
    send(broker.bootstrap, records)
    wait_until(lambda: rows(endpoint) == expected_rows(records), timeout=60, what="object")
    produce(broker.bootstrap, "launches.raw", [(r["id"].encode(), None) for r in records])  # type: ignore[misc]
    wait_until(lambda: rows(endpoint) == [], timeout=60, what="an empty object")
    assert worker.metric("streams_launches_rows_written") == 0
