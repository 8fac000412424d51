"""Dead letters: the original bytes of a rejected record, with why and where it came from.

A dead letter keeps the source record's key and value untouched, so replaying it is a
plain re-send; the reason and origin travel as Kafka headers (the convention Kafka
Connect uses), readable with any Kafka tool.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

log = logging.getLogger(__name__)

REASON = "dlq.reason"
DETAIL = "dlq.detail"
SOURCE_TOPIC = "dlq.topic"
SOURCE_PARTITION = "dlq.partition"
SOURCE_OFFSET = "dlq.offset"
LETTER_ID = "dlq.id"
REPLAYED_FROM = "dlq.replayed_from"

MAX_DETAIL_BYTES = 2048


@dataclass(frozen=True)
class DeadLetter:
    """A rejected record and its reason; ``reason`` is a short label, ``detail`` is prose."""

    reason: str
    detail: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None

    @property
    def id(self) -> str:
        """Deterministic: the same source record always makes the same dead letter id."""
        return f"{self.topic}:{self.partition}:{self.offset}"

    def headers(self) -> list[tuple[str, bytes]]:
        return [
            (LETTER_ID, self.id.encode()),
            (REASON, self.reason.encode()),
            (DETAIL, self.detail.encode()[:MAX_DETAIL_BYTES]),
            (SOURCE_TOPIC, self.topic.encode()),
            (SOURCE_PARTITION, str(self.partition).encode()),
            (SOURCE_OFFSET, str(self.offset).encode()),
        ]


async def send_dead_letter(producer: Any, dlq_topic: str, letter: DeadLetter) -> None:
    """Send ``letter`` through a Faust producer: the source key, so a replay partitions alike."""
    await producer.send(dlq_topic, letter.key, letter.value, None, None, letter.headers())


def header_map(headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...]) -> dict[str, str]:
    return {name: value.decode(errors="replace") for name, value in headers}


async def replay_dead_letters(
    bootstrap: str,
    dlq_topic: str,
    *,
    reasons: set[str] | None = None,
    group_id: str | None = None,
) -> int:
    """Re-send dead letters to their source topics; returns how many were replayed.

    Progress is committed under ``group_id`` so a second replay does not send the same
    letters again. Records that fail again come back as new dead letters after the end
    this replay started from, so it always terminates.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group_id or f"{dlq_topic}.replay",
        enable_auto_commit=False,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await consumer.start()
    await producer.start()
    replayed = 0
    try:
        partitions = [TopicPartition(dlq_topic, p) for p in await _partitions(consumer, dlq_topic)]
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, await consumer.committed(tp) or 0)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            while await consumer.position(tp) < ends[tp]:
                batch = await consumer.getmany(tp, timeout_ms=500, max_records=1000)
                for record in batch.get(tp, []):
                    if record.offset >= ends[tp]:
                        break
                    meta = header_map(record.headers)
                    if reasons and meta.get(REASON) not in reasons:
                        continue
                    await producer.send(
                        meta[SOURCE_TOPIC],
                        key=record.key,
                        value=record.value,
                        headers=[(REPLAYED_FROM, f"{tp.partition}:{record.offset}".encode())],
                    )
                    replayed += 1
        await producer.flush()
        await consumer.commit(dict(ends))
    finally:
        await producer.stop()
        await consumer.stop()
    log.info("replayed %d dead letters from %s", replayed, dlq_topic)
    return replayed


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[int]:
    found = consumer.partitions_for_topic(topic)
    if not found:
        await consumer._client.force_metadata_update()
        found = consumer.partitions_for_topic(topic) or set()
    return sorted(found)
