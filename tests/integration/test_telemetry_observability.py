"""A real Prometheus scrapes a real telemetry ingest and two real workers while devices
post live readings; every panel query of the Telemetry dashboard, every alert operand and
every recording rule returns data."""

from __future__ import annotations

import math
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.common.broker import EmbeddedBroker
from tests.dashboards.contract import TELEMETRY
from tests.support.prometheus import (
    Prometheus,
    panel_and_alert_queries,
    recording_expressions,
    running_prometheus,
    unhealthy_rules,
)
from tests.support.workers import Worker, stop_together, wait_until

pytestmark = pytest.mark.integration

#: Keyed by device, these land on all six partitions (Kafka's murmur2), so both workers
#: window readings whatever partitions each is assigned.
DEVICES = tuple(f"router-{n}" for n in range(1, 8))
#: Small windows so that several close, on event time, while the test runs.
WORKER_ENV = {
    "TELEMETRY_WINDOW_SECONDS": "5",
    "TELEMETRY_GRACE_SECONDS": "1",
    "TELEMETRY_BATCH_SECONDS": "0.1",
    # The "Busiest devices" panel: each worker exports its top devices of the last 10 s
    # every 10 s, so the gauge only exists while readings flow (see traffic below).
    "TELEMETRY_TOP_DEVICES": "10",
}


@pytest.fixture
def start_process(
    broker: EmbeddedBroker, tmp_path: Path
) -> Iterator[Callable[[list[tuple[str, dict[str, str]]]], list[Worker]]]:
    """Start telemetry processes ((command, env) each) in parallel; stop each by pid."""
    started: list[Worker] = []

    def start(specs: list[tuple[str, dict[str, str]]]) -> list[Worker]:
        processes = [
            Worker(
                broker.bootstrap,
                tmp_path / f"{command}{n}",
                tmp_path / f"{command}{n}.log",
                env=env,
                module="streams.telemetry",
                command=command,
            )
            for n, (command, env) in enumerate(specs)
        ]
        started.extend(processes)
        with ThreadPoolExecutor(len(processes)) as pool:
            return list(pool.map(Worker.start, processes))

    yield start
    stop_together(started)


def post(ingest: Worker, body: Any) -> int:
    request = urllib.request.Request(
        ingest.url + "/telemetry",
        data=orjson.dumps(body),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def live_readings(seq: int) -> list[dict[str, Any]]:
    """One reading of utilization and errors per device, stamped now; router-2's errors
    break the default threshold (max above 50) in three requests."""
    now = datetime.now(UTC).isoformat()
    readings = []
    for n, device in enumerate(DEVICES):
        errors = 75.0 if device == "router-2" and 10 <= seq < 13 else float(seq % 3)
        for metric, value in (("utilization", 30.0 + (seq + n) % 9), ("errors", errors)):
            readings.append(
                {"device_id": device, "interface": "eth0", "metric": metric, "value": value,
                 "ts": now, "seq": seq}
            )  # fmt: skip
    return readings


def send_live(ingest: Worker, stop: threading.Event, answers: Counter[int | str]) -> None:
    """Post every device's readings five times a second until ``stop`` (at most 2 min)."""
    seq = 0
    while seq < 600 and not stop.wait(0.2):
        try:
            answers[post(ingest, live_readings(seq))] += 1
        except OSError as exc:  # counted, so a failing ingest shows in the assertion
            answers[repr(exc)] += 1
        seq += 1


def wait_for_number(prom: Prometheus, expr: str, timeout: float) -> bool:
    """Whether ``expr`` returns a sample that is a number (not NaN) within ``timeout`` s.

    A histogram_quantile() or a ratio over no observations is NaN, which a dashboard
    shows as nothing: that is no data.
    """

    def number() -> bool:
        return any(not math.isnan(float(s["value"][1])) for s in prom.query(expr))

    try:
        return wait_until(number, timeout=timeout, what=expr)
    except AssertionError:
        return False


def test_every_panel_alert_operand_and_recording_rule_has_data(
    start_process: Callable[[list[tuple[str, dict[str, str]]]], list[Worker]], tmp_path: Path
) -> None:
    """Dashboard, alerts and recording rules are proven against what real processes export."""
    ingest, *workers = start_process(
        [("ingest", {}), ("worker", WORKER_ENV), ("worker", WORKER_ENV)]
    )
    targets = {
        "telemetry": [f"127.0.0.1:{w.port}" for w in workers],
        "telemetry-ingest": [f"127.0.0.1:{ingest.port}"],
    }
    answers: Counter[int | str] = Counter()
    stop = threading.Event()
    # Live traffic runs until every check is done: the busiest-devices gauge, rates and
    # quantiles over [1m] describe readings that are flowing, not a finished run.
    traffic = threading.Thread(target=send_live, args=(ingest, stop, answers), daemon=True)
    with running_prometheus(targets, [TELEMETRY.rules], tmp_path / "prometheus") as prom:
        traffic.start()
        try:
            bad = {"device_id": "router-1", "interface": "eth0", "metric": "errors", "value": 1}
            assert post(ingest, [bad]) == 422  # no ts, no seq: refused whole

            # router-2's errors above 50 are reported once their window closed.
            prom.wait_for(
                'sum(streams_telemetry_alerts_total{job="telemetry", kind="threshold"}) > 0',
                timeout=90,
            )
            prom.wait_for('streams_telemetry_ingest_requests_total{status="422"} > 0')
            for worker in workers:  # the views' latency histogram needs a request each
                worker.get("/telemetry/config")
            # No traffic is needed for 429 or 503, nor for late or invalid dead letters:
            # those label values are exported at 0 from start, so their rates, ratios
            # and increases are 0, which is data. Refusing requests would prove nothing
            # more here; tests/integration/test_telemetry_ingest.py covers them.
            rules = TELEMETRY.rules
            queries = panel_and_alert_queries(TELEMETRY.dashboard, rules)
            # By the recorded name: proves the rule file loaded and each rule evaluates.
            queries += [
                (f"recording rule {name}", name) for name, _ in recording_expressions(rules)
            ]
            missing = [
                f"{where}: {expr}"
                for where, expr in queries
                if not wait_for_number(prom, expr, timeout=30)
            ]
            assert not missing, "no data for:\n" + "\n".join(missing)
            assert not unhealthy_rules(prom)
            assert {t["health"] for t in prom.targets()} == {"up"}
        finally:
            stop.set()
            traffic.join(timeout=60)
    assert answers[202] > 0 and set(answers) == {202}, answers
