"""Component: make_app's RocksDB memory bounds reach the RocksDB a table opens.

Faust passes store options per table (faust/stores/rocksdb.py, RocksDBOptions through
rocksdict here), not per app, so make_app gives every table class them. The tests open
a table's partition the way Faust does and ask RocksDB itself what it was given, and
watch a write buffer of the configured size fill and flush to a sorted file, and the
memory RocksDB reports for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from streams.common.app import make_app
from streams.common.rocksdb_memory import rocksdb_memory
from streams.common.settings import MIB, KafkaSettings, WorkerSettings


def open_partition(tmp_path: Path, env: dict[str, Any], **table: Any) -> Any:
    """Partition 0 of a table of a make_app app, opened as Faust opens it; ``env``: the
    worker's environment."""
    worker = WorkerSettings.model_validate({"STREAMS_DATA_DIR": tmp_path, **env})
    app = make_app("bounds", KafkaSettings(), worker, CollectorRegistry(), partitions=1)
    store = app.Table("t", default=None, partitions=1, key_type=str, **table).data
    return store._db_for_partition(0)


@pytest.fixture
def opened(tmp_path: Path) -> Iterator[list[Any]]:
    dbs: list[Any] = []
    yield dbs
    for db in dbs:
        db.close()


def test_a_table_opens_rocksdb_with_the_workers_bounds(tmp_path: Path, opened: list[Any]) -> None:
    db = open_partition(tmp_path, {})
    opened.append(db)
    assert db.property_int_value("rocksdb.block-cache-capacity") == 8 * MIB
    written = next(tmp_path.rglob("OPTIONS-*")).read_text()
    assert f"  write_buffer_size={4 * MIB}\n" in written
    assert "  max_write_buffer_number=2\n" in written


def test_a_full_write_buffer_is_flushed_to_disk(tmp_path: Path, opened: list[Any]) -> None:
    """With a 1 MiB buffer, 3 MiB of writes leave sorted files and at most two buffers in
    memory (Faust's 64 MiB default would hold them all)."""
    db = open_partition(tmp_path, {"STREAMS_ROCKSDB_WRITE_BUFFER_MB": 1})
    opened.append(db)
    for n in range(12_000):
        db[f"key|{n}".encode()] = bytes(256)
    db.flush_wal()
    assert db.property_int_value("rocksdb.num-files-at-level0") >= 1
    assert db.property_int_value("rocksdb.cur-size-all-mem-tables") <= 2 * MIB + 64 * 1024


def test_a_tables_own_options_win(tmp_path: Path, opened: list[Any]) -> None:
    db = open_partition(tmp_path, {}, options={"block_cache_size": 2 * MIB})
    opened.append(db)
    assert db.property_int_value("rocksdb.block-cache-capacity") == 2 * MIB


def test_the_workers_rocksdb_memory_is_reported_within_its_bounds(
    tmp_path: Path, opened: list[Any]
) -> None:
    """streams_rocksdb_memory_bytes shows writes held in memtables, then blocks read
    back from sorted files in the block cache, never above the bounds."""
    worker = WorkerSettings.model_validate(
        {"STREAMS_DATA_DIR": tmp_path, "STREAMS_ROCKSDB_WRITE_BUFFER_MB": 1}
    )
    registry = CollectorRegistry()
    app = make_app("memory", KafkaSettings(), worker, registry, partitions=2)
    store = app.Table("t", default=None, partitions=2, key_type=str).data
    dbs = [store._db_for_partition(p) for p in (0, 1)]
    opened.extend(dbs)
    for n in range(6_000):
        dbs[n % 2][f"key|{n}".encode()] = bytes(256)
    held = rocksdb_memory(app)
    assert held[("t", "memtables")] > 256 * 3_000
    for db in dbs:
        db.flush()
    before_reads = rocksdb_memory(app)[("t", "block_cache")]
    for n in range(6_000):
        assert dbs[n % 2][f"key|{n}".encode()] == bytes(256)
    held = rocksdb_memory(app)
    assert before_reads + 256 * 6_000 < held[("t", "block_cache")] <= 2 * 8 * MIB
    assert held[("t", "memtables")] <= 2 * 2 * MIB
    scraped = registry.get_sample_value(
        "streams_rocksdb_memory_bytes", {"table": "t", "kind": "block_cache"}
    )
    assert scraped == held[("t", "block_cache")]
