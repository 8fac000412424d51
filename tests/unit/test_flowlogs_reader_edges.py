"""The reader at its edges: objects read again after a crash, readers sharing flow logs,
undated objects, symbolic links, Parquet string types and a bad configured format.

The reader runs against a local directory and a producer that keeps what it is sent;
what counts is computed here from the lines the tests wrote, and a crash is the first
read's chunks followed by the second read's, the first copy of each (object, seq)
counting, as the workers do.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from streams.common.batches import Retry
from streams.flowlogs import main as flowlogs_main
from streams.flowlogs.chunks import decode
from streams.flowlogs.ledger import LEDGER, Ledger
from streams.flowlogs.metrics import ReaderMetrics
from streams.flowlogs.parse import parse_parquet
from streams.flowlogs.reader import DLQ, RECORDS, Reader
from streams.flowlogs.settings import FlowLogsSettings
from streams.flowlogs.source import ObjectSource, StoredObject

HEADER = "version account-id interface-id srcaddr dstaddr srcport dstport protocol " + (
    "packets bytes start end action log-status"
)
M = 1_790_000_100  # 2026-09-21T14:15Z: when the tests' objects were written (their mtime)


def line(port: int, start: int, account: str = "111122223333") -> str:
    """A valid flow whose source port tells it apart from the test's other lines."""
    return f"2 {account} eni-1 10.0.0.1 10.0.0.2 {port} 443 6 1 60 {start} {start + 5} ACCEPT OK"


def write_gz(path: Path, lines: list[str], mtime: float = M) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))
    os.utime(path, (mtime, mtime))
    return path


class Producer:
    """Keeps each record sent: (topic, key, value, partition, headers)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None, int | None, Any]] = []

    async def send(
        self, topic: str, key: Any, value: Any, partition: Any, _ts: Any, headers: Any
    ) -> asyncio.Future[Any]:
        self.sent.append((topic, key, value, partition, headers))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    def topic(self, topic: str) -> list[tuple[Any, Any, int | None, Any]]:
        """(key, value, partition, headers) of the records sent to ``topic``, in order."""
        return [(k, v, p, h) for t, k, v, p, h in self.sent if t == topic]

    def reasons(self) -> list[str]:
        """The reason of each dead letter sent, from its headers."""
        return [dict(h)["dlq.reason"].decode() for _k, _v, _p, h in self.topic(DLQ)]


def make_reader(source: str, **options: Any) -> tuple[Reader, Producer]:
    producer = Producer()
    reader = Reader(
        ObjectSource(source), Ledger("unused:9092", 6, "readers"), producer,
        ReaderMetrics.create(CollectorRegistry()), poll_seconds=1, object_attempts=2,
        max_future_seconds=options.pop("max_future_seconds", 0),
        chunk_rows=options.pop("chunk_rows", 5000), retry=Retry(first_delay=0.0), **options,
    )  # fmt: skip
    return reader, producer


async def read_all(reader: Reader) -> list[StoredObject]:
    objects = reader.source.list(now=time.time() + 3600)  # listed whatever the clock
    for obj in objects:
        await reader.ingest(obj)
    return objects


def counted_ports(chunk_values: list[bytes]) -> Counter[int]:
    """Rows the workers count from these chunk records: the first copy of each seq."""
    seen: set[tuple[str, int]] = set()
    ports: Counter[int] = Counter()
    for value in chunk_values:
        chunk = decode(value)
        if (chunk.object, chunk.seq) in seen:
            continue
        seen.add((chunk.object, chunk.seq))
        ports.update(chunk.flows.column("srcport").to_pylist())
    return ports


# ---- F7: a re-read splits the object as the first read did --------------------------


@pytest.mark.parametrize(
    "name",
    [
        "exports/cloudwatch-export-1.log.gz",  # no delivery time: its mtime decides
        "AWSLogs/111122223333/vpcflowlogs/us-east-1/2026/09/21/"
        "111122223333_vpcflowlogs_us-east-1_fl-0abc_20260921T1415Z_9f8e.log.gz",  # = M
    ],
)
async def test_an_object_read_again_after_a_crash_counts_each_row_once(
    tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reader's clock differs between the two reads (behind the object, then ahead):
    rows dated just before the object was written are valid at both, and every row
    counts exactly once."""
    lines = [line(port, M - 3600 + port) for port in range(200)]
    lines += [line(port, M - 10) for port in range(200, 250)]
    lines += [line(port, M - 3000) for port in range(250, 300)]
    write_gz(tmp_path / name, [HEADER, *lines])
    first, first_sent = make_reader(str(tmp_path), chunk_rows=20)
    monkeypatch.setattr(time, "time", lambda: M - 1000.0)
    await read_all(first)
    second, second_sent = make_reader(str(tmp_path), chunk_rows=20)
    monkeypatch.setattr(time, "time", lambda: M + 1000.0)
    await read_all(second)
    killed_after = [v for _k, v, _p, _h in first_sent.topic(RECORDS)][:12]
    assert len(killed_after) == 12
    again = [v for _k, v, _p, _h in second_sent.topic(RECORDS)]
    print(first_sent.reasons(), len(first_sent.topic(RECORDS)), len(second_sent.topic(RECORDS)))
    assert counted_ports([*killed_after, *again]) == Counter(range(300))
    assert first_sent.reasons() == second_sent.reasons() == []


# ---- F8: one flow log, one reader ------------------------------------------------------


def aws_name(account: str, log_id: str, minute: int) -> str:
    stamp = f"20260921T{13 + minute // 60:02d}{minute % 60:02d}Z"
    prefix = f"AWSLogs/{account}/vpcflowlogs/eu-west-1/2026/09/21/"
    return f"{prefix}{account}_vpcflowlogs_eu-west-1_{log_id}_{stamp}_{minute:04x}.log.gz"


async def test_two_readers_each_read_whole_flow_logs_and_record_them_where_they_own(
    tmp_path: Path,
) -> None:
    logs = [(f"1111222233{n:02d}", f"fl-{n:04x}beef") for n in range(8)]
    for account, log_id in logs:
        for minute in range(0, 60, 5):
            write_gz(tmp_path / aws_name(account, log_id, minute), [HEADER, line(1, M)])
    readers = [make_reader(str(tmp_path)) for _ in range(2)]
    readers[0][0].ledger.owned, readers[1][0].ledger.owned = {0, 2, 4}, {1, 3, 5}
    owners: dict[str, set[int]] = {}
    for index, (reader, _producer) in enumerate(readers):
        for obj in reader.source.list():
            if reader.ledger.owns(obj.uri):
                flow_log = Path(obj.path).name.rsplit("_", 2)[0]  # the name up to its time
                owners.setdefault(flow_log, set()).add(index)
                await reader.ingest(obj)
    assert len(owners) == len(logs) and all(len(o) == 1 for o in owners.values())
    for reader, producer in readers:  # each record where its reader reads it back
        partitions = {p for _k, _v, p, _h in producer.topic(LEDGER)}
        assert partitions <= reader.ledger.owned
    assert sum(len(p.topic(LEDGER)) for _r, p in readers) == len(logs) * 12


# ---- F11: a bad configured format stops the start, not the objects --------------------


@pytest.mark.parametrize(
    "format",
    ["${version} ${version}", "${version} ${account-id}", "${version} ${srcaddr!}", " , "],
)
def test_a_bad_format_is_refused_at_start_up(
    format: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValidationError, match="format"):
        FlowLogsSettings(format=format)
    monkeypatch.setenv("FLOWLOGS_FORMAT", format)
    monkeypatch.setattr(sys, "argv", ["flowlogs", "reader"])
    monkeypatch.setattr(flowlogs_main, "declare", lambda *_: pytest.fail("started"))
    with pytest.raises(SystemExit, match=r"FLOWLOGS|format"):
        flowlogs_main.main()


async def test_objects_with_a_header_are_read_by_it_whatever_the_format(tmp_path: Path) -> None:
    reordered = "${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${packets} " + (
        "${bytes} ${start} ${end} ${action} ${log-status}"
    )
    write_gz(tmp_path / "a.log.gz", [HEADER, line(7, M - 60), line(8, M - 60)])
    reader, producer = make_reader(str(tmp_path), format=reordered)
    await read_all(reader)
    assert counted_ports([v for _k, v, _p, _h in producer.topic(RECORDS)]) == Counter([7, 8])
    assert producer.reasons() == []
    with pytest.raises(ValueError, match="repeats"):
        make_reader(str(tmp_path), format="${version} ${version}")


# ---- F4: undated objects take their place by their modified time ----------------------


def test_an_undated_object_is_listed_by_its_modified_time_among_the_dated(
    tmp_path: Path,
) -> None:
    dated = [tmp_path / aws_name("111122223333", "fl-1", m) for m in (0, 10, 20)]
    delivered = [1_789_995_600 + 60 * m for m in (0, 10, 20)]  # 2026-09-21T13:00Z + m
    for path, at in zip(dated, delivered, strict=True):
        write_gz(path, [HEADER], mtime=at + 30)  # S3 writes a little after the key's time
    between = write_gz(tmp_path / "manual/upload-between.log.gz", [HEADER], delivered[1] + 60)
    latest = write_gz(tmp_path / "manual/upload-now.log", [HEADER], delivered[2] + 3600)
    listed = [Path(o.path) for o in ObjectSource(str(tmp_path)).list(now=M * 2)]
    assert listed == [dated[0], dated[1], between, dated[2], latest]


# ---- F5: symbolic links are not followed ----------------------------------------------


async def test_symbolic_links_do_not_count_an_object_again(tmp_path: Path) -> None:
    write_gz(tmp_path / "a/x.log.gz", [HEADER, *(line(p, M - 60) for p in range(5))])
    (tmp_path / "a/loop").symlink_to("..")  # a loop: a/loop/a/loop/...
    (tmp_path / "b").symlink_to("a")
    (tmp_path / "c.log.gz").symlink_to("a/x.log.gz")
    reader, producer = make_reader(str(tmp_path))
    objects = await read_all(reader)
    assert [Path(o.path) for o in objects] == [tmp_path / "a/x.log.gz"]
    assert counted_ports([v for _k, v, _p, _h in producer.topic(RECORDS)]) == Counter(range(5))


# ---- F9: "-" is no value in every string type of Parquet ------------------------------


def parquet_with(strings: pa.DataType, dictionary: bool = False) -> bytes:
    """Three flows and one NODATA row whose addresses and action are "-" (as AWS writes)."""

    def text(values: list[str]) -> pa.Array:
        array = pa.array(values, strings)
        return array.dictionary_encode() if dictionary else array

    ints = pa.array([1, 2, 3, 4], pa.int64())
    table = pa.table({
        "version": pa.array([2] * 4, pa.int32()), "account_id": text(["123456789012"] * 4),
        "interface_id": text(["eni-1"] * 4),
        "srcaddr": text(["10.0.0.1", "10.0.0.1", "-", "10.0.0.1"]),
        "dstaddr": text(["10.0.0.2", "10.0.0.2", "-", "10.0.0.2"]),
        "srcport": ints, "dstport": ints, "protocol": pa.array([6, 6, None, 6], pa.int32()),
        "packets": ints, "bytes": ints, "start": pa.array([M] * 4), "end": pa.array([M + 1] * 4),
        "action": text(["ACCEPT", "REJECT", "-", "ACCEPT"]),
        "log_status": text(["OK", "OK", "NODATA", "OK"]),
    })  # fmt: skip
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("strings", "dictionary"),
    [(pa.string(), False), (pa.large_string(), False), (pa.string(), True),
     (pa.string_view(), False)],
)  # fmt: skip
def test_a_dash_is_no_value_whatever_the_parquet_string_type(
    strings: pa.DataType, dictionary: bool
) -> None:
    blocks = list(parse_parquet(parquet_with(strings, dictionary), latest_start=M))
    statuses = [s for b in blocks for s in b.flows.column("log_status").to_pylist()]
    assert sorted(statuses) == ["NODATA", "OK", "OK", "OK"]
    assert [bad for b in blocks for bad in b.bad] == []
    flows = pa.concat_tables([b.flows for b in blocks])
    nodata = flows.filter(pa.compute.equal(flows.column("log_status"), "NODATA"))
    assert nodata.column("srcaddr").to_pylist() == [None]
