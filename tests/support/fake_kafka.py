"""A RocksDB store and a producer as the batch handlers use them, for component tests:
real RocksDB files, and sends whose fate a rule decides."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from aiokafka.errors import KafkaTimeoutError
from faust.exceptions import ProducerSendError
from rocksdict import Options, Rdict


def rocks_table(store: Store, name: str, changelog: str) -> Any:
    """A Faust table as RocksPartition sees it: its store and its changelog's name."""
    return SimpleNamespace(
        name=name, data=store, changelog_topic=SimpleNamespace(get_topic_name=lambda: changelog)
    )


class Store:
    """Faust's RocksDB store as RocksPartition uses it: one real RocksDB per partition."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dbs: dict[int, Rdict] = {}
        self.persisted: dict[int, int] = {}

    def _db_for_partition(self, partition: int) -> Rdict:
        if partition not in self.dbs:
            self.dbs[partition] = Rdict(str(self.root / f"p{partition}"), Options(raw_mode=True))
        return self.dbs[partition]

    def set_persisted_offset(self, tp: Any, offset: int) -> None:
        self.persisted[tp.partition] = offset

    def keys(self) -> int:
        return sum(len(list(db.keys())) for db in self.dbs.values())


Rule = Callable[[str, bytes | None, bytes | None, int], BaseException | str | None]


class Producer:
    """Each send asks ``rule(topic, key, value, n)``: None delivers, an exception raised
    at once, or "later" fails the future. Delivered records are kept per topic."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.n = 0
        self.delivered: dict[str, list[tuple[bytes | None, bytes | None, Any]]] = {}
        self.partitions: dict[str, list[int | None]] = {}

    async def send(
        self, topic: str, key: Any, value: Any, partition: Any, _ts: Any, headers: Any
    ) -> asyncio.Future[Any]:
        self.n += 1
        verdict = self.rule(topic, key, value, self.n)
        if isinstance(verdict, BaseException):
            raise ProducerSendError("Error while sending") from verdict
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if verdict == "later":
            future.set_exception(KafkaTimeoutError())
        else:
            sent = self.delivered.setdefault(topic, [])
            sent.append((key, value, headers))
            self.partitions.setdefault(topic, []).append(partition)
            future.set_result(SimpleNamespace(offset=len(sent) - 1))
        return future
