"""Whether the broker still counts a consumer a member of its group (streams.common.membership),
against the embedded broker: a consumer whose loop stood still past its session timeout
is refused, the one that took its partitions over is accepted."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.common.broker import EmbeddedBroker
from streams.common.membership import heartbeat_accepted

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

SESSION_MS = 6_000
GROUP = dict(group_id="members", session_timeout_ms=SESSION_MS, heartbeat_interval_ms=1_000)


async def joined(bootstrap: str) -> AIOKafkaConsumer:
    """A consumer of the group, started, with an assignment."""
    consumer = AIOKafkaConsumer("watched", bootstrap_servers=bootstrap, **GROUP)  # type: ignore[arg-type]
    await consumer.start()
    deadline = time.monotonic() + 40
    while not consumer.assignment():
        assert time.monotonic() < deadline, "no assignment"
        await consumer.getmany(timeout_ms=200)
    return consumer


class OwnLoop:
    """A consumer on a loop of its own thread (as Faust runs its consumer)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stand_still(self, seconds: float) -> None:
        """Block the loop, as SIGSTOP would the process."""
        self.loop.call_soon_threadsafe(time.sleep, seconds)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


async def topic(bootstrap: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic("watched", 2, 1)])
    finally:
        await admin.close()


def test_a_member_that_stood_still_past_its_session_is_refused_and_its_successor_accepted(
    broker: EmbeddedBroker,
) -> None:
    asyncio.run(topic(broker.bootstrap))
    stale = OwnLoop()
    first = stale.run(joined(broker.bootstrap))
    try:
        assert stale.run(heartbeat_accepted(first))
        stale.stand_still(3 * SESSION_MS / 1000)

        async def take_over() -> bool:
            second = await joined(broker.bootstrap)
            try:
                deadline = time.monotonic() + 40
                while len(second.assignment()) < 2:  # the stale one dropped: all its
                    assert time.monotonic() < deadline, "never took every partition"
                    await second.getmany(timeout_ms=200)
                return await heartbeat_accepted(second)
            finally:
                await second.stop()

        assert asyncio.run(take_over())
        # The first call its loop makes once it moves again: refused (or, if its own
        # heartbeat came first, no generation left to claim).
        assert not stale.run(heartbeat_accepted(first))
    finally:
        # The evicted member is rejoining by now, and aiokafka's stop waits for that
        # join; on the embedded broker it was seen to take over 60 s (1 run in 3, in CI
        # and here). What the test claims is asserted above: the stop is cancelled after
        # 10 s and the loop closed (its consumer's connections go with the broker).
        stopping = asyncio.run_coroutine_threadsafe(first.stop(), stale.loop)
        try:
            stopping.result(10)
        except concurrent.futures.TimeoutError:
            stopping.cancel()
        stale.close()
