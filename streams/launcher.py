"""``python -m streams run``: the whole product on one machine, stopped with Ctrl-C.

It starts the embedded broker (unless ``KAFKA_BOOTSTRAP`` points at another Kafka),
loads the reference data, starts the workers and, unless ``--demo 0``, a producer at
a modest rate (the embedded broker keeps every record in memory).

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

log = logging.getLogger("streams")

DEMO_PRODUCER = [
    "orders", "--rate", "20", "--duplicates", "0.01", "--malformed", "0.005",
    "--variants", "0.1", "--late", "0.01",
]  # fmt: skip


@dataclass
class Launcher:
    state_dir: Path
    workers: int
    demo: bool
    web_port: int
    broker_port: int
    children: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
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

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        logs = self.state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        out = (logs / f"{name}.log").open("ab")
        proc = subprocess.Popen([sys.executable, *args], env={**os.environ, **env},
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
        self.children.append((name, proc))
        return proc

    def run(self) -> int:
        bootstrap = self.bootstrap()
        env = {"KAFKA_BOOTSTRAP": bootstrap}
        for loader in ("catalog", "inventory"):
            subprocess.run([sys.executable, "-m", "producers", loader], check=True,
                           env={**os.environ, **env})  # fmt: skip
        ports = [self.web_port + i for i in range(self.workers)]
        for index, port in enumerate(ports):
            self.spawn(
                f"orders-worker{index}",
                ["-m", "streams.orders", "worker", "-l", "info"],
                {
                    **env,
                    "WEB_PORT": str(port),
                    "STREAMS_DATA_DIR": str(self.state_dir / f"worker{index}"),
                    "ORDERS_PARQUET_URI": str(self.state_dir / "lake" / "orders"),
                },
            )
        for port in ports:
            _wait_healthy(port)
        if self.demo:
            self.spawn("orders-producer", ["-m", "producers", *DEMO_PRODUCER], env)
        _print_guide(bootstrap, ports, self.state_dir, self.demo)
        return self.supervise()

    def supervise(self) -> int:
        stop = False

        def on_signal(_signum: int, _frame: FrameType | None) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        while not stop:
            for name, proc in self.children:
                if proc.poll() is not None and proc.returncode != 0:
                    log.error("%s exited with %s; see its log", name, proc.returncode)
                    stop = True
            time.sleep(0.2)
        self.shutdown()
        return 0

    def shutdown(self) -> None:
        for _name, proc in reversed(self.children):
            if proc.poll() is None:
                proc.terminate()
        for _name, proc in self.children:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.broker is not None:
            self.broker.stop()
        log.info("stopped")


def _wait_healthy(port: int, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"worker on port {port} not healthy after {timeout}s")


def _print_guide(bootstrap: str, ports: list[int], state_dir: Path, demo: bool) -> None:
    base = f"http://127.0.0.1:{ports[0]}"
    lines = [
        "",
        f"Kafka bootstrap     {bootstrap}",
        f"Orders web views    {base}/orders/revenue/daily",
        f"                    {base}/orders/products/top?by=units",
        f"                    {base}/orders/customers   {base}/orders/inventory",
        f"                    {base}/orders/alerts      {base}/orders/reports/daily",
        "Metrics             " + "  ".join(f"http://127.0.0.1:{p}/metrics" for p in ports),
        f"Logs and state      {state_dir}",
        f"Producer            {'demo orders at 20/s' if demo else 'none (make produce)'}",
        "Press Ctrl-C to stop everything.",
        "",
    ]
    sys.stderr.write("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streams")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the whole product locally")
    run.add_argument("--demo", type=int, choices=(0, 1), default=1)
    run.add_argument("--workers", type=int, default=int(os.environ.get("ORDERS_WORKERS", "1")))
    run.add_argument("--state-dir", type=Path, default=Path(os.environ.get("STATE_DIR", "var")))
    run.add_argument("--web-port", type=int, default=int(os.environ.get("WEB_PORT", "6066")))
    run.add_argument("--broker-port", type=int, default=9092)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    launcher = Launcher(args.state_dir, args.workers, bool(args.demo), args.web_port,
                        args.broker_port)  # fmt: skip
    try:
        return launcher.run()
    except BaseException:
        launcher.shutdown()
        raise
