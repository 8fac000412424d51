"""A telemetry batch during which a rebalance begins, over a real RocksDB and a fake
producer: it is stored whole or given up, never counted with its table writes dropped.

Faust counts a rebalance (``app.rebalancing_count``) from its consumer thread, so the
count can move at any point of a batch, not only where the batch awaits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from streams.common.batches import BatchRunner, Retry
from streams.common.faust_fixes.rebalance import abandoned
from streams.common.partitioning import partition_for
from streams.telemetry.batch import handle_batch, reject
from streams.telemetry.metrics import WorkerMetrics
from streams.telemetry.runtime import TelemetryPipeline
from streams.telemetry.settings import TelemetrySettings
from streams.telemetry.state import PartitionWindows
from tests.support.fake_kafka import Producer, Store, rocks_table
from tests.support.messages import FakeMessage

PARTITIONS = 6
CHANGELOG = "telemetry-device-windows-changelog"
BASE_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
WINDOW_MS = 10_000


def device_in(partition: int, skip: int = 0) -> str:
    """A device id whose home is ``partition`` (the ``skip``-th such id)."""
    homed = (f"edge-{n:03d}" for n in range(1000))
    return [d for d in homed if partition_for(d.encode(), PARTITIONS) == partition][skip]


def keyed(device: str, offset: int, first_seq: int, generation: int = 1) -> Any:
    """A keyed record of ten readings of one series, one every half second from
    ``first_seq``, as any producer sends it, fetched in consumer ``generation``."""
    seqs = range(first_seq, first_seq + 10)
    rows = [["eth0", "rx_bytes", float(seq), BASE_MS + seq * 500, seq] for seq in seqs]
    value = orjson.dumps({"device_id": device, "readings": rows})
    message = FakeMessage(
        topic="telemetry.readings", partition=partition_for(device.encode(), PARTITIONS),
        offset=offset, key=device.encode(), value=value, timestamp=BASE_MS / 1000 + 60,
        generation_id=generation,
    )  # fmt: skip
    return SimpleNamespace(message=message)


class Rig:
    """The production batch handler and runner on one worker's table partitions."""

    def __init__(self, tmp_path: Path) -> None:
        settings = TelemetrySettings(partitions=PARTITIONS, window_seconds=10, grace_seconds=1)
        self.store = Store(tmp_path)
        self.producer = Producer(lambda *_send: None)
        self.app = SimpleNamespace(producer=self.producer, rebalancing_count=0)
        metrics = WorkerMetrics.create(CollectorRegistry())
        self.pipeline = TelemetryPipeline(
            self.app, settings, metrics,
            mirror=None,  # type: ignore[arg-type]
            table=rocks_table(self.store, "device-windows", CHANGELOG),
            topics={}, config=settings.initial_config(),
        )  # fmt: skip
        self.runner = BatchRunner(
            self.app, "test", partial(handle_batch, self.pipeline),
            partial(reject, self.pipeline), metrics.batch_failures, retry=Retry(attempts=2),
        )  # fmt: skip

    def run(self, events: list[Any]) -> bool:
        return asyncio.run(self.runner.run(events))

    def stored_offset(self, device: str) -> int:
        """The offset of the last record applied to ``device`` in RocksDB (-1: none)."""
        meta = self.pipeline.runtime(partition_for(device.encode(), PARTITIONS)).io.get(
            f"m|{device}"
        )
        return -1 if meta is None else int(meta["_o"])


def rebalance_during(
    monkeypatch: pytest.MonkeyPatch, method: str, rig: Rig, when: Callable[..., bool]
) -> None:
    """Faust's consumer thread starts a rebalance while ``PartitionWindows.<method>`` runs
    for the call ``when(*args)`` picks."""
    original = getattr(PartitionWindows, method)

    def interleaved(self: PartitionWindows, *args: Any, **kwargs: Any) -> Any:
        if when(*args):
            rig.app.rebalancing_count += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PartitionWindows, method, interleaved)


@pytest.mark.parametrize("moment", ["applying the last partition", "writing the first"])
def test_a_batch_a_rebalance_interrupts_is_stored_whole_or_given_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moment: str
) -> None:
    """A rebalance that begins while a batch applies its last partition's records, or
    while it writes its first partition's, never leaves the batch counted as done (its
    offsets committed) with its readings missing from the table and its changelog."""
    rig = Rig(tmp_path)
    first, last = device_in(0), device_in(3)
    assert rig.run([keyed(first, 6, 0), keyed(last, 3, 0)])  # both devices known
    events = [keyed(first, 7, 10), keyed(last, 4, 10)]
    if moment == "applying the last partition":
        rebalance_during(monkeypatch, "apply", rig, lambda device, *_: device == last)
    else:
        calls = iter(range(1_000))
        rebalance_during(monkeypatch, "flush_applied", rig, lambda: next(calls) == 0)

    done = rig.run(events)

    stored = {device: rig.stored_offset(device) for device in (first, last)}
    if done:  # counted: its offsets will be committed, so its writes must be there
        assert stored == {first: 7, last: 4}, "a batch counted as done lost its writes"
    else:  # given up: the partitions' next owner reads every record again
        assert all(abandoned(event.message) for event in events)


def test_a_lone_record_of_a_batch_a_rebalance_interrupts_is_not_lost_to_the_next_owner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CI failure's shape: a device's first half-window (a keyed record alone in its
    batch) when a worker joins, then its second half handled by the partition's next
    owner; the window counts both halves (or the first is read again)."""
    rig = Rig(tmp_path)
    device = device_in(0, skip=6)
    assert rig.run([keyed(device, 90, 0)])  # window 0
    # The first half of window 1 (its readings also close window 0), alone in its batch.
    rebalance_during(monkeypatch, "apply", rig, lambda applied, *_: applied == device)
    done = rig.run([keyed(device, 100, 20)])
    monkeypatch.undo()
    # The next owner (the next consumer generation) starts after the committed offset
    # when the batch counted as done, else at the record itself; it restores what the
    # changelog holds, here what RocksDB holds.
    rig.app.rebalancing_count += 1
    second = keyed(device, 102, 30, generation=2)
    assert rig.run([second] if done else [keyed(device, 100, 20, generation=2), second])
    runtime = rig.pipeline.runtime(0)
    chunks = runtime.windows.metas[device]["open"][str(BASE_MS + WINDOW_MS)][1]
    groups = [runtime.io.get(f"c|{device}|{BASE_MS + WINDOW_MS}|{n}") for n in range(chunks)]
    assert sum(len(group["readings"]) for chunk in groups for group in chunk) == 20
