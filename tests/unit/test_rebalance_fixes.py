"""The corrections of Faust around rebalances: stale acks ignored, records in offset order."""

from __future__ import annotations

import faust
from faust.types import TP, Message
from faust.types.tuples import ConsumerMessage

from streams.common.delivery_order import DeliveryOrder, Verdict
from streams.common.rebalance_fixes import install_rebalance_fixes

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


def test_a_record_from_before_a_rebalance_is_not_acknowledged() -> None:
    """A record of an earlier generation stays uncommitted (read again); a current one is acked."""
    install_rebalance_fixes()
    app = faust.App("acks-test", broker="kafka://127.0.0.1:1", store="memory://")
    consumer = app.consumer
    app.topics._acking_topics.add("telemetry.readings")
    app.consumer_generation_id = 7
    assert consumer.ack(message(3, generation=6)) is False
    assert consumer.ack(message(4, generation=7)) is True
    assert list(consumer._acked[P0]) == [4]


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
    assert consumer.ack(skipped) is False
    consumer._committed_offset[P0] = 10
    assert consumer.ack(message(11, generation=0)) is True
    assert consumer._new_offset(P0) is None  # 10 was never processed
    assert consumer.ack(message(10, generation=0)) is True
    assert consumer._new_offset(P0) == 12


def test_a_hole_in_the_log_lets_the_commit_pass_it() -> None:
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
