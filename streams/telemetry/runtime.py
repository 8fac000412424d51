"""A telemetry worker's live state: partitions it owns, the configuration, the timers.

Quiet devices: a window closes when its device's event time passes its end plus grace.
A device that stops sending would keep its last windows open for ever, so its clock
is also advanced by wall-clock time since its last reading was processed, the way a
streaming engine treats an idle source. This applies only to partitions whose records
have all been read: while a backlog is being read, devices are not quiet, they are
waiting their turn, and closing their windows then would turn their readings late.

Bounded state: the same clock, in the same partitions, forgets a device quiet for
``device_expiry_seconds`` once nothing of it is left to emit (state.py's ``expire``),
so a fleet that churns device ids does not grow memory and the table for ever.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import faust
from aiokafka.errors import IllegalStateError
from faust.types import TP
from pydantic import ValidationError

from streams.common.background import guarded_timer, unless_rebalanced
from streams.common.mirror import TopicMirror
from streams.common.table_io import RocksPartition, write_all
from streams.telemetry.config import CONFIG_TOPIC as CONFIG
from streams.telemetry.config import TelemetryConfig, describe_changes
from streams.telemetry.metrics import WorkerMetrics
from streams.telemetry.settings import TelemetrySettings
from streams.telemetry.state import Closed, PartitionWindows

log = logging.getLogger(__name__)

READINGS = "telemetry.readings"
#: A close timer this many intervals late means the process was paused.
PAUSED_TICKS = 4
ALERTS_TOPIC = "telemetry.alerts"
#: Devices forgotten per tick at most: a fleet expiring at once costs many short ticks
#: (each a few thousand tombstones), never one that stalls the event loop.
EXPIRE_PER_TICK = 1000


@dataclass
class PartitionRuntime:
    """One owned partition: its table access, its devices, how far it has been read."""

    io: RocksPartition
    windows: PartitionWindows
    loaded_at: float
    last_wall: dict[str, float] = field(default_factory=dict)
    next_offset: int | None = None


@dataclass
class TelemetryPipeline:
    """What the agent, the timers and the views share on one worker."""

    app: faust.App
    settings: TelemetrySettings
    metrics: WorkerMetrics
    mirror: TopicMirror
    table: Any
    topics: dict[str, Any]
    config: TelemetryConfig
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    # The agent and the timer both change windows; each change is read-modify-write.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    partitions: dict[int, PartitionRuntime] = field(default_factory=dict)
    generation: int = -1
    recent_alerts: deque[dict[str, Any]] = field(default_factory=deque)
    device_readings: Counter[str] = field(default_factory=Counter)

    def runtime(self, partition: int) -> PartitionRuntime:
        """The partition's state, loaded from RocksDB the first time after a rebalance."""
        generation = self.app.rebalancing_count
        if generation != self.generation:
            # Partitions may have moved: what this worker knew of them may be stale.
            self.partitions.clear()
            self.generation = generation
        runtime = self.partitions.get(partition)
        if runtime is None:
            io = RocksPartition(self.table, partition)
            metas = {key[2:]: value for key, value in io.scan("m|")}
            windows = PartitionWindows(io, metas, recent=self.settings.recent_windows)
            runtime = self.partitions[partition] = PartitionRuntime(io, windows, time.time())
        return runtime

    def runtimes(self, partitions: Iterable[int]) -> dict[int, PartitionRuntime]:
        """The state of each of ``partitions``, looked up once for one unit of work.

        Faust counts a rebalance from its consumer thread, at any point of a batch; a
        later ``runtime()`` would then hand out a fresh copy reloaded from RocksDB, and
        the changes made to the one held before (this batch's readings) would be written
        nowhere while the batch ends as done and its offsets are committed. Held for the
        whole unit, they reach its sends, which the rebalance fences (``Superseded``).
        """
        return {partition: self.runtime(partition) for partition in partitions}

    def forget(self) -> None:
        """Drop what is held in memory; the next use reloads it from RocksDB."""
        self.partitions.clear()

    def on_mirrored(self, topic: str, _key: Any, value: Any) -> None:
        if topic == CONFIG and value is not None:
            self._on_config(value)
        elif topic == ALERTS_TOPIC and value is not None:
            self.recent_alerts.appendleft(value)
            while len(self.recent_alerts) > self.settings.alerts_kept:
                self.recent_alerts.pop()

    def _on_config(self, value: Any) -> None:
        config = parse_config(value)
        # Equal versions come from two concurrent writers: the later record wins, as it
        # does in the compacted topic and in `config show`.
        if config is None or config.version < self.config.version or config == self.config:
            return
        old, self.config = self.config, config
        self.metrics.config_version.set(config.version)
        changed = "; ".join(describe_changes(old, config))
        log.warning("telemetry config v%d applied: %s", config.version, changed or "no change")

    def caught_up(self, partition: int, runtime: PartitionRuntime) -> bool:
        """Whether every record of the partition that exists has been processed.

        Before this worker has processed a batch of the partition, only its committed
        offset proves anything: the consumer may have fetched records that no agent has
        seen yet (while tables recover after a rebalance, for instance).
        """
        tp = TP(READINGS, partition)
        consumer = self.app.consumer
        try:
            highwater = consumer.highwater(tp)
        except (AssertionError, KeyError, IllegalStateError):
            return False  # no longer assigned: a rebalance is under way
        done = runtime.next_offset
        if done is None:
            # Faust's committed offset of the partition: the next record to process.
            done = getattr(consumer, "_committed_offset", {}).get(tp)
        return highwater is not None and done is not None and done >= highwater


def parse_config(value: Any) -> TelemetryConfig | None:
    """A config document from the topic, or None (with a warning) when it is invalid."""
    try:
        return TelemetryConfig.model_validate(value)
    except ValidationError as exc:
        log.warning("telemetry.config: invalid document ignored: %s", exc)
        return None


Emit = Callable[[TelemetryPipeline, Closed], Awaitable[None]]


def register_timers(pipeline: TelemetryPipeline, emit: Emit) -> None:
    app, settings = pipeline.app, pipeline.settings

    interval = settings.close_interval_seconds
    last_tick = time.monotonic()
    failures = pipeline.metrics.task_failures

    @guarded_timer(app, interval, failures)
    async def close_quiet_devices() -> None:
        nonlocal last_tick
        now = time.monotonic()
        late, last_tick = now - last_tick, now
        if late > PAUSED_TICKS * interval:
            # The process was stopped (SIGSTOP, a frozen VM, a long GC): what it knows of
            # the partitions' ends is as old, so a partition may look read to its end
            # while records wait. Closing on wall clock now would close windows those
            # records belong to; one tick later the fetcher has caught up.
            log.warning("telemetry: timer %.1f s late (process paused?); idle closes wait", late)
            return
        if app.rebalancing or not pipeline.ready.is_set():
            return
        async with pipeline.lock:
            done = False
            try:
                done = await unless_rebalanced(app, lambda: close_idle(pipeline, emit))
            finally:
                if not done:
                    # What was held in memory may be ahead of what was written: reload it.
                    pipeline.forget()

    @guarded_timer(app, 10.0, failures)
    async def export_busiest_devices() -> None:
        counts, pipeline.device_readings = pipeline.device_readings, Counter()
        gauge = pipeline.metrics.busiest_devices
        gauge.clear()
        for device, readings in counts.most_common(settings.top_devices):
            gauge.labels(device).set(readings)


async def close_idle(pipeline: TelemetryPipeline, emit: Emit) -> None:
    """Close the due windows of quiet devices in every caught-up partition.

    Sealed first (written), then emitted, then closed (written): see state.py.
    """
    app, config = pipeline.app, pipeline.config
    assigned = [tp.partition for tp in app.assignor.assigned_actives() if tp.topic == READINGS]
    now = time.time()
    generation = app.rebalancing_count
    runtimes = pipeline.runtimes(assigned)
    clocks: dict[int, dict[str, float]] = {}
    open_windows = devices_held = 0
    for partition, runtime in runtimes.items():
        metas = runtime.windows.metas
        devices_held += len(metas)
        open_windows += sum(len(meta["open"]) for meta in metas.values())
        if not pipeline.caught_up(partition, runtime):
            continue
        clocks[partition] = {
            device: meta["max"] + (now - runtime.last_wall.get(device, runtime.loaded_at)) * 1000
            for device, meta in metas.items()
            if meta["max"] is not None
        }
    pipeline.metrics.open_windows.set(open_windows)
    pipeline.metrics.devices.set(devices_held)
    sealed = False
    for partition, devices in clocks.items():
        windows = runtimes[partition].windows
        for device, clock in devices.items():
            sealed = windows.seal(device, clock, config) or sealed
    if sealed:
        await write_all([runtimes[p].io for p in clocks], app.producer)
    closed = Closed()
    for partition, devices in clocks.items():
        windows = runtimes[partition].windows
        for device, clock in devices.items():
            windows.close(device, clock, config, "idle", closed)
            windows.silence(device, clock, config, closed)
    if closed.windows or closed.alerts:
        await emit(pipeline, closed)
        await write_all([runtimes[p].io for p in clocks], app.producer)
    # Only once what they had to emit is acknowledged and recorded.
    await expire_quiet(pipeline, clocks, generation)


async def expire_quiet(
    pipeline: TelemetryPipeline,
    clocks: dict[int, dict[str, float]],
    generation: int,
    limit: int = EXPIRE_PER_TICK,
) -> int:
    """Forget at most ``limit`` devices quiet for ``device_expiry_seconds`` at their
    ``clocks``, read in rebalance ``generation`` (per partition still caught up), their
    tombstones acknowledged; how many."""
    app = pipeline.app
    if app.rebalancing or app.rebalancing_count != generation:
        # The sends above let a rebalance begin: a partition may be another worker's now,
        # and a tombstone written here would erase the state it has.
        return 0
    expiry_ms = pipeline.settings.device_expiry_seconds * 1000
    touched = []
    expired = 0
    for partition, devices in clocks.items():
        runtime = pipeline.partitions.get(partition)
        if expired >= limit or runtime is None or not pipeline.caught_up(partition, runtime):
            continue
        gone = runtime.windows.expire_quiet(devices, expiry_ms, pipeline.config, limit - expired)
        for device in gone:
            runtime.last_wall.pop(device, None)
        if gone:
            expired += len(gone)
            touched.append(runtime.io)
    if touched:
        await write_all(touched, app.producer)
        pipeline.metrics.devices_expired.inc(expired)
        log.info(
            "telemetry: devices expired: %d (quiet for %d s, nothing left to emit)",
            expired,
            pipeline.settings.device_expiry_seconds,
        )
    return expired
