"""The partitioned Parquet writer and the orders lake, on a local directory (no broker)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import faust
import orjson
import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from prometheus_client import CollectorRegistry

from streams.common import storage
from streams.common.parquet import PartitionedParquetWriter
from streams.common.storage import open_filesystem
from streams.orders.lake import (
    ENRICHED_SCHEMA,
    Lake,
    LakeMetrics,
    build_lake,
    partition_of,
    to_row,
)
from streams.orders.logic import Rules, enrich
from tests.support.lake_rows import SCHEMA, by_date, rows
from tests.unit.factories import catalog_of, entry, item, order


@pytest.fixture
def writer(tmp_path: Path) -> PartitionedParquetWriter:
    fs, root = open_filesystem(str(tmp_path / "lake"), None)
    return PartitionedParquetWriter(fs, root, SCHEMA, by_date)


def read_all(root: str) -> pa.Table:
    return ds.dataset(root, format="parquet", partitioning="hive").to_table()


def files_under(root: str) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in Path(root).rglob("*") if p.is_file())


def enriched(
    order_id: str = "ORD-1", when: str = "2025-08-01T12:00:00Z", quantity: int = 2
) -> dict[str, Any]:
    """An enriched order made by the pipeline's own enrich(), as read from the topic."""
    catalog = catalog_of(entry("PROD-001", "475.54"))
    inventory = {"PROD-001": {"available_quantity": 7, "warehouse_location": "WH-EAST"}}
    made = enrich(
        order(order_id=order_id, timestamp=when, items=[item("PROD-001", quantity, "475.54")]),
        catalog,
        inventory,
        Rules(),
        revision=False,
    )
    return dict(orjson.loads(orjson.dumps(made)))


def test_batch_spanning_dates_writes_one_file_per_date(writer: PartitionedParquetWriter) -> None:
    """A batch whose rows span three days leaves one file, named by its offsets, per day."""
    batch = rows(
        ("a", "2025-08-01", "1.00"), ("b", "2025-08-02", "2.00"), ("c", "2025-08-01", "3.00")
    )
    batch += rows(("d", "2025-07-31", "4.00"))
    writer.write(3, 10, 19, batch)

    name = "part-p003-000000000010-000000000019.parquet"
    assert files_under(writer.root) == [
        f"date=2025-07-31/{name}",
        f"date=2025-08-01/{name}",
        f"date=2025-08-02/{name}",
    ]
    table = read_all(writer.root)
    assert sorted(zip(table["id"].to_pylist(), table["date"].to_pylist(), strict=True)) == [
        ("a", "2025-08-01"),
        ("b", "2025-08-02"),
        ("c", "2025-08-01"),
        ("d", "2025-07-31"),
    ]


def test_rewriting_a_batch_gives_identical_files(writer: PartitionedParquetWriter) -> None:
    """Writing the same batch again overwrites its files byte for byte: no duplicate rows."""
    batch = rows(("a", "2025-08-01", "1.00"), ("b", "2025-08-02", "2.00"))
    paths = writer.write(0, 0, 1, batch)
    before = {p: Path(p).read_bytes() for p in paths}

    assert writer.write(0, 0, 1, batch) == paths
    assert {p: Path(p).read_bytes() for p in paths} == before
    assert len(files_under(writer.root)) == 2
    assert sorted(read_all(writer.root)["id"].to_pylist()) == ["a", "b"]


def test_committed_offset_is_the_highest_last_across_dates(
    writer: PartitionedParquetWriter,
) -> None:
    """The resume point of a partition is the end of its newest batch, whatever its day."""
    writer.write(1, 0, 9, rows(("a", "2025-08-02", "1.00")))
    writer.write(1, 10, 24, rows(("b", "2025-08-01", "1.00")))
    writer.write(2, 0, 99, rows(("c", "2025-08-03", "1.00")))

    assert writer.committed_offset(1) == 24
    assert writer.committed_offset(2) == 99
    assert writer.committed_offset(0) == -1


def test_partly_written_batch_is_not_committed_and_recover_removes_it(
    writer: PartitionedParquetWriter,
) -> None:
    """After a crash between two days' files, the batch counts as unwritten and its leftovers go."""
    writer.write(0, 0, 4, rows(("a", "2025-08-01", "1.00")))
    paths = writer.write(0, 5, 9, rows(("b", "2025-08-01", "1.00"), ("c", "2025-08-02", "1.00")))
    Path(paths[1]).unlink()  # as if the worker died before the second file landed

    assert writer.committed_offset(0) == 4
    assert writer.recover(0) == 4
    assert files_under(writer.root) == [
        "date=2025-08-01/part-p000-000000000000-000000000004.parquet"
    ]


def test_replay_after_a_crash_between_days_writes_each_record_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker dying mid-batch, then replaying in other batches, loses and doubles nothing."""
    fs, root = open_filesystem(str(tmp_path / "lake"), None)
    records = [
        (offset, orjson.dumps(enriched(f"ORD-{offset}", f"2025-08-0{1 + offset % 3}T10:00:00Z")))
        for offset in range(100, 112)
    ]

    crashing = PartitionedParquetWriter(fs, root, ENRICHED_SCHEMA, partition_of)
    puts: list[str] = []
    real_put = storage.put_bytes

    def put_then_die(filesystem: Any, path: str, data: bytes | memoryview) -> None:
        if len(puts) == 1:
            raise SystemExit("worker killed")
        puts.append(path)
        real_put(filesystem, path, data)

    with monkeypatch.context() as patched:
        patched.setattr(storage, "put_bytes", put_then_die)
        with pytest.raises(SystemExit):
            Lake(crashing, LakeMetrics.create(CollectorRegistry())).write_batch(2, records[:8])
    assert len(puts) == 1

    # A new worker reads the partition again from the last Kafka commit, in other batches.
    lake = Lake(
        PartitionedParquetWriter(fs, root, ENRICHED_SCHEMA, partition_of),
        LakeMetrics.create(CollectorRegistry()),
    )
    for start in range(0, 12, 5):
        lake.write_batch(2, records[start : start + 5])

    ids = read_all(root)["order_id"].to_pylist()
    assert sorted(ids) == sorted(f"ORD-{offset}" for offset in range(100, 112))


def test_replayed_records_are_skipped(tmp_path: Path) -> None:
    """Records a restarted worker reads again are not written a second time."""
    fs, root = open_filesystem(str(tmp_path / "lake"), None)

    def new_lake() -> Lake:
        writer = PartitionedParquetWriter(fs, root, ENRICHED_SCHEMA, partition_of)
        return Lake(writer, LakeMetrics.create(CollectorRegistry()))

    records = [(offset, orjson.dumps(enriched(f"ORD-{offset}"))) for offset in range(6)]
    first = new_lake()
    first.write_batch(0, records[:4])
    first.write_batch(0, records[2:5])  # redelivered within the same worker
    restarted = new_lake()
    restarted.write_batch(0, records)  # and after a restart

    assert sorted(read_all(root)["order_id"].to_pylist()) == [f"ORD-{i}" for i in range(6)]
    assert restarted.metrics.replayed._value.get() == 5


def test_invalid_record_is_left_out_and_counted(tmp_path: Path) -> None:
    """A record the Parquet schema cannot hold is skipped, counted, and its batch still lands."""
    fs, root = open_filesystem(str(tmp_path / "lake"), None)
    lake = Lake(
        PartitionedParquetWriter(fs, root, ENRICHED_SCHEMA, partition_of),
        LakeMetrics.create(CollectorRegistry()),
    )
    bad_units = {**enriched("ORD-2"), "units": "many"}  # passes to_row, fails in Arrow
    records = [
        (0, orjson.dumps(enriched("ORD-0"))),
        (1, b"not json"),
        (2, orjson.dumps(bad_units)),
        (3, orjson.dumps(enriched("ORD-3"))),
    ]
    lake.write_batch(0, records)

    assert sorted(read_all(root)["order_id"].to_pylist()) == ["ORD-0", "ORD-3"]
    assert lake.metrics.invalid._value.get() == 2
    assert lake.writer.committed_offset(0) == 3


def test_money_is_exact_and_event_time_is_utc(writer: PartitionedParquetWriter) -> None:
    """Amounts read back from the copy equal the decimal strings; times are UTC instants."""
    lake_writer = PartitionedParquetWriter(writer.fs, writer.root, ENRICHED_SCHEMA, partition_of)
    lake_writer.write(0, 0, 0, [to_row(enriched(when="2025-08-01T14:30:00.250+02:00"))])

    [row] = read_all(writer.root).to_pylist()
    assert row["total"] == Decimal("951.08")
    assert row["items"][0]["amount"] == Decimal("951.08")
    assert row["items"][0]["unit_price"] == Decimal("475.54")
    assert row["event_time"] == datetime(2025, 8, 1, 12, 30, 0, 250_000, tzinfo=UTC)
    assert row["event_time"].utcoffset().total_seconds() == 0
    assert row["date"] == "2025-08-01"


def test_to_row_maps_an_enriched_order() -> None:
    """Every field of an enriched order reaches its Parquet column with the exact value."""
    row = to_row(enriched())
    assert row == {
        "date": "2025-08-01",
        "order_id": "ORD-1",
        "customer_id": "CUST-1",
        "event_time": datetime(2025, 8, 1, 12, 0, tzinfo=UTC),
        "channel": "web",
        "status": "confirmed",
        "country": "US",
        "region": "CA",
        "city": "San Francisco",
        "total": Decimal("951.08"),
        "units": 2,
        "counts_as_revenue": True,
        "revision": False,
        "schema_version": 1,
        "items": [
            {
                "product_id": "PROD-001",
                "quantity": 2,
                "unit_price": Decimal("475.54"),
                "amount": Decimal("951.08"),
                "category": "Home",
                "brand": "Acme",
                "available_quantity": 7,
                "warehouse": "WH-EAST",
            }
        ],
    }
    assert set(row) - {"date"} == set(ENRICHED_SCHEMA.names)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda e: e.update(total="951.085"), ValueError),  # a fraction of a cent
        (lambda e: e.update(total=951.08), TypeError),  # a float has lost exactness already
        (lambda e: e.update(total="12345678901.00"), ValueError),  # beyond decimal128(12, 2)
        (lambda e: e.update(event_time="2025-08-01T12:00:00"), ValueError),  # no time zone
        (lambda e: e.update(date="../../etc"), ValueError),  # would escape the root
    ],
)
def test_to_row_refuses_values_it_cannot_keep_exactly(
    change: Callable[[dict[str, Any]], None], error: type[Exception]
) -> None:
    """An order whose money, time or day cannot be stored exactly is refused, not rounded."""
    bad = enriched()
    change(bad)
    with pytest.raises(error):
        to_row(bad)


async def test_lake_writes_source_offsets_once_and_forgets_revoked_partitions(
    tmp_path: Path,
) -> None:
    """Rows written for orders.raw offsets are skipped when they come again, and a
    partition this worker loses is rescanned from the files if it comes back."""
    app = faust.App("lake-test", broker="kafka://127.0.0.1:1", autodiscover=False)
    root = tmp_path / "lake"
    lake = build_lake(app, "orders.raw", str(root), None, CollectorRegistry())
    rows = [(i, orjson.dumps(enriched(f"ORD-{i}"))) for i in range(3)]
    lake.write_batch(0, rows)
    lake.write_batch(0, rows)  # redelivered after a crash
    assert sorted(read_all(str(root))["order_id"].to_pylist()) == ["ORD-0", "ORD-1", "ORD-2"]
    assert lake.committed == {0: 2}
    await app.on_partitions_revoked.send({faust.types.TP("orders.raw", 0)})
    assert lake.committed == {}
    lake.write_batch(0, rows)
    assert read_all(str(root)).num_rows == 3
