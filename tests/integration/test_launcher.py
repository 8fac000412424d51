"""`make run`'s launcher: the whole product starts, shows data, stops cleanly, starts
again, and brings back a worker that was killed."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pyarrow.parquet as pq
import pytest

from tests.support.ports import free_port
from tests.support.workers import Worker, wait_until

pytestmark = pytest.mark.integration


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def printed(output: Path, label: str) -> list[str]:
    """The URLs the launcher's guide prints on the line starting with ``label``."""
    line = next(line for line in output.read_text().splitlines() if line.startswith(label))
    return re.findall(r"http://\S+", line)


def printed_text(output: Path, label: str) -> str:
    """What the launcher's guide prints after ``label``."""
    line = next(line for line in output.read_text().splitlines() if line.startswith(label))
    return line.removeprefix(label).strip()


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


def launch(
    output: Path, state_dir: Path, web_port: int, broker_port: int, ingest_port: int
) -> subprocess.Popen[bytes]:
    """``python -m streams run --demo 1`` with its console in ``output``, once it printed
    its guide."""
    with output.open("wb") as out:
        launcher = subprocess.Popen(
            [sys.executable, "-m", "streams", "run", "--demo", "1", "--state-dir", str(state_dir),
             "--web-port", str(web_port), "--broker-port", str(broker_port),
             "--ingest-port", str(ingest_port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip

    def guide_printed() -> bool:
        assert launcher.poll() is None, output.read_text()
        return "Press Ctrl-C" in output.read_text()

    try:
        wait_until(guide_printed, timeout=120, what="the guide")
    except BaseException:
        stop(launcher)
        raise
    return launcher


def stop(launcher: subprocess.Popen[bytes]) -> None:
    """Ctrl-C, so that the launcher stops its children; SIGKILL only if it hangs."""
    if launcher.poll() is None:
        launcher.send_signal(signal.SIGINT)
        try:
            launcher.wait(timeout=90)
        except subprocess.TimeoutExpired:
            launcher.kill()
            launcher.wait()


def pids(state_dir: Path) -> dict[str, int]:
    """The launcher's pid files: process name to its current pid."""
    return {
        path.stem: int(text)
        for path in (state_dir / "pids").glob("*.pid")
        if (text := path.read_text().strip())
    }


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def orders_counted(view: Worker) -> int:
    """Orders the daily revenue view counts (every status), or 0 until it answers."""
    status, rows = view.status("/orders/revenue/daily")
    return sum(row["orders_all_statuses"] for row in rows) if status == 200 else 0


def lists_one_series(worker: Worker) -> bool:
    status, body = worker.status("/series")
    return status == 200 and body["count"] == 1


def run_once(state_dir: Path, web_port: int, broker_port: int, ingest_port: int) -> None:
    output = state_dir.parent / "launcher.out"
    launcher = launch(output, state_dir, web_port, broker_port, ingest_port)
    try:
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
        # Ready (200, not 503) once its configuration is loaded: the flow-logs demo day,
        # read at the same time, can make it take a few seconds more than the orders.
        wait_until(
            lambda: telemetry[0].get("/telemetry/config")["window_seconds"] > 0,
            timeout=60,
            what="the telemetry configuration",
        )
        wait_until(
            lambda: any(w.metric("streams_telemetry_readings_total") > 0 for w in telemetry),
            timeout=120,
            what="simulated readings processed",
        )
        # The demo day of flow logs, generated before the reader started, is counted.
        flows = Worker("", state_dir, state_dir / "unused.log", port=port_of(
            printed(output, "Flow-logs views")[0]
        ))  # fmt: skip
        wait_until(
            lambda: flows.status("/flowlogs/summary")[1].get("flows", 0) > 1000,
            timeout=120,
            what="demo flow logs counted",
        )
        # The dashboard on the worker's lake, started with the servers.
        dashboard = printed(output, "Flow-logs dashboard")[0]
        with urllib.request.urlopen(f"{dashboard}/health", timeout=10) as answer:
            assert answer.status == 200
        # Two time-series workers; the demo client's series is listed by either.
        series = [
            Worker("", state_dir, state_dir / "unused.log", port=port_of(url))
            for url in printed(output, "Time-series metrics")
        ]
        assert len(series) == 2
        for worker in series:
            wait_until(partial(lists_one_series, worker), timeout=120, what="the demo series")
        # The streaming way's object, from the bundled copy of the SpaceX API's answer.
        launches = Path(printed_text(output, "Launches object"))
        wait_until(launches.exists, timeout=120, what=f"{launches} written")
        assert pq.read_metadata(launches).num_rows == 205
        launches_port = port_of(printed(output, "Launches metrics")[0])
        launcher.send_signal(signal.SIGINT)
        launcher.wait(timeout=60)
    finally:
        stop(launcher)
    text = output.read_text()
    assert launcher.returncode == 0, text
    assert f"http://127.0.0.1:{web_port}/orders/revenue/daily" in text
    servers = [*telemetry, *series]
    ports = (web_port, broker_port, ingest_port, flows.port, launches_port, port_of(dashboard))
    for port in (*ports, *(w.port for w in servers)):
        assert not listening(port), f"something still listens on {port}"


def test_run_starts_everything_and_stops_cleanly_twice(tmp_path: Path) -> None:
    """Demo orders and simulated devices reach the views, the ingest accepts readings,
    Ctrl-C stops every process, and a second run works although the embedded broker
    forgot the first run's data."""
    state_dir, web_port, broker_port = tmp_path / "var", free_port(), free_port()
    ingest_port = free_port()
    run_once(state_dir, web_port, broker_port, ingest_port)
    run_once(state_dir, web_port, broker_port, ingest_port)


@pytest.mark.timeout(600)
def test_killed_worker_comes_back_and_the_product_keeps_answering(tmp_path: Path) -> None:
    """An orders worker killed with SIGKILL is reported and started again on its web port,
    where the daily revenue answers and keeps counting demo orders, while every other
    process keeps running; Ctrl-C then stops every process, the new worker included."""
    state_dir, output = tmp_path / "var", tmp_path / "launcher.out"
    web_port, broker_port, ingest_port = free_port(), free_port(), free_port()
    launcher = launch(output, state_dir, web_port, broker_port, ingest_port)
    try:
        view = Worker("", state_dir, state_dir / "unused.log", port=web_port)
        wait_until(lambda: orders_counted(view), timeout=120, what="demo orders counted")
        before = pids(state_dir)
        assert {"broker", "orders-worker0", "telemetry-ingest", "orders-producer"} <= set(before)
        killed = before["orders-worker0"]
        counted_before = orders_counted(view)
        os.kill(killed, signal.SIGKILL)

        def new_worker() -> int | None:
            pid = pids(state_dir).get("orders-worker0")
            return pid if pid is not None and pid != killed and alive(pid) else None

        restarted = wait_until(new_worker, timeout=120, what="a new orders worker")
        assert not alive(killed)
        # Figures beyond those before the kill, then growing again: the new worker
        # recovered the counts and goes on counting the orders still being produced.
        counted = wait_until(
            lambda: (n := orders_counted(view)) > counted_before and n,
            timeout=180,
            what="the new worker counting past the figures before the kill",
        )
        wait_until(lambda: orders_counted(view) > counted, timeout=120, what="orders still counted")
        assert new_worker() == restarted, "the new worker kept running"
        others = {name: pid for name, pid in before.items() if name != "orders-worker0"}
        now = pids(state_dir)
        assert {name: now.get(name) for name in others} == others
        assert all(alive(pid) for pid in others.values())
        text = output.read_text()
        assert f"orders-worker0 (pid {killed}) killed by SIGKILL" in text
        assert f"orders-worker0 restarted as pid {restarted} (restart 1)" in text
        launcher.send_signal(signal.SIGINT)
        launcher.wait(timeout=90)
    finally:
        stop(launcher)
    assert launcher.returncode == 0, output.read_text()
    gone = [*before.values(), restarted]
    assert not [pid for pid in gone if alive(pid)], "a child outlived Ctrl-C"
    assert pids(state_dir) == {}, "pid files of stopped processes are removed"
    for port in (web_port, broker_port, ingest_port):
        assert not listening(port), f"something still listens on {port}"


def test_run_refuses_a_state_dir_it_did_not_create(tmp_path: Path) -> None:
    """Pointed at a directory with someone's files and no marker, make run exits non-zero
    with a message saying why, and deletes nothing."""
    (tmp_path / "thesis.tex").write_text("years of work")
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP"}
    done = subprocess.run(
        [sys.executable, "-m", "streams", "run", "--state-dir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "refusing to empty the state directory" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis.tex"]


@pytest.mark.timeout(300)
def test_run_stops_everything_when_the_embedded_broker_dies(tmp_path: Path) -> None:
    """Once the embedded broker (and with it every record) is gone, make run stops every
    process and exits non-zero, saying why, rather than restart workers against nothing."""
    state_dir, output = tmp_path / "var", tmp_path / "launcher.out"
    web_port, broker_port, ingest_port = free_port(), free_port(), free_port()
    launcher = launch(output, state_dir, web_port, broker_port, ingest_port)
    try:
        before = pids(state_dir)
        os.kill(before["broker"], signal.SIGKILL)
        launcher.wait(timeout=120)
    finally:
        stop(launcher)
    text = output.read_text()
    assert launcher.returncode == 1, text
    assert f"the embedded broker (pid {before['broker']}) killed by SIGKILL" in text
    assert "Stopping everything" in text
    assert "restarted as pid" not in text
    assert not [pid for pid in before.values() if alive(pid)], "a child outlived the broker"
