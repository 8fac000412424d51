"""The batch job's metrics pushed to a real Pushgateway (Debian's), the way a scheduled
job that exits reports to Prometheus: a success sets every metric, a failure after it
reports its own figures and leaves the last success where it was."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.launches import Reply, api, ok, payload, run_job
from tests.support.ports import free_port
from tests.support.prometheus import running_pushgateway

pytestmark = pytest.mark.integration


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[str]:
    with running_pushgateway(tmp_path / "pushgateway") as address:
        yield f"http://{address}"


def pushed(url: str) -> dict[str, float]:
    """The samples the Pushgateway holds for the launches job, by name and labels."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("job") == "streams_launches":
                labels = {k: v for k, v in sample.labels.items() if k not in ("job", "instance")}
                key = sample.name + "".join(f"{{{k}={v}}}" for k, v in sorted(labels.items()))
                samples[key] = sample.value
    return samples


def test_a_failed_run_keeps_the_last_success_on_the_pushgateway(
    pushgateway: str, tmp_path: Path
) -> None:
    """Success: rows, a load written, the time of success. Then a failing run: its
    duration is pushed, the rows and the time of the last success stay as they were."""
    env = {
        "LAUNCHES_OUTPUT_DIR": str(tmp_path / "out"),
        "LAUNCHES_PUSHGATEWAY_URL": pushgateway,
        "LAUNCHES_ATTEMPTS": "1",
    }
    with api(ok(payload())) as served:
        assert run_job({**env, "SPACEX_API_URL": served.url}).returncode == 0
    first = pushed(pushgateway)
    assert first["streams_launches_rows_written"] == 205
    assert first["streams_launches_loads_total{result=written}"] == 1
    assert first["streams_launches_last_success_timestamp_seconds"] > 0
    with api(Reply(500)) as served:
        failed = run_job({**env, "SPACEX_API_URL": served.url})
    assert failed.returncode == 1
    second = pushed(pushgateway)
    assert second["streams_launches_rows_written"] == 205
    assert (
        second["streams_launches_last_success_timestamp_seconds"]
        == first["streams_launches_last_success_timestamp_seconds"]
    )
    assert second["streams_launches_loads_total{result=written}"] == 0
    assert (
        second["streams_launches_run_duration_seconds"]
        != first["streams_launches_run_duration_seconds"]
    )


def test_an_unreachable_pushgateway_does_not_fail_the_run(tmp_path: Path) -> None:
    """Reporting is best effort: the object is written, exit 0, a warning logged."""
    env = {
        "LAUNCHES_OUTPUT_DIR": str(tmp_path / "out"),
        "LAUNCHES_PUSHGATEWAY_URL": f"http://127.0.0.1:{free_port()}",
    }
    with api(ok(payload())) as served:
        done = run_job({**env, "SPACEX_API_URL": served.url})
    assert done.returncode == 0, done.stderr
    assert "metrics not pushed" in done.stderr
    assert (tmp_path / "out" / "launches.parquet").exists()
