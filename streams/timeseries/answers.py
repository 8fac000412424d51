"""Requests waiting for the answer to their write, on the worker that applies it.

A request registers its request id before the command is sent (or, when it waits from
another worker, before it looks in the table), and the agent resolves it once the
batch that applied the command is written (changelog acknowledged, then RocksDB). So
the answer a client gets stands for a write any worker's read will see.
"""

from __future__ import annotations

import asyncio
from typing import Any

Answer = dict[str, Any]


def waiting_key(rid: str, digest: str | None) -> str:
    """What a request waits under: its request id and its body's fingerprint, so a
    request that reuses a key with another body never takes the other's answer."""
    return f"{rid} {digest or ''}"


class Answers:
    """Futures of the answers awaited on this worker, by request id."""

    def __init__(self) -> None:
        self._waiting: dict[str, list[asyncio.Future[Answer]]] = {}

    def expect(self, rid: str) -> asyncio.Future[Answer]:
        """A future resolved with ``rid``'s answer; register it before looking or sending."""
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(rid, []).append(future)
        return future

    def forget(self, rid: str, future: asyncio.Future[Answer]) -> None:
        """Stop waiting (a timeout, a client gone)."""
        futures = self._waiting.get(rid)
        if futures is None:
            return
        if future in futures:
            futures.remove(future)
        if not futures:
            del self._waiting[rid]

    def resolve(self, rid: str, answer: Answer) -> None:
        for future in self._waiting.pop(rid, []):
            if not future.done():
                future.set_result(answer)

    def __len__(self) -> int:
        return len(self._waiting)
