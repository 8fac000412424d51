"""The one send loop every producer uses: batched, rate-limited, with progress."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Iterable

from aiokafka import AIOKafkaProducer

#: (key, value), or (key, value, partition) for a record sent to a chosen partition.
Record = tuple[bytes | None, bytes] | tuple[bytes | None, bytes, int]


class Progress:
    """A one-line progress display on stderr, refreshed at most twice a second."""

    def __init__(self, label: str, total: int | None) -> None:
        self.label, self.total, self.sent = label, total, 0
        self.started = self._shown = time.monotonic()

    def add(self, n: int = 1, *, final: bool = False) -> None:
        self.sent += n
        now = time.monotonic()
        if final or now - self._shown >= 0.5:
            self._shown = now
            rate = self.sent / max(now - self.started, 1e-9)
            of = f"/{self.total}" if self.total else ""
            end = "\n" if final else ""
            sys.stderr.write(f"\r{self.label}: {self.sent}{of} sent, {rate:,.0f}/s   {end}")
            sys.stderr.flush()


async def paced(records: Iterable[Record], rate: float | None) -> AsyncIterator[Record]:
    """Yield records at ``rate`` per second (None: as fast as possible)."""
    started = time.monotonic()
    for count, record in enumerate(records):
        if rate:
            delay = started + count / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        yield record


async def send_all(
    bootstrap: str,
    topic: str,
    records: AsyncIterator[Record],
    *,
    label: str,
    total: int | None = None,
    quiet: bool = False,
) -> int:
    """Send every record to ``topic``; returns how many were sent once all are acknowledged."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=256 * 1024, acks="all"
    )
    await producer.start()
    progress = Progress(label, total)
    pending: list[asyncio.Future[object]] = []
    sent = 0
    try:
        async for key, value, *chosen in records:
            partition = chosen[0] if chosen else None
            pending.append(await producer.send(topic, key=key, value=value, partition=partition))
            sent += 1
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
            if not quiet:
                progress.add()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    if not quiet:
        progress.add(0, final=True)
    return sent
