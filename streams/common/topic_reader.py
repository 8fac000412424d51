"""Read a whole topic, up to its current end: for tests, benchmarks and operators' checks.

Tests compare what a pipeline wrote with what it should have written, benchmarks read
back their results and Kafka timestamps, and the versus check reads a changelog: each
needs every record a topic holds at one moment, partition by partition, in offset
order, and then to stop. A consumer group is no help there (nothing to commit, and
it would wait for new records), so this assigns every partition, seeks to the
beginning and reads each one to the end offset it had when the read began.

The end is only right on the embedded broker with the end-offset correction
(``streams/common/faust_fixes/end_offsets.py``): the broker under-reports a partition's
end, and the read would stop short of the last records. The read installs the
correction for its own duration and puts the previous state back afterwards; on a
real Kafka it costs one extra Fetch per leader and changes nothing.

It runs its own event loop (``asyncio.run``): call it from synchronous code only.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.common.faust_fixes import end_offset_correction


@dataclass(frozen=True)
class TopicRecord:
    """One record as read: where it is, its Kafka timestamp (ms), key, value (None: a
    tombstone) and headers, their values decoded as UTF-8 (invalid bytes replaced)."""

    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, str]


def read_topic(bootstrap: str, topic: str) -> list[TopicRecord]:
    """Every record of ``topic`` up to its current end, in partition and offset order
    (``[]`` when the topic does not exist or is empty)."""
    with end_offset_correction():
        return asyncio.run(_read(bootstrap, topic))


async def _read(bootstrap: str, topic: str) -> list[TopicRecord]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        # A topic created since the consumer started may be missing from its metadata.
        await consumer._client.force_metadata_update()
        found = sorted(consumer.partitions_for_topic(topic) or [])
        partitions = [TopicPartition(topic, p) for p in found]
        if not partitions:
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        out: list[TopicRecord] = []
        for tp in partitions:
            while await consumer.position(tp) < ends[tp]:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                out.extend(
                    TopicRecord(
                        tp.partition,
                        r.offset,
                        r.timestamp,
                        r.key,
                        r.value,
                        {k: v.decode(errors="replace") for k, v in r.headers},
                    )
                    for r in batch.get(tp, [])
                    if r.offset < ends[tp]
                )
        return out
    finally:
        await consumer.stop()
