"""A timer's writes stop once a rebalance begins (its partitions may be another
worker's): nothing more reaches the producer, and the timer learns it did not finish."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from streams.common.background import unless_rebalanced
from streams.common.sends import Confirmed


class Producer:
    def __init__(self) -> None:
        self.handed: list[bytes | None] = []

    async def send(self, _topic: str, _key: Any, value: bytes | None, *_rest: Any) -> Any:
        self.handed.append(value)
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def test_a_timer_stops_sending_when_a_rebalance_begins() -> None:
    app = SimpleNamespace(rebalancing_count=4)
    producer = Producer()

    async def close_windows() -> None:
        for value in (b"closed-1", b"closed-2"):
            sends = Confirmed(producer)
            await sends.send("results", None, value)
            await sends.confirm()
            app.rebalancing_count += 1  # a rebalance begins after the first write

    assert asyncio.run(unless_rebalanced(app, close_windows)) is False
    assert producer.handed == [b"closed-1"]


def test_a_timer_undisturbed_completes() -> None:
    app = SimpleNamespace(rebalancing_count=0)
    producer = Producer()

    async def write() -> None:
        sends = Confirmed(producer)
        await sends.send("t", None, b"x")
        await sends.confirm()

    assert asyncio.run(unless_rebalanced(app, write)) is True
    assert producer.handed == [b"x"]
