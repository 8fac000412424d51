"""Integration fixtures: a real embedded broker per test, workers on demand."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from producers.orders import catalog_records, inventory_records, load_catalog
from streams.common.broker import EmbeddedBroker
from streams.common.faust_fixes import end_offset_correction
from streams.common.topics import declare
from streams.orders.pipeline import topic_specs
from tests.integration.s3_server import moto_server
from tests.support.ports import free_port
from tests.support.telemetry import TelemetryProcesses
from tests.support.timeseries import TimeSeriesWorkers
from tests.support.workers import Processes, Worker, produce, stop_together


@pytest.fixture
def broker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmbeddedBroker]:
    """A fresh broker per test (it starts in milliseconds): no test sees another's data.

    Every process the test starts against it (workers, ``dlq-replay``, the config CLI)
    inherits the setting that corrects the embedded broker's end offsets, and the
    test's own process has the correction installed while it runs.
    """
    monkeypatch.setenv("KAFKA_CORRECT_END_OFFSETS", "true")
    with (
        end_offset_correction(),  # and so does the test's own process
        EmbeddedBroker(port=free_port(), log_path=tmp_path / "broker.log") as running,
    ):
        yield running


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """An S3 API (moto's server) for the tests of one module; each test empties it."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def launches_workers(broker: EmbeddedBroker, tmp_path: Path) -> Iterator[Processes]:
    """``python -m streams.launches worker`` processes, stopped at the end of the test."""
    started = Processes(broker.bootstrap, tmp_path, module="streams.launches")
    yield started
    started.stop_all()


@pytest.fixture
def reference_data(broker: EmbeddedBroker) -> None:
    """The bundled catalog and inventory batch, in the pipeline's declared topics."""
    declare(broker.bootstrap, topic_specs(4), replication_factor=1)
    produce(broker.bootstrap, "orders.catalog", catalog_records(load_catalog()))
    produce(broker.bootstrap, "orders.inventory", inventory_records())


@pytest.fixture
def start_worker(broker: EmbeddedBroker, tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Start orders workers; each is stopped at the end of the test."""
    started: list[Worker] = []

    def start(data_dir: Path | None = None, **env: str) -> Worker:
        index = len(started)
        worker = Worker(
            broker.bootstrap,
            data_dir or tmp_path / f"worker{index}",
            tmp_path / f"worker{index}.log",
            env=env,
        )
        started.append(worker)
        return worker.start()

    yield start
    stop_together(started)


@pytest.fixture
def telemetry(broker: EmbeddedBroker, tmp_path: Path) -> Iterator[TelemetryProcesses]:
    """Start telemetry workers and ingest processes; each is stopped by pid at the end."""
    processes = TelemetryProcesses(broker.bootstrap, tmp_path)
    yield processes
    processes.stop_all()


@pytest.fixture
def timeseries(broker: EmbeddedBroker, tmp_path: Path) -> Iterator[TimeSeriesWorkers]:
    """Start time-series workers; each is stopped by pid at the end."""
    workers = TimeSeriesWorkers(broker.bootstrap, tmp_path)
    yield workers
    workers.stop_all()
