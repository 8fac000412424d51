"""Where each series lives and whether this worker may answer for it.

A series lives in one partition, ``partition_for(id)`` (Kafka's default partitioner on
the id's bytes): its write commands are sent to that partition of ``timeseries.writes``
and every key of it (meta, chunks, answers) is in the same partition of the table, whose
changelog is co-partitioned with the writes topic. So one function decides the partition
everywhere, and no serializer can route a key elsewhere (the raw-vs-json trap of Faust's
``table_route``).

This worker answers for a partition only while it is the partition's active owner and
no rebalance or recovery is under way (``serving``): a read never sees a table being
restored, and two workers never both answer for one series.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import faust
from mode.utils.objects import cached_property
from yarl import URL

from streams.common.partitioning import owns_loaded, partition_for
from streams.common.table_io import RocksPartition
from streams.common.web import address
from streams.timeseries.answers import Answers
from streams.timeseries.metrics import Metrics
from streams.timeseries.settings import TimeSeriesSettings


@dataclass
class TimeSeries:
    """The running API's parts: the app, its settings, the table, the writes topic."""

    app: faust.App
    settings: TimeSeriesSettings
    table: Any
    writes: Any
    metrics: Metrics
    answers: Answers
    #: Held by the agent's batches and the expiry timer: one writer per partition at once.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def partitions(self) -> int:
        return self.settings.partitions

    def partition(self, series_id: str) -> int:
        return partition_for(series_id.encode(), self.partitions)

    @cached_property
    def changelog(self) -> str:
        return str(self.table.changelog_topic.get_topic_name())

    def owners(self) -> dict[int, URL]:
        """The owner of each assigned partition, as the group's last assignment says."""
        found: dict[int, URL] = {}
        for host, topics in self.app.assignor.table_metadata(self.changelog).items():
            for partition in topics.get(self.changelog, ()):
                found[partition] = URL(host)
        return found

    def owner(self, partition: int) -> URL:
        """The URL of the worker owning ``partition``; KeyError when none is known."""
        return self.owners()[partition]

    def owner_of(self, series_id: str) -> URL:
        return self.owner(self.partition(series_id))

    def is_here(self, url: URL) -> bool:
        return address(url) == address(URL(str(self.app.conf.canonical_url)))

    def serving(self, partition: int) -> bool:
        """True while this worker owns ``partition`` and its table is fully loaded."""
        return owns_loaded(self.app, self.writes.get_topic_name(), partition)

    def local(self, partition: int) -> RocksPartition | None:
        """The table's ``partition`` to read, or None when this worker may not answer."""
        return RocksPartition(self.table, partition) if self.serving(partition) else None
