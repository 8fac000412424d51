"""The enriched Parquet copy of the orders pipeline: ``orders.enriched`` → date directories.

Each accepted order lands once in ``<root>/date=YYYY-MM-DD/part-p<partition>-<first>-
<last>.parquet`` (see :mod:`streams.common.parquet` for why a replay never duplicates
it). The date is the order's event-time day in UTC, kept in the directory name only;
read the copy back with ``pyarrow.dataset.dataset(root, partitioning="hive")`` (or
DuckDB's ``hive_partitioning``) to get it as a column.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import faust
import orjson
import pyarrow as pa
from prometheus_client import CollectorRegistry, Counter, Histogram

from streams.common.parquet import PartitionedParquetWriter
from streams.common.storage import open_filesystem

if TYPE_CHECKING:  # lake_columns builds on this module's schema
    from streams.orders.lake_columns import LakeBatch

log = logging.getLogger(__name__)

PREFIX = "streams_orders_lake"

#: Exact money: 10 integer digits and cents, up to 9,999,999,999.99.
MONEY = pa.decimal128(12, 2)
_MONEY_LIMIT = Decimal(10) ** (MONEY.precision - MONEY.scale)

ITEM = pa.struct(
    [
        pa.field("product_id", pa.string(), nullable=False),
        pa.field("quantity", pa.int32(), nullable=False),
        pa.field("unit_price", MONEY, nullable=False),
        pa.field("amount", MONEY, nullable=False),
        pa.field("category", pa.string(), nullable=False),
        pa.field("brand", pa.string(), nullable=False),
        # Unknown when the inventory had no row for the product yet.
        pa.field("available_quantity", pa.int32()),
        pa.field("warehouse", pa.string()),
    ]
)

#: Columns of every file; ``date`` is the partition directory, not a column.
ENRICHED_SCHEMA = pa.schema(
    [
        pa.field("order_id", pa.string(), nullable=False),
        pa.field("customer_id", pa.string(), nullable=False),
        pa.field("event_time", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("channel", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("country", pa.string(), nullable=False),
        pa.field("region", pa.string(), nullable=False),
        pa.field("city", pa.string()),
        pa.field("total", MONEY, nullable=False),
        pa.field("units", pa.int32(), nullable=False),
        pa.field("counts_as_revenue", pa.bool_(), nullable=False),
        pa.field("revision", pa.bool_(), nullable=False),
        pa.field("schema_version", pa.int16(), nullable=False),
        pa.field("items", pa.list_(pa.field("item", ITEM, nullable=False)), nullable=False),
    ]
)


def to_row(enriched: Mapping[str, Any]) -> dict[str, Any]:
    """One enriched order (as ``enrich()`` makes it) as a row of ENRICHED_SCHEMA + ``date``.

    Raises ``KeyError``, ``TypeError`` or ``ValueError`` for a value the schema cannot
    hold exactly. Event times keep millisecond precision (sub-millisecond is dropped).
    """
    return {
        "date": _day(enriched["date"]),
        "order_id": enriched["order_id"],
        "customer_id": enriched["customer_id"],
        "event_time": _utc(enriched["event_time"]),
        "channel": enriched["channel"],
        "status": enriched["status"],
        "country": enriched["country"],
        "region": enriched["region"],
        "city": enriched.get("city"),
        "total": _money(enriched["total"]),
        "units": enriched["units"],
        "counts_as_revenue": enriched["counts_as_revenue"],
        "revision": enriched["revision"],
        "schema_version": enriched["schema_version"],
        "items": [
            {
                "product_id": item["product_id"],
                "quantity": item["quantity"],
                "unit_price": _money(item["unit_price"]),
                "amount": _money(item["amount"]),
                "category": item["category"],
                "brand": item["brand"],
                "available_quantity": item.get("available_quantity"),
                "warehouse": item.get("warehouse"),
            }
            for item in enriched["items"]
        ],
    }


def partition_of(row: Mapping[str, Any]) -> str:
    """The directory of a row: its event-time day, ``date=YYYY-MM-DD``."""
    return f"date={row['date']}"


def _day(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"date must be a string, got {type(value).__name__}")
    return checked_day(value)


@lru_cache(maxsize=4096)
def checked_day(value: str) -> str:
    """``value`` if it is a day ``YYYY-MM-DD``; raises ValueError otherwise."""
    # Parsed, not trusted: the string becomes a directory name. Few distinct values.
    return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC).strftime("%Y-%m-%d")


def _utc(value: Any) -> datetime:
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"event_time {value!r} has no time zone")
    return moment.astimezone(UTC)


def _money(value: Any) -> Decimal:
    if not isinstance(value, str):
        # A float would already have lost the exact cents.
        raise TypeError(f"money must be a decimal string, got {type(value).__name__}")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"money {value!r} is not a number") from None
    exponent = amount.as_tuple().exponent
    if not isinstance(exponent, int) or exponent < -MONEY.scale or abs(amount) >= _MONEY_LIMIT:
        raise ValueError(f"money {value!r} does not fit {MONEY}")
    return amount


@dataclass(frozen=True)
class LakeMetrics:
    rows: Counter
    files: Counter
    replayed: Counter
    invalid: Counter
    write_errors: Counter
    write_seconds: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry) -> LakeMetrics:
        def name(thing: str) -> str:
            return f"{PREFIX}_{thing}"

        return cls(
            rows=Counter(name("rows"), "Orders written to the Parquet copy", registry=registry),
            files=Counter(name("files"), "Parquet files written", registry=registry),
            replayed=Counter(
                name("replayed"),
                "Records skipped because the Parquet copy already holds them",
                registry=registry,
            ),
            invalid=Counter(
                name("invalid"),
                "Enriched records the Parquet schema cannot hold (left out, logged)",
                registry=registry,
            ),
            write_errors=Counter(
                name("write_errors"), "Failed batch writes (retried)", registry=registry
            ),
            write_seconds=Histogram(
                name("write_seconds"),
                "Time to convert and write one partition's batch",
                buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
                registry=registry,
            ),
        )


@dataclass
class Lake:
    """Writes batches of enriched orders by source partition; remembers what each holds."""

    writer: PartitionedParquetWriter
    metrics: LakeMetrics
    #: Highest offset already in the files, per source partition owned right now.
    committed: dict[int, int] = field(default_factory=dict)

    def write_batch(self, partition: int, records: Sequence[tuple[int, bytes | None]]) -> None:
        """Write the ``(offset, value)`` records of one partition not yet in the files.

        Blocking I/O: the agent runs it in a thread.
        """
        started = time.perf_counter()
        committed = self._committed(partition)
        fresh = sorted((r for r in records if r[0] > committed), key=lambda r: r[0])
        self.metrics.replayed.inc(len(records) - len(fresh))
        if not fresh:
            return
        first, last = fresh[0][0], fresh[-1][0]
        rows: list[tuple[int, dict[str, Any]]] = []
        for offset, value in fresh:
            try:
                rows.append((offset, to_row(orjson.loads(value or b""))))
            except (KeyError, TypeError, ValueError) as exc:  # JSONDecodeError is a ValueError
                self._left_out(partition, offset, exc)
        try:
            written = [row for _, row in rows]
            paths = self.writer.write(partition, first, last, written)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            # A row the schema cannot hold fails the batch before any file is written:
            # find it and leave it out, or the batch would fail on every retry.
            written = [row for offset, row in rows if self._fits(partition, offset, row)]
            paths = self.writer.write(partition, first, last, written)
        self._done(partition, last, len(written), paths, started)

    def write_orders(self, partition: int, batch: LakeBatch) -> None:
        """``write_batch`` for the accepted orders of a batch as the batch has them
        (``LakeBatch``), rather than as JSON. Their rows fit the schema by construction
        (``lake_columns.py``), so Arrow refuses none of them.
        """
        started = time.perf_counter()
        committed = self._committed(partition)
        fresh = [offset for offset in batch.offsets if offset > committed]
        self.metrics.replayed.inc(len(batch) - len(fresh))
        if not fresh:
            return
        for offset, exc in batch.left_out:
            if offset > committed:
                self._left_out(partition, offset, exc)
        tables = batch.tables(after=committed)
        paths = self.writer.write_tables(partition, min(fresh), max(fresh), tables)
        written = sum(table.num_rows for table in tables.values())
        self._done(partition, max(fresh), written, paths, started)

    def _committed(self, partition: int) -> int:
        """The highest offset of ``partition`` in the files (read from them the first time)."""
        committed = self.committed.get(partition)
        if committed is None:
            committed = self.writer.recover(partition)
            self.committed[partition] = committed
            log.info("lake: partition %d resumes after offset %d", partition, committed)
        return committed

    def _done(self, partition: int, last: int, rows: int, paths: list[str], started: float) -> None:
        # Forgotten meanwhile (partition revoked): the next owner's files decide.
        if partition in self.committed:
            self.committed[partition] = last
        self.metrics.rows.inc(rows)
        self.metrics.files.inc(len(paths))
        self.metrics.write_seconds.observe(time.perf_counter() - started)

    def _fits(self, partition: int, offset: int, row: dict[str, Any]) -> bool:
        try:
            pa.Table.from_pylist([row], self.writer.schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            self._left_out(partition, offset, exc)
            return False
        return True

    def _left_out(self, partition: int, offset: int, exc: Exception) -> None:
        # Still in orders.enriched for as long as the topic keeps it.
        log.error("lake: partition %d offset %d left out: %r", partition, offset, exc)
        self.metrics.invalid.inc()

    def write(self, partition: int, batch: LakeBatch) -> asyncio.Future[None]:
        """``write_orders`` in a thread, started at once: the caller goes on (with the
        next partition's orders) and awaits the result. A failure is counted and raised.

        The batch that called it is then retried by the agent (streams/common/batches.py:
        backoff with jitter, and it stops when a rebalance takes the partition away),
        never acknowledged unwritten. A retry rewrites the same files with the same bytes.
        """
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(None, self._write_counted, partition, batch)

    def _write_counted(self, partition: int, batch: LakeBatch) -> None:
        try:
            self.write_orders(partition, batch)
        except Exception:
            self.metrics.write_errors.inc()
            raise

    def forget(self, partitions: Iterable[int]) -> None:
        """Drop what is known of partitions this worker no longer owns."""
        for partition in partitions:
            self.committed.pop(partition, None)


def build_lake(
    app: faust.App,
    source_topic: str,
    uri: str,
    endpoint_url: str | None,
    registry: CollectorRegistry,
) -> Lake:
    """The Parquet copy under ``uri``, written by the orders batches themselves.

    Files are named after ``source_topic`` (orders.raw) offsets: the orders agent writes
    a batch's enriched rows before it marks the batch done in its tables, so after a
    crash the rows come again with the same offsets and the files already holding them
    skip them. ``uri`` is ``s3://bucket/prefix`` (``endpoint_url`` for MinIO and the
    like) or a local directory.
    """
    filesystem, root = open_filesystem(uri, endpoint_url)
    writer = PartitionedParquetWriter(filesystem, root, ENRICHED_SCHEMA, partition_of)
    lake = Lake(writer, LakeMetrics.create(registry))

    @app.on_partitions_revoked.connect
    async def forget_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        # Another worker may write the partition meanwhile: rescan it if it comes back.
        lake.forget(tp.partition for tp in revoked if tp.topic == source_topic)

    return lake
