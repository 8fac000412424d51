"""A unit of work's sends, handed to Kafka as record batches (send_batches.py), land
as if sent one by one: each where Kafka's partitioner puts it, each partition in order,
with the offsets and headers reported."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from typing import Any

import faust
import pytest
from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.partitioner import DefaultPartitioner

from streams.common.broker import EmbeddedBroker
from streams.common.sends import Confirmed, caused_by_a_record, causes
from streams.common.topic_reader import read_topic
from streams.common.topics import TopicSpec, declare_topics

KEYED, EXPLICIT = "sends.keyed", "sends.explicit"

Record = tuple[str, bytes | None, bytes | None, int | None, list[tuple[str, bytes]] | None]


async def started_producer(broker: EmbeddedBroker, max_batch_bytes: int) -> faust.App:
    await declare_topics(broker.bootstrap, {KEYED: TopicSpec(3), EXPLICIT: TopicSpec(2)})
    # Small batches: each partition's records span several batches.
    app = faust.App(
        "send-batches-test",
        broker=f"kafka://{broker.bootstrap}",
        producer_max_batch_size=max_batch_bytes,
    )
    await app.producer.start()
    return app


def mixed_records() -> list[Record]:
    draw = random.Random(14)
    records: list[Record] = []
    for i in range(1500):
        choice = draw.random()
        if choice < 0.6:  # keyed, partitioned by Kafka's rule
            records.append((KEYED, b"k%d" % draw.randrange(200), b"v%d" % i, None, None))
        elif choice < 0.9:  # an explicit partition, headers
            records.append(
                (EXPLICIT, b"e%d" % i, b"x" * draw.randrange(0, 900), i % 2, [("n", b"%d" % i)])
            )
        elif choice < 0.97:  # a tombstone
            records.append((KEYED, b"k%d" % draw.randrange(200), None, None, None))
        else:  # keyless: aiokafka picks the partition
            records.append((KEYED, None, b"loose%d" % i, None, None))
    return records


async def send_and_confirm(broker: EmbeddedBroker, records: list[Record]) -> list[Any]:
    app = await started_producer(broker, max_batch_bytes=4096)
    try:
        sends = Confirmed(app.producer)
        for topic, key, value, partition, headers in records:
            await sends.send(topic, key, value, partition=partition, headers=headers)
        return await sends.confirm()
    finally:
        await app.producer.stop()


def test_batched_sends_land_where_and_in_the_order_sent_one_by_one_would(
    broker: EmbeddedBroker,
) -> None:
    records = mixed_records()
    acknowledged = asyncio.run(send_and_confirm(broker, records))

    stored = {
        (topic, r.partition, r.offset): r
        for topic in (KEYED, EXPLICIT)
        for r in read_topic(broker.bootstrap, topic)
    }
    assert len(stored) == len(records) == len(acknowledged)
    kafka_rule = DefaultPartitioner()
    sent_order: dict[tuple[str, int], list[int]] = defaultdict(list)
    for (topic, key, value, partition, headers), ack in zip(records, acknowledged, strict=True):
        found = stored[(topic, ack.partition, ack.offset)]  # the offset reported is the record's
        assert (found.key, found.value) == (key, value)
        assert found.headers == {name: v.decode() for name, v in headers or []}
        if partition is not None:
            assert ack.partition == partition
        elif key is not None:
            assert ack.partition == kafka_rule(key, [0, 1, 2], [0, 1, 2])
        sent_order[(topic, ack.partition)].append(ack.offset)
    for offsets in sent_order.values():
        assert offsets == sorted(offsets)  # each partition in send order


def test_a_record_over_the_size_limit_fails_the_unit_as_the_records_fault(
    broker: EmbeddedBroker,
) -> None:
    """Refused at once, as a send of its own was: the batch is then handled one record
    at a time and that record dead-lettered (batches.py), never retried for ever; the
    records handed over before it are still delivered (a retry's are replays)."""
    records: list[Record] = [
        (EXPLICIT, b"small", b"v", 0, None),
        (EXPLICIT, b"huge", b"x" * 2_000_000, 0, None),
    ]
    with pytest.raises(Exception) as refused:
        asyncio.run(send_and_confirm(broker, records))
    assert caused_by_a_record(refused.value)
    assert any(isinstance(cause, MessageSizeTooLargeError) for cause in causes(refused.value))
