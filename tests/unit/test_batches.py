"""A batch is handled until done: surroundings retried, poison records dead-lettered alone."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, MessageSizeTooLargeError
from faust.exceptions import ProducerSendError
from prometheus_client import CollectorRegistry, Counter

from streams.common.batches import BatchRunner, Retry, by_partition
from streams.common.sends import Confirmed, SendFailed, caused_by_a_record
from tests.support.messages import FakeMessage


def event(partition: int, offset: int) -> Any:
    message = FakeMessage(topic="t", partition=partition, offset=offset, key=None, value=b"")
    return SimpleNamespace(message=message)


class Harness:
    """A runner whose handler fails as told, recording what it handled and rejected."""

    def __init__(self, fail: Any, *, rebalance_after_waits: int | None = None) -> None:
        self.fail = fail  # (events, attempt number) -> exception to raise, or None
        self.calls = 0
        self.handled: list[list[int]] = []
        self.rejected: list[int] = []
        self.waits: list[float] = []
        self.app = SimpleNamespace(rebalancing_count=0)
        self.rebalance_after_waits = rebalance_after_waits
        self.failures = Counter("f", "", registry=CollectorRegistry())
        self.runner = BatchRunner(
            self.app, "test", self.handle, self.reject, self.failures,
            retry=Retry(attempts=3, first_delay=1.0, max_delay=4.0), sleep=self.sleep,
        )  # fmt: skip

    async def handle(self, events: list[Any]) -> None:
        self.calls += 1
        offsets = [e.message.offset for e in events]
        error = self.fail(offsets, self.calls)
        if error is not None:
            raise error
        self.handled.append(offsets)

    async def reject(self, event: Any, error: Exception) -> None:
        self.rejected.append(event.message.offset)

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self.rebalance_after_waits is not None and len(self.waits) >= self.rebalance_after_waits:
            self.app.rebalancing_count += 1

    def run(self, events: list[Any]) -> bool:
        return asyncio.run(self.runner.run(events))


def test_a_failure_of_the_surroundings_is_retried_until_it_clears() -> None:
    """Kafka down for four attempts: retried with growing waits, then done, all counted."""
    harness = Harness(lambda _o, call: KafkaConnectionError() if call <= 4 else None)

    assert harness.run([event(0, 1), event(0, 2)])
    assert harness.handled == [[1, 2]]
    assert harness.rejected == []
    assert harness.failures._value.get() == 4
    ceilings = [1.0, 2.0, 4.0, 4.0]
    assert all(c / 2 <= w <= c for w, c in zip(harness.waits, ceilings, strict=True))


def test_a_poison_record_is_dead_lettered_alone_and_the_rest_handled_in_order() -> None:
    """A record that always fails costs one rejection; its neighbours are handled."""
    harness = Harness(lambda offsets, _call: ValueError("bad") if 3 in offsets else None)

    assert harness.run([event(0, 1), event(0, 2), event(0, 3), event(0, 4)])
    assert harness.rejected == [3]
    assert harness.handled == [[1], [2], [4]]


def test_a_record_over_the_size_limit_is_the_datas_fault() -> None:
    """A value too large for Kafka, as Faust raises it, is never retried for ever."""
    too_large = ProducerSendError("Error while sending")
    too_large.__cause__ = MessageSizeTooLargeError()
    harness = Harness(lambda offsets, _call: too_large if 2 in offsets else None)

    assert harness.run([event(0, 1), event(0, 2)])
    assert harness.rejected == [2]


def test_a_rebalance_during_a_wait_gives_the_batch_up() -> None:
    """Once the partitions moved, no further attempt: the next owner reads them again."""
    harness = Harness(lambda _o, _call: KafkaConnectionError(), rebalance_after_waits=2)

    assert not harness.run([event(0, 1)])
    assert harness.calls == 2


def test_a_data_failure_that_clears_on_retry_rejects_nothing() -> None:
    """A failure that does not repeat is retried like any other, with no dead letter."""
    harness = Harness(lambda _o, call: ValueError("once") if call == 1 else None)

    assert harness.run([event(0, 1), event(1, 7)])
    assert harness.rejected == []
    assert harness.handled == [[1, 7]]


@pytest.mark.parametrize(
    ("error", "records_fault"),
    [
        (ValueError("no rule foresaw this"), True),
        (MessageSizeTooLargeError(), True),
        (KafkaConnectionError(), False),
        (KafkaTimeoutError(), False),
        (OSError("S3 unreachable"), False),
        (TimeoutError(), False),
    ],
)
def test_failures_are_classified_as_the_datas_or_the_surroundings(
    error: Exception, records_fault: bool
) -> None:
    """Kafka, storage and time-outs are the surroundings; anything else the data."""
    assert caused_by_a_record(error) is records_fault
    try:
        raise SendFailed("1 of 2 sends failed") from error
    except SendFailed as wrapped:
        assert caused_by_a_record(wrapped) is records_fault


def test_the_wait_doubles_to_its_cap_with_jitter_in_the_upper_half() -> None:
    """Waits grow 1, 2, 4, 4 s at most, never below half of that."""
    retry = Retry(first_delay=1.0, max_delay=4.0)
    assert [retry.delay(n, lambda: 1.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 4.0]
    assert [retry.delay(n, lambda: 0.0) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 2.0]


def test_events_are_grouped_by_partition_in_offset_order() -> None:
    events = [event(1, 5), event(0, 1), event(1, 6), event(0, 2)]
    grouped = by_partition(events)
    assert {p: [e.message.offset for e in es] for p, es in grouped.items()} == {
        1: [5, 6],
        0: [1, 2],
    }


class Producer:
    """A producer whose futures fail as told: at once (raise) or later (the future)."""

    def __init__(
        self, fail_now: frozenset[int] = frozenset(), fail_later: frozenset[int] = frozenset()
    ) -> None:
        self.fail_now, self.fail_later, self.sent = fail_now, fail_later, 0

    async def send(self, *args: Any) -> asyncio.Future[Any]:
        self.sent += 1
        if self.sent in self.fail_now:
            raise ProducerSendError("refused") from MessageSizeTooLargeError()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.sent in self.fail_later:
            future.set_exception(KafkaTimeoutError())
        else:
            future.set_result(SimpleNamespace(offset=self.sent))
        return future


def test_confirm_raises_when_any_send_was_not_acknowledged() -> None:
    """flush() would have passed; confirm() names the failure, and forgets the sends."""

    async def scenario() -> None:
        sends = Confirmed(Producer(fail_later=frozenset({2})))
        for n in range(3):
            await sends.send("t", None, str(n).encode())
        with pytest.raises(SendFailed) as caught:
            await sends.confirm()
        assert isinstance(caught.value.__cause__, KafkaTimeoutError)
        assert await sends.confirm() == []

    asyncio.run(scenario())


def test_confirm_returns_every_acknowledgement_in_send_order() -> None:
    async def scenario() -> list[int]:
        sends = Confirmed(Producer())
        for n in range(3):
            await sends.send("t", None, str(n).encode())
        return [meta.offset for meta in await sends.confirm()]

    assert asyncio.run(scenario()) == [1, 2, 3]


def test_nothing_is_sent_before_confirm() -> None:
    """A unit that fails while it is computed has sent nothing: a retry sends no twin."""

    async def scenario() -> int:
        producer = Producer()
        sends = Confirmed(producer)
        await sends.send("orders.dlq", b"k", b"v")
        sent_before = producer.sent
        await sends.confirm()
        return sent_before * 10 + producer.sent

    assert asyncio.run(scenario()) == 1


def test_a_batch_sends_nothing_once_a_rebalance_began() -> None:
    """The rebalance begins while the batch computes: its sends never reach the
    producer (the partition's next owner may already have restored its table), the
    batch is given up at once, and that is no failure."""
    handed: list[str] = []

    class Producer:
        async def send(self, topic: str, *_args: Any) -> Any:
            handed.append(topic)
            done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done

    harness = Harness(lambda _o, _call: None)

    async def handle(events: list[Any]) -> None:
        sends = Confirmed(Producer())
        await sends.send("out", None, b"1")
        await sends.confirm()  # before the rebalance: sent
        harness.app.rebalancing_count += 1
        await sends.send("changelog", None, b"2")
        await sends.confirm()

    harness.runner.handle = handle
    assert not harness.run([event(0, 1)])
    assert handed == ["out"]
    assert harness.failures._value.get() == 0
    assert harness.waits == []
