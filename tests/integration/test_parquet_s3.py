"""The partitioned Parquet writer against a real S3 API (moto's server, in process)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from prometheus_client import CollectorRegistry

from streams.common.parquet import PartitionedParquetWriter
from streams.common.storage import open_filesystem
from streams.orders.lake import ENRICHED_SCHEMA, Lake, LakeMetrics, partition_of, to_row
from tests.integration.s3_server import empty_bucket, s3
from tests.integration.s3_server import keys as bucket_keys
from tests.support.lake_rows import SCHEMA, by_date, rows

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

BUCKET = "orders-lake"
URI = f"s3://{BUCKET}/enriched"


@pytest.fixture
def endpoint(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """An empty S3 server with one bucket, and dummy credentials in the environment."""
    return empty_bucket(moto_endpoint, BUCKET, monkeypatch)


def keys(endpoint: str) -> list[str]:
    return bucket_keys(endpoint, BUCKET)


def read_all(endpoint: str) -> pa.Table:
    fs, root = open_filesystem(URI, endpoint)
    return ds.dataset(root, filesystem=fs, format="parquet", partitioning="hive").to_table()


def test_batches_land_in_date_directories_on_s3(endpoint: str) -> None:
    """Batches written through the S3 API come back whole, by day, with exact amounts."""
    fs, root = open_filesystem(URI, endpoint)
    writer = PartitionedParquetWriter(fs, root, SCHEMA, by_date)
    writer.write(0, 0, 2, rows(("a", "2025-08-01", "951.08"), ("b", "2025-08-02", "0.01")))
    writer.write(1, 7, 7, rows(("c", "2025-08-01", "12.50")))

    assert keys(endpoint) == [
        "enriched/date=2025-08-01/part-p000-000000000000-000000000002.parquet",
        "enriched/date=2025-08-01/part-p001-000000000007-000000000007.parquet",
        "enriched/date=2025-08-02/part-p000-000000000000-000000000002.parquet",
    ]
    got = sorted(read_all(endpoint).to_pylist(), key=lambda r: r["id"])
    assert got == [
        {"id": "a", "amount": Decimal("951.08"), "date": "2025-08-01"},
        {"id": "b", "amount": Decimal("0.01"), "date": "2025-08-02"},
        {"id": "c", "amount": Decimal("12.50"), "date": "2025-08-01"},
    ]
    assert writer.committed_offset(0) == 2
    assert writer.committed_offset(1) == 7
    assert writer.committed_offset(2) == -1


def test_rewrite_on_s3_overwrites_identically(endpoint: str) -> None:
    """Writing a batch again through S3 replaces each object with the same bytes: no duplicates."""
    fs, root = open_filesystem(URI, endpoint)
    writer = PartitionedParquetWriter(fs, root, SCHEMA, by_date)
    batch = rows(("a", "2025-08-01", "1.00"), ("b", "2025-08-02", "2.00"))
    client = s3(endpoint)

    writer.write(3, 40, 41, batch)
    before = {k: client.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in keys(endpoint)}
    writer.write(3, 40, 41, batch)
    after = {k: client.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in keys(endpoint)}

    assert after == before
    assert len(after) == 2
    assert sorted(read_all(endpoint)["id"].to_pylist()) == ["a", "b"]


def test_lake_on_s3_survives_a_crash_between_days(endpoint: str) -> None:
    """On S3, a batch cut short by a crash is cleaned up and replayed so each order lands once."""
    fs, root = open_filesystem(URI, endpoint)
    records = [
        (offset, orjson.dumps(enriched(f"ORD-{offset}", f"2025-08-0{1 + offset % 2}")))
        for offset in range(6)
    ]

    def new_lake() -> Lake:
        writer = PartitionedParquetWriter(fs, root, ENRICHED_SCHEMA, partition_of)
        return Lake(writer, LakeMetrics.create(CollectorRegistry()))

    new_lake().write_batch(0, records[:4])
    # A worker died after the first day's object of batch 4..5 was uploaded, before the
    # second day's: written whole here, then the second object removed.
    new_lake().writer.write(0, 4, 5, [to_row(orjson.loads(value)) for _, value in records[4:]])
    s3(endpoint).delete_object(
        Bucket=BUCKET, Key="enriched/date=2025-08-02/part-p000-000000000004-000000000005.parquet"
    )

    restarted = new_lake()
    # Redelivered from the last Kafka commit, cut into other batches this time.
    restarted.write_batch(0, records[:5])
    restarted.write_batch(0, records[5:])

    assert sorted(read_all(endpoint)["order_id"].to_pylist()) == [f"ORD-{i}" for i in range(6)]
    assert restarted.metrics.replayed._value.get() == 4
    assert restarted.writer.committed_offset(0) == 5
    assert not [k for k in keys(endpoint) if "-000000000004-000000000005" in k]


def enriched(order_id: str, date: str) -> dict[str, Any]:
    """A minimal enriched order, as the orders worker sends it to orders.enriched."""
    return {
        "order_id": order_id,
        "customer_id": "CUST-1",
        "event_time": f"{date}T09:15:00Z",
        "date": date,
        "channel": "web",
        "status": "confirmed",
        "country": "US",
        "region": "CA",
        "city": None,
        "total": "951.08",
        "units": 2,
        "counts_as_revenue": True,
        "revision": False,
        "schema_version": 2,
        "items": [
            {
                "product_id": "PROD-001",
                "quantity": 2,
                "unit_price": "475.54",
                "amount": "951.08",
                "category": "Home",
                "brand": "Acme",
                "available_quantity": None,
                "warehouse": None,
            }
        ],
    }
