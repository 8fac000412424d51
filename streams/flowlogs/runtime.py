"""A flow-logs worker's live state: the partitions it owns, the lake, recent alerts."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import faust
import pyarrow.compute as pc

from streams.common.table_io import RocksPartition
from streams.flowlogs.detect import DetectorSettings
from streams.flowlogs.lake import FlowLake
from streams.flowlogs.metrics import WorkerMetrics
from streams.flowlogs.settings import FlowLogsSettings
from streams.flowlogs.windows import DETECTOR_COLUMNS, PREFIX, OpenWindows

log = logging.getLogger(__name__)

RECORDS = "flowlogs.records"
ALERTS = "flowlogs.alerts"
DLQ = "flowlogs.dlq"


@dataclass
class PartitionRuntime:
    """One owned partition: its table access, its open windows, what they were filled to."""

    io: RocksPartition
    windows: OpenWindows
    #: Records at or below this offset are already in ``windows`` (read back from the lake).
    horizon: int
    #: Windows closed by the batch under way (counted once it is done).
    closed_now: int = 0


@dataclass
class FlowPipeline:
    app: faust.App
    settings: FlowLogsSettings
    detectors: DetectorSettings
    metrics: WorkerMetrics
    table: Any
    lake: FlowLake
    topics: dict[str, Any]
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    partitions: dict[int, PartitionRuntime] = field(default_factory=dict)
    generation: int = -1
    recent_alerts: deque[dict[str, Any]] = field(default_factory=deque)

    async def runtime(self, partition: int) -> PartitionRuntime:
        """The partition's state, its open windows read back from the lake the first time
        after a rebalance (the records that filled them may be committed long ago)."""
        generation = self.app.rebalancing_count
        if generation != self.generation:
            self.partitions.clear()
            self.lake.forget(list(self.lake.committed))
            self.generation = generation
        runtime = self.partitions.get(partition)
        if runtime is None:
            runtime = await asyncio.to_thread(self._load, partition)
            self.partitions[partition] = runtime
        return runtime

    def _load(self, partition: int) -> PartitionRuntime:
        io = RocksPartition(self.table, partition)
        windows = OpenWindows(cap=self.settings.detection_window_rows)
        horizon = self.lake.committed_offset(partition)
        clocks = {key.removeprefix(PREFIX): value for key, value in io.scan(PREFIX)}
        if clocks:
            # The open windows, and the last closed one (long-lived compares with it).
            since = min(clock["closed"] for clock in clocks.values())
            flows = self.lake.read_partition(partition, since, DETECTOR_COLUMNS)
            keys = pc.binary_join_element_wise(
                pc.fill_null(flows.column("account_id"), "-"),
                pc.fill_null(flows.column("vpc_id"), "-"),
                "|",
            )
            for vpc_key, clock in clocks.items():
                mine = flows.filter(
                    pc.and_(
                        pc.equal(keys, vpc_key),
                        pc.greater(flows.column("start"), clock["closed"] - 1),
                    )
                )
                if mine.num_rows:
                    windows.stage(vpc_key, mine)
            windows.keep({})
            log.info(
                "flowlogs: partition %d: %d open windows refilled from the lake (to offset %d)",
                partition, len(windows.held), horizon,
            )  # fmt: skip
        return PartitionRuntime(io, windows, horizon)

    def forget(self) -> None:
        self.partitions.clear()

    def on_alert(self, topic: str, _key: Any, value: Any) -> None:
        if topic == ALERTS and value is not None:
            self.recent_alerts.appendleft(value)
            while len(self.recent_alerts) > self.settings.alerts_kept:
                self.recent_alerts.pop()
