"""The batch agent every pipeline runs: take a batch, handle it until it is done.

Faust's ``take_events`` acknowledges a batch's events when the agent moves on, even if
the agent's body raised (its ``finally``): a batch that failed would be committed
unprocessed. So a batch is handled until it is done, by this policy:

- A failure of the surroundings (Kafka, storage, the network; see
  ``sends.caused_by_a_record``) is retried, waits doubling from ``first_delay`` to
  ``max_delay`` with jitter, for as long as it lasts: giving up would lose the records.
  The pipeline's ``..._batch_failures_total`` counts each failure; an alert fires.
- A failure caused by the data (a record over Kafka's size limit, an exception no rule
  foresaw) is tried ``attempts`` times; then the batch's records are handled one at a
  time, in offset order, and a record that still fails ``attempts`` times alone goes to
  ``reject`` (the pipeline dead-letters it as ``processing_error`` with the exception,
  and marks it done); the others are handled as usual. One poison record costs one
  dead letter, never a stalled partition.
- A batch sends nothing once a rebalance began (``sends.fenced``: its next send raises
  ``Superseded``), and every wait ends early then: the batch is given up
  (``faust_fixes.abandon``: its acknowledgements are ignored, so its offsets are never
  committed) and the partition's next owner reads the records again.

Handlers read their state afresh on every attempt; the per-record offset guards of
the tables make a retry exact.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from streams.common.deadletter import dead_letter
from streams.common.faust_fixes.batch_intake import BatchIntake
from streams.common.faust_fixes.rebalance import abandon
from streams.common.sends import Confirmed, Superseded, caused_by_a_record, fenced

log = logging.getLogger(__name__)

Handle = Callable[[list[Any]], Awaitable[None]]
Reject = Callable[[Any, Exception], Awaitable[None]]

#: The dead-letter reason of a record that fails alone, deterministically.
PROCESSING_ERROR = "processing_error"


async def dead_letter_failure(
    producer: Any, dlq_topic: str, event: Any, error: Exception, counter: Any
) -> None:
    """The usual ``reject``: the record that failed alone dead-lettered as
    ``processing_error`` with the exception, acknowledged, then counted in ``counter``
    (a Prometheus counter with a ``reason`` label)."""
    sends = Confirmed(producer)
    detail = f"{type(error).__name__}: {error}"
    await dead_letter(sends, dlq_topic, event.message, PROCESSING_ERROR, detail)
    await sends.confirm()
    counter.labels(PROCESSING_ERROR).inc()


@dataclass(frozen=True)
class Retry:
    """How failed attempts are spaced and when a data failure isolates records."""

    attempts: int = 3
    first_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, failures: int, draw: Callable[[], float] = random.random) -> float:
        """The wait after the ``failures``-th failure: doubling, capped, the upper half
        drawn at random so that workers failing together do not retry in lockstep."""
        ceiling = min(self.first_delay * 2.0 ** (failures - 1), self.max_delay)
        return ceiling / 2 + draw() * ceiling / 2


def by_partition(events: Sequence[Any]) -> dict[int, list[Any]]:
    """``events`` grouped by source partition, each group in offset order."""
    groups: dict[int, list[Any]] = defaultdict(list)
    for event in events:
        groups[event.message.partition].append(event)
    return groups


class BatchRunner:
    """Handles batches by the policy above; ``run`` is True once a batch is done, False
    when a rebalance took it away first."""

    def __init__(
        self,
        app: Any,
        what: str,
        handle: Handle,
        reject: Reject,
        failures: Any,
        *,
        retry: Retry | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.app = app
        self.what = what
        self.handle = handle
        self.reject = reject
        self.failures = failures
        self.retry = retry or Retry()
        self.sleep = sleep
        #: The consumer generation of the last batch given up: none of it is handled.
        self._given_up: int | None = None

    async def run(self, events: list[Any]) -> bool:
        if self._given_up is not None:
            # Records of the consumer generation in which a batch was given up: handling
            # them would commit past that batch's records. They are read again, with the
            # rest of that batch, once the partitions are assigned anew.
            stale = [e for e in events if _generation(e) == self._given_up]
            abandon(event.message for event in stale)
            events = [e for e in events if _generation(e) != self._given_up]
            if not events:
                return False
        generation: int = self.app.rebalancing_count
        with fenced(lambda: self.app.rebalancing_count == generation):
            if await self._run(events, generation):
                return True
        log.info(
            "%s: a rebalance began; %d record(s) left to the next owner", self.what, len(events)
        )
        abandon(event.message for event in events)
        self._given_up = _generation(events[0])
        return False

    async def _run(self, events: list[Any], generation: int) -> bool:
        failures = 0
        while True:
            try:
                await self.handle(events)
                return True
            except Superseded:
                return False
            except Exception as exc:
                failures += 1
                self._count(exc, len(events), failures)
                if caused_by_a_record(exc) and failures >= self.retry.attempts:
                    return await self._one_by_one(events, generation)
            if not await self._wait(failures, generation):
                return False

    async def _one_by_one(self, events: list[Any], generation: int) -> bool:
        log.error("%s: handling its %d records one at a time", self.what, len(events))
        for event in events:
            if not await self._single(event, generation):
                return False
        return True

    async def _single(self, event: Any, generation: int) -> bool:
        failures = 0
        rejecting: Exception | None = None
        while True:
            try:
                if rejecting is None:
                    await self.handle([event])
                else:
                    await self.reject(event, rejecting)
                return True
            except Superseded:
                return False
            except Exception as exc:
                failures += 1
                self._count(exc, 1, failures)
                if (
                    rejecting is None
                    and caused_by_a_record(exc)
                    and failures >= self.retry.attempts
                ):
                    message = event.message
                    log.error(
                        "%s: record %s[%d]@%d fails alone; dead-lettered as %s",
                        self.what, message.topic, message.partition, message.offset,
                        PROCESSING_ERROR,
                    )  # fmt: skip
                    rejecting, failures = exc, 0
                    continue
            if not await self._wait(failures, generation):
                return False

    def _count(self, exc: Exception, records: int, failures: int) -> None:
        self.failures.inc()
        log.error(
            "%s: %d record(s) failed (attempt %d), none of it committed",
            self.what, records, failures, exc_info=exc,
        )  # fmt: skip

    async def _wait(self, failures: int, generation: int) -> bool:
        """Sleep before the next attempt; False if a rebalance happened meanwhile."""
        await self.sleep(self.retry.delay(failures))
        current: int = self.app.rebalancing_count
        return current == generation


def _generation(event: Any) -> int | None:
    """The consumer generation a record was fetched in (Faust's ``generation_id``)."""
    generation: int | None = getattr(event.message, "generation_id", None)
    return generation


def batch_source(
    app: Any,
    topic: Any,
    name: str,
    runner: BatchRunner,
    *,
    size: int,
    ready: asyncio.Event | None = None,
) -> BatchIntake:
    """Handle ``topic`` in batches of up to ``size`` records taken straight from the
    fetches (``faust_fixes/batch_intake.py``: no Faust event per record), each handled by
    ``runner`` and reported to the batch sensor once done.

    A batch is what was fetched while the previous one was handled: no wait to fill it,
    so a record waits at most one batch. The topic must have no other reader."""
    intake = BatchIntake(
        app, topic.get_topic_name(), high=max(app.conf.stream_buffer_maxsize, 2 * size)
    )
    app.topics.add(topic)  # subscribed, co-partitioned and committed as an agent's topic

    async def source() -> None:
        if ready is not None:
            await ready.wait()
        while not app.should_stop:
            tickets = await intake.take(size)
            items = [item for ticket in tickets for item in ticket.items]
            started = time.perf_counter()
            try:
                done = await runner.run(items)
            except BaseException:  # a stopping worker: nothing of the batch counts
                intake.settle(tickets, handled=False)
                raise
            # A batch given up (``done`` False) is settled unacknowledged all the same.
            intake.settle(tickets)
            if done:
                app.monitor.record_batch(name, items, started)

    source.__name__ = source.__qualname__ = name.replace(".", "_")
    app.task(source)
    return intake


def batch_agent(
    app: Any,
    topic: Any,
    name: str,
    runner: BatchRunner,
    *,
    size: int,
    within: float,
    ready: asyncio.Event | None = None,
    split: Callable[[list[Any]], list[list[Any]]] | None = None,
) -> Any:
    """Declare the agent ``name`` on ``topic``: batches of up to ``size`` records (or what
    came within ``within`` seconds), optionally ``split`` into runs, each handled by
    ``runner`` and reported to the batch sensor once done."""

    async def agent(stream: Any) -> None:
        if ready is not None:
            await ready.wait()
        async for taken in stream.take_events(size, within=within):
            for events in split(taken) if split is not None else [taken]:
                started = time.perf_counter()
                # Given up at a rebalance, a run's records are read again; so are the
                # runs after it (the runner gives up every record of that generation):
                # Faust acknowledges all of ``taken`` once the loop moves on.
                if await runner.run(events):
                    app.monitor.record_batch(name, events, started)

    # Faust names the agent's service in its logs after the function's qualified name.
    agent.__name__ = agent.__qualname__ = name.replace(".", "_")
    return app.agent(topic, name=name)(agent)
