"""A partitioned Parquet copy of a topic, on a local directory or S3, safe to replay.

Layout: ``<root>/<partition dir>/part-p<source partition>-<first>-<last>.parquet``,
e.g. ``enriched/date=2025-08-01/part-p003-000000001200-000000001999.parquet``. One
call to :meth:`PartitionedParquetWriter.write` takes the records of ONE source (Kafka)
partition with offsets ``first..last`` and writes one file into each partition
directory its rows fall in, every file under the same name. Numbers are zero-padded
so names sort in offset order; the directory is the hive partition, so the partition
column lives in the path only and readers get it back with ``partitioning="hive"``.

Why a replay never writes a record twice
----------------------------------------
Kafka delivers at least once: after a crash or a rebalance, a partition is read again
from its last committed offset, which may be behind what was already written. A file
name states the offsets it holds, so :meth:`~PartitionedParquetWriter.committed_offset`
finds, from the files alone, the highest offset of a source partition already written
(``-1`` if none), and the caller drops every record at or below it. A source partition
is read in order by one consumer at a time, so batches of one partition never
overlap, and every record lands in exactly one batch and so in exactly one file.

A file appears whole or not at all: it is put with :func:`streams.common.storage.put_bytes`
(a hidden temporary name renamed over the final one on a local disk, one upload on S3).

The limit: one batch, several files
-----------------------------------
A batch whose rows span several dates writes several files, and a crash can fall
between two of them. Its offsets would then look written although some of its rows
are not. Two things close that gap:

- Every file of a batch records, in its Parquet key-value metadata
  (``streams.batch``), the list of directories the batch wrote to. A batch counts
  as committed only if its file exists in every one of them; otherwise it is
  incomplete and :meth:`~PartitionedParquetWriter.recover` deletes the files it did
  write, so the replay rewrites those rows once, whatever its batch boundaries.
- A retry of the same batch (same rows, same offsets, e.g. after an S3 error) gives
  each file the same name and the same bytes (same schema, options and metadata; no
  timestamps are written), so it overwrites the files that did land with identical
  ones.

What is not covered: two writers for one source partition at once (a "zombie" that
lost its partition in a rebalance, e.g. stuck retrying a write past its session
timeout, and still writes). On a local disk, files are fsynced before their rename
and directories after renames and deletions, so a power loss keeps these guarantees.

Costs: ``committed_offset`` lists the whole root (one recursive listing, paginated by
1,000 keys on S3) and reads one file footer; the caller does it once per partition
when it starts owning it, not per batch.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from streams.common import storage
from streams.common.storage import open_filesystem

__all__ = ["BATCH_KEY", "Batch", "PartitionedParquetWriter", "file_name", "open_filesystem"]

#: Key of the Parquet key-value metadata that describes the batch a file belongs to.
BATCH_KEY = b"streams.batch"

log = logging.getLogger(__name__)

_NAME = re.compile(r"^part-p(\d{3,})-(\d{12,})-(\d{12,})\.parquet$")


def file_name(source_partition: int, first: int, last: int) -> str:
    """The name every file of one batch gets, e.g. ``part-p003-000000000010-000000000019``."""
    return f"part-p{source_partition:03d}-{first:012d}-{last:012d}.parquet"


@dataclass(frozen=True)
class Batch:
    """A batch found on the store: its offsets and the directories holding its file."""

    first: int
    last: int
    dirs: frozenset[str]

    def name(self, source_partition: int) -> str:
        return file_name(source_partition, self.first, self.last)


class PartitionedParquetWriter:
    """Writes batches of rows from one source partition into partitioned Parquet files.

    ``partition_of(row)`` names the directory of a row, e.g. ``date=2025-08-01``: one
    level deep, not starting with "." or "_" (readers skip those). Rows are converted
    with ``schema``; keys outside it are ignored, so the partition column can stay out
    of the files. Not thread-safe: use it from one thread at a time per source
    partition, as one consumer reads a partition.
    """

    def __init__(
        self,
        filesystem: pafs.FileSystem,
        root: str,
        schema: pa.Schema,
        partition_of: Callable[[Mapping[str, Any]], str],
        *,
        compression: str = "zstd",
    ) -> None:
        self.fs = filesystem
        self.root = root.rstrip("/")
        self.schema = schema
        self.partition_of = partition_of
        self.compression = compression

    # ---- writing ---------------------------------------------------------------------

    def write(
        self, source_partition: int, first: int, last: int, rows: Sequence[Mapping[str, Any]]
    ) -> list[str]:
        """Write ``rows`` (offsets ``first..last`` of one partition); returns the paths.

        ``first..last`` is the range of offsets the batch covers, including records the
        caller read but left out of ``rows``: once written, the whole range counts as
        committed. Writing the same arguments again produces identical files. No rows,
        no files: the range then does not count as committed.
        """
        groups: dict[str, list[Mapping[str, Any]]] = {}
        for row in rows:
            groups.setdefault(_checked_dir(self.partition_of(row)), []).append(row)
        # Tables are all built before the first file is written: a row that does not
        # fit the schema fails the batch before anything lands.
        tables = {d: pa.Table.from_pylist(group, self.schema) for d, group in groups.items()}
        return self.write_tables(source_partition, first, last, tables)

    def write_tables(
        self, source_partition: int, first: int, last: int, tables: Mapping[str, pa.Table]
    ) -> list[str]:
        """Write one file per directory of ``tables`` (see :meth:`write`)."""
        if not 0 <= first <= last:
            raise ValueError(f"bad offset range {first}..{last}")
        dirs = sorted(tables)
        meta = json.dumps(
            {"source_partition": source_partition, "first": first, "last": last, "dirs": dirs},
            sort_keys=True,
        ).encode()
        schema = self.schema.with_metadata({**(self.schema.metadata or {}), BATCH_KEY: meta})
        name = file_name(source_partition, first, last)
        payloads = [
            (f"{self.root}/{d}/{name}", self._serialize(tables[d].select(schema.names), schema))
            for d in dirs
        ]
        paths = []
        for path, data in payloads:
            storage.put_bytes(self.fs, path, data)
            paths.append(path)
        return paths

    def _serialize(self, table: pa.Table, schema: pa.Schema) -> bytes:
        sink = pa.BufferOutputStream()
        pq.write_table(table.cast(schema), sink, compression=self.compression)
        return bytes(sink.getvalue().to_pybytes())

    # ---- reading back what was written -------------------------------------------------

    def batches(self, source_partition: int) -> list[Batch]:
        """Every batch of ``source_partition`` on the store, newest (highest offset) first."""
        found: dict[tuple[int, int], set[str]] = {}
        for info in self.files():
            directory, _, base = self._relative(info.path).rpartition("/")
            match = _NAME.match(base)
            if not directory or "/" in directory or not match:
                continue
            if int(match[1]) == source_partition:
                found.setdefault((int(match[2]), int(match[3])), set()).add(directory)
        batches = [Batch(first, last, frozenset(d)) for (first, last), d in found.items()]
        return sorted(batches, key=lambda b: (b.last, b.first), reverse=True)

    def committed_offset(self, source_partition: int) -> int:
        """The highest offset of ``source_partition`` written by a complete batch, or -1.

        Records at or below it are already in the files and must be skipped. A batch
        whose files did not all land (see the module docstring) does not count.
        """
        for batch in self.batches(source_partition):
            if self._complete(source_partition, batch):
                return batch.last
        return -1

    def recover(self, source_partition: int) -> int:
        """Delete what incomplete batches of the partition left, then its committed offset.

        Call it once when starting to own a source partition, before writing to it.
        """
        committed = -1
        for batch in self.batches(source_partition):
            if self._complete(source_partition, batch):
                committed = batch.last
                break
            name = batch.name(source_partition)
            log.warning(
                "parquet: deleting incomplete batch %s in %s (it will be written again)",
                name,
                ", ".join(sorted(batch.dirs)),
            )
            for directory in sorted(batch.dirs):
                storage.delete_file(self.fs, f"{self.root}/{directory}/{name}")
        storage.remove_temp_files(self.fs, self.root, f"part-p{source_partition:03d}-")
        return committed

    def _complete(self, source_partition: int, batch: Batch) -> bool:
        directory = min(batch.dirs)
        path = f"{self.root}/{directory}/{batch.name(source_partition)}"
        # A read error propagates: only a footer that names a missing directory may
        # lead to deleting files, never a store that failed to answer.
        with self.fs.open_input_file(path) as source:
            metadata = pq.read_schema(source).metadata or {}
        if BATCH_KEY not in metadata:
            return True  # not written by this class: nothing says it is partial
        expected = set(json.loads(metadata[BATCH_KEY])["dirs"])
        return expected <= batch.dirs

    def files(self) -> Iterable[pafs.FileInfo]:
        selector = pafs.FileSelector(self.root, recursive=True, allow_not_found=True)
        return (i for i in self.fs.get_file_info(selector) if i.type == pafs.FileType.File)

    def _relative(self, path: str) -> str:
        return path[len(self.root) :].lstrip("/")


def _checked_dir(directory: str) -> str:
    # One level keeps the scan simple; readers skip names starting with "." or "_".
    if not directory or "/" in directory or "\\" in directory or directory[0] in "._":
        raise ValueError(f"partition directory {directory!r} must be one plain name")
    return directory
