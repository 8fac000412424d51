"""Dead letters: the original bytes of a rejected record, with why and where it came from.

A dead letter keeps the source record's key and value untouched, so replaying it is a
plain re-send; the reason and origin travel as Kafka headers (the convention Kafka
Connect uses), readable with any Kafka tool.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.common.sends import Confirmed

log = logging.getLogger(__name__)

REASON = "dlq.reason"
DETAIL = "dlq.detail"
SOURCE_TOPIC = "dlq.topic"
SOURCE_PARTITION = "dlq.partition"
SOURCE_OFFSET = "dlq.offset"
SOURCE_OBJECT = "dlq.object"
SOURCE_LINE = "dlq.line"
LETTER_ID = "dlq.id"
REPLAYED_FROM = "dlq.replayed_from"

MAX_DETAIL_BYTES = 2048
#: Largest value a dead letter carries (Kafka's default limit is 1 MB per record).
MAX_VALUE_BYTES = 900_000


@dataclass(frozen=True)
class Source:
    """Where a rejected record came from: a Kafka record (topic, partition, offset) or
    a line of a stored object (``object`` is its URI, e.g. ``s3://bucket/key``)."""

    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    object: str | None = None
    line: int | None = None

    @classmethod
    def of(cls, message: Any) -> Source:
        """The provenance of a Kafka message (Faust's or aiokafka's record)."""
        return cls(topic=message.topic, partition=message.partition, offset=message.offset)

    @property
    def id(self) -> str:
        if self.object is not None:
            return f"{self.object}:{self.line}" if self.line is not None else self.object
        return f"{self.topic}:{self.partition}:{self.offset}"

    def headers(self) -> list[tuple[str, bytes]]:
        fields = (
            (SOURCE_TOPIC, self.topic),
            (SOURCE_PARTITION, self.partition),
            (SOURCE_OFFSET, self.offset),
            (SOURCE_OBJECT, self.object),
            (SOURCE_LINE, self.line),
        )
        return [(name, str(value).encode()) for name, value in fields if value is not None]


@dataclass(frozen=True)
class DeadLetter:
    """A rejected record and its reason; ``reason`` is a short label, ``detail`` is prose."""

    reason: str
    detail: str
    source: Source
    key: bytes | None
    value: bytes | None

    @property
    def id(self) -> str:
        """Deterministic: the same source record always makes the same dead letter id."""
        return self.source.id

    def headers(self) -> list[tuple[str, bytes]]:
        return [
            (LETTER_ID, self.id.encode()),
            (REASON, self.reason.encode()),
            (DETAIL, self.detail.encode()[:MAX_DETAIL_BYTES]),
            *self.source.headers(),
        ]


async def send_dead_letter(sends: Confirmed, dlq_topic: str, letter: DeadLetter) -> None:
    """Send ``letter`` (acknowledged with the rest of ``sends``) with the source key, so
    a replay lands in the same partition as the original.

    A value that would take the letter past Kafka's default 1 MB record limit (the
    headers add to it) is left out and the detail says so: the dead letter must be
    deliverable, or the record it stands for could never be settled.
    """
    value, detail = letter.value, letter.detail
    if value is not None and len(value) > MAX_VALUE_BYTES:
        detail = f"{detail} (value of {len(value)} bytes left out: over the record limit)"
        letter = replace(letter, value=None, detail=detail)
    await sends.send(dlq_topic, letter.key, letter.value, headers=letter.headers())


async def dead_letter(
    sends: Confirmed,
    dlq_topic: str,
    message: Any,
    reason: str,
    detail: str,
    *,
    value: bytes | None = None,
    counter: Any = None,
) -> None:
    """Dead-letter a Kafka ``message`` (or ``value``, the part of it rejected), counting
    it by reason in ``counter`` (a Prometheus counter with a ``reason`` label)."""
    letter = DeadLetter(
        reason,
        detail,
        Source.of(message),
        message.key,
        message.value if value is None else value,
    )
    await send_dead_letter(sends, dlq_topic, letter)
    if counter is not None:
        counter.labels(reason).inc()


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
    this replay started from, so it always terminates. A letter's copies (dead letters
    are sent at least once: a batch given up at a rebalance, or a worker killed, after
    its letters were acknowledged sends them again, with the same ``dlq.id``) are
    re-sent once.
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
    acks: list[Any] = []
    sent_ids: set[str] = set()
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
                    letter_id = meta.get(LETTER_ID)
                    if letter_id is not None and letter_id in sent_ids:
                        continue  # another copy of a letter re-sent already
                    if SOURCE_TOPIC not in meta:
                        # From a stored object: it is read again from there, not re-sent.
                        log.warning("dead letter %s has no source topic", meta.get(LETTER_ID))
                        continue
                    ack = await producer.send(
                        meta[SOURCE_TOPIC],
                        key=record.key,
                        value=record.value,
                        headers=[(REPLAYED_FROM, f"{tp.partition}:{record.offset}".encode())],
                    )
                    acks.append(ack)
                    replayed += 1
                    if letter_id is not None:
                        sent_ids.add(letter_id)
        # Progress is committed only once every re-sent record is acknowledged: a
        # failed send raises here, and the next replay sends again (deduplicated).
        await asyncio.gather(*acks)
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
