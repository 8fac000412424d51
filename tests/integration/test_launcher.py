"""`make run`'s launcher: the whole product starts, shows data, stops cleanly, starts again."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from streams.common.broker import free_port
from tests.support.workers import Worker, wait_until

pytestmark = pytest.mark.integration


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def run_once(state_dir: Path, web_port: int, broker_port: int) -> None:
    launcher = subprocess.Popen(
        [sys.executable, "-m", "streams", "run", "--demo", "1", "--state-dir", str(state_dir),
         "--web-port", str(web_port), "--broker-port", str(broker_port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        view = Worker("", state_dir, state_dir / "unused.log", port=web_port)
        rows = wait_until(
            lambda: view.get("/orders/revenue/daily"), timeout=120, what="demo orders counted"
        )
        assert all(set(row) >= {"date", "channel", "region", "revenue", "orders"} for row in rows)
        assert view.get("/orders/inventory")
        launcher.send_signal(signal.SIGINT)
        output = launcher.communicate(timeout=60)[0].decode()
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
    assert launcher.returncode == 0, output
    assert f"http://127.0.0.1:{web_port}/orders/revenue/daily" in output
    assert not listening(web_port)
    assert not listening(broker_port)


def test_run_starts_everything_and_stops_cleanly_twice(tmp_path: Path) -> None:
    """Demo data reaches the views, Ctrl-C stops every process, and a second run works
    although the embedded broker forgot the first run's data."""
    state_dir, web_port, broker_port = tmp_path / "var", free_port(), free_port()
    run_once(state_dir, web_port, broker_port)
    run_once(state_dir, web_port, broker_port)
