"""The set of ingested objects, kept in Kafka, and which reader ingests which object.

``flowlogs.objects`` holds one record per object read (key: the object's URI; value:
what came of it), written after the object's chunks and dead letters were
acknowledged. Readers share the topic's partitions through a consumer group (one per source): an
object belongs to one partition (:func:`ledger_partition`: its flow log's, or the one
Kafka's default partitioner gives its URI), its record is sent there, and only the
reader assigned that partition ingests it. A reader handed a partition reads it
from the beginning before it ingests anything of it, so an object is not read again
after a restart, nor by a second reader.

Records of AWS-named objects that an earlier version placed by URI are moved to their
flow log's partition by the reader that loads them (a copy there, a tombstone where
they were): upgrade with one reader running, so that no second reader reads such an
object again before its record has moved.

What is left: a reader that dies between sending an object's chunks and its ledger
record, or that still finishes an object after losing its partition, sends chunks a
second time; the workers keep the first copy of each chunk (dedupe.py), so nothing is
counted twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from streams.common.partitioning import partition_for
from streams.flowlogs.source import flow_log_of

log = logging.getLogger(__name__)

LEDGER = "flowlogs.objects"


def group_of(source: str) -> str:
    """The readers' consumer group: one per source, so that readers of different
    sources never split each other's objects between them."""
    return "flowlogs-readers-" + hashlib.sha256(source.encode()).hexdigest()[:12]


def ledger_partition(uri: str, partitions: int) -> int:
    """The partition of ``uri``'s ledger record, hence its reader.

    Every object of one flow log (AWS's key layout names account, region and flow-log
    id) shares the partition of that name: one reader reads them all, oldest delivery
    first, so the VPC's event time advances as AWS delivered it. Two readers splitting
    a flow log's objects, each at its own pace, would push the VPC's clock ahead of the
    slower one and make its flows late for detection. Any other object goes where
    Kafka's default partitioner puts its URI (the record's key).
    """
    return partition_for((flow_log_of(uri) or uri).encode(), partitions)


class Ledger(ConsumerRebalanceListener):  # type: ignore[misc]
    """This reader's share of the ledger: what it owns and what of it is done."""

    def __init__(self, bootstrap: str, partitions: int, group: str) -> None:
        self.bootstrap = bootstrap
        self.group = group
        self.partitions = partitions
        self._consumer: AIOKafkaConsumer | None = None
        self.done: dict[str, Any] = {}
        self.owned: set[int] = set()
        self._loading: dict[int, int] = {}  # partition -> end offset still to reach
        self.generation = 0
        #: Records an earlier version placed by URI, not by flow log: uri -> (partition,
        #: value), to move to their partition (see reader.Reader._move_misplaced).
        self.misplaced: dict[str, tuple[int, bytes]] = {}
        #: Objects being read: a rebalance waits for them (see on_partitions_revoked).
        self.in_flight: set[asyncio.Task[None]] = set()

    @property
    def consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("the ledger is not started")
        return self._consumer

    async def start(self) -> None:
        # Created here: aiokafka binds a consumer to the running event loop.
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=200,
        )
        await self._consumer.start()
        self._consumer.subscribe([LEDGER], listener=self)

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    # ---- ConsumerRebalanceListener ---------------------------------------------------

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # The rebalance waits for this: the objects being read finish and their ledger
        # records are acknowledged before another reader is handed their partitions and
        # reads them to their end, so it does not read those objects again.
        self.owned.clear()
        if self.in_flight:
            await asyncio.wait(self.in_flight)
        self._loading.clear()
        self.generation += 1

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        parts = [tp for tp in assigned if tp.topic == LEDGER]
        self.done = {}
        self.misplaced = {}
        self.generation += 1
        if not parts:
            return
        await self.consumer.seek_to_beginning(*parts)
        ends = await self.consumer.end_offsets(parts)
        self._loading = {tp.partition: ends[tp] for tp in parts}
        self.owned = {tp.partition for tp in parts}
        log.info("flowlogs reader: owns ledger partitions %s", sorted(self.owned))

    # ---- reading ---------------------------------------------------------------------

    async def poll(self, timeout_ms: int = 200) -> None:
        """Read what is new in the owned partitions (and take part in rebalances)."""
        batches = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=10_000)
        for records in batches.values():
            for record in records:
                if record.key is None:
                    continue
                uri = record.key.decode(errors="replace")
                if record.partition != ledger_partition(uri, self.partitions):
                    if record.value is None:
                        continue  # the tombstone of a move: the record is elsewhere now
                    self.misplaced[uri] = (record.partition, record.value)
                try:
                    self.done[uri] = orjson.loads(record.value) if record.value else {}
                except orjson.JSONDecodeError:
                    self.done[uri] = {"status": "unreadable ledger record"}
        for partition, end in list(self._loading.items()):
            tp = TopicPartition(LEDGER, partition)
            try:
                position = await self.consumer.position(tp)
            except Exception:  # no longer assigned: a rebalance is under way
                return
            if position >= end:
                del self._loading[partition]

    @property
    def ready(self) -> bool:
        """Whether every owned partition was read to where it ended when assigned."""
        return bool(self.owned) and not self._loading

    def owns(self, uri: str) -> bool:
        return ledger_partition(uri, self.partitions) in self.owned

    def is_done(self, uri: str) -> bool:
        return uri in self.done

    async def settle(self, seconds: float) -> None:
        """Poll until ready or ``seconds`` pass (a rebalance can take seconds)."""
        deadline = asyncio.get_running_loop().time() + seconds
        while not self.ready and asyncio.get_running_loop().time() < deadline:
            await self.poll()
