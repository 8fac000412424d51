"""The worker's debounced rewrite of the object, with the batch job's publish step.

A batch that changed the table marks the object stale; a timer rewrites it once the
table has been quiet ``LAUNCHES_DEBOUNCE_SECONDS`` (a producer's whole payload lands as
one rewrite, not hundreds), or ``LAUNCHES_DEBOUNCE_MAX_SECONDS`` after the first change
at the latest while changes go on. The object is written only while this worker owns
the partition with its table loaded, from every launch in it; a worker that has just
taken the partition over writes once too (the previous owner may have stopped between
a change and its rewrite; an unchanged object costs one read). A failed rewrite is
counted and tried again on the next tick; the launches stay in the table meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from streams.common.background import guarded
from streams.common.membership import still_member
from streams.common.partitioning import owns_loaded
from streams.common.table_io import RocksPartition
from streams.launches.job import Loaded, publish
from streams.launches.load import Destination
from streams.launches.metrics import Metrics
from streams.launches.models import check

log = logging.getLogger(__name__)


class Rewriter:
    def __init__(
        self,
        quiet: float,
        longest: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.quiet, self.longest, self.clock = quiet, longest, clock
        self.first: float | None = None  # first change not yet written
        self.last = 0.0
        self.changes = 0

    def changed(self) -> None:
        now = self.clock()
        if self.first is None:
            self.first = now
        self.last = now
        self.changes += 1

    def due(self) -> bool:
        if self.first is None:
            return False
        now = self.clock()
        return now - self.last >= self.quiet or now - self.first >= self.longest

    def written(self, changes_seen: int) -> None:
        """The object holds every change up to the ``changes_seen``-th."""
        if self.changes == changes_seen:
            self.first = None


class Pauses:
    """Holds writes after this process stood still: a worker paused longer than about
    half its session timeout (SIGSTOP, a stalled VM, a long GC) may have lost its
    partition meanwhile without knowing it yet, and its table may be stale. It writes
    again only once the group's coordinator accepted a heartbeat of its generation
    (``member``: streams/common/membership.py), asked after the pause; a worker dropped
    from the group is refused until its rebalance, which stops it (``owns_loaded``).
    A fixed wait instead was not enough: a CI run saw a resumed worker write its stale
    table once a session timeout had passed and its rebalance had not yet begun."""

    def __init__(
        self,
        session: float,
        member: Callable[[], Awaitable[bool]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session, self.member, self.clock = session, member, clock
        self.last: float | None = None  # the previous look (the first is no pause)
        self.held = False

    async def may_write(self) -> bool:
        now = self.clock()
        if self.last is not None and now - self.last > self.session / 2:
            self.held = True
            log.warning("stood still %.1f s: no rewrite until the group confirms this "
                        "worker's membership", now - self.last)  # fmt: skip
        self.last = now
        if self.held and await self.member():
            # An answer slow enough to hide another pause proves nothing.
            self.last = self.clock()
            if self.last - now <= self.session / 2:
                self.held = False
                log.info("membership confirmed after the pause: rewrites resume")
        return not self.held


@dataclass
class Owner:
    """What this worker did since it last took the partition over."""

    generation: int = -1  # Faust's rebalancing_count when it did; -1: not the owner
    wrote_rows: bool = False  # deletions may empty the table: then the object too


def start_rewrites(
    app: Any,
    table: Any,
    topic: str,
    rewriter: Rewriter,
    destination: Destination,
    metrics: Metrics,
    every: float = 0.5,
) -> None:
    """The timer that rewrites the object when ``rewriter`` says it is due."""
    owner = Owner()
    session = float(app.conf.broker_session_timeout)
    pauses = Pauses(session, lambda: still_member(app, patience=session / 2))

    def still_owner() -> bool:
        return owns_loaded(app, topic, 0) and owner.generation == app.rebalancing_count

    @app.timer(every)
    @guarded(metrics.task_failures, "rewrite")
    async def rewrite() -> None:
        if not await pauses.may_write():
            return
        if not owns_loaded(app, topic, 0):
            owner.generation = -1
            return
        if owner.generation != app.rebalancing_count:
            owner.generation, owner.wrote_rows = app.rebalancing_count, False
            rewriter.changed()  # newly owned: write what the table holds once
        if not rewriter.due():
            return
        seen = rewriter.changes
        launches = [check(value) for _, value in RocksPartition(table, 0).scan("")]
        if not launches and not owner.wrote_rows:
            # An empty table at takeover (a new deployment, a topic not yet filled) must
            # not erase the object; one emptied by tombstones while owned writes it empty.
            rewriter.written(seen)
            return
        if not still_owner():
            return
        started = time.monotonic()
        try:  # in a thread: the upload blocks, and the agent goes on meanwhile
            loaded: Loaded = await asyncio.to_thread(publish, launches, destination, metrics)
        except Exception:
            metrics.ran(succeeded=False)
            raise
        metrics.ran(succeeded=True)
        metrics.run_seconds.set(time.monotonic() - started)
        owner.wrote_rows = owner.wrote_rows or loaded.rows > 0
        rewriter.written(seen)
        log.info(
            "%s: %d rows %s", loaded.uri, loaded.rows, "written" if loaded.written else "unchanged"
        )
