"""Chunks: the records of ``flowlogs.records``, each many parsed flow rows (pure).

One Kafka record per flow line would cap the workers near 2,000 flows/s (Faust's cost
is per record, ~150 µs); a chunk carries up to ``max_rows`` rows of ONE account and VPC
as an Arrow IPC stream (LZ4), so the per-record cost is shared by thousands of flows
and the worker reads columns, not Python objects.

- The record's key is ``<account>|<vpc>``: every flow of a VPC reaches the same
  partition, so the detectors, which work per account and VPC, see all of its
  traffic in one worker. (Version-2 logs carry no VPC: their key is ``<account>|-``.)
- The schema's metadata names the source object and the chunk's ``seq``, its number
  within the object. Splitting is a pure function of the object's bytes, so a reader
  that ingests an object again (after a crash, or two readers at once) sends the same
  chunks under the same numbers, and the worker keeps the first copy of each.
- Columns that are null throughout are left out on the wire; :func:`decode` puts them
  back, so every chunk a worker reads has ``fields.SCHEMA`` exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from streams.flowlogs.fields import SCHEMA

OBJECT = b"flowlogs.object"
SEQ = b"flowlogs.seq"
NO_VALUE = "-"
#: A chunk's value stays under Kafka's default 1 MB record limit with room for headers.
MAX_VALUE_BYTES = 900_000
# LZ4, not zstd: measured on the bench day, zstd cost the worker ~17% of its CPU (and
# the reader more) for chunks ~1.8 times smaller; CPU is what bounds both. A reader
# decodes either: the codec is in each chunk's IPC metadata.
_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")
#: One thread: Arrow's pool would decompress the columns of a chunk in parallel for twice
#: the CPU, on a worker that has a core of its own at most.
_READ_OPTIONS = pa.ipc.IpcReadOptions(use_threads=False)


class ChunkError(ValueError):
    """A record of flowlogs.records that is not a chunk this version can read."""


@dataclass(frozen=True)
class Chunk:
    object: str
    seq: int
    key: str
    flows: pa.Table


def partition_key(account: str | None, vpc: str | None) -> str:
    return f"{account or NO_VALUE}|{vpc or NO_VALUE}"


def encode_chunks(
    flows: pa.Table, source: str, first_seq: int, *, max_rows: int
) -> list[tuple[bytes, bytes]]:
    """The ``(key, value)`` records of ``flows`` (rows of one object, in object order),
    numbered from ``first_seq``; ``len(result)`` numbers are used."""
    records: list[tuple[bytes, bytes]] = []
    for key, rows in _by_vpc(flows):
        for start in range(0, rows.num_rows, max_rows):
            for piece in _fitting(rows.slice(start, max_rows), source, first_seq + len(records)):
                records.append((key.encode(), piece))
    return records


def decode(value: bytes | None) -> Chunk:
    """The chunk in a record's value, with every column of ``SCHEMA``."""
    if not value:
        raise ChunkError("empty record")
    try:
        table = pa.ipc.open_stream(value, options=_READ_OPTIONS).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise ChunkError(f"not an Arrow IPC stream: {exc}") from exc
    meta = table.schema.metadata or {}
    try:
        source = meta[OBJECT].decode()
        seq = int(meta[SEQ])
    except (KeyError, ValueError, UnicodeDecodeError) as exc:
        raise ChunkError("no object or seq in the chunk's metadata") from exc
    flows = conform(table)
    first = flows.slice(0, 1)
    account = first.column("account_id")[0].as_py() if flows.num_rows else None
    vpc = first.column("vpc_id")[0].as_py() if flows.num_rows else None
    return Chunk(source, seq, partition_key(account, vpc), flows)


def conform(table: pa.Table) -> pa.Table:
    """``table`` with SCHEMA's columns in SCHEMA's order: missing ones null, others cast."""
    columns = []
    present = set(table.column_names)
    for field in SCHEMA:
        if field.name in present:
            column = table.column(field.name)
            if column.type != field.type:
                try:
                    column = column.cast(field.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise ChunkError(f"column {field.name}: {exc}") from exc
            columns.append(column)
        else:
            columns.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=SCHEMA)


def _by_vpc(flows: pa.Table) -> list[tuple[str, pa.Table]]:
    """The rows of each account and VPC, in key order, each in object order."""
    if flows.num_rows == 0:
        return []
    keys = pc.binary_join_element_wise(
        pc.fill_null(flows.column("account_id"), NO_VALUE),
        pc.fill_null(flows.column("vpc_id"), NO_VALUE),
        "|",
    )
    distinct = sorted(pc.unique(keys).to_pylist())
    if len(distinct) == 1:  # one flow log, one VPC: the usual object
        return [(distinct[0], flows)]
    return [(key, flows.filter(pc.equal(keys, key))) for key in distinct]


def _fitting(rows: pa.Table, source: str, seq: int) -> list[bytes]:
    """``rows`` encoded as one chunk, or halved until every piece fits a record."""
    value = _encode(rows, source, seq)
    if len(value) <= MAX_VALUE_BYTES or rows.num_rows <= 1:
        return [value]
    half = rows.num_rows // 2
    head = _fitting(rows.slice(0, half), source, seq)
    return head + _fitting(rows.slice(half), source, seq + len(head))


def _encode(rows: pa.Table, source: str, seq: int) -> bytes:
    kept = [name for name in rows.column_names if rows.column(name).null_count < rows.num_rows]
    table = rows.select(kept)
    table = table.replace_schema_metadata({OBJECT: source.encode(), SEQ: str(seq).encode()})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=_OPTIONS) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())
