"""The corrections of Faust around rebalances: stale acks ignored, records in offset order."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import faust
import faust.streams as faust_streams
import pytest
from aiokafka.errors import KafkaConnectionError
from aiokafka.structs import ConsumerRecord
from faust.events import Event
from faust.types import TP, Message
from faust.types.tuples import ConsumerMessage
from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter

from streams.common.batches import BatchRunner
from streams.common.faust_fixes import Fix, counts, install_rebalance_fixes
from streams.common.faust_fixes.delivery_order import DeliveryOrder, Verdict
from streams.common.faust_fixes.rebalance import PATCHES

P0 = TP("telemetry.readings", 0)
P1 = TP("telemetry.readings", 1)
DELIVER, DROP = Verdict.DELIVER, Verdict.DROP


def message(offset: int, generation: int) -> Message:
    return Message(
        topic="telemetry.readings",
        partition=0,
        offset=offset,
        timestamp=0.0,
        timestamp_type=0,
        headers=[],
        key=b"sw-1",
        value=b"{}",
        checksum=None,
        generation_id=generation,
    )


def revoking_app(name: str) -> Any:
    """A Faust app, fixes installed, in consumer generation 3, P0 committed at 10."""
    install_rebalance_fixes()
    app = faust.App(name, broker="kafka://127.0.0.1:1", store="memory://")
    app.topics._acking_topics.add("telemetry.readings")
    app.consumer_generation_id, app.rebalancing_count = 3, 0
    app.consumer._committed_offset[P0] = 10
    return app


def runner_given_up_at_a_rebalance(app: Any, handle: Any) -> BatchRunner:
    """A batch runner whose every wait sees a rebalance begin; it rejects nothing."""

    async def rebalance_begins(_seconds: float) -> None:
        app.rebalancing_count += 1

    async def never_rejects(_event: Any, _error: Exception) -> None:
        raise AssertionError("a surroundings failure rejects nothing")

    failures = PromCounter("f", "", registry=CollectorRegistry())
    return BatchRunner(app, "t", handle, never_rejects, failures, sleep=rebalance_begins)


def test_a_record_from_before_a_rebalance_is_not_acknowledged() -> None:
    """A record of an earlier generation stays uncommitted (read again); a current one is acked."""
    install_rebalance_fixes()
    app = faust.App("acks-test", broker="kafka://127.0.0.1:1", store="memory://")
    consumer = app.consumer
    app.topics._acking_topics.add("telemetry.readings")
    app.consumer_generation_id = 7
    before = counts()[Fix.ACKS_IGNORED]
    assert consumer.ack(message(3, generation=6)) is False
    assert consumer.ack(message(4, generation=7)) is True
    assert list(consumer._acked[P0]) == [4]
    assert counts()[Fix.ACKS_IGNORED] == before + 1


def test_a_batch_given_up_at_a_rebalance_is_never_committed() -> None:
    """A batch that fails, then sees a rebalance begin while it waits to retry, is given
    up: Faust acks it when the agent moves on, before the consumer generation changes
    (only an assignment changes it) and before the revocation commits, so that ack must
    not count. The revocation's wait for unacked records must not wait for it either."""
    app = revoking_app("abandon-test")
    consumer = app.consumer
    batch = [SimpleNamespace(message=message(offset, generation=3)) for offset in (10, 11)]

    async def fails(_events: list[Any]) -> None:
        raise KafkaConnectionError()

    runner = runner_given_up_at_a_rebalance(app, fails)
    for item in batch:
        consumer._unacked_messages.add(item.message)
    ignored = counts()[Fix.ACKS_IGNORED]

    assert asyncio.run(runner.run(batch)) is False
    assert [consumer.ack(item.message) for item in batch] == [False, False]
    assert counts()[Fix.ACKS_IGNORED] == ignored + 2
    assert consumer._new_offset(P0) is None  # nothing committed: read again
    assert not consumer._unacked_messages  # the revocation does not wait for them
    assert consumer.ack(message(12, generation=3)) is True  # other records unaffected


def test_a_record_the_stream_skipped_is_not_acknowledged_and_blocks_the_commit() -> None:
    """Skipped (never tracked) records are not acked, whatever the reason the stream
    skipped them; and no commit passes the committed offset's own record."""
    install_rebalance_fixes()
    app = faust.App("skip-test", broker="kafka://127.0.0.1:1", store="memory://")
    consumer = app.consumer
    app.topics._acking_topics.add("telemetry.readings")
    fields = message(10, generation=0)
    skipped = ConsumerMessage(
        **{
            k: getattr(fields, k)
            for k in Message.__slots__
            if k
            in (
                "topic",
                "partition",
                "offset",
                "timestamp",
                "timestamp_type",
                "headers",
                "key",
                "value",
                "checksum",
                "generation_id",
            )
        }
    )
    assert skipped.tracked is False
    ignored, held_back = counts()[Fix.ACKS_IGNORED], counts()[Fix.COMMITS_HELD_BACK]
    assert consumer.ack(skipped) is False
    assert counts()[Fix.ACKS_IGNORED] == ignored + 1
    consumer._committed_offset[P0] = 10
    assert consumer.ack(message(11, generation=0)) is True
    assert consumer._new_offset(P0) is None  # 10 was never processed
    assert counts()[Fix.COMMITS_HELD_BACK] == held_back + 1
    assert consumer.ack(message(10, generation=0)) is True
    assert consumer._new_offset(P0) == 12


def test_a_hole_in_the_log_lets_the_commit_pass_it() -> None:
    """A known hole in the log (retention, transaction markers) does not hold the commit."""
    install_rebalance_fixes()
    app = faust.App("hole-test", broker="kafka://127.0.0.1:1", store="memory://")
    consumer = app.consumer
    app.topics._acking_topics.add("telemetry.readings")
    consumer._committed_offset[P0] = 10
    consumer._gap[P0].addi(10, 13)  # offsets 10-12 are not in the log
    assert consumer.ack(message(13, generation=0)) is True
    assert consumer._new_offset(P0) == 14


def admit_all(
    order: DeliveryOrder, tp: TP, offsets: range | list[int], gen: int = 1
) -> list[Verdict]:
    return [order.admit(tp, offset, gen) for offset in offsets]


def test_records_fetched_before_the_seek_are_dropped_and_read_again_in_order() -> None:
    """The measured defect: committed 103, offsets 112-271 delivered first, then 103-..."""
    order = DeliveryOrder()
    order.fetched()
    assert admit_all(order, P0, [112, 113]) == [DROP, DROP]  # no seek in generation 1 yet
    order.sought(1, {P0: 103, P1: None})
    assert admit_all(order, P0, [114, 115]) == [DROP, DROP]  # same fetch: the old position
    order.fetched()
    assert admit_all(order, P0, range(103, 117)) == [DELIVER] * 14
    assert admit_all(order, P0, [110, 116]) == [DROP, DROP]  # already delivered
    assert order.expected(P0) == 117


def test_nothing_of_an_earlier_generation_or_before_its_first_seek_is_delivered() -> None:
    order = DeliveryOrder()
    order.sought(1, {P0: 10})
    order.fetched()
    assert order.admit(P0, 10, 1) is DELIVER
    assert order.admit(P0, 11, 0) is DROP  # converted before the rebalance
    order.fetched()
    assert order.admit(P0, 11, 2) is DROP  # generation 2 has not sought yet
    order.sought(2, {P0: 11})
    order.fetched()
    assert order.admit(P0, 11, 2) is DELIVER
    assert order.admit(P0, 12, 1) is DROP


def test_a_partition_sought_to_its_reset_position_starts_at_the_first_record_read_after() -> None:
    order = DeliveryOrder()
    order.sought(1, {P1: None})
    assert order.admit(P1, 40, 1) is DROP  # still the fetch of before the seek
    order.fetched()
    assert admit_all(order, P1, [0, 1, 2]) == [DELIVER] * 3


def test_a_gap_after_the_seek_seeks_back_once_then_jumps_a_real_hole_in_the_log() -> None:
    order = DeliveryOrder()
    order.sought(1, {P0: 5})
    order.fetched()
    assert admit_all(order, P0, [5, 6]) == [DELIVER, DELIVER]
    assert order.admit(P0, 9, 1) is Verdict.SEEK_BACK
    assert order.admit(P0, 10, 1) is DROP  # the rest of that fetch
    order.fetched()
    assert order.admit(P0, 7, 1) is DELIVER  # the seek back found 7: no hole after all
    assert order.admit(P0, 12, 1) is Verdict.SEEK_BACK
    order.fetched()
    assert order.admit(P0, 12, 1) is Verdict.DELIVER_AFTER_HOLE  # 8-11 are not in the log
    assert order.admit(P0, 13, 1) is DELIVER


def test_a_gap_after_a_failed_seek_back_is_not_taken_for_a_hole() -> None:
    order = DeliveryOrder()
    order.sought(1, {P0: 5})
    order.fetched()
    assert order.admit(P0, 8, 1) is Verdict.SEEK_BACK
    order.seek_failed(P0)
    order.fetched()
    assert order.admit(P0, 8, 1) is Verdict.SEEK_BACK  # not DELIVER_AFTER_HOLE


# -- Through Faust's own fetch loop and stream iterators -----------------------------

READINGS = TP("readings", 0)


@contextmanager
def without_rebalance_fixes() -> Iterator[None]:
    """Faust as released, for the duration of the block (then the fixes again)."""
    for patch in PATCHES:
        patch.remove()
    try:
        yield
    finally:
        install_rebalance_fixes()


class ScriptedConsumerThread:
    """The aiokafka consumer thread, scripted: the group's committed offset is 103; a
    fetch at the old position (112-115) is in flight while the rebalance ends, and the
    next fetch reads from the committed offset."""

    def __init__(self) -> None:
        self.fetches = [[112, 113, 114, 115], list(range(103, 117))]
        self.in_flight, self.rebalanced = asyncio.Event(), asyncio.Event()
        self.fetcher = SimpleNamespace(_stopped=asyncio.Event())
        self.seeks: list[tuple[TP, int]] = []

    async def getmany(self, active_partitions: Any, wait: float) -> Any:
        if not self.fetches:
            self.fetcher._stopped.set()
            return {}
        offsets = self.fetches.pop(0)
        if offsets[0] == 112:
            self.in_flight.set()
            await self.rebalanced.wait()
        return {
            READINGS: [
                ConsumerRecord("readings", 0, o, 0, 0, b"k", b"v", None, 1, 1, []) for o in offsets
            ]
        }

    async def seek_to_committed(self) -> dict[TP, int]:
        return {READINGS: 103}

    def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))

    def highwater(self, tp: TP) -> int:
        return 117


async def rebalance_while_fetching() -> tuple[list[int], Any, ScriptedConsumerThread]:
    """Run Faust's fetch loop through a rebalance; the offsets delivered to the streams
    (each processed and acknowledged at once) and the consumer."""
    app = faust.App("drain-test", broker="kafka://127.0.0.1:1", store="memory://")
    app.topics._acking_topics.add("readings")
    delivered: list[int] = []

    async def streams(message: Any) -> None:
        delivered.append(message.offset)
        message.tracked = True  # what the stream does before the agent sees it
        app.consumer.ack(message)

    app.topics.on_message = streams  # type: ignore[method-assign]
    consumer: Any = app.consumer
    consumer._thread = thread = ScriptedConsumerThread()
    consumer._set_active_tps({READINGS})
    app.consumer_generation_id = 1
    drain = asyncio.ensure_future(consumer._drain_messages(thread.fetcher))
    await thread.in_flight.wait()
    app.consumer_generation_id = 2  # the rebalance ends while that fetch is in flight,
    await consumer.perform_seek()  # and Faust seeks to the committed offset
    thread.rebalanced.set()
    await asyncio.wait_for(drain, 10)
    return delivered, consumer, thread


async def test_records_fetched_before_a_seek_reach_the_streams_in_offset_order() -> None:
    """Faust's fetch loop, fixed: the stale fetch is dropped and sought back, then
    103-116 arrive in order, and the commit covers exactly what was processed."""
    install_rebalance_fixes()
    before = counts()
    delivered, consumer, thread = await rebalance_while_fetching()
    assert delivered == list(range(103, 117))
    assert thread.seeks == [(READINGS, 103)]
    assert consumer._new_offset(READINGS) == 117
    assert not consumer._gap[READINGS]
    after = counts()
    assert after[Fix.RECORDS_DROPPED] - before[Fix.RECORDS_DROPPED] == 4  # 112-115
    assert after[Fix.PARTITIONS_SOUGHT_BACK] - before[Fix.PARTITIONS_SOUGHT_BACK] == 1


async def test_without_the_fixes_faust_commits_records_it_never_delivered() -> None:
    """The upstream defects (docs/faust-corrections.md): the stale 112-115 arrive after
    the seek, the read-offset filter drops the re-read 103-114, marks 104-112 as a gap,
    and the next commit (113) passes 103-111, which no agent saw."""
    with without_rebalance_fixes():
        delivered, consumer, _ = await rebalance_while_fetching()
        assert delivered == [112, 113, 114, 115, 115, 116]
        assert [(gap.begin, gap.end) for gap in consumer._gap[READINGS]] == [(104, 113)]
        assert consumer._new_offset(READINGS) == 113


async def acked_after_a_skip(iterator: str) -> list[int]:
    """Offsets acknowledged after a stream read a record of the previous generation
    (10), then one of the current generation (11)."""
    app = faust.App("skip-test", broker="kafka://127.0.0.1:1", store="memory://")
    topic = app.topic("readings", key_type=bytes, value_type=bytes)
    stream = topic.stream()
    app.topics._acking_topics.add("readings")
    app.flow_control.resume()
    app.consumer_generation_id = 2
    for offset, generation in ((10, 1), (11, 2)):
        message = ConsumerMessage(
            "readings", 0, offset, 0.0, 0, [], b"k", b"v", None, generation_id=generation
        )
        await stream.channel.put(Event(app, b"k", b"v", {}, message))
    it = stream._py_aiter() if iterator == "python" else stream.__aiter__()
    assert await it.__anext__() == b"v"  # offset 11: offset 10 was skipped
    acked = list(app.consumer._acked[READINGS])
    await it.aclose()
    return acked


@pytest.mark.parametrize("iterator", ["python", "default"])
async def test_a_record_the_stream_skipped_is_never_acknowledged(iterator: str) -> None:
    """Neither Faust stream iterator (pure Python, or the compiled one when it loads)
    gets a skipped record acknowledged once the fixes are in."""
    install_rebalance_fixes()
    before = counts()[Fix.ACKS_IGNORED]
    assert await acked_after_a_skip(iterator) == []
    # The compiled iterator does not ack a skipped record at all: nothing to ignore.
    python = iterator == "python" or faust_streams._CStreamIterator is None
    assert counts()[Fix.ACKS_IGNORED] - before == (1 if python else 0)


async def test_without_the_fixes_the_python_stream_acknowledges_a_skipped_record() -> None:
    """The upstream defect: Stream._py_aiter acks the record it skipped."""
    with without_rebalance_fixes():
        assert await acked_after_a_skip("python") == [10]


def reading(offset: int) -> Message:
    return Message(
        topic="readings", partition=0, offset=offset, timestamp=0.0, timestamp_type=0,
        headers=[], key=b"k", value=b"v", checksum=None, generation_id=1,
    )  # fmt: skip


class NeverCommittedThread:
    """A consumer thread for a group that never committed: the log starts at 40."""

    def __init__(self) -> None:
        self.seeks: list[tuple[TP, int]] = []

    async def seek_to_committed(self) -> dict[TP, int | None]:
        return {READINGS: None}

    async def earliest_offsets(self, *partitions: TP) -> dict[TP, int]:
        return dict.fromkeys(partitions, 40)

    def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))


async def test_a_partition_never_committed_never_commits_past_its_first_record() -> None:
    """Before a partition's first commit, a record skipped or given up (40) must hold the
    commit as it would later: Faust checks nothing while it knows no committed offset."""
    install_rebalance_fixes()
    app = faust.App("first-commit-test", broker="kafka://127.0.0.1:1", store="memory://")
    app.topics._acking_topics.add("readings")
    app.conf.consumer_auto_offset_reset = "earliest"
    consumer: Any = app.consumer
    consumer._thread = thread = NeverCommittedThread()
    app.consumer_generation_id = 1
    await consumer.perform_seek()
    assert thread.seeks == [(READINGS, 40)]
    for offset in (41, 42):
        assert consumer.ack(reading(offset)) is True
    assert consumer._new_offset(READINGS) is None  # 40 was never processed
    assert consumer.ack(reading(40)) is True
    assert consumer._new_offset(READINGS) == 43


def test_after_a_batch_is_given_up_no_record_of_its_generation_is_handled() -> None:
    """A batch given up at a rebalance, then the next batch of the same consumer
    generation (Faust may still yield it while the revocation runs): handling it would
    have its acks commit past the given-up records. It is given up too; records of the
    next generation are handled."""
    app = revoking_app("given-up-test")
    consumer = app.consumer
    handled: list[int] = []

    async def handle(events: list[Any]) -> None:
        if (events[0].message.generation_id, events[0].message.offset) == (3, 10):
            raise KafkaConnectionError()  # until the rebalance gives the batch up
        handled.extend(e.message.offset for e in events)

    runner = runner_given_up_at_a_rebalance(app, handle)
    first = [SimpleNamespace(message=message(10, generation=3))]
    second = [SimpleNamespace(message=message(11, generation=3))]
    mixed = [SimpleNamespace(message=message(o, generation=g)) for o, g in ((12, 3), (10, 4))]

    assert asyncio.run(runner.run(first)) is False
    assert asyncio.run(runner.run(second)) is False
    assert handled == []
    assert consumer.ack(second[0].message) is False
    assert consumer._new_offset(P0) is None
    app.consumer_generation_id = 4
    assert asyncio.run(runner.run(mixed)) is True
    assert handled == [10]


def resumed_app(name: str) -> Any:
    """A Faust app, fixes installed, P0 (read by an agent) sought to 10 in generation 3,
    as Faust leaves it just before resuming flow control after a recovery."""
    app = revoking_app(name)
    consumer = app.consumer
    consumer._thread = SimpleNamespace(seeks=[])
    consumer._thread.seek = lambda tp, offset: consumer._thread.seeks.append((tp, offset))
    consumer.delivery_order.sought(3, {P0: 10})
    consumer.delivery_order.fetched()
    return app


def test_records_the_resume_after_recovery_empties_from_the_queues_are_read_again() -> None:
    """Faust seeks to the committed offsets, then resumes flow control, which empties the
    streams' queues: records delivered in between (10-12 here) would be skipped, the next
    fetch continuing at 13. The partition is sought back to 10 and reads them again."""
    app = resumed_app("read-again")
    consumer = app.consumer
    assert [consumer.delivery_order.admit(P0, o, 3) for o in (10, 11, 12)] == [DELIVER] * 3
    app.flow_control.resume()
    assert consumer._thread.seeks == [(P0, 10)]
    consumer.delivery_order.fetched()
    assert consumer.delivery_order.admit(P0, 10, 3) is DELIVER


def test_no_seek_at_a_revocation_or_for_a_partition_nothing_was_delivered_of() -> None:
    app = resumed_app("read-again-not")
    consumer = app.consumer
    app.flow_control.resume()  # nothing delivered since the seek
    assert consumer.delivery_order.admit(P0, 10, 3) is DELIVER
    consumer.stop_flow()  # a revocation stops the flow, then empties the queues
    app.flow_control.clear()
    assert consumer._thread.seeks == []
