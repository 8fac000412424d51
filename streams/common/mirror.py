"""A complete, read-only copy of some topics on every worker (our global table).

Faust's GlobalTable misses records when several workers run (faust-streaming issue
#283, still open), and web views must answer correctly from any worker. So each
worker runs one plain consumer, outside the consumer group, assigned every partition
of the mirrored topics from the beginning; it keeps the newest value per key.
Tables' changelog topics are mirrored this way, which makes every partition's table
state readable on every worker without a second copy of the data in Kafka.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from mode import Service

log = logging.getLogger(__name__)

Decoder = Callable[[bytes], Any]


def text_or_json_key(raw: bytes | None) -> Any:
    """Faust's json key serializer writes ``"k"``; producers write plain ``k``."""
    if not raw:
        return None
    return orjson.loads(raw) if raw[:1] in b'"[{' else raw.decode()


class TopicMirror(Service):
    """Mirror ``topics`` into ``self.data[topic][key] = value`` (deletes on tombstones)."""

    def __init__(
        self,
        bootstrap: str,
        topics: Iterable[str],
        *,
        decode_key: Decoder = text_or_json_key,
        decode_value: Decoder = orjson.loads,
        keep: Callable[[str, Any], bool] | None = None,
        skip_raw: Mapping[str, tuple[bytes, ...]] | None = None,
        unstored: Iterable[str] = (),
        failures: Any = None,
        newest: Mapping[str, int] | None = None,
        **kwargs: Any,
    ) -> None:
        self.bootstrap = bootstrap
        self.topics = list(topics)
        self.decode_key = decode_key
        self.decode_value = decode_value
        self.keep = keep
        # Per topic, prefixes of raw keys passed over before anything is decoded: a
        # topic whose records are mostly of no interest costs little to read through.
        self.skip_raw = dict(skip_raw or {})
        # Topics only passed to listeners (an ever-growing stream, such as alerts).
        self.unstored = set(unstored)
        # Topics of which only the newest N keys are kept: a stream of distinct ids
        # (alerts) would otherwise grow every worker's memory for ever.
        self.newest = dict(newest or {})
        self.data: dict[str, dict[Any, Any]] = {
            topic: {} for topic in self.topics if topic not in self.unstored
        }
        self.listeners: list[Callable[[str, Any, Any], None]] = []
        # A listener that raises must not kill the mirror (and with it the worker):
        # counted here (a ``task`` labelled counter) and logged, the record skipped.
        self.failures = failures
        self._consumer: AIOKafkaConsumer | None = None
        self._assigned = asyncio.Event()
        self._progress = asyncio.Event()
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=100,
        )
        await self._consumer.start()

    async def on_stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def _assign_when_topics_exist(self, consumer: AIOKafkaConsumer) -> None:
        # The app declares these topics when its worker starts, maybe after we do.
        while not self.should_stop:
            parts: list[TopicPartition] = []
            for topic in self.topics:
                found = consumer.partitions_for_topic(topic)
                if not found:
                    break
                parts.extend(TopicPartition(topic, p) for p in sorted(found))
            else:
                consumer.assign(parts)
                await consumer.seek_to_beginning(*parts)
                self._assigned.set()
                return
            await consumer._client.force_metadata_update()
            await asyncio.sleep(0.5)

    @Service.task
    async def _consume(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        await self._assign_when_topics_exist(consumer)
        while not self.should_stop:
            batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            for tp, records in batches.items():
                self._apply(tp.topic, records)
            self._progress.set()

    def _apply(self, topic: str, records: Iterable[Any]) -> None:
        table = self.data.get(topic)
        keep = self.keep
        skip = self.skip_raw.get(topic)
        for record in records:
            if skip is not None and record.key is not None and record.key.startswith(skip):
                continue
            try:
                key = self.decode_key(record.key)
                if keep is not None and not keep(topic, key):
                    continue
                value = None if record.value is None else self.decode_value(record.value)
            except ValueError:
                log.warning("mirror: undecodable record %s@%s", topic, record.offset)
                continue
            if table is not None and value is None:
                table.pop(key, None)
            elif table is not None:
                table.pop(key, None)  # a key written again counts as new
                table[key] = value
                limit = self.newest.get(topic)
                if limit is not None and len(table) > limit:
                    del table[next(iter(table))]
            for listener in self.listeners:
                try:
                    listener(topic, key, value)
                except Exception:
                    log.exception("mirror: a listener failed on %s@%s", topic, record.offset)
                    if self.failures is not None:
                        self.failures.labels("mirror").inc()

    async def caught_up(self) -> None:
        """Wait until every record that existed when this was called has been applied.

        The consumer's position, not the offset of the last record seen, says how far
        the mirror has read: on a real Kafka, retention or compaction can leave the
        last offsets of a partition without records (or a partition empty), and no
        record would ever reach its end. Records are applied in the same step as
        getmany returns them, so a position at the end means they were applied.
        """
        await self._assigned.wait()
        consumer = self._consumer
        assert consumer is not None
        ends = await consumer.end_offsets(list(consumer.assignment()))
        while True:
            positions = {tp: await consumer.position(tp) for tp in ends}
            if all(positions[tp] >= end for tp, end in ends.items()):
                return
            self._progress.clear()
            await self._progress.wait()
