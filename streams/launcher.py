"""``python -m streams run``: the whole product on one machine, stopped with Ctrl-C.

It starts the embedded broker (unless ``KAFKA_BOOTSTRAP`` points at another Kafka),
loads the reference data, starts the orders workers, the telemetry workers and the
telemetry HTTP ingest and, unless ``--demo 0``, an orders producer and a device
simulator at modest rates (the embedded broker keeps every record in memory). Which
processes run on which ports is streams/processes.py.

Stale state on purpose: the embedded broker forgets everything when it stops, so the
workers' local state (RocksDB, Parquet copy) from an earlier run would describe data
that no longer exists; a fresh embedded broker therefore starts with an emptied state
directory, but only one the launcher created itself (streams/state_dir.py). With an
external Kafka the state directory is kept across runs.

Supervision: a child that exits while the product runs is reported and restarted with
backoff, the others keep running (streams/supervisor.py). Each child's current pid is
in ``<state>/pids/<name>.pid`` (the broker's in ``broker.pid``), to find or signal one.

When the embedded broker dies, everything stops, with exit code 1 and a message that
says why. Its topics, records and consumer offsets lived in its memory only, so a new
broker would be empty: workers restarted against it would serve tables describing
records that no longer exist (their changelogs would be gone too), and figures would
silently start again from zero. A user is better served by a clear stop and a fresh
``make run``, which starts everything, state directory included, afresh.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from streams.common.broker import EmbeddedBroker, free_port, wait_for_port
from streams.processes import (
    Process,
    choose_ports,
    demo_flowlogs,
    demo_producers,
    flowlogs_lake,
    guide,
    servers,
)
from streams.state_dir import StateDirRefused, prepare
from streams.supervisor import Supervisor, describe_exit

log = logging.getLogger("streams")


class WatchedBroker(EmbeddedBroker):
    """The embedded broker, plus a look at whether its process is still running."""

    def exit_code(self) -> int | None:
        """None while it runs (or before it started); its exit code once it exited."""
        return self._proc.poll() if self._proc is not None else None


@dataclass
class Launcher:
    state_dir: Path
    demo: bool
    broker_port: int
    web_port: int
    workers: int
    ingest_port: int
    telemetry_port: int
    telemetry_workers: int
    flowlogs_port: int = 6080
    timeseries_port: int = 6090
    launches_port: int = 6095
    dashboard_port: int = 8050
    env: dict[str, str] = field(default_factory=dict)  # what every child gets on top of ours
    broker: WatchedBroker | None = None
    supervisor: Supervisor[subprocess.Popen[bytes]] = field(init=False)

    def __post_init__(self) -> None:
        self.supervisor = Supervisor(self.spawn, exited=self.remove_pid)

    @property
    def pids_dir(self) -> Path:
        return self.state_dir / "pids"

    def bootstrap(self) -> str:
        external = os.environ.get("KAFKA_BOOTSTRAP")
        prepare(self.state_dir, fresh=not external)
        if external:
            log.info("using the Kafka at %s; keeping %s", external, self.state_dir)
            return external
        log.info("fresh embedded broker, so an emptied state directory: %s", self.state_dir)
        port = self.broker_port
        try:
            wait_for_port("127.0.0.1", port, timeout=0.1)
            port = free_port()
            log.warning("port %s is taken; the broker uses %s", self.broker_port, port)
        except TimeoutError:
            pass
        (self.state_dir / "logs").mkdir(parents=True, exist_ok=True)
        self.broker = WatchedBroker(port=port, log_path=self.state_dir / "logs" / "broker.log")
        self.broker.start()
        if self.broker.pid is not None:
            self.write_pid("broker", self.broker.pid)
        return self.broker.bootstrap

    def spawn(self, process: Process) -> subprocess.Popen[bytes]:
        """Start ``process`` (again, after a crash: same command, same environment)."""
        logs = self.state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with (logs / f"{process.name}.log").open("ab") as out:
            proc = subprocess.Popen([sys.executable, *process.args],
                                    env={**os.environ, **self.env, **process.env},
                                    stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
        self.write_pid(process.name, proc.pid)
        return proc

    def write_pid(self, name: str, pid: int) -> None:
        # Written aside then renamed, so that a reader never sees a half-written pid.
        self.pids_dir.mkdir(parents=True, exist_ok=True)
        partial = self.pids_dir / f".{name}.pid.partial"
        partial.write_text(f"{pid}\n")
        partial.replace(self.pids_dir / f"{name}.pid")

    def remove_pid(self, process: Process) -> None:
        # Gone with its process: a stale pid could name an unrelated process later.
        (self.pids_dir / f"{process.name}.pid").unlink(missing_ok=True)

    def run(self) -> int:
        bootstrap = self.bootstrap()
        self.env = {"KAFKA_BOOTSTRAP": bootstrap}
        if self.broker is not None:  # the embedded broker's ListOffsets defect
            self.env["KAFKA_CORRECT_END_OFFSETS"] = "true"
        for loader in ("catalog", "inventory"):
            subprocess.run([sys.executable, "-m", "producers", loader], check=True,
                           env={**os.environ, **self.env})  # fmt: skip
        # Ports are chosen just before the servers bind them, which keeps the window in
        # which another program can take one small. All servers start at once (they are
        # independent); producers only once every one answers.
        source = os.environ.get("FLOWLOGS_SOURCE")
        if self.demo:
            command, source = demo_flowlogs(self.state_dir)
            log.info("generating a demo day of VPC flow logs into %s", source)
            subprocess.run([sys.executable, "-m", "producers", *command], check=True,
                           env={**os.environ, **self.env})  # fmt: skip
        ports = choose_ports(self.web_port, self.workers, self.telemetry_port,
                             self.telemetry_workers, self.ingest_port,
                             self.flowlogs_port, self.timeseries_port,
                             launches_port=self.launches_port,
                             dashboard_port=self.dashboard_port)  # fmt: skip
        flowlogs_lake(self.state_dir).mkdir(parents=True, exist_ok=True)
        for process in servers(self.state_dir, ports, source, self.demo):
            self.supervisor.add(process, self.spawn(process))
        for child in self.supervisor.children:
            if child.process.port is not None and child.handle is not None:
                _wait_healthy(child.process, child.handle)
        if self.demo:
            for process in demo_producers(ports):
                self.supervisor.add(process, self.spawn(process))
        sys.stderr.write(guide(bootstrap, ports, self.state_dir, self.demo) + "\n")
        return self.supervise()

    def supervise(self) -> int:
        stop = False

        def on_signal(_signum: int, _frame: FrameType | None) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        status = 0
        while not stop:
            if self.broker_died():
                status = 1
                break
            self.supervisor.check()
            time.sleep(0.2)
        self.shutdown()
        return status

    def broker_died(self) -> bool:
        code = self.broker.exit_code() if self.broker is not None else None
        if code is None:
            return False
        log.error(
            "the embedded broker (pid %s) %s. It held every topic, record and consumer offset "
            "in memory only, so they are gone, and workers restarted against an empty broker "
            "would serve figures for records that no longer exist. Stopping everything; "
            "run make run again to start afresh (see %s/logs/broker.log).",
            self.broker.pid if self.broker else "?", describe_exit(code), self.state_dir,
        )  # fmt: skip
        return True

    def shutdown(self) -> None:
        # Producers (no web port) first, while the ingest still answers their last
        # requests; then every server at once. A producer that is still retrying
        # after 5 s (its server went first on a terminal's Ctrl-C) loses only demo data.
        children = [(c.process, c.handle) for c in self.supervisor.children if c.handle]
        for servers_stage, grace in ((False, 5), (True, 30)):
            stage = [proc for p, proc in children if (p.port is not None) == servers_stage]
            for proc in stage:
                if proc.poll() is None:
                    proc.terminate()
            for proc in stage:
                try:
                    proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if self.broker is not None:
            self.broker.stop()
        for pid_file in self.pids_dir.glob("*.pid"):  # every process written there is gone
            pid_file.unlink()
        restarted = {name: n for name, n in self.supervisor.restarts().items() if n}
        if restarted:
            log.info("restarts during this run: %s",
                     ", ".join(f"{name} {n}" for name, n in restarted.items()))  # fmt: skip
        log.info("stopped")


def _wait_healthy(process: Process, proc: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{process.name} exited with {proc.returncode}; see its log")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{process.port}/health", timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{process.name} on port {process.port} not healthy after {timeout}s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streams")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the whole product locally")
    run.add_argument("--demo", type=int, choices=(0, 1), default=1)
    run.add_argument("--workers", type=int, default=int(os.environ.get("ORDERS_WORKERS", "1")))
    run.add_argument("--state-dir", type=Path, default=Path(os.environ.get("STATE_DIR", "var")))
    run.add_argument("--web-port", type=int, default=int(os.environ.get("WEB_PORT", "6066")))
    run.add_argument("--broker-port", type=int, default=9092)
    run.add_argument("--telemetry-workers", type=int,
                     default=int(os.environ.get("TELEMETRY_WORKERS", "2")))  # fmt: skip
    run.add_argument("--ingest-port", type=int, default=6070, help="telemetry HTTP ingest")
    run.add_argument("--telemetry-port", type=int, default=6071, help="first telemetry worker")
    run.add_argument("--flowlogs-port", type=int, default=6080,
                     help="flow-logs worker (its reader: the next port)")  # fmt: skip
    run.add_argument("--timeseries-port", type=int, default=6090,
                     help="first of the two time-series API workers")  # fmt: skip
    run.add_argument("--launches-port", type=int, default=6095,
                     help="the launches worker (metrics, health)")  # fmt: skip
    run.add_argument("--dashboard-port", type=int, default=8050,
                     help="the flow-logs dashboard (networkflow dashboard)")  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    launcher = Launcher(args.state_dir, bool(args.demo), args.broker_port, args.web_port,
                        args.workers, args.ingest_port, args.telemetry_port,
                        args.telemetry_workers, args.flowlogs_port,
                        args.timeseries_port, args.launches_port,
                        args.dashboard_port)  # fmt: skip
    try:
        return launcher.run()
    except StateDirRefused as exc:
        log.error("%s", exc)
        return 2
    except BaseException:
        launcher.shutdown()
        raise
