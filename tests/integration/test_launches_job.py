"""The batch job end to end, as the seed asks: a local API serving the real payload, a
real S3 API (moto's server), ``python -m streams.launches`` as a process, then the object
downloaded from S3 and checked against an independent computation."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.integration.s3_server import empty_bucket, keys, s3
from tests.support.launches import (
    EXPECTED_SCHEMA,
    Reply,
    api,
    expected_rows,
    object_rows,
    ok,
    payload,
    run_job,
    s3_env,
)

pytestmark = pytest.mark.integration

BUCKET = "candidate-test-bucket2k25"
KEY = "launches.parquet"
FAST_RETRIES = {
    "LAUNCHES_ATTEMPTS": "3",
    "LAUNCHES_BACKOFF_SECONDS": "0.05",
    "LAUNCHES_BACKOFF_MAX_SECONDS": "0.2",
}


@pytest.fixture
def endpoint(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    return empty_bucket(moto_endpoint, BUCKET, monkeypatch)


def job_env(endpoint: str, url: str, **extra: str) -> dict[str, str]:
    return {**s3_env(endpoint, BUCKET), "SPACEX_API_URL": url, **FAST_RETRIES, **extra}


def download(endpoint: str, key: str = KEY) -> bytes:
    body: bytes = s3(endpoint).get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return body


def test_job_writes_the_seed_s_object_from_the_real_payload(endpoint: str) -> None:
    """The object has the five columns typed as the seed says, one row per launch id,
    the real data's null counts, its known rows, in launch-date order."""
    records = payload()
    with api(ok(records)) as served:
        done = run_job(job_env(endpoint, served.url))
    assert done.returncode == 0, done.stderr
    assert f"205 rows written to s3://{BUCKET}/{KEY}" in done.stdout
    schema, rows = object_rows(download(endpoint))
    assert schema.remove_metadata() == EXPECTED_SCHEMA
    assert len(rows) == 205 == len({r["id"] for r in records})
    assert sum(row[3] is None for row in rows) == 19  # success
    assert sum(row[4] is None for row in rows) == 17  # webcast
    assert rows[0] == (
        1,
        "FalconSat",
        datetime(2006, 3, 24, 22, 30, tzinfo=UTC),
        False,
        "https://www.youtube.com/watch?v=0a_00nJ_Y88",
    )
    assert [row[0] for row in rows].count(188) == 4
    assert [row[0] for row in rows].count(198) == 2
    assert [row[2] for row in rows] == sorted(row[2] for row in rows)
    assert rows == expected_rows(records)


def test_a_second_run_on_the_same_input_leaves_the_object_byte_identical(endpoint: str) -> None:
    """Running twice gives the same bytes, and the second run does not upload at all."""
    with api(ok(payload())) as served:
        first = run_job(job_env(endpoint, served.url))
        before = s3(endpoint).head_object(Bucket=BUCKET, Key=KEY)
        body = download(endpoint)
        second = run_job(job_env(endpoint, served.url))
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    assert "unchanged at" in second.stdout
    after = s3(endpoint).head_object(Bucket=BUCKET, Key=KEY)
    assert download(endpoint) == body
    assert after["LastModified"] == before["LastModified"]
    assert after["ETag"] == before["ETag"]


def test_server_errors_are_retried_until_the_api_answers(endpoint: str) -> None:
    """A 500, a 503 with Retry-After and a 429 are retried; the fourth answer is written."""
    records = payload()
    replies = [
        Reply(500),
        Reply(503, headers={"Retry-After": "1"}),
        Reply(429, headers={"Retry-After": "0"}),
        ok(records),
    ]
    with api(*replies) as served:
        done = run_job(job_env(endpoint, served.url, LAUNCHES_ATTEMPTS="4"))
    assert done.returncode == 0, done.stderr
    assert served.requests == 4
    assert "HTTP 503" in done.stderr and "retrying" in done.stderr
    assert object_rows(download(endpoint))[1] == expected_rows(records)


def test_an_api_that_never_answers_fails_the_run_and_writes_nothing(endpoint: str) -> None:
    """Each attempt times out after the read timeout; after the last one the job exits 1
    with a one-line reason and no object exists."""
    with api(Reply(delay=3.0, body=b"[]")) as served:
        done = run_job(job_env(endpoint, served.url, LAUNCHES_READ_TIMEOUT_SECONDS="0.3"))
    assert done.returncode == 1
    assert served.requests == 3
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("launches: failed: timed out") and "after 3 attempts" in last
    assert keys(endpoint, BUCKET) == []


def test_malformed_json_is_retried_then_fails_the_run(endpoint: str) -> None:
    """An answer cut short is not JSON: retried, then a clear error and no object."""
    truncated = json.dumps(payload())[:5000].encode()
    with api(Reply(200, truncated)) as served:
        done = run_job(job_env(endpoint, served.url))
    assert done.returncode == 1
    assert served.requests == 3
    assert "the answer is not JSON" in done.stderr.splitlines()[-1]
    assert keys(endpoint, BUCKET) == []


def test_a_client_error_fails_at_once_without_retrying(endpoint: str) -> None:
    """A 404 cannot change by retrying: one request, exit 1, the status in the reason."""
    with api(Reply(404, b"not found")) as served:
        done = run_job(job_env(endpoint, served.url))
    assert done.returncode == 1
    assert served.requests == 1
    assert "HTTP 404" in done.stderr.splitlines()[-1]


def test_invalid_records_are_rejected_with_their_ids_and_the_rest_written(
    endpoint: str, tmp_path: Path
) -> None:
    """Records missing required fields are logged with their ids and counted; the other
    launches are written."""
    records = payload()
    broken = [dict(records[i]) for i in (3, 50, 100)]
    del broken[0]["flight_number"]
    del broken[1]["date_utc"]
    broken[2]["name"] = None
    for index, record in zip((3, 50, 100), broken, strict=True):
        records[index] = record
    metrics = tmp_path / "launches.prom"
    with api(ok(records)) as served:
        done = run_job(job_env(endpoint, served.url, LAUNCHES_METRICS_FILE=str(metrics)))
    assert done.returncode == 0, done.stderr
    for record in broken:
        assert f"rejected launch id={record['id']}" in done.stderr
    assert "202 rows written" in done.stdout and "(3 records rejected)" in done.stdout
    kept = [r for r in records if r not in broken]
    assert object_rows(download(endpoint))[1] == expected_rows(kept)
    text = metrics.read_text()
    assert 'streams_launches_records_rejected_total{reason="invalid_launch"} 3.0' in text
    assert "streams_launches_rows_written 202.0" in text


def test_a_payload_mostly_invalid_fails_the_run_and_keeps_the_old_object(
    endpoint: str, tmp_path: Path
) -> None:
    """When the API's shape changed (most records invalid), the run fails and the object
    written before stays as it was, and so does the metric of the last success."""
    metrics = tmp_path / "launches.prom"
    with api(ok(payload())) as served:
        assert (
            run_job(job_env(endpoint, served.url, LAUNCHES_METRICS_FILE=str(metrics))).returncode
            == 0
        )
    body = download(endpoint)
    success = [line for line in metrics.read_text().splitlines() if "last_success" in line]
    records = payload()
    renamed = [
        {**{k: v for k, v in r.items() if k != "date_utc"}, "launched": r["date_utc"]}
        for r in records[:150]
    ] + records[150:]
    with api(ok(renamed)) as served:
        done = run_job(job_env(endpoint, served.url, LAUNCHES_METRICS_FILE=str(metrics)))
    assert done.returncode == 1
    assert "150 of 205 records rejected" in done.stderr.splitlines()[-1]
    assert download(endpoint) == body
    after = metrics.read_text()
    assert all(line in after.splitlines() for line in success)
    assert 'streams_launches_records_rejected_total{reason="invalid_launch"} 150.0' in after


def test_an_empty_array_fails_the_run(endpoint: str) -> None:
    """An API answering [] would erase the object: the run fails instead."""
    with api(ok([])) as served:
        done = run_job(job_env(endpoint, served.url))
    assert done.returncode == 1
    assert "no valid launch" in done.stderr.splitlines()[-1]
    assert keys(endpoint, BUCKET) == []


def test_a_missing_bucket_fails_with_a_one_line_reason(endpoint: str) -> None:
    """A bucket that does not exist: exit 1, the destination named on one line."""
    with api(ok(payload())) as served:
        done = run_job(job_env(endpoint, served.url, S3_BUCKET="no-such-bucket"))
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("launches: failed: s3://no-such-bucket/launches.parquet")


def test_settings_missing_or_invalid_exit_2() -> None:
    """No bucket, or a setting of the wrong type: exit 2, the setting named."""
    missing = run_job({"SPACEX_API_URL": "http://127.0.0.1:9/"})
    assert missing.returncode == 2
    assert "S3_BUCKET is not set" in missing.stderr
    wrong = run_job({"S3_BUCKET": "b", "LAUNCHES_ATTEMPTS": "many"})
    assert wrong.returncode == 2
    assert "attempts" in wrong.stderr and len(wrong.stderr.strip().splitlines()) == 1
