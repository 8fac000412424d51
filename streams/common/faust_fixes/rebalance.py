"""Corrections of Faust 0.15.3 around rebalances: no record lost, none committed unread.

Found by the telemetry rebalance tests (a worker joining while readings flow, a killed
worker replaced), which lost readings before these corrections; installed by
``make_app`` for every pipeline. docs/faust-corrections.md has each defect as an
upstream bug report (reproduction, cause with file and line, fix).

1. **Records in offset order** (``delivery_order.py`` explains the rule and the defect):
   every record of an agent's topic passes ``DeliveryOrder`` on its way from the fetch
   loop to the streams. Faust seeks each partition to its committed offset when a
   rebalance ends; this correction also seeks a partition with no committed offset to
   the start of its log (the ``earliest`` reset policy every app here uses; with
   another policy the first record read after the seek starts the sequence), so a
   record fetched and dropped before that seek is always read again; and records the
   resume after a recovery empties from the streams' queues (it comes after that
   seek) are read again too (``ReadAgain``).
2. **Faust's read-offset filter is off.** It drops a record below the highest offset
   delivered so far ("DROPPED MESSAGE ROFF", logged at dev level only), which after a
   seek back drops exactly the records being read again, and it records the offsets
   between the seek target and a stale record as a gap the commit then passes.
3. **Acknowledgements of skipped records are ignored.** The pure-Python stream iterator
   skips a record delivered before a rebalance when the generation has changed, or
   while flow control is off during a revocation, and then *acknowledges* it
   (``faust/streams.py``: ``do_ack or value is skipped_value``): its offset could be
   committed although no agent saw it. Those acks, and any ack of an earlier
   generation, are ignored. (Faust's compiled iterator, used when its Cython extension
   loads, never acks a skipped record, and acks records of ``async for`` streams
   without calling ``Consumer.ack``; ``take_events`` batches, which the pipelines'
   agents use, are acked through ``Consumer.ack`` on both.) So are the acks of a batch
   the agent gave up (``abandon``): a rebalance began while it waited to retry, but
   the consumer generation changes only when the partitions are assigned again, and
   Faust's revocation commits what was acknowledged before that.
4. **A commit never passes an unacknowledged record.** Faust's check lets one through:
   it accepts a lowest acknowledged offset one above the committed one; and it checks
   nothing for a partition whose committed offset it does not know (never committed,
   or committed at 0, which Faust takes for none), so the offset the generation started
   the partition at stands in.

Reading a record twice is safe: the pipelines skip what they applied already (state
guarded by source offsets). Losing one never is. Each correction counts what it did
(``counters.py``).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

from faust.streams import Stream
from faust.transport.consumer import Consumer, ThreadDelegateConsumer
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaDriverConsumer
from faust.types.tuples import ConsumerMessage

from streams.common.faust_fixes.counters import Fix, count
from streams.common.faust_fixes.delivery_order import DeliveryOrder, Verdict
from streams.common.faust_fixes.patching import Code, Original, Patch, install_all
from streams.common.faust_fixes.read_again import ReadAgain
from streams.common.faust_fixes.versions import check_versions

log = logging.getLogger(__name__)

_FAUST_CONSUMER = "faust.transport.consumer"

#: The app attribute listing its batch intakes (batch_intake.py), which ``_getmany``
#: hands every fetch to.
INTAKES_ATTRIBUTE = "streams_batch_intakes"
#: The app attribute holding its recovery intake (recovery_intake.py), if any.
RECOVERY_INTAKE_ATTRIBUTE = "streams_recovery_intake"


def install_rebalance_fixes() -> None:
    """Patch Faust's consumer classes once (a second call only verifies the patches).

    Raises ``UnsupportedVersionError`` on another Faust or aiokafka release, and
    ``PatchMismatchError`` when a patched function is not the expected one.
    """
    check_versions()
    install_all(PATCHES)


# -- 3. and 4.: acknowledgements and commits -----------------------------------------

#: Records of batches given up before they were done: their acks must not count.
_ABANDONED: weakref.WeakSet[Any] = weakref.WeakSet()


def abandon(messages: Iterable[Any]) -> None:
    """Never commit ``messages``: their batch was given up unhandled (a rebalance began
    while it waited to retry), and the partition's next owner must read them again.

    Their acks are ignored; each is marked acked all the same, so that the revocation's
    wait for unacknowledged records does not wait for them for ever.
    """
    _ABANDONED.update(messages)


def abandoned(message: Any) -> bool:
    """Whether ``message``'s batch was given up (``abandon``)."""
    return message in _ABANDONED


def _ack(self: Any, message: Any) -> bool:
    if message in _ABANDONED:
        count(Fix.ACKS_IGNORED)
        message.acked = True
        self._unacked_messages.discard(message)
        return False
    # A record the stream skipped was never tracked (``streams.py`` marks a record
    # tracked only once it passed the skip test), whatever the reason it skipped it: a
    # generation since changed, or flow control off during a revocation.
    if not getattr(message, "tracked", True):
        count(Fix.ACKS_IGNORED)
        return False
    generation = getattr(message, "generation_id", None)
    if generation is not None and generation != self.app.consumer_generation_id:
        count(Fix.ACKS_IGNORED)
        return False
    return bool(ACK.original(self, message))


def _new_offset(self: Any, tp: Any) -> int | None:
    # Faust commits past one unacknowledged record: it accepts a lowest acked offset
    # one above the committed one. The committed offset is the next record to process,
    # so that record itself must be acknowledged (or a known hole).
    acked, committed, holes = self._acked[tp], self._committed_offset[tp], self._gap[tp]
    if committed is None:
        # Faust knows no committed offset for a partition never committed (and takes a
        # committed 0 for none): the offset this generation started it at stands in.
        committed = self.delivery_order.first(tp)
    if acked and committed is not None:
        lowest = min([*acked, *(hole.begin for hole in holes)])
        if lowest > committed:
            count(Fix.COMMITS_HELD_BACK)
            return None
    result: int | None = NEW_OFFSET.original(self, tp)
    if result is not None and self.app.rebalancing:
        # What a revocation commits decides where the next owner starts: logged, as the
        # seeks below are, so that a record lost at a rebalance can be traced.
        log.info("%s: committing %d at a rebalance (was %s)", tp, result, committed)
    return result


# -- 1. and 2.: every record in offset order, no read-offset filter ------------------


def _init(self: Any, *args: Any, **kwargs: Any) -> None:
    INIT.original(self, *args, **kwargs)
    self._read_offset = _NoReadOffsetFilter(self._read_offset)
    self.delivery_order = DeliveryOrder()
    self.read_again = ReadAgain(self)
    self.app.flow_control.manage_queue(self.read_again)  # a WeakSet: held above
    deliver = self.callback

    async def in_order(message: Any) -> None:
        if await _admit(self, message):
            await deliver(message)

    self.callback = in_order


async def _getmany(self: Any, active_partitions: Any, timeout: float) -> Any:  # noqa: ASYNC109 (Faust's signature)
    # Tables' changelogs being restored are written in runs (recovery_intake.py); the
    # token taken before the fetch tells a fetch that straddled a recovery restart.
    restoring = getattr(self.app, RECOVERY_INTAKE_ATTRIBUTE, None)
    before = restoring.token() if restoring is not None else None
    records = await GETMANY.original(self, active_partitions, timeout)
    self.delivery_order.fetched()
    if restoring is not None:
        await restoring.take(self, records, active_partitions, before)
    # Topics consumed in batches take their records here, before Faust's per-record
    # delivery sees them (batch_intake.py).
    for intake in getattr(self.app, INTAKES_ATTRIBUTE, ()):
        await intake.divert(self, records, active_partitions)
    return records


async def _seek_to_committed(self: Any) -> Mapping[Any, int]:
    generation = self.app.consumer_generation_id
    committed: Mapping[Any, int] = await SEEK_TO_COMMITTED.original(self)
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
        count(Fix.PARTITIONS_SOUGHT_TO_START, len(never))
    self.delivery_order.sought(generation, offsets)
    log.info("generation %s reads from %s", generation, _by_tp(offsets))
    return committed


def _by_tp(offsets: Mapping[Any, int | None]) -> str:
    return ", ".join(
        f"{tp.topic}[{tp.partition}]@{offset}" for tp, offset in sorted(offsets.items())
    )


async def _seek(self: Any, partition: Any, offset: int) -> None:
    await SEEK.original(self, partition, offset)
    if self.app.topics.acks_enabled_for(partition.topic):
        self.delivery_order.sought(self.app.consumer_generation_id, {partition: offset})


async def _admit(consumer: Any, message: Any) -> bool:
    """Whether ``message`` goes on to the streams; seeks back when records are missing."""
    deliver, seek_to = judge(consumer, message)
    if seek_to is not None:
        await seek_back(consumer, message.tp, seek_to)
    return deliver


def judge(consumer: Any, message: Any) -> tuple[bool, int | None]:
    """``DeliveryOrder``'s verdict on ``message``, counted and logged, without awaiting
    anything: whether it goes on, and the offset to seek its partition back to (None:
    no seek). A caller that buffers records does so before it awaits the seek."""
    if not consumer.app.topics.acks_enabled_for(message.topic):
        return True, None  # changelogs: read by table recovery, which seeks them itself
    order: DeliveryOrder = consumer.delivery_order
    tp = message.tp
    expected = order.expected(tp)
    verdict = order.admit(tp, message.offset, message.generation_id)
    if verdict is Verdict.DELIVER:
        return True, None
    if verdict is Verdict.DROP:
        count(Fix.RECORDS_DROPPED)
        return False, None
    if verdict is Verdict.SEEK_BACK:
        count(Fix.RECORDS_DROPPED)
        log.info(
            "%s: offset %d read while %s was due: reading again from it",
            tp,
            message.offset,
            expected,
        )
        return False, expected
    assert verdict is Verdict.DELIVER_AFTER_HOLE and expected is not None
    log.warning(
        "%s: offsets %d-%d are not in the log (retention or transaction markers)",
        tp,
        expected,
        message.offset - 1,
    )
    count(Fix.LOG_HOLES_JUMPED)
    # Faust commits only contiguous acknowledged offsets: the hole counts as done.
    consumer._gap[tp].addi(expected, message.offset)
    return True, None


async def seek_back(consumer: Any, tp: Any, offset: int) -> None:
    """Read ``tp`` again from ``offset``, the next record due (a SEEK_BACK verdict)."""
    try:
        await consumer._seek(tp, offset)
    except Exception as exc:  # no longer assigned: the next generation seeks anew
        log.info("%s: not sought back (%r)", tp, exc)
        consumer.delivery_order.seek_failed(tp)  # so a later gap is not taken for a hole
    else:
        count(Fix.PARTITIONS_SOUGHT_BACK)


class _NoReadOffsetFilter(dict[Any, Any]):
    """Faust's read offsets, kept for its other uses, but never used to drop a record.

    The fetch loop reads them with ``__getitem__``: None there means "deliver".
    """

    def __getitem__(self, key: Any) -> None:
        return None


# -- What is patched, and what it must be --------------------------------------------

#: The consumer class a ``kafka://`` app instantiates.
_USED_BY = (AIOKafkaDriverConsumer,)

ACK = Patch(
    Code(Consumer, "ack", Original(_FAUST_CONSUMER, "Consumer.ack", "5fcf41cf45153475")),
    _ack,
    used_by=_USED_BY,
    relies_on=(
        # Message.ack -> on_final_ack -> Consumer.ack: how take_events batches are acked.
        Code(
            ConsumerMessage,
            "on_final_ack",
            Original("faust.types.tuples", "ConsumerMessage.on_final_ack", "45d670b6a8ac4bd0"),
        ),
        # Marks a record tracked only after its skip test; acks skipped records.
        Code(
            Stream, "_py_aiter", Original("faust.streams", "Stream._py_aiter", "3a48ee257a65435b")
        ),
    ),
)
NEW_OFFSET = Patch(
    Code(
        Consumer,
        "_new_offset",
        Original(_FAUST_CONSUMER, "Consumer._new_offset", "1d2c7ea89a7ad4f1"),
    ),
    _new_offset,
    used_by=_USED_BY,
)
INIT = Patch(
    Code(Consumer, "__init__", Original(_FAUST_CONSUMER, "Consumer.__init__", "302410d59e6972d1")),
    _init,
    used_by=_USED_BY,
    passes_through={
        ThreadDelegateConsumer: Original(
            _FAUST_CONSUMER, "ThreadDelegateConsumer.__init__", "7072ae80eac1ff62"
        )
    },
    relies_on=(
        # Reads ``self._read_offset.__getitem__`` and ``self.callback`` once, at its start.
        Code(
            Consumer,
            "_drain_messages",
            Original(_FAUST_CONSUMER, "Consumer._drain_messages", "44a2500309e83c63"),
        ),
    ),
)
SEEK = Patch(
    Code(Consumer, "seek", Original(_FAUST_CONSUMER, "Consumer.seek", "b86a9fe05f956b30")),
    _seek,
    used_by=_USED_BY,
)
GETMANY = Patch(
    Code(
        ThreadDelegateConsumer,
        "_getmany",
        Original(_FAUST_CONSUMER, "ThreadDelegateConsumer._getmany", "f9d47aa9010b5ff2"),
    ),
    _getmany,
    used_by=_USED_BY,
    relies_on=(
        # One ``_getmany`` per fetch: what ``DeliveryOrder.fetched`` counts.
        Code(
            Consumer,
            "_wait_next_records",
            Original(_FAUST_CONSUMER, "Consumer._wait_next_records", "6218e1969a636b3f"),
        ),
    ),
)
SEEK_TO_COMMITTED = Patch(
    Code(
        ThreadDelegateConsumer,
        "seek_to_committed",
        Original(_FAUST_CONSUMER, "ThreadDelegateConsumer.seek_to_committed", "f1d483b861b0328b"),
    ),
    _seek_to_committed,
    used_by=_USED_BY,
    relies_on=(
        # The seek of every rebalance: seek_to_committed, then read and committed offsets.
        Code(
            Consumer,
            "perform_seek",
            Original(_FAUST_CONSUMER, "Consumer.perform_seek", "0e8c130ff4b0afd8"),
        ),
    ),
)

PATCHES: tuple[Patch, ...] = (ACK, NEW_OFFSET, INIT, SEEK, GETMANY, SEEK_TO_COMMITTED)
