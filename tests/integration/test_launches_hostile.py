"""The batch job as a process against hostile answers and settings: each ends in the
documented exit code with one line, never a traceback, and bounded logs (breaks found by
an adversarial probe, each kept here)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.support.launches import (
    FULL,
    Reply,
    api,
    expected_rows,
    object_rows,
    ok,
    payload,
    run_job,
)

pytestmark = pytest.mark.integration


def local(tmp_path: Path, url: str, **extra: str) -> dict[str, str]:
    return {"SPACEX_API_URL": url, "LAUNCHES_OUTPUT_DIR": str(tmp_path / "out"), **extra}


def no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr[-3000:]


def test_one_record_python_cannot_parse_is_one_rejection(tmp_path: Path) -> None:
    """A 5,000-digit integer is valid JSON Python refuses: that record is rejected as
    invalid_json and the 205 launches are written, as the worker would."""
    records = payload()
    body = json.dumps(records)[:-1] + ', {"id": "big", "flight_number": ' + "9" * 5000 + "}]"
    metrics = tmp_path / "launches.prom"
    with api(Reply(200, body.encode())) as served:
        done = run_job(local(tmp_path, served.url, LAUNCHES_METRICS_FILE=str(metrics)))
    assert done.returncode == 0, done.stderr
    no_traceback(done.stderr)
    body_bytes = (tmp_path / "out" / "launches.parquet").read_bytes()
    assert object_rows(body_bytes)[1] == expected_rows(records)
    assert 'records_rejected_total{reason="invalid_json"} 1.0' in metrics.read_text()


@pytest.mark.parametrize(
    "date", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:30:00-01:00"], ids=["year0", "year10000"]
)
def test_a_date_out_of_range_in_utc_is_one_rejection(tmp_path: Path, date: str) -> None:
    """An offset that moves a date out of years 1-9999: rejected, no traceback."""
    records = [*payload(), {**payload()[0], "id": "edge", "date_utc": date}]
    with api(ok(records)) as served:
        done = run_job(local(tmp_path, served.url))
    assert done.returncode == 0, done.stderr
    assert "rejected launch id=edge" in done.stderr
    no_traceback(done.stderr)


def test_rejections_are_logged_with_a_cap(tmp_path: Path) -> None:
    """50,000 invalid records: the run fails with one line, the log stays short."""
    with api(ok([0] * 50_000)) as served:
        done = run_job(local(tmp_path, served.url))
    assert done.returncode == 1
    assert len(done.stderr.splitlines()) < 110
    assert "49900 more records rejected" in done.stderr


@pytest.mark.parametrize(
    "env",
    [
        {"SPACEX_API_URL": "notaurl"},
        {"SPACEX_API_URL": "http://[::1"},
        {"SPACEX_API_URL": "ftp://127.0.0.1/launches"},
        {"S3_BUCKET": "/", "LAUNCHES_OUTPUT_DIR": ""},
        {"S3_KEY": "../escaped.parquet"},
        {"S3_KEY": "a/../b.parquet"},
        {"S3_KEY": "dir/"},
        {"S3_KEY": "/"},
        {"S3_KEY": "a\x01b"},
        {"LAUNCHES_CONNECT_TIMEOUT_SECONDS": "1e400"},
        {"LAUNCHES_BACKOFF_SECONDS": "inf"},
        {"LAUNCHES_BACKOFF_MAX_SECONDS": "1e300"},
        {"LAUNCHES_ATTEMPTS": "0"},
        {"LAUNCHES_METRICS_FILE": "/"},
        {"LAUNCHES_PUSHGATEWAY_URL": "http://127.0.0.1:abc"},
        {"LAUNCHES_OUTPUT_DIR": ""},
    ],
    ids=lambda env: " ".join(f"{k}={v!r}" for k, v in env.items()),
)
def test_invalid_settings_exit_2_with_one_line(tmp_path: Path, env: dict[str, str]) -> None:
    """Refused before anything is fetched or written: exit 2, one line, no traceback."""
    done = run_job({"LAUNCHES_OUTPUT_DIR": str(tmp_path / "out"), **env})
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert not (tmp_path.parent / "escaped.parquet").exists()


def test_an_output_dir_that_is_a_file_exits_2(tmp_path: Path) -> None:
    """A destination that cannot be a directory is a setting's fault."""
    (tmp_path / "file").write_text("")
    done = run_job({"LAUNCHES_OUTPUT_DIR": str(tmp_path / "file"), "SPACEX_API_URL": "http://x"})
    assert done.returncode == 2
    assert done.stderr.startswith("launches: failed: invalid destination")
    no_traceback(done.stderr)


def test_an_unreadable_old_textfile_does_not_fail_the_report(tmp_path: Path) -> None:
    """A previous metrics file that is no UTF-8 text: the failed run still reports its
    one-line reason, and the file becomes valid again."""
    metrics = tmp_path / "launches.prom"
    metrics.write_bytes(b"\xff\xfe not text \x80")
    done = run_job(
        local(
            tmp_path,
            "http://127.0.0.1:9/",
            LAUNCHES_METRICS_FILE=str(metrics),
            LAUNCHES_ATTEMPTS="1",
        )
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("launches: failed: cannot connect")
    no_traceback(done.stderr)
    assert "streams_launches_last_run_success 0.0" in metrics.read_text()


def test_the_local_copy_in_make_run_s_place_is_readable(tmp_path: Path) -> None:
    """A file:// URL to the bundled copy: 205 rows, as `make run` writes them."""
    done = run_job(local(tmp_path, FULL.as_uri()))
    assert done.returncode == 0, done.stderr
    assert pq.read_metadata(tmp_path / "out" / "launches.parquet").num_rows == 205
