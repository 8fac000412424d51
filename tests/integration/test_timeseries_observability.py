"""A real Prometheus scrapes two real time-series workers while clients use the API: every
panel query of the Time series dashboard, every alert operand and every recording rule
returns a number, and the dead-letter alert fires on real dead letters."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from streams.common.broker import EmbeddedBroker
from tests.dashboards.contract import TIMESERIES
from tests.support.prometheus import (
    Prometheus,
    dashboard_queries,
    panel_and_alert_queries,
    recording_expressions,
    running_prometheus,
    unhealthy_rules,
)
from tests.support.timeseries import TimeSeriesWorkers, call, serving
from tests.support.workers import Worker, produce, wait_until

pytestmark = pytest.mark.integration

TS = 1_700_000_000
#: A well-formed series id that no series has.
UNKNOWN = "0" * 32
#: The second worker gives a write 1 ms to be answered: the writes it takes for series it
#: applies itself are 503 (their command is applied a batch later, at least 5 ms): the
#: real 5xx the error ratio and its alert count.
IMPATIENT = {"TIMESERIES_WRITE_TIMEOUT_SECONDS": "0.001"}
REQUESTS = "streams_timeseries_http_request_duration_seconds"
#: Writes a worker took whose answer it awaited from the worker applying their partition.
OWNER_WAITS = 'streams_timeseries_write_wait_seconds_count{where="owner"}'
#: What each call of a round of traffic (below) is answered.
EXPECTED = {
    "create": 201,
    "append": 200,
    "read": 200,
    "metrics": 200,
    "forecast": 200,
    "list": 200,
    "unknown": 404,
    "invalid": 422,
    "delete": 204,
    "timed out": 503,
}


def point(ts: int, value: Any) -> dict[str, Any]:
    return {"points": [{"ts": ts, "value": value}]}


def series_elsewhere(worker: Worker) -> str:
    """A new series whose partition the other worker applies: one whose create ``worker``
    took and awaited from the partition's owner."""

    def create() -> str | None:
        before = worker.metric(OWNER_WAITS)
        created = call(f"{worker.url}/series", "POST", point(TS, 1.0))
        assert created.status == 201, created
        return str(created.body["id"]) if worker.metric(OWNER_WAITS) > before else None

    return wait_until(create, timeout=30, every=0, what="a series on the other worker")


def round_of_traffic(patient: Worker, impatient: Worker, forecast_id: str) -> dict[str, int]:
    """Every kind of request once: (call, status answered) each."""
    status = {}
    created = call(f"{patient.url}/series", "POST", point(TS, 1.0))
    status["create"] = created.status
    series = f"/series/{created.body['id']}" if created.status == 201 else f"/series/{UNKNOWN}"
    status["append"] = call(f"{patient.url}{series}/points", "POST", point(TS + 1, 2.0)).status
    # From the other worker: forwarded to the series' owner when it is not that worker.
    status["read"] = call(f"{impatient.url}{series}").status
    status["metrics"] = call(f"{impatient.url}{series}/metrics").status
    status["forecast"] = call(f"{patient.url}/series/{forecast_id}/forecast?horizon=3").status
    status["list"] = call(f"{impatient.url}/series?limit=5").status
    status["unknown"] = call(f"{patient.url}/series/{UNKNOWN}").status
    status["invalid"] = call(f"{patient.url}/series", "POST", point(TS, "x")).status
    status["delete"] = call(f"{patient.url}{series}", "DELETE").status
    timed_out = call(f"{impatient.url}/series/{forecast_id}/points", "POST", point(TS, 1.0))
    status["timed out"] = timed_out.status
    return status


def use_the_api(
    round_once: Callable[[], dict[str, int]], stop: threading.Event, answers: Counter[str]
) -> None:
    """Play rounds of traffic 0.2 s apart until ``stop`` (at most 1000 rounds)."""
    for _ in range(1000):
        if stop.wait(0.2):
            return
        try:
            answers.update(f"{what} {status}" for what, status in round_once().items())
        except OSError as exc:  # counted, so a failing worker shows in the assertion
            answers[repr(exc)] += 1


def has_number(prom: Prometheus, expr: str, timeout: float = 30) -> bool:
    """Whether ``expr`` returns a sample that is a number within ``timeout`` s.

    A quantile or a ratio over no observations is NaN, which a dashboard shows as
    nothing: no data. NaN equals nothing, itself included, so ``(e) == (e)`` keeps only
    the samples that are numbers.
    """
    try:
        prom.wait_for(f"({expr}) == ({expr})", timeout=timeout)
    except TimeoutError:
        return False
    return True


def test_every_panel_alert_operand_and_recording_rule_has_data(
    broker: EmbeddedBroker, timeseries: TimeSeriesWorkers, tmp_path: Path
) -> None:
    """Dashboard, alerts and recording rules are proven against what real workers export."""
    patient, impatient = timeseries.start(), timeseries.start(IMPATIENT)
    for worker in (patient, impatient):
        serving(worker)
    # Applied by the impatient worker, which then awaits its own writes to it (the 503s).
    forecast_id = series_elsewhere(patient)
    nine = {"points": [{"ts": TS + 60 * n, "value": float(n % 4)} for n in range(1, 10)]}
    appended = call(f"{patient.url}/series/{forecast_id}/points", "POST", nine)
    assert appended.status == 200 and appended.body["count"] == 10, appended

    targets = {"timeseries": [f"127.0.0.1:{w.port}" for w in (patient, impatient)]}
    answers: Counter[str] = Counter()
    stop = threading.Event()
    # Live traffic runs until every check is done: rates and quantiles over [1m] and [5m]
    # describe requests that are flowing, not a finished run.
    traffic = threading.Thread(
        target=use_the_api,
        args=(lambda: round_of_traffic(patient, impatient, forecast_id), stop, answers),
        daemon=True,
    )
    with running_prometheus(targets, [TIMESERIES.rules], tmp_path / "prometheus") as prom:
        # Scraped before any request: the series exported at start (each route's success
        # status) have a sample of 0, so rate() sees the first requests.
        prom.wait_for('min(count_over_time(up{job="timeseries"}[1m])) >= 2')
        traffic.start()
        try:
            # Two records that are no command, to one partition, hence one worker: the
            # first creates its dead-letter series, the second is an increase, which the
            # alert (no `for`) reports at its next evaluation.
            poison = [(None, b"not json", 0)]
            produce(broker.bootstrap, "timeseries.writes", poison)
            prom.wait_for(
                'streams_timeseries_dead_letters_total{job="timeseries", reason="invalid_command"}'
            )
            produce(broker.bootstrap, "timeseries.writes", poison)
            prom.wait_for(
                'ALERTS{alertname="TimeseriesDeadLetters", alertstate="firing",'
                ' reason="invalid_command"}'
            )

            # Every status the traffic causes, and writes awaited both on the worker that
            # took them and by a long poll of the owner (series land on either worker).
            statuses = f'count by (status) ({REQUESTS}_count{{job="timeseries"}} > 0)'
            wait_until(
                lambda: (
                    {s["metric"]["status"] for s in prom.query(statuses)}
                    >= {str(status) for status in EXPECTED.values()}
                ),
                timeout=30,
                what="every status answered",
            )
            wheres = (
                'count by (where) (streams_timeseries_write_wait_seconds_count{job="timeseries"})'
            )
            wait_until(
                # (and "timeout": the second worker's writes time out on purpose)
                lambda: (
                    {s["metric"]["where"] for s in prom.query(wheres)}
                    >= {"here", "owner", "timeout"}
                ),
                timeout=30,
                what="writes awaited here and at their owner",
            )

            rules = TIMESERIES.rules
            queries = panel_and_alert_queries(TIMESERIES.dashboard, rules)
            # By the recorded name: proves the rule file loaded and each rule evaluates.
            queries += [
                (f"recording rule {name}", name) for name, _ in recording_expressions(rules)
            ]
            missing = [f"{where}: {expr}" for where, expr in queries if not has_number(prom, expr)]
            assert not missing, "no data for:\n" + "\n".join(missing)

            # The 4xx and 5xx of the traffic are counted as such, not only as data: a
            # status's series appears with its first request, so its rate moves from the
            # second on.
            ratios = [e for t, e in dashboard_queries(TIMESERIES.dashboard) if "ratio" in t]
            for expr in [*ratios, "job:streams_timeseries_http_5xx:ratio_rate5m"]:
                prom.wait_for(f"({expr}) > 0", timeout=30)
            assert not unhealthy_rules(prom)
            assert {t["health"] for t in prom.targets()} == {"up"}
        finally:
            stop.set()
            traffic.join(timeout=60)
    assert answers, "no round of traffic was played"
    assert set(answers) == {f"{what} {status}" for what, status in EXPECTED.items()}, answers
