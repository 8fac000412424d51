"""Retrying a batch that failed, instead of letting Faust acknowledge it unprocessed.

Faust's ``take_events`` acknowledges a batch's events when the agent moves on, even if
the agent's body raised (its ``finally``): an agent that crashes on a batch and is
restarted would commit offsets past readings it never wrote. So a failed batch is tried
again, with the state reloaded, until it succeeds (the per-record offset guards make a
retry exact), or until a rebalance takes it away (its acknowledgements then belong to
an old generation and are ignored: the partition's next owner reads it again).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)


async def retry_until_done(
    attempt: Callable[[], Awaitable[None]],
    *,
    abandon: Callable[[], bool],
    on_error: Callable[[Exception, float], None],
    first_delay: float = 0.5,
    max_delay: float = 30.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> bool:
    """Await ``attempt()`` until it returns (True) or, after a failure, ``abandon()``
    is true (False). Each failure is reported to ``on_error`` with the wait before the
    next attempt, which doubles up to ``max_delay``."""
    delay = first_delay
    while True:
        try:
            await attempt()
            return True
        except Exception as exc:
            on_error(exc, delay)
        await sleep(delay)
        if abandon():
            return False
        delay = min(delay * 2, max_delay)


async def handle_until_done(
    app: Any, attempt: Callable[[], Awaitable[None]], *, failures: Any, what: str
) -> bool:
    """Retry a batch's ``attempt`` until it succeeds (True) or a rebalance (a new consumer
    generation of ``app``) takes the batch away (False); each failure is logged and
    counted in ``failures`` (a Prometheus counter)."""
    generation: int = app.rebalancing_count

    def failed(exc: Exception, delay: float) -> None:
        failures.inc()
        log.error("%s failed, none of it committed; retrying in %.1f s", what, delay, exc_info=exc)

    def taken_away() -> bool:
        current: int = app.rebalancing_count
        return current != generation

    return await retry_until_done(attempt, abandon=taken_away, on_error=failed)
