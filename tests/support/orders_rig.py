"""The production orders batch handler and runner over a real RocksDB and a fake
producer whose sends fail as each scenario says (tests/support/fake_kafka.py): the rig
of the component tests of confirmed batches and replays."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from prometheus_client import CollectorRegistry

from streams.common.batches import BatchRunner, Retry
from streams.orders.batch import handle_batch, reject
from streams.orders.metrics import OrdersMetrics
from streams.orders.pipeline import OrdersPipeline
from streams.orders.settings import OrdersSettings
from tests.support.fake_kafka import Producer, Store
from tests.support.messages import FakeMessage
from tests.unit.factories import bundled_catalog

PARTITIONS = 4
CHANGELOG = "orders-aggregates-changelog"
NOW_S = 1_754_049_600.0  # 2025-08-01T12:00:00Z


def message(partition: int, offset: int, value: bytes, key: bytes) -> Any:
    return FakeMessage(
        topic="orders.raw", partition=partition, offset=offset, key=key, value=value,
        timestamp=NOW_S,
    )  # fmt: skip


@dataclass
class Rig:
    """The production batch handler and runner over a real RocksDB and a fake producer;
    ``on_wait`` runs at each of the runner's waits (give ``rebalance`` to end a batch)."""

    store: Store
    producer: Producer
    on_wait: Callable[[Rig], None] = lambda _rig: None
    app: Any = None
    metrics: Any = None
    catalog: dict[str, Any] = field(default_factory=bundled_catalog)

    def run(self, events: list[Any]) -> bool:
        table = SimpleNamespace(
            name="aggregates",
            data=self.store,
            changelog_topic=SimpleNamespace(get_topic_name=lambda: CHANGELOG),
        )
        self.app = SimpleNamespace(producer=self.producer, rebalancing_count=0)
        settings = OrdersSettings(partitions=PARTITIONS, parquet_uri="")
        self.metrics = OrdersMetrics.create(CollectorRegistry())
        pipeline = OrdersPipeline(
            self.app, settings, settings.rules(), self.metrics,
            mirror=None,  # type: ignore[arg-type]
            catalog=self.catalog, channels=settings.known_channels(),
        )  # fmt: skip

        async def sleep(_seconds: float) -> None:
            self.on_wait(self)

        runner = BatchRunner(
            self.app,
            "test",
            lambda batch: handle_batch(pipeline, table, batch),
            lambda event, error: reject(pipeline, table, event, error),
            self.metrics.batch_failures,
            retry=Retry(attempts=2),
            sleep=sleep,
        )
        return asyncio.run(runner.run(events))


def rebalance(rig: Rig) -> None:
    """The partitions move on: the batch is given up."""
    rig.app.rebalancing_count += 1


def restore(tmp_path: Path, producer: Producer) -> Store:
    """What a new owner's tables hold once it restored the changelog ``producer`` delivered."""
    restored = Store(tmp_path)
    delivered = zip(producer.delivered[CHANGELOG], producer.partitions[CHANGELOG], strict=True)
    for (key, value, _headers), partition in delivered:
        assert key is not None and partition is not None
        db = restored._db_for_partition(partition)
        if value is None:
            del db[key]
        else:
            db[key] = value
    return restored
