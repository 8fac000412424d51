"""The streaming way on a real broker and a real S3 API: the producer publishes the API's
records, the worker keeps the latest launches and rewrites the object, the same bytes the
batch job writes for the same input."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from streams.common.broker import EmbeddedBroker
from tests.integration.s3_server import empty_bucket, s3
from tests.support.launches import (
    api,
    expected_rows,
    object_rows,
    ok,
    payload,
    run_job,
    s3_env,
)
from tests.support.workers import Processes, Worker, produce, read_topic, wait_until

pytestmark = pytest.mark.integration

BUCKET = "launches-stream"


@pytest.fixture
def endpoint(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    return empty_bucket(moto_endpoint, BUCKET, monkeypatch)


def start(workers: Processes, endpoint: str, data_dir: Path | None = None) -> Worker:
    env = {**s3_env(endpoint, BUCKET), "LAUNCHES_DEBOUNCE_SECONDS": "0.5"}
    return workers.start(env, data_dir=data_dir)


def publish(bootstrap: str, url: str) -> None:
    """``python -m producers launches`` against ``url``, to its end."""
    subprocess.run(
        [sys.executable, "-m", "producers", "--bootstrap", bootstrap, "launches", "--url", url],
        check=True,
        capture_output=True,
        timeout=120,
    )


def object_body(endpoint: str, key: str = "launches.parquet") -> bytes | None:
    try:
        body: bytes = s3(endpoint).get_object(Bucket=BUCKET, Key=key)["Body"].read()
    except s3(endpoint).exceptions.NoSuchKey:
        return None
    return body


def written(worker: Worker, loads: float) -> None:
    """Wait until the worker counted ``loads`` loads of the object (written or unchanged)."""
    wait_until(
        lambda: worker.metric("streams_launches_loads_total") >= loads,
        timeout=60,
        what=f"{loads} loads",
    )


def with_faults(records: list[dict[str, Any]]) -> list[Any]:
    """The real payload with a record missing its date, an older version of a launch
    before its real one, and a number where a record should be."""
    faulty: list[Any] = copy.deepcopy(records)
    faulty[10] = {k: v for k, v in faulty[10].items() if k != "date_utc"}
    older = {**records[20], "success": None, "name": "older version"}
    return [older, *faulty, 42]


def test_the_worker_writes_the_object_the_batch_job_writes(
    broker: EmbeddedBroker, launches_workers: Processes, endpoint: str
) -> None:
    """Same input (with invalid records and a repeated id): byte-identical objects; each
    invalid record is one dead letter with its reason."""
    records = with_faults(payload())
    worker = start(launches_workers, endpoint)
    with api(ok(records)) as served:
        env = {**s3_env(endpoint, BUCKET), "SPACEX_API_URL": served.url}
        batch = run_job({**env, "S3_KEY": "batch.parquet"})
        assert batch.returncode == 0, batch.stderr
        publish(broker.bootstrap, served.url)
    written(worker, 1)
    streamed = object_body(endpoint)
    assert streamed is not None and streamed == object_body(endpoint, "batch.parquet")
    valid = [r for r in records if isinstance(r, dict) and "date_utc" in r]
    assert object_rows(streamed)[1] == expected_rows(valid)
    letters = read_topic(broker.bootstrap, "launches.dlq")
    reasons = {letter.value: letter.headers["dlq.reason"] for letter in letters}
    assert reasons == {
        b"42": "invalid_launch",
        json.dumps(records[11], separators=(",", ":")).encode(): "invalid_launch",
    }
    assert all("dlq.detail" in letter.headers for letter in letters)
    assert worker.metric("streams_launches_records_rejected_total") == 2
    assert worker.metric("streams_launches_rows_written") == 205 - 1


def test_changes_and_deletions_reach_the_object_across_a_killed_worker(
    broker: EmbeddedBroker, launches_workers: Processes, endpoint: str, tmp_path: Path
) -> None:
    """A new version and a tombstone are written; a worker killed and replaced by one
    with no local state restores the launches from the changelog and writes the same."""
    records = payload()
    first = start(launches_workers, endpoint)
    with api(ok(records)) as served:
        publish(broker.bootstrap, served.url)
    written(first, 1)
    changed = {**records[0], "success": True}
    gone = records[1]
    produce(
        broker.bootstrap,
        "launches.raw",
        [(changed["id"].encode(), json.dumps(changed).encode())],
    )
    produce(broker.bootstrap, "launches.raw", [(gone["id"].encode(), None)])  # type: ignore[list-item]
    expected = expected_rows([changed, *records[2:]])

    def current_rows() -> list[Any] | None:
        body = object_body(endpoint)
        return object_rows(body)[1] if body is not None else None

    wait_until(
        lambda: current_rows() == expected, timeout=60, what="the change and deletion written"
    )
    body = object_body(endpoint)
    first.kill()
    second = start(launches_workers, endpoint, data_dir=tmp_path / "fresh")
    written(second, 1)
    # Restored from the changelog alone, the launches give the very same bytes.
    assert second.metric('streams_launches_loads_total{result="unchanged"}') == 1
    assert object_body(endpoint) == body
