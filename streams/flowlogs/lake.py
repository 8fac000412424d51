"""The columnar copy of every parsed log record: Parquet by hour of ``start``.

``<lake>/flows/hour=YYYY-MM-DDTHH/part-p<partition>-<first>-<last>.parquet``: every
column AWS documents (fields.SCHEMA), written by the workers per batch and per
flowlogs.records partition, named after the batch's offsets so a replay never writes
a record twice (streams/common/parquet.py). The views query it with DuckDB for what
rollups cannot answer (query.py); a worker reads its own partition's files back to
refill the detectors' open windows after a restart.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from streams.common.parquet import PartitionedParquetWriter
from streams.common.storage import open_filesystem
from streams.flowlogs.fields import SCHEMA
from streams.flowlogs.lake_paths import FLOWS, hour_dir
from streams.flowlogs.metrics import WorkerMetrics
from streams.flowlogs.rollups import OFFSET_COLUMN

log = logging.getLogger(__name__)


def by_hour(flows: pa.Table) -> dict[str, pa.Table]:
    """The rows of each hour (by ``start``), in their order, without the offset column."""
    rows = flows.drop_columns([OFFSET_COLUMN])
    if rows.num_rows == 0:
        return {}
    hours = np.asarray(rows.column("start").to_numpy()) // 3600
    # One stable sort and at most one copy (none when the rows are in hour order, as
    # they nearly are), then a zero-copy slice per hour: a filter per hour would copy
    # every column once per hour of the batch.
    if np.any(hours[1:] < hours[:-1]):
        order = np.argsort(hours, kind="stable")
        rows, hours = rows.take(pa.array(order)), hours[order]
    starts = [0, *(np.flatnonzero(hours[1:] != hours[:-1]) + 1).tolist(), len(hours)]
    return {
        hour_dir(int(hours[begin]) * 3600): rows.slice(begin, end - begin)
        for begin, end in itertools.pairwise(starts)
    }


@dataclass
class FlowLake:
    writer: PartitionedParquetWriter
    metrics: WorkerMetrics | None = None
    #: Highest offset already in the files, per partition this worker owns.
    committed: dict[int, int] = field(default_factory=dict)

    @classmethod
    def open(cls, uri: str, metrics: WorkerMetrics | None = None) -> FlowLake:
        filesystem, root = open_filesystem(uri)
        writer = PartitionedParquetWriter(filesystem, f"{root}/{FLOWS}", SCHEMA, _unused)
        return cls(writer, metrics)

    def committed_offset(self, partition: int) -> int:
        """What the files hold of ``partition``, after deleting an incomplete batch."""
        if partition not in self.committed:
            self.committed[partition] = self.writer.recover(partition)
        return self.committed[partition]

    def write_batch(self, partition: int, first: int, last: int, flows: pa.Table) -> None:
        """Write the rows of records ``first..last`` not in the files yet (blocking I/O).

        ``flows`` has an ``_offset`` column; rows at or below the committed offset were
        written before a crash and are left out.
        """
        started = time.perf_counter()
        committed = self.committed_offset(partition)
        if last <= committed:
            return
        offsets = flows.column(OFFSET_COLUMN)
        fresh = flows
        if flows.num_rows and pc.min(offsets).as_py() <= committed:  # a replay: rare
            fresh = flows.filter(pc.greater(offsets, committed))
        first = max(first, committed + 1)
        if fresh.num_rows:
            paths = self.writer.write_tables(partition, first, last, by_hour(fresh))
            if self.metrics is not None:
                self.metrics.lake_files.inc(len(paths))
        if partition in self.committed:  # forgotten meanwhile: the next owner's files decide
            self.committed[partition] = last
        if self.metrics is not None:
            self.metrics.lake_seconds.observe(time.perf_counter() - started)

    async def write(self, partition: int, first: int, last: int, flows: pa.Table) -> None:
        await asyncio.to_thread(self.write_batch, partition, first, last, flows)

    def read_partition(self, partition: int, since: int, columns: Iterable[str]) -> pa.Table:
        """The rows of ``partition`` starting at or after ``since`` (blocking I/O)."""
        prefix = f"part-p{partition:03d}-"
        since_dir = hour_dir(since)
        paths = [
            info.path
            for info in self.writer.files()
            if info.base_name.startswith(prefix)
            and info.base_name.endswith(".parquet")
            and info.path.rsplit("/", 2)[-2] >= since_dir
        ]
        if not paths:
            return SCHEMA.empty_table().select(list(columns))
        dataset = ds.dataset(paths, schema=SCHEMA, format="parquet", filesystem=self.writer.fs)
        return dataset.to_table(columns=list(columns), filter=ds.field("start") >= since)

    def forget(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            self.committed.pop(partition, None)


def _unused(row: object) -> str:
    raise NotImplementedError("flows are written by table (write_table), never row by row")
