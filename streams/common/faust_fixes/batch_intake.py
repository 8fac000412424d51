"""A topic's records taken out of each fetch in runs, with no Faust event per record.

Faust hands every fetched record to its streams one at a time: a ``ConsumerMessage``,
an ``asyncio.wait`` around the callback with four tasks (``Consumer._drain_messages``),
the Conductor's lock and handler, an ``Event``, a queue, the stream iterator, then one
acknowledgement per event. Measured: 25 us per record for the drain loop alone, most of
an orders worker's time on its simplest workload (docs/batch-intake.md). A ``BatchIntake``
takes its topic's records out of the map a fetch returns (the corrected ``_getmany`` in
``rebalance.py`` calls ``divert``), before that path sees them, and a batch loop takes
them in runs (``take``) and settles each run at once (``settle``).

What Faust guarantees for its own streams, the intake keeps with Faust's own machinery:

- **Offset order** (correction 1): each partition's run passes ``DeliveryOrder``, as a
  whole when it continues the sequence (``admit_run``), else record by record
  (``rebalance.judge``), synchronously: no seek can come between the fetch and the
  verdict, and records are buffered before a seek back is awaited.
- **Rebalances**: the intake is one of the queues ``app.flow_control`` manages, so the
  revocation empties it (and so does the resume after recovery), as it empties agents'
  queues; nothing is buffered while the flow is stopped. A run in progress is a
  ``Ticket`` in the consumer's unacknowledged messages: the revocation's ``wait_empty``
  waits for it, as it waits for events a stream took. What the resume after recovery
  empties (it comes after Faust's seek) is sought back and read again.
- **Acknowledgements** (corrections 3 and 4): a run is acknowledged in one step with
  ``Consumer.ack``'s bookkeeping and the corrections' rules: nothing of an earlier
  generation, nothing of a batch given up (``rebalance.abandon``), nothing below the
  committed offset. Faust's commit (``_new_offset`` with correction 4) then commits the
  contiguous acknowledged offsets as for any stream.
- **Back-pressure**: a partition holding ``high`` records is paused with Faust's
  ``on_buffer_full`` and resumed with ``on_buffer_drop`` once it is down to ``low``.

The topic stays subscribed through the Conductor with acknowledgements on, so Faust's
assignor, commits and lag see it as any agent's topic; no stream may read it besides.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterable, MutableMapping
from typing import Any

from faust.app.base import App
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaDriverConsumer
from faust.types import TP
from faust.types.tuples import ack_lock
from mode.utils.futures import notify
from mode.utils.queues import FlowControlEvent

from streams.common.faust_fixes.counters import Fix, count
from streams.common.faust_fixes.patching import Code, Original, check_all
from streams.common.faust_fixes.rebalance import (
    INTAKES_ATTRIBUTE,
    abandoned,
    install_rebalance_fixes,
    judge,
    seek_back,
)

log = logging.getLogger(__name__)

#: Faust's thresholds for its stream queues: paused at maxsize / 1.25, resumed at 0.4.
_HIGH_RATIO, _LOW_RATIO = 1 / 1.25, 0.4


class Received:
    """One record as a batch handler gets it: ``.message``, like a Faust event."""

    __slots__ = ("message",)

    def __init__(self, message: Any) -> None:
        self.message = message


class Ticket:
    """A run of one partition's records being handled: it stands in the consumer's
    unacknowledged messages (a WeakSet read for ``acked`` and ``refcount``) so that a
    revocation waits for it."""

    __slots__ = ("__weakref__", "acked", "generation", "items", "refcount", "tp")

    def __init__(self, tp: Any, generation: int | None, items: list[Received]) -> None:
        self.tp, self.generation, self.items = tp, generation, items
        self.acked, self.refcount = False, 1

    def __repr__(self) -> str:
        offsets = f"{self.items[0].message.offset}-{self.items[-1].message.offset}"
        return f"<Ticket {self.tp.topic}[{self.tp.partition}]@{offsets}>"


class BatchIntake:
    """The records of ``topic`` fetched by ``app``'s consumer, buffered per partition."""

    def __init__(self, app: Any, topic: str, *, high: int) -> None:
        check_all(CONTRACT)
        install_rebalance_fixes()
        self.app, self.topic = app, topic
        self.high = max(1, int(high * _HIGH_RATIO))
        self.low = int(self.high * _LOW_RATIO)
        self._runs: dict[Any, deque[list[Received]]] = {}
        self._counts: dict[Any, int] = {}
        self._total = 0
        self._paused: set[Any] = set()
        self._arrived = asyncio.Event()
        self._rotation = 0
        app.flow_control.manage_queue(self)
        intakes = getattr(app, INTAKES_ATTRIBUTE, None)
        if intakes is None:
            intakes = []
            setattr(app, INTAKES_ATTRIBUTE, intakes)
        intakes.append(self)

    @property
    def buffered(self) -> int:
        return self._total

    # -- the fetch side: called by the corrected ``_getmany`` ------------------------

    async def divert(
        self, consumer: Any, records: MutableMapping[Any, list[Any]], active: Any
    ) -> None:
        """Take this topic's records out of ``records``; buffer those due."""
        mine = [tp for tp in records if tp.topic == self.topic]
        if not mine:
            return
        # Faust's getmany delivers nothing while the flow is stopped (a revocation) and
        # only partitions still active or merely paused by back-pressure.
        flowing = consumer.flow_active and self.app.flow_control.is_active()
        buffered = consumer._buffered_partitions
        seeks: list[tuple[Any, int]] = []
        for fetched_tp in mine:
            fetched = records.pop(fetched_tp)
            # aiokafka's TopicPartition: equal to Faust's TP, but Faust asserts it holds
            # TPs in its active partitions, which back-pressure adds to.
            tp = TP(fetched_tp.topic, fetched_tp.partition)
            if not flowing or not fetched:
                continue
            if active is not None and tp not in active and tp not in buffered:
                continue
            consumer.app.monitor.track_tp_end_offset(tp, consumer.highwater(tp))
            kept = self._admitted(consumer, tp, fetched, seeks)
            if kept:
                self._put(consumer, tp, kept)
        for tp, offset in seeks:
            await seek_back(consumer, tp, offset)

    def _admitted(
        self, consumer: Any, tp: Any, fetched: list[Any], seeks: list[tuple[Any, int]]
    ) -> list[Received]:
        to_message = consumer._to_message
        generation = self.app.consumer_generation_id
        first, last = fetched[0].offset, fetched[-1].offset
        if consumer.delivery_order.admit_run(tp, first, last, len(fetched), generation):
            return [Received(to_message(tp, record)) for record in fetched]
        kept = []
        for record in fetched:
            message = to_message(tp, record)
            deliver, seek_to = judge(consumer, message)
            if deliver:
                kept.append(Received(message))
            if seek_to is not None:
                seeks.append((tp, seek_to))
                break  # the rest of this fetch comes again after the seek
        return kept

    def _put(self, consumer: Any, tp: Any, items: list[Received]) -> None:
        self._runs.setdefault(tp, deque()).append(items)
        held = self._counts[tp] = self._counts.get(tp, 0) + len(items)
        self._total += len(items)
        if held >= self.high and tp not in self._paused:
            consumer.on_buffer_full(tp)
            if tp in consumer._buffered_partitions:  # Faust does not pause in recovery
                self._paused.add(tp)
        self._arrived.set()

    def clear(self) -> None:
        """Drop what is buffered (``app.flow_control`` calls this at a revocation and at
        the resume after recovery): none of it was acknowledged, so it is read again
        (the next assignment seeks every partition; at the resume after recovery,
        ``read_again.ReadAgain`` seeks back the partitions delivered since their seek)."""
        self._runs.clear()
        self._counts.clear()
        self._total = 0
        self._resume(list(self._paused))

    def _resume(self, tps: Iterable[Any]) -> None:
        consumer = self.app.consumer
        for tp in tps:
            self._paused.discard(tp)
            consumer.on_buffer_drop(tp)

    # -- the batch side ---------------------------------------------------------------

    async def take(self, size: int) -> list[Ticket]:
        """Up to ``size`` buffered records (waiting for the first), one ticket per
        partition, each registered as unacknowledged before this returns."""
        while not self._total:
            self._arrived.clear()
            await self._arrived.wait()
        tps = list(self._runs)
        self._rotation = (self._rotation + 1) % len(tps)
        tickets, room = [], size
        for tp in tps[self._rotation :] + tps[: self._rotation]:
            if room and self._runs[tp]:
                ticket = self._ticket(tp, room)
                tickets.append(ticket)
                room -= len(ticket.items)
        consumer = self.app.consumer
        consumer._unacked_messages.update(tickets)
        self._resume([tp for tp in self._paused if self._counts.get(tp, 0) <= self.low])
        return tickets

    def _ticket(self, tp: Any, room: int) -> Ticket:
        runs = self._runs[tp]
        items: list[Received] = []
        while runs and len(items) < room:
            run = runs.popleft()
            wanted = room - len(items)
            if len(run) > wanted:
                runs.appendleft(run[wanted:])
                run = run[:wanted]
            items.extend(run)
        self._counts[tp] -= len(items)
        self._total -= len(items)
        return Ticket(tp, items[0].message.generation_id, items)

    def settle(self, tickets: Iterable[Ticket], *, handled: bool = True) -> None:
        """Release the tickets; acknowledge their records if ``handled``, unless their
        batch was given up or the consumer generation changed since: records not
        acknowledged are read again."""
        consumer = self.app.consumer
        with ack_lock:
            try:
                for ticket in tickets:
                    _settle(consumer, ticket, handled)
            finally:
                notify(consumer._waiting_for_ack)


def _settle(consumer: Any, ticket: Ticket, handled: bool) -> None:
    ticket.acked = True
    consumer._unacked_messages.discard(ticket)
    items = ticket.items
    if (
        not handled
        or abandoned(items[0].message)
        or ticket.generation != consumer.app.consumer_generation_id
    ):
        count(Fix.ACKS_IGNORED, len(items))
        return
    tp = ticket.tp
    committed = consumer._committed_offset[tp]
    index = consumer._acked_index[tp]
    new = [
        offset
        for offset in (item.message.offset for item in items)
        if (committed is None or offset >= committed) and offset not in index
    ]
    index.update(new)
    consumer._acked[tp].extend(new)
    consumer._n_acked += len(new)


_CONSUMER = "faust.transport.consumer"
_QUEUES = "mode.utils.queues"

#: What the intake replicates (getmany's checks) or relies on; ``Consumer.ack``, whose
#: bookkeeping it replicates, is fingerprinted by correction 3 (``rebalance.ACK``).
CONTRACT: tuple[Code, ...] = (
    Code(Consumer, "getmany", Original(_CONSUMER, "Consumer.getmany", "4b168d84882a70d6")),
    # Read ``acked`` and ``refcount`` of what is in ``_unacked_messages``.
    Code(Consumer, "wait_empty", Original(_CONSUMER, "Consumer.wait_empty", "e4662fe24f094819")),
    Code(
        Consumer,
        "_clean_unacked_messages",
        Original(_CONSUMER, "Consumer._clean_unacked_messages", "11be2587e71c9162"),
    ),
    Code(
        Consumer,
        "on_buffer_full",
        Original(_CONSUMER, "Consumer.on_buffer_full", "c8961679e0bcdce5"),
    ),
    Code(
        Consumer,
        "on_buffer_drop",
        Original(_CONSUMER, "Consumer.on_buffer_drop", "4b57e8a418d5ad9c"),
    ),
    Code(
        AIOKafkaDriverConsumer,
        "_to_message",
        Original("faust.transport.drivers.aiokafka", "Consumer._to_message", "7c24f6511b2fcef7"),
    ),
    # Stops the flow, then clears the managed queues, then waits for unacked messages.
    Code(
        App,
        "_on_partitions_revoked",
        Original("faust.app.base", "App._on_partitions_revoked", "d5c895bbe57dc73a"),
    ),
    Code(
        FlowControlEvent,
        "manage_queue",
        Original(_QUEUES, "FlowControlEvent.manage_queue", "a9a01679eaacf42c"),
    ),
    Code(
        FlowControlEvent, "clear", Original(_QUEUES, "FlowControlEvent.clear", "dda5e40d80288a8f")
    ),
    Code(
        FlowControlEvent, "resume", Original(_QUEUES, "FlowControlEvent.resume", "4dcdc1253fd0dcb4")
    ),
)
