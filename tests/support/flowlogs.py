"""Flow-logs processes for the integration tests: readers and workers, stopped by pid."""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.workers import Worker, stop_together, wait_until


@dataclass
class FlowLogsProcesses:
    bootstrap: str
    root: Path
    lake: Path = field(init=False)
    started: list[Worker] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lake = self.root / "flowlogs-lake"

    def _start(self, command: str, name: str, env: dict[str, str]) -> Worker:
        data = self.root / name
        data.mkdir(parents=True, exist_ok=True)
        settings = {
            "FLOWLOGS_LAKE": str(self.lake),
            "FLOWLOGS_POLL_SECONDS": "1",
            "FLOWLOGS_BATCH_SECONDS": "0.2",
            "FLOWLOGS_PARTITIONS": "4",
            "FLOWLOGS_SETTLE_SECONDS": "0",  # the tests' objects are written whole
            **env,
        }
        worker = Worker(
            self.bootstrap, data, self.root / f"{name}.log", settings,
            module="streams.flowlogs", command=command,
        )  # fmt: skip
        self.started.append(worker.start())
        return worker

    def worker(self, name: str = "worker0", **env: str) -> Worker:
        return self._start("worker", name, env)

    def reader(self, source: str, name: str = "reader0", **env: str) -> Worker:
        return self._start("reader", name, {"FLOWLOGS_SOURCE": source, **env})

    def stop_all(self) -> None:
        stop_together(self.started)


def ingested(reader: Worker) -> float:
    return reader.metric('streams_flowlogs_objects_total{outcome="ingested"}')


def wait_for_flows(worker: Worker, flows: int, timeout: float = 120.0) -> dict[str, int]:
    """The summary once it counts ``flows`` flows (it never counts more: asserted later)."""
    return wait_until(
        lambda: (s := worker.get("/flowlogs/summary"))["flows"] >= flows and s,
        timeout=timeout,
        what=f"{flows} flows in /flowlogs/summary",
    )


def write_object(directory: Path, name: str, lines: list[str]) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))
    return path
