"""dlq-replay re-sends each dead letter once, however many copies of it the topic holds
(a batch given up at a rebalance after its letters were acknowledged sends them again)."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer

from streams.common.broker import EmbeddedBroker
from streams.common.deadletter import (
    LETTER_ID,
    REASON,
    SOURCE_OFFSET,
    SOURCE_PARTITION,
    SOURCE_TOPIC,
    replay_dead_letters,
)
from streams.common.topic_reader import read_topic
from streams.common.topics import TopicSpec, declare_topics

SOURCE, DLQ = "replay.source", "replay.dlq"


def letter(offset: int) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    headers = {
        LETTER_ID: f"{SOURCE}:0:{offset}",
        REASON: "unknown_product",
        SOURCE_TOPIC: SOURCE,
        SOURCE_PARTITION: "0",
        SOURCE_OFFSET: str(offset),
    }
    return b"c%d" % offset, b"order %d" % offset, [(k, v.encode()) for k, v in headers.items()]


async def write_letters(bootstrap: str, offsets: list[int]) -> None:
    await declare_topics(bootstrap, {SOURCE: TopicSpec(1), DLQ: TopicSpec(2)})
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for offset in offsets:
            key, value, headers = letter(offset)
            # Copies land in either partition: the replay must see them as one letter.
            await producer.send_and_wait(DLQ, value, key=key, partition=offset % 2, headers=headers)
            if offset in (3, 8):
                await producer.send_and_wait(
                    DLQ, value, key=key, partition=(offset + 1) % 2, headers=headers
                )
    finally:
        await producer.stop()


def test_each_letter_is_replayed_once_whatever_its_copies(broker: EmbeddedBroker) -> None:
    asyncio.run(write_letters(broker.bootstrap, [1, 3, 3, 5, 8]))
    replayed = asyncio.run(replay_dead_letters(broker.bootstrap, DLQ))
    sent = sorted(r.value or b"" for r in read_topic(broker.bootstrap, SOURCE))
    assert sent == [b"order 1", b"order 3", b"order 5", b"order 8"]
    assert replayed == 4
