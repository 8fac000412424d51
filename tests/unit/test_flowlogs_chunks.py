"""Chunks on the wire and which copies of them count (chunks.py, dedupe.py)."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from streams.common.exactly_once import PartitionState
from streams.flowlogs import dedupe
from streams.flowlogs.chunks import MAX_VALUE_BYTES, ChunkError, decode, encode_chunks
from streams.flowlogs.fields import SCHEMA
from streams.flowlogs.parse import parse_lines

HEADER = (
    "version vpc-id account-id interface-id srcaddr dstaddr srcport dstport protocol packets "
    "bytes start end action log-status"
)


def line(vpc: str, account: str = "111122223333", start: int = 1_700_000_000) -> str:
    end = start + 30
    return f"5 {vpc} {account} eni-0a 10.0.0.1 10.0.0.2 40000 443 6 10 5000 {start} {end} ACCEPT OK"


def flows(lines: list[str]) -> pa.Table:
    block = parse_lines([HEADER, *lines], latest_start=2_000_000_000)
    assert not block.bad
    return block.flows


def test_a_chunk_holds_one_vpc_and_comes_back_with_every_column() -> None:
    table = flows([line("vpc-b"), line("vpc-a"), line("vpc-b"), line("vpc-a", "444455556666")])
    records = encode_chunks(table, "s3://logs/o1.log.gz", 0, max_rows=100)
    keys = [key for key, _ in records]
    assert keys == [b"111122223333|vpc-a", b"111122223333|vpc-b", b"444455556666|vpc-a"]
    chunks = [decode(value) for _, value in records]
    assert [c.seq for c in chunks] == [0, 1, 2]
    assert [c.flows.num_rows for c in chunks] == [1, 2, 1]
    assert all(c.flows.schema == SCHEMA for c in chunks)
    assert all(c.object == "s3://logs/o1.log.gz" for c in chunks)
    assert chunks[1].flows.column("bytes").to_pylist() == [5000, 5000]


def test_chunks_split_by_rows_and_number_on_from_the_first_seq() -> None:
    table = flows([line("vpc-a", start=1_700_000_000 + i) for i in range(5)])
    records = encode_chunks(table, "o", 7, max_rows=2)
    chunks = [decode(value) for _, value in records]
    assert [c.seq for c in chunks] == [7, 8, 9]
    assert [c.flows.column("start")[0].as_py() for c in chunks] == [
        1_700_000_000, 1_700_000_002, 1_700_000_004,
    ]  # fmt: skip


def test_the_same_rows_make_the_same_bytes() -> None:
    table = flows([line("vpc-a"), line("vpc-b")])
    assert encode_chunks(table, "o", 0, max_rows=10) == encode_chunks(table, "o", 0, max_rows=10)


def test_a_chunk_over_the_record_limit_is_halved() -> None:
    wide = [line("vpc-a", start=1_700_000_000 + i) for i in range(4000)]
    table = flows(wide)
    # Unique long values defeat compression: ~300 random bytes a row.
    draw = random.Random(1)
    noise = pa.array([draw.randbytes(300).hex() for _ in range(table.num_rows)])
    table = table.set_column(table.schema.get_field_index("instance_id"), "instance_id", noise)
    records = encode_chunks(table, "o", 0, max_rows=4000)
    assert len(records) > 1
    assert all(len(value) <= MAX_VALUE_BYTES for _, value in records)
    assert sum(decode(v).flows.num_rows for _, v in records) == 4000


@pytest.mark.parametrize("value", [b"", b"not arrow", None])
def test_a_record_that_is_no_chunk_is_refused(value: bytes | None) -> None:
    with pytest.raises(ChunkError):
        decode(value)


def test_the_first_copy_of_a_chunk_counts_and_a_replay_decides_alike() -> None:
    table: dict[str, object] = {}
    state = PartitionState(table)
    decisions = [
        dedupe.counts(state, "o", seq, offset, now=0)
        for seq, offset in [(0, 10), (0, 11), (1, 12), (1, 13), (2, 14)]
    ]
    assert decisions == [True, False, True, False, True]
    state.flush()
    # After a crash the partition is read again from offset 11: the same answers.
    again = PartitionState(table)
    replay = [
        dedupe.counts(again, "o", s, o, now=0) for s, o in [(0, 11), (1, 12), (1, 13), (2, 14)]
    ]
    assert replay == [False, True, False, True]


def test_object_entries_expire_by_first_sight() -> None:
    entries = [("obj|a", {"t": 100}), ("obj|b", {"t": 900}), ("clock|x", 5)]
    assert dedupe.expired(entries, now=1000, keep_seconds=500) == ["obj|a"]
