"""Timers and background tasks that never stop a worker.

An exception that escapes a Faust timer or task crashes the whole worker (mode stops
the app's service tree), and a worker restarted on the same data fails the same way
again: one bad reference record, or one far-future timestamp, would stop the product.
Every periodic or background body of a pipeline therefore runs through ``guarded``:
a failure is logged with its traceback, counted in the pipeline's
``..._task_failures_total{task}`` (alert rules fire on it), and the next tick tries
again.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from streams.common.sends import Superseded, fenced

log = logging.getLogger(__name__)

Body = TypeVar("Body", bound=Callable[..., Awaitable[None]])


def guarded(failures: Any, task: str) -> Callable[[Body], Body]:
    """Wrap an async body so that an exception is logged and counted, never raised.

    ``failures`` is a Prometheus counter with a ``task`` label. Cancellation (a
    stopping worker) still propagates: it is not an Exception.
    """
    counter = failures.labels(task)

    def decorate(body: Body) -> Body:
        @functools.wraps(body)
        async def run(*args: Any, **kwargs: Any) -> None:
            try:
                await body(*args, **kwargs)
            except Exception:
                counter.inc()
                log.exception("%s failed; it runs again on its next tick", task)

        return run  # type: ignore[return-value]

    return decorate


def guarded_timer(
    app: Any, seconds: float, failures: Any, *, on_leader: bool = False
) -> Callable[[Body], Body]:
    """``app.timer`` whose body is ``guarded``; the task label is the body's name."""

    def decorate(body: Body) -> Body:
        wrapped = guarded(failures, body.__name__)(body)
        app.timer(seconds, on_leader=on_leader)(wrapped)
        return wrapped

    return decorate


def guarded_call(failures: Any, task: str, call: Callable[[], None]) -> bool:
    """Run a synchronous ``call`` (a listener, a refresh); False if it raised (counted)."""
    try:
        call()
    except Exception:
        failures.labels(task).inc()
        log.exception("%s failed", task)
        return False
    return True


async def unless_rebalanced(app: Any, body: Callable[[], Awaitable[None]]) -> bool:
    """Run ``body`` (a timer's writes to tables and topics); False if a rebalance began
    meanwhile, which stops its sends (``sends.fenced``).

    A timer that closes windows or deletes state writes outside any batch: once its
    partitions may be another worker's, a write that lands after the new owner restored
    the table would be a stale copy in the changelog. The caller forgets what it held in
    memory (ahead of what was written) and the next tick starts afresh.
    """
    generation: int = app.rebalancing_count
    try:
        with fenced(lambda: app.rebalancing_count == generation):
            await body()
    except Superseded:
        log.info("a rebalance began: a timer's writes stopped")
        return False
    return True
