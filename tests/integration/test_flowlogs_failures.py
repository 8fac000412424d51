"""Flow logs under failure: processes killed mid-ingest, two readers, hostile objects (and
one object in AWS's Parquet delivery among them)."""

from __future__ import annotations

import gzip
import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from producers.flowlogs import Options, write
from streams.common.broker import EmbeddedBroker
from tests.support import flowlogs_oracle as oracle
from tests.support.flowlogs import FlowLogsProcesses, ingested, wait_for_flows, write_object
from tests.support.workers import wait_until

pytestmark = pytest.mark.integration

DAY = datetime(2026, 11, 29, tzinfo=UTC)


def day_of_objects(directory: Path, hours: float = 12, seed: int = 9) -> list[Path]:
    write(Options(start=DAY, hours=hours, flows_per_hour=6000, seed=seed), str(directory))
    return sorted(directory.rglob("*.log.gz"))


def lake_records(lake: Path) -> int:
    """Rows in the lake's Parquet files, read with pyarrow (not the pipeline's queries)."""
    files = [str(p) for p in (lake / "flows").rglob("*.parquet")]
    return int(ds.dataset(files, format="parquet").count_rows()) if files else 0


def test_reader_and_worker_killed_mid_ingest_count_every_record_once(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    objects = day_of_objects(tmp_path / "source")
    rows = oracle.rows_of(p.read_bytes() for p in objects)
    expected = oracle.summary(rows, {})
    flows = FlowLogsProcesses(broker.bootstrap, tmp_path)
    try:
        worker = flows.worker(FLOWLOGS_READ_CONCURRENCY="2")
        reader = flows.reader(str(tmp_path / "source"), FLOWLOGS_READ_CONCURRENCY="2")
        wait_until(lambda: ingested(reader) >= len(objects) // 4, timeout=120, what="a quarter")
        reader.kill()
        reader = flows.reader(str(tmp_path / "source"), name="reader0")
        wait_until(
            lambda: 0 < worker.get("/flowlogs/summary")["flows"] < expected["flows"] * 0.9,
            timeout=120, every=0.05, what="the worker half-way",
        )  # fmt: skip
        worker.kill()
        worker = flows.worker(name="worker0")  # same RocksDB directory, as after a crash
        wait_until(lambda: ingested(reader) > 0, timeout=60)
        wait_for_flows(worker, expected["flows"], timeout=240)
        wait_until(lambda: worker.get("/flowlogs/summary") == expected, timeout=60)
        assert lake_records(flows.lake) == len(rows)
        assert oracle.top(rows, {}, "srcaddr", "bytes", 10) == worker.get(
            "/flowlogs/top?field=srcaddr&by=bytes&limit=10"
        )
    finally:
        flows.stop_all()


def test_two_readers_share_the_objects_and_read_each_once(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    objects = day_of_objects(tmp_path / "source", hours=6, seed=3)
    rows = oracle.rows_of(p.read_bytes() for p in objects)
    flows = FlowLogsProcesses(broker.bootstrap, tmp_path)
    try:
        worker = flows.worker()
        first = flows.reader(str(tmp_path / "source"), name="reader0")
        second = flows.reader(str(tmp_path / "source"), name="reader1")
        wait_until(
            lambda: ingested(first) + ingested(second) >= len(objects), timeout=180,
            what="every object",
        )  # fmt: skip
        wait_until(lambda: worker.get("/flowlogs/summary") == oracle.summary(rows, {}), timeout=120)
        assert ingested(first) + ingested(second) == len(objects)
        assert ingested(first) > 0 and ingested(second) > 0
        assert worker.metric("streams_flowlogs_duplicate_chunks_total") == 0
    finally:
        flows.stop_all()


HEADER = (
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes "
    "start end action log-status"
)
T = 1_764_547_200


def good(i: int) -> str:
    source, start = f"10.0.0.{i % 250}", T + i
    fields = f"{source} 8.8.8.8 40000 443 6 10 1000 {start} {start + 9}"
    return f"2 111122223333 eni-1 {fields} ACCEPT OK"


def parquet_delivery(path: Path, rows: int) -> None:
    """An object as AWS's Parquet delivery writes it (underscored names, typed columns)."""
    start = [T + 100 + i for i in range(rows)]
    table = pa.table({
        "version": pa.array([2] * rows, pa.int32()),
        "account_id": ["111122223333"] * rows,
        "interface_id": ["eni-1"] * rows,
        "srcaddr": [f"10.0.1.{i}" for i in range(rows)],
        "dstaddr": ["8.8.8.8"] * rows,
        "srcport": pa.array([40000] * rows, pa.int32()),
        "dstport": pa.array([443] * rows, pa.int32()),
        "protocol": pa.array([6] * rows, pa.int32()),
        "packets": pa.array([10] * rows, pa.int64()),
        "bytes": pa.array([1000] * rows, pa.int64()),
        "start": pa.array(start, pa.int64()),
        "end": pa.array([s + 9 for s in start], pa.int64()),
        "action": ["ACCEPT"] * rows,
        "log_status": ["OK"] * rows,
    })  # fmt: skip
    pq.write_table(table, path)


def test_hostile_objects_are_dead_lettered_and_nothing_stops(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    whole = gzip.compress(("\n".join([HEADER, *(good(i) for i in range(500))]) + "\n").encode())
    (source / "a").mkdir(parents=True)
    (source / "a" / "truncated.log.gz").write_bytes(whole[: len(whole) // 2])
    (source / "a" / "empty.log.gz").write_bytes(b"")
    (source / "a" / "empty-gzip.log.gz").write_bytes(gzip.compress(b""))
    (source / "a" / "not-gzip.log.gz").write_bytes(b"\x1f\x8b\x08garbage")
    write_object(source, "a/readme.log.gz", ["This bucket holds our flow logs", "thanks"])
    write_object(source, "a/garbage.log.gz", [HEADER, good(1), "x y z", "\x00\x01 bad", good(2)])
    write_object(source, "a/future-fields.log.gz", [
        HEADER + " quantum-entanglement next-hop-2031",
        *(f"{good(i)} yes 10.0.0.1" for i in range(3, 6)),
    ])  # fmt: skip
    write_object(source, "a/ok.log.gz", [HEADER, *(good(i) for i in range(10, 20))])
    parquet_delivery(source / "a" / "delivered.log.parquet", rows=4)
    flows = FlowLogsProcesses(broker.bootstrap, tmp_path)
    try:
        worker = flows.worker()
        reader = flows.reader(str(source), FLOWLOGS_OBJECT_ATTEMPTS="2")
        wait_until(
            lambda: reader.metric("streams_flowlogs_objects_total") == 9, timeout=120,
            what="every object settled",
        )  # fmt: skip
        summary = wait_for_flows(worker, 19)
        assert summary["flows"] == 19  # garbage: 2, future fields: 3, ok: 10, Parquet: 4
        letters = {
            reason: reader.metric(f'streams_flowlogs_dead_letters_total{{reason="{reason}"}}')
            for reason in ("corrupt_object", "unreadable_header", "malformed_line")
        }
        assert letters["corrupt_object"] == 2  # truncated, not-gzip
        assert letters["unreadable_header"] == 1  # the readme
        assert letters["malformed_line"] == 2  # "x y z" and the control bytes
        assert reader.alive() and worker.alive()
        assert worker.get("/flowlogs/top?field=srcaddr&by=flows&limit=1")[0]["flows"] == 1
        # An object rewritten after it was read: reported once, its new bytes not counted.
        write_object(source, "a/ok.log.gz", [HEADER, *(good(i) for i in range(10, 40))])
        changed = 'streams_flowlogs_dead_letters_total{reason="changed_object"}'
        wait_until(lambda: reader.metric(changed) == 1, timeout=60, what="the change reported")
        time.sleep(3)  # three more listings (one a second): still reported once
        assert reader.metric(changed) == 1
        assert worker.get("/flowlogs/summary")["flows"] == 19
    finally:
        flows.stop_all()
