"""Corrections of Faust 0.15.3 around rebalances: no record lost, none committed unread.

Found by the telemetry rebalance tests (a worker joining while readings flow, a killed
worker replaced), which lost readings before these corrections; installed by
``make_app`` for every pipeline.

1. **Records in offset order** (``delivery_order.py`` explains the rule and the defect):
   every record of an agent's topic passes ``DeliveryOrder`` on its way from the fetch
   loop to the streams. Faust seeks each partition to its committed offset when a
   rebalance ends; this correction also seeks a partition with no committed offset to
   the start of its log (the ``earliest`` reset policy every app here uses; with
   another policy the first record read after the seek starts the sequence), so a
   record fetched and dropped before that seek is always read again.
2. **Faust's read-offset filter is off.** It drops a record below the highest offset
   delivered so far ("DROPPED MESSAGE ROFF", logged at dev level only), which after a
   seek back drops exactly the records being read again.
3. **Acknowledgements of skipped records are ignored.** The stream skips a record
   delivered before a rebalance when the generation has changed, or while flow control
   is off during a revocation, and then *acknowledges* it (``faust/streams.py``:
   ``do_ack or value is skipped_value``): its offset could be committed although no
   agent saw it (the likely cause of half of one device's window lost at a worker's
   join, seen once in CI after records were put in order). Those acks are ignored, and
   a commit never passes an unacknowledged record (Faust's own check lets one
   through); the owner in the next generation reads the record again.

Reading a record twice is safe: the pipelines skip what they applied already (state
guarded by source offsets). Losing one never is.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from faust.transport.consumer import Consumer, ThreadDelegateConsumer

from streams.common.delivery_order import DeliveryOrder, Verdict

log = logging.getLogger(__name__)

_installed = False


def install_rebalance_fixes() -> None:
    """Patch Faust's consumer classes once (idempotent)."""
    global _installed
    if _installed:
        return
    _ignore_stale_acks()
    _order_every_delivery()
    _installed = True


def _ignore_stale_acks() -> None:
    original_ack = Consumer.ack
    original_new_offset = Consumer._new_offset

    def ack(self: Any, message: Any) -> bool:
        # A record the stream skipped was never tracked (``streams.py`` marks a record
        # tracked only once it passed the skip test), whatever the reason it skipped
        # it: a generation since changed, or flow control off during a revocation.
        if not getattr(message, "tracked", True):
            return False
        generation = getattr(message, "generation_id", None)
        if generation is not None and generation != self.app.consumer_generation_id:
            return False
        return bool(original_ack(self, message))

    def new_offset(self: Any, tp: Any) -> int | None:
        # Faust commits past one unacknowledged record: it accepts a lowest acked
        # offset one above the committed one. The committed offset is the next record
        # to process, so that record itself must be acknowledged (or a known hole).
        acked, committed, holes = self._acked[tp], self._committed_offset[tp], self._gap[tp]
        if acked and committed is not None:
            lowest = min([*acked, *(hole.begin for hole in holes)])
            if lowest > committed:
                return None
        result: int | None = original_new_offset(self, tp)
        return result

    Consumer.ack = ack  # type: ignore[method-assign]
    Consumer._new_offset = new_offset  # type: ignore[method-assign]


def _order_every_delivery() -> None:
    original_init = Consumer.__init__
    original_seek = Consumer.seek
    original_getmany = ThreadDelegateConsumer._getmany
    original_seek_to_committed = ThreadDelegateConsumer.seek_to_committed

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self._read_offset = _NoReadOffsetFilter(self._read_offset)
        self.delivery_order = DeliveryOrder()
        deliver = self.callback

        async def in_order(message: Any) -> None:
            if await _admit(self, message):
                await deliver(message)

        self.callback = in_order

    async def getmany(self: Any, *args: Any, **kwargs: Any) -> Any:
        records = await original_getmany(self, *args, **kwargs)
        self.delivery_order.fetched()
        return records

    async def seek_to_committed(self: Any) -> Mapping[Any, int]:
        generation = self.app.consumer_generation_id
        committed: Mapping[Any, int] = await original_seek_to_committed(self)
        if generation != self.app.consumer_generation_id:
            return committed  # a rebalance began meanwhile: its own seek comes next
        offsets: dict[Any, int | None] = {
            tp: offset if offset and offset > 0 else None
            for tp, offset in committed.items()
            if self.app.topics.acks_enabled_for(tp.topic)
        }
        never = [tp for tp, offset in offsets.items() if offset is None]
        if never and self.app.conf.consumer_auto_offset_reset == "earliest":
            # aiokafka leaves these where the fetches got to, maybe past dropped records.
            # A failure here is raised: Faust's recovery stops the worker, and a restart
            # reads again, where going on would start past the dropped records.
            earliest = await self.earliest_offsets(*never)
            for tp in never:
                self._thread.seek(tp, earliest[tp])
                offsets[tp] = earliest[tp]
        self.delivery_order.sought(generation, offsets)
        return committed

    async def seek(self: Any, partition: Any, offset: int) -> None:
        await original_seek(self, partition, offset)
        if self.app.topics.acks_enabled_for(partition.topic):
            self.delivery_order.sought(self.app.consumer_generation_id, {partition: offset})

    Consumer.__init__ = init  # type: ignore[method-assign]
    Consumer.seek = seek  # type: ignore[method-assign]
    ThreadDelegateConsumer._getmany = getmany  # type: ignore[method-assign]
    ThreadDelegateConsumer.seek_to_committed = seek_to_committed  # type: ignore[method-assign]


async def _admit(consumer: Any, message: Any) -> bool:
    """Whether ``message`` goes on to the streams; seeks back when records are missing."""
    if not consumer.app.topics.acks_enabled_for(message.topic):
        return True  # changelogs: read by table recovery, which seeks them itself
    order: DeliveryOrder = consumer.delivery_order
    tp = message.tp
    expected = order.expected(tp)
    verdict = order.admit(tp, message.offset, message.generation_id)
    if verdict is Verdict.SEEK_BACK:
        log.info(
            "%s: offset %d read while %s was due: reading again from it",
            tp,
            message.offset,
            expected,
        )
        try:
            await consumer._seek(tp, expected)
        except Exception as exc:  # no longer assigned: the next generation seeks anew
            log.info("%s: not sought back (%r)", tp, exc)
            order.seek_failed(tp)  # so a later gap is not taken for a hole in the log
        return False
    if verdict is Verdict.DELIVER_AFTER_HOLE:
        assert expected is not None
        log.warning(
            "%s: offsets %d-%d are not in the log (retention or transaction markers)",
            tp,
            expected,
            message.offset - 1,
        )
        # Faust commits only contiguous acknowledged offsets: the hole counts as done.
        consumer._gap[tp].addi(expected, message.offset)
    return verdict is not Verdict.DROP


class _NoReadOffsetFilter(dict[Any, Any]):
    """Faust's read offsets, kept for its other uses, but never used to drop a record.

    The fetch loop reads them with ``__getitem__``: None there means "deliver".
    """

    def __getitem__(self, key: Any) -> None:
        return None
