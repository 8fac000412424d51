"""The correction of Faust's acks of records skipped during a rebalance."""

from __future__ import annotations

import faust
from faust.types import TP, Message

from streams.common.rebalance_acks import install_rebalance_ack_fix


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
    install_rebalance_ack_fix()
    app = faust.App("acks-test", broker="kafka://127.0.0.1:1", store="memory://")
    consumer = app.consumer
    app.topics._acking_topics.add("telemetry.readings")
    app.consumer_generation_id = 7
    assert consumer.ack(message(3, generation=6)) is False
    assert consumer.ack(message(4, generation=7)) is True
    assert list(consumer._acked[TP("telemetry.readings", 0)]) == [4]
