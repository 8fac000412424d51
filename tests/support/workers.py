"""Real worker processes, real producers and topic reads for the integration tests."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from producers.send import Record as Record
from producers.send import paced, send_all
from streams.common.broker import stop_process
from streams.common.topic_reader import TopicRecord
from streams.common.topic_reader import read_topic as read_topic
from tests.support.ports import free_port

T = TypeVar("T")

#: A record read back with ``read_topic`` (the integration tests' name for it).
Consumed = TopicRecord


class PortTaken(Exception):
    """A process exited at startup because something else listens on its port."""


def wait_until(
    probe: Callable[[], T | None], *, timeout: float = 60.0, every: float = 0.25, what: str = ""
) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` after timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except (OSError, urllib.error.URLError, ValueError) as exc:
            last = exc
        else:
            if last:
                return cast(T, last)
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or probe}: last={last!r}")


@dataclass
class Worker:
    """One ``python -m <module> <command>`` process (by default ``python -m streams.orders
    worker``) with its own port and data dir."""

    bootstrap: str
    data_dir: Path
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    module: str = "streams.orders"
    command: str = "worker"
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        """Start the process and wait until it answers /health; should it exit because
        its port was taken meanwhile, start it again on another."""
        for attempt in range(1, 4):
            try:
                return self._start()
            except PortTaken:
                if attempt == 3:
                    raise
                self.port = free_port()
        raise AssertionError("unreachable")

    def _start(self) -> Worker:
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP": self.bootstrap,
            "KAFKA_CORRECT_END_OFFSETS": "true",  # the embedded broker's ListOffsets defect
            "STREAMS_DATA_DIR": str(self.data_dir),
            "WEB_PORT": str(self.port),
            "ORDERS_PARQUET_URI": str(self.lake),
            **self.env,
        }
        logged = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", self.module, self.command, "-l", "info"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(lambda: self._health(logged), timeout=60, what=f"{self.module} /health")
        return self

    def _health(self, logged: int) -> Any:
        """/health, asked only while this process runs: one that exited (its log from
        byte ``logged`` says why) fails the start at once."""
        assert self.proc is not None
        code = self.proc.poll()
        if code is None:
            return self.get("/health")
        self.proc = None
        with self.log_path.open("rb") as log:
            log.seek(logged)
            said = log.read().decode(errors="replace")
        if "address already in use" in said:
            raise PortTaken(f"port {self.port} taken: {said[-2000:]}")
        raise AssertionError(
            f"{self.module} {self.command} exited ({code}) before answering /health:\n"
            f"{said[-4000:]}"
        )

    @property
    def lake(self) -> Path:
        """Where this worker writes the enriched Parquet copy."""
        return self.data_dir.parent / "lake"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=5) as response:
            return json.loads(response.read())

    def status(self, path: str) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def metrics(self) -> str:
        with urllib.request.urlopen(self.url + "/metrics", timeout=5) as response:
            return str(response.read().decode())

    def metric(self, name: str) -> float:
        """Sum of every sample of ``name`` (all label sets)."""
        total = 0.0
        for line in self.metrics().splitlines():
            if line.startswith(name) and line[len(name) : len(name) + 1] in (" ", "{"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when a machine dies."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass
class Processes:
    """Starts ``python -m <module> <command>`` processes for one test; each gets its own
    port, data dir and log, and ``stop_all`` ends them by pid."""

    bootstrap: str
    root: Path
    module: str = "streams.orders"
    started: list[Worker] = field(default_factory=list)

    def start(
        self,
        env: Mapping[str, str] | None = None,
        *,
        command: str = "worker",
        data_dir: Path | None = None,
    ) -> Worker:
        name = f"{command}{len(self.started)}"
        process = Worker(
            self.bootstrap,
            data_dir or self.root / name,
            self.root / f"{name}.log",
            env=dict(env or {}),
            module=self.module,
            command=command,
        )
        self.started.append(process)
        return process.start()

    def stop_all(self) -> None:
        stop_together(self.started)


def stop_together(workers: Iterable[Worker], timeout: float = 30.0) -> None:
    """SIGTERM every running process at once, then wait for each (SIGKILL after
    ``timeout``). One at a time, each leaving the group would start a rebalance that
    the next one's shutdown waits out (half a session timeout on the embedded broker)."""
    running = [w for w in workers if w.proc is not None]
    for worker in running:
        assert worker.proc is not None
        # A SIGSTOPped process would hold SIGTERM pending until the timeout.
        worker.proc.send_signal(signal.SIGCONT)
        worker.proc.terminate()
    deadline = time.monotonic() + timeout
    for worker in running:
        assert worker.proc is not None
        try:
            worker.proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            worker.proc.kill()
            worker.proc.wait()
        worker.proc = None


def produce(
    bootstrap: str, topic: str, records: Iterable[Record], rate: float | None = None
) -> int:
    """Send records and wait until the broker acknowledged every one."""
    return asyncio.run(send_all(bootstrap, topic, paced(records, rate), label=topic, quiet=True))
