"""``python -m streams run``: the whole product on one machine, stopped with Ctrl-C.

It starts the embedded broker (unless ``KAFKA_BOOTSTRAP`` points at another Kafka),
loads the reference data, starts the orders workers, the telemetry workers and the
telemetry HTTP ingest and, unless ``--demo 0``, an orders producer and a device
simulator at modest rates (the embedded broker keeps every record in memory). Which
processes run on which ports is streams/processes.py.

Stale state on purpose: the embedded broker forgets everything when it stops, so the
workers' local state (RocksDB, Parquet copy) from an earlier run would describe data
that no longer exists; a fresh embedded broker therefore starts with a fresh state
directory. With an external Kafka the state directory is kept across runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from streams.common.broker import EmbeddedBroker, free_port, wait_for_port
from streams.processes import Process, choose_ports, demo_producers, guide, servers

log = logging.getLogger("streams")


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
    children: list[tuple[Process, subprocess.Popen[bytes]]] = field(default_factory=list)
    broker: EmbeddedBroker | None = None

    def bootstrap(self) -> str:
        external = os.environ.get("KAFKA_BOOTSTRAP")
        if external:
            log.info("using the Kafka at %s; keeping %s", external, self.state_dir)
            return external
        if self.state_dir.exists():
            log.info("fresh embedded broker: clearing the stale state in %s", self.state_dir)
            shutil.rmtree(self.state_dir)
        port = self.broker_port
        try:
            wait_for_port("127.0.0.1", port, timeout=0.1)
            port = free_port()
            log.warning("port %s is taken; the broker uses %s", self.broker_port, port)
        except TimeoutError:
            pass
        (self.state_dir / "logs").mkdir(parents=True, exist_ok=True)
        self.broker = EmbeddedBroker(port=port, log_path=self.state_dir / "logs" / "broker.log")
        self.broker.start()
        return self.broker.bootstrap

    def spawn(self, process: Process, env: dict[str, str]) -> subprocess.Popen[bytes]:
        logs = self.state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        out = (logs / f"{process.name}.log").open("ab")
        proc = subprocess.Popen([sys.executable, *process.args],
                                env={**os.environ, **env, **process.env},
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
        self.children.append((process, proc))
        return proc

    def run(self) -> int:
        bootstrap = self.bootstrap()
        env = {"KAFKA_BOOTSTRAP": bootstrap}
        for loader in ("catalog", "inventory"):
            subprocess.run([sys.executable, "-m", "producers", loader], check=True,
                           env={**os.environ, **env})  # fmt: skip
        # Ports are chosen just before the servers bind them, which keeps the window in
        # which another program can take one small. All servers start at once (they are
        # independent); producers only once every one answers.
        ports = choose_ports(self.web_port, self.workers, self.telemetry_port,
                             self.telemetry_workers, self.ingest_port)  # fmt: skip
        started = [(p, self.spawn(p, env)) for p in servers(self.state_dir, ports)]
        for process, proc in started:
            if process.port is not None:
                _wait_healthy(process, proc)
        if self.demo:
            for process in demo_producers(ports):
                self.spawn(process, env)
        sys.stderr.write(guide(bootstrap, ports, self.state_dir, self.demo) + "\n")
        return self.supervise()

    def supervise(self) -> int:
        stop = False

        def on_signal(_signum: int, _frame: FrameType | None) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        while not stop:
            for process, proc in self.children:
                if proc.poll() is not None and proc.returncode != 0:
                    log.error("%s exited with %s; see its log", process.name, proc.returncode)
                    stop = True
            time.sleep(0.2)
        self.shutdown()
        return 0

    def shutdown(self) -> None:
        # Producers (no web port) first, while the ingest still answers their last
        # requests; then every server at once. A producer that is still retrying
        # after 5 s (its server went first on a terminal's Ctrl-C) loses only demo data.
        for servers_stage, grace in ((False, 5), (True, 30)):
            stage = [proc for p, proc in self.children if (p.port is not None) == servers_stage]
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
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    launcher = Launcher(args.state_dir, bool(args.demo), args.broker_port, args.web_port,
                        args.workers, args.ingest_port, args.telemetry_port,
                        args.telemetry_workers)  # fmt: skip
    try:
        return launcher.run()
    except BaseException:
        launcher.shutdown()
        raise
