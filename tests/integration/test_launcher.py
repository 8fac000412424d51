"""`make run`'s launcher: the whole product starts, shows data, stops cleanly, starts again."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pytest

from streams.common.broker import free_port
from tests.support.workers import Worker, wait_until

pytestmark = pytest.mark.integration


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def printed(output: Path, label: str) -> list[str]:
    """The URLs the launcher's guide prints on the line starting with ``label``."""
    line = next(line for line in output.read_text().splitlines() if line.startswith(label))
    return re.findall(r"http://\S+", line)


def port_of(url: str) -> int:
    return int(urlsplit(url).port or 0)


def post_reading(url: str) -> int:
    """POST one reading stamped now; the HTTP status the ingest answers."""
    reading = {
        "device_id": "launcher-check",
        "interface": "eth0",
        "metric": "utilization",
        "value": 0.5,
        "ts": datetime.now(UTC).isoformat(),
        "seq": 0,
    }
    request = urllib.request.Request(
        url, orjson.dumps(reading), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.status)


def run_once(state_dir: Path, web_port: int, broker_port: int, ingest_port: int) -> None:
    output = state_dir.parent / "launcher.out"
    with output.open("wb") as out:
        launcher = subprocess.Popen(
            [sys.executable, "-m", "streams", "run", "--demo", "1", "--state-dir", str(state_dir),
             "--web-port", str(web_port), "--broker-port", str(broker_port),
             "--ingest-port", str(ingest_port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:

        def guide_printed() -> bool:
            assert launcher.poll() is None, output.read_text()
            return "Press Ctrl-C" in output.read_text()

        wait_until(guide_printed, timeout=120, what="the guide")
        ingest_url = printed(output, "Telemetry ingest")[0]
        assert ingest_url == f"http://127.0.0.1:{ingest_port}/telemetry"
        telemetry = [
            Worker("", state_dir, state_dir / "unused.log", port=port_of(url))
            for url in printed(output, "Telemetry metrics")
        ]
        assert len(telemetry) == 2, "TELEMETRY_WORKERS defaults to 2"
        # Orders and telemetry run side by side: by the time the orders views show
        # data, the simulator's first polls have reached the telemetry workers too.
        view = Worker("", state_dir, state_dir / "unused.log", port=web_port)
        rows = wait_until(
            lambda: view.get("/orders/revenue/daily"), timeout=120, what="demo orders counted"
        )
        assert all(set(row) >= {"date", "channel", "region", "revenue", "orders"} for row in rows)
        assert view.get("/orders/inventory")
        assert post_reading(ingest_url) == 202
        assert telemetry[0].get("/telemetry/config")["window_seconds"] > 0
        wait_until(
            lambda: any(w.metric("streams_telemetry_readings_total") > 0 for w in telemetry),
            timeout=120,
            what="simulated readings processed",
        )
        launcher.send_signal(signal.SIGINT)
        launcher.wait(timeout=60)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
    text = output.read_text()
    assert launcher.returncode == 0, text
    assert f"http://127.0.0.1:{web_port}/orders/revenue/daily" in text
    for port in (web_port, broker_port, ingest_port, *(w.port for w in telemetry)):
        assert not listening(port), f"something still listens on {port}"


def test_run_starts_everything_and_stops_cleanly_twice(tmp_path: Path) -> None:
    """Demo orders and simulated devices reach the views, the ingest accepts readings,
    Ctrl-C stops every process, and a second run works although the embedded broker
    forgot the first run's data."""
    state_dir, web_port, broker_port = tmp_path / "var", free_port(), free_port()
    ingest_port = free_port()
    run_once(state_dir, web_port, broker_port, ingest_port)
    run_once(state_dir, web_port, broker_port, ingest_port)
