"""A real Prometheus scrapes a real launches worker fed the real API's 205 launches and two
invalid records, and a real Pushgateway holding a real batch run's metrics: every panel
query of the SpaceX launches dashboard and every alert operand returns a number, the
figures are the run's, and only the rejection alerts fire. The batch job's textfile
parses and names the worker's series."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streams.common.broker import EmbeddedBroker
from tests.dashboards.contract import LAUNCHES, LAUNCHES_SERIES, promtool
from tests.support.launches import api, ok, payload, run_job
from tests.support.prometheus import (
    Prometheus,
    panel_and_alert_queries,
    running_prometheus,
    running_pushgateway,
    unhealthy_rules,
)
from tests.support.workers import Processes, produce, wait_until

pytestmark = pytest.mark.integration

WORKER, JOB = "launches", "streams_launches"
#: A record the rule of models.py rejects (invalid_launch), under an id of its own.
NOT_A_LAUNCH = {"id": "not-a-launch", "flight_number": "one"}
ROWS = len(payload())  # 205 launches, each valid


@pytest.fixture
def workers(broker: EmbeddedBroker, tmp_path: Path) -> Iterator[Processes]:
    started = Processes(broker.bootstrap, tmp_path, module="streams.launches")
    yield started
    started.stop_all()


def series_names(text: str) -> set[str]:
    """The launches series a text exposition carries, as queried (``_created`` left out:
    prometheus_client's creation times, which no query uses)."""
    return {
        sample.name
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("streams_launches_") and not sample.name.endswith("_created")
    }


def has_number(prom: Prometheus, expr: str, timeout: float = 30) -> bool:
    """Whether ``expr`` returns a sample that is a number (not NaN) within ``timeout`` s."""
    try:
        prom.wait_for(f"({expr}) == ({expr})", timeout=timeout)
    except TimeoutError:
        return False
    return True


def by_label(prom: Prometheus, expr: str, label: str) -> dict[str, float]:
    return {s["metric"][label]: float(s["value"][1]) for s in prom.query(expr)}


def test_every_panel_and_alert_has_the_worker_s_and_the_batch_job_s_figures(
    broker: EmbeddedBroker, workers: Processes, tmp_path: Path
) -> None:
    """Dashboard and alerts are proven against what a real worker and a real pushed run export."""
    with running_pushgateway(tmp_path / "pushgateway") as pushgateway:
        # The batch job, one run: 205 launches and one invalid record (under 10 %).
        with api(ok([*payload(), NOT_A_LAUNCH])) as served:
            run = run_job(
                {
                    "SPACEX_API_URL": served.url,
                    "LAUNCHES_OUTPUT_DIR": str(tmp_path / "batch"),
                    "LAUNCHES_PUSHGATEWAY_URL": f"http://{pushgateway}",
                }
            )
        assert run.returncode == 0, run.stderr

        worker = workers.start(
            {
                "LAUNCHES_OUTPUT_DIR": str(tmp_path / "stream"),
                "LAUNCHES_DEBOUNCE_SECONDS": "0.5",
            }
        )
        targets = {WORKER: [f"127.0.0.1:{worker.port}"], "pushgateway": [pushgateway]}
        with running_prometheus(
            targets, [LAUNCHES.rules], tmp_path / "prometheus", honor_labels=["pushgateway"]
        ) as prom:
            # Scraped before any record: the rejection counters have a sample of 0, so
            # increase() sees the first rejections.
            prom.wait_for(f'min(count_over_time(up{{job="{WORKER}"}}[1m])) >= 2')
            launches = [(r["id"].encode(), json.dumps(r).encode()) for r in payload()]
            invalid = [
                (b"not-json", b"{not json"),
                (NOT_A_LAUNCH["id"].encode(), json.dumps(NOT_A_LAUNCH).encode()),
            ]
            produce(broker.bootstrap, "launches.raw", [*launches, *invalid])
            wait_until(
                lambda: worker.metric("streams_launches_loads_total") >= 1,
                timeout=30,
                what="the worker's first load",
            )

            rules = LAUNCHES.rules
            queries = panel_and_alert_queries(LAUNCHES.dashboard, rules)
            missing = [f"{where}: {expr}" for where, expr in queries if not has_number(prom, expr)]
            assert not missing, "no data for:\n" + "\n".join(missing)

            firing = 'ALERTS{alertstate="firing", alertname=~"Launches(Job)?RecordsRejected"}'
            wait_until(lambda: len(prom.query(firing)) == 3, timeout=30, what="rejection alerts")
            for job in (WORKER, JOB):
                assert prom.value(f'streams_launches_rows_written{{job="{job}"}}') == ROWS
                age = f'time() - streams_launches_last_success_timestamp_seconds{{job="{job}"}}'
                assert 0 <= prom.value(age) < 120
            rejected = "streams_launches_records_rejected_total"
            assert by_label(prom, f'{rejected}{{job="{WORKER}"}}', "reason") == {
                "invalid_json": 1,
                "invalid_launch": 1,
                "processing_error": 0,
            }
            assert by_label(prom, f'{rejected}{{job="{JOB}"}}', "reason") == {
                "invalid_json": 0,
                "invalid_launch": 1,
                "processing_error": 0,
            }
            loads = "streams_launches_loads_total"
            assert by_label(prom, f'{loads}{{job="{JOB}"}}', "result") == {
                "written": 1,
                "unchanged": 0,
            }
            assert by_label(prom, f'{loads}{{job="{WORKER}"}}', "result")["written"] >= 1
            alerts = {
                (a["labels"]["alertname"], a["labels"]["job"], a["labels"].get("reason"))
                for a in prom.alerts()
            }
            assert alerts == {
                ("LaunchesRecordsRejected", WORKER, "invalid_json"),
                ("LaunchesRecordsRejected", WORKER, "invalid_launch"),
                ("LaunchesJobRecordsRejected", JOB, "invalid_launch"),
            }
            assert not unhealthy_rules(prom)
            assert {t["health"] for t in prom.targets()} == {"up"}
            # Both ways of running it export the same series (the worker adds Faust's).
            assert series_names(worker.metrics()) == LAUNCHES_SERIES


def test_the_batch_job_s_textfile_parses_and_names_the_worker_s_series(tmp_path: Path) -> None:
    """The textfile a run writes passes promtool's lint and carries every launches series."""
    # node_exporter's textfile collector is not installed by `make prometheus`: what it
    # would read is checked with Prometheus' own parsers instead (prometheus_client's,
    # and promtool's, which lints as well).
    textfile = tmp_path / "launches.prom"
    with api(ok([*payload(), NOT_A_LAUNCH])) as served:
        run = run_job(
            {
                "SPACEX_API_URL": served.url,
                "LAUNCHES_OUTPUT_DIR": str(tmp_path / "out"),
                "LAUNCHES_METRICS_FILE": str(textfile),
            }
        )
    assert run.returncode == 0, run.stderr
    text = textfile.read_text()

    lint = promtool("check", "metrics", stdin=text)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert series_names(text) == LAUNCHES_SERIES
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert samples[("streams_launches_rows_written", ())] == ROWS
    assert samples[("streams_launches_loads_total", (("result", "written"),))] == 1
    assert (
        samples[("streams_launches_records_rejected_total", (("reason", "invalid_launch"),))] == 1
    )
