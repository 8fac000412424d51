"""A unit of work's records handed to Kafka as record batches, not one send each.

aiokafka's ``send`` costs ~15 µs per record in Python (serialization checks, partition
lookup, the accumulator, one future each, resolved one by one): measured, it was 18 %
of an orders worker's time, which sends an enriched record and two changelog records
per order. Here the records of each topic partition are appended to aiokafka's
``BatchBuilder`` (the record encoding is compiled) and each full batch is handed over
with ``send_batch``: one future per batch. Kafka stores and acknowledges a batch
whole, so the acknowledgement semantics are those of the records sent one by one.

What stays as it was: each partition's records keep their order (a partition's
batches enter aiokafka's per-partition queue in order; a record sent alone, below,
joins the same queue after them); a record without a partition goes where Kafka's
default partitioner puts its key; the metadata returned has each record's offset (the
batch's base offset plus the record's place in it). Records aiokafka would refuse at
once (larger than ``max_request_size``) and keyless records without a partition
(aiokafka picks a partition at random) go through ``send``, which raises or picks as
before. A producer that is not Faust's aiokafka producer (a test's fake) gets ``send``
for every record.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Any, NamedTuple

from streams.common.partitioning import partition_for

Record = tuple[str, bytes | None, bytes | None, int | None, Any]

#: Room left for a record's framing and headers below ``max_request_size``.
_FRAMING_BYTES = 1024


class SendFailed(RuntimeError):
    """At least one send of a batch was not acknowledged; the first failure is the cause."""


class Sent(NamedTuple):
    """Where Kafka stored one record sent in a batch."""

    topic: str
    partition: int
    offset: int


class _Batch:
    """An open batch of one topic partition and the places of its records."""

    __slots__ = ("builder", "places")

    def __init__(self, builder: Any) -> None:
        self.builder = builder
        self.places: list[int] = []


async def send_all(producer: Any, records: Sequence[Record]) -> list[Any]:
    """Send ``records`` (topic, key, value, partition, headers) and await every
    acknowledgement; the metadata of each record, in ``records``' order. Raises the
    first failure once everything handed over is settled."""
    ensure = getattr(producer, "_ensure_producer", None)
    if ensure is None:
        return await _one_by_one(producer, records)
    sender = _BatchSender(producer, ensure())
    try:
        for place, record in enumerate(records):
            if not sender.append(place, record):
                await sender.add(place, record)
        await sender.submit_all()
    except BaseException:
        await sender.settle()  # what was handed over is never left behind
        raise
    return await sender.results(len(records))


async def _one_by_one(producer: Any, records: Sequence[Record]) -> list[Any]:
    futures: list[Awaitable[Any]] = []
    try:
        for topic, key, value, partition, headers in records:
            futures.append(await producer.send(topic, key, value, partition, None, headers))
    except BaseException:
        await asyncio.gather(*futures, return_exceptions=True)
        raise
    results = await asyncio.gather(*futures, return_exceptions=True)
    _raise_first(results)
    return results


class _BatchSender:
    def __init__(self, producer: Any, aiokafka_producer: Any) -> None:
        self.producer = producer  # Faust's, for the records sent alone
        self.aio = aiokafka_producer
        self.limit = int(aiokafka_producer._max_request_size) - _FRAMING_BYTES
        self.open: dict[tuple[str, int], _Batch] = {}
        self.partitions: dict[str, int] = {}
        #: (future, topic, partition, places): one per batch handed over.
        self.batches: list[tuple[Awaitable[Any], str, int, list[int]]] = []
        #: (future, place): records sent alone.
        self.alone: list[tuple[Awaitable[Any], int]] = []

    def append(self, place: int, record: Record) -> bool:
        """Add ``record`` to its partition's open batch without awaiting anything (the
        common case, no coroutine per record); False if ``add`` must: a topic not yet
        looked up, a record to send alone, a full batch."""
        topic, key, value, partition, headers = record
        if partition is None:
            count = self.partitions.get(topic)
            if key is None or count is None:
                return False
            partition = partition_for(key, count)
        if _size(key, value, headers) > self.limit:
            return False
        batch = self.open.get((topic, partition))
        if batch is None:
            batch = self.open[(topic, partition)] = _Batch(self.aio.create_batch())
        if not _append(batch, key, value, headers):
            return False
        batch.places.append(place)
        return True

    async def add(self, place: int, record: Record) -> None:
        topic, key, value, partition, headers = record
        size = _size(key, value, headers)
        if size > self.limit or (partition is None and key is None):
            await self._alone(place, record, partition)
            return
        if partition is None:
            assert key is not None
            partition = partition_for(key, await self._partition_count(topic))
        batch = self.open.get((topic, partition))
        if batch is None:
            batch = self.open[(topic, partition)] = _Batch(self.aio.create_batch())
        if _append(batch, key, value, headers):
            batch.places.append(place)
            return
        await self._submit(topic, partition)  # full: hand it over, start the next one
        batch = self.open[(topic, partition)] = _Batch(self.aio.create_batch())
        if not _append(batch, key, value, headers):
            raise RuntimeError(f"an empty batch refused a {size}-byte record")
        batch.places.append(place)

    async def _alone(self, place: int, record: Record, partition: int | None) -> None:
        topic, key, value, _partition, headers = record
        # What came before goes first: in its partition, or, where aiokafka will pick
        # the partition, in every partition of the topic.
        for open_topic, open_partition in list(self.open):
            if open_topic == topic and partition in (None, open_partition):
                await self._submit(open_topic, open_partition)
        future = await self.producer.send(topic, key, value, partition, None, headers)
        self.alone.append((future, place))

    async def _partition_count(self, topic: str) -> int:
        count = self.partitions.get(topic)
        if count is None:
            count = self.partitions[topic] = len(await self.aio.partitions_for(topic))
        return count

    async def _submit(self, topic: str, partition: int) -> None:
        batch = self.open.pop((topic, partition))
        future = await self.aio.send_batch(batch.builder, topic, partition=partition)
        self.batches.append((future, topic, partition, batch.places))

    async def submit_all(self) -> None:
        for topic, partition in list(self.open):
            await self._submit(topic, partition)

    async def settle(self) -> None:
        futures = [f for f, *_rest in self.batches] + [f for f, _place in self.alone]
        await asyncio.gather(*futures, return_exceptions=True)

    async def results(self, count: int) -> list[Any]:
        batch_results = await asyncio.gather(
            *(f for f, *_rest in self.batches), return_exceptions=True
        )
        alone_results = await asyncio.gather(*(f for f, _ in self.alone), return_exceptions=True)
        _raise_first([*batch_results, *alone_results])
        sent: list[Any] = [None] * count
        for (_f, topic, partition, places), metadata in zip(
            self.batches, batch_results, strict=True
        ):
            base: int = metadata.offset  # type: ignore[union-attr]  # failures raised above
            for relative, place in enumerate(places):
                sent[place] = Sent(topic, partition, base + relative)
        for (_f, place), metadata in zip(self.alone, alone_results, strict=True):
            sent[place] = metadata
        return sent


def _size(key: bytes | None, value: bytes | None, headers: Any) -> int:
    size = len(key or b"") + len(value or b"")
    if headers:
        size += sum(len(v) for _k, v in headers)
    return size


def _append(batch: _Batch, key: bytes | None, value: bytes | None, headers: Any) -> bool:
    """Whether the record fitted in the batch (aiokafka returns None when it is full)."""
    appended = batch.builder.append(timestamp=None, key=key, value=value, headers=headers or [])
    return appended is not None


def _raise_first(results: Sequence[Any]) -> None:
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        raise SendFailed(f"{len(failed)} of {len(results)} sends failed: {failed[0]!r}") from (
            failed[0]
        )
