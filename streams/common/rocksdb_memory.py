"""What a worker's RocksDB holds in memory, as RocksDB itself counts it.

``make_app`` bounds each table partition's memtables and block cache (bounded_table);
within those bounds they fill as a worker runs, so a process's RSS grows for a while
whatever the pipeline keeps. ``streams_rocksdb_memory_bytes{table, kind}`` tells that
growth apart from the Python heap's: ``memtables`` (writes not flushed yet), ``block_cache``
(blocks read back from sorted files) and ``table_readers`` (their indexes and filters),
summed over the partitions the worker has open.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import faust
from faust.stores.rocksdb import Store as RocksDBStore
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

#: Label value -> RocksDB property (integer bytes).
PROPERTIES = {
    "memtables": "rocksdb.cur-size-all-mem-tables",
    "block_cache": "rocksdb.block-cache-usage",
    "table_readers": "rocksdb.estimate-table-readers-mem",
}


def rocksdb_memory(app: faust.App) -> dict[tuple[str, str], int]:
    """Bytes per (table, kind) over the open partitions of ``app``'s RocksDB tables."""
    found: dict[tuple[str, str], int] = {}
    for table in list(app.tables.values()):
        store = table.data
        if type(store) is not RocksDBStore:
            continue
        for db in list(store._dbs.values()):
            for kind, name in PROPERTIES.items():
                key = (table.name, kind)
                found[key] = found.get(key, 0) + _property(db, name)
    return found


def _property(db: Any, name: str) -> int:
    try:
        return int(db.property_int_value(name) or 0)
    except Exception:  # a partition closed by a revocation meanwhile
        return 0


class RocksDBMemoryCollector(Collector):
    def __init__(self, app: faust.App) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            "streams_rocksdb_memory_bytes",
            "Memory RocksDB reports for the worker's open table partitions, by table and kind",
            labels=["table", "kind"],
        )
        for (table, kind), value in sorted(rocksdb_memory(self.app).items()):
            gauge.add_metric([table, kind], value)
        yield gauge

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("streams_rocksdb_memory_bytes", "", labels=["table", "kind"])


def register_rocksdb_memory(app: faust.App, registry: CollectorRegistry) -> None:
    registry.register(RocksDBMemoryCollector(app))
