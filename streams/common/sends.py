"""Sends that count as done only once Kafka acknowledged them.

``producer.flush()`` waits until the producer's buffer is empty, but a record whose
delivery failed leaves the buffer too: flush never raises, and a batch that relied on
it would be counted (its offsets committed) with outputs that never reached Kafka.
Every output of a batch (results, dead letters, alerts, changelog records) goes through
a ``Confirmed``: its ``confirm()`` awaits each record's acknowledgement and raises if
any failed, so the batch is retried instead of being counted.

A batch handled under ``fenced(still_current)`` sends nothing more once
``still_current()`` is false (a rebalance began): ``confirm()`` raises ``Superseded``.
A worker that goes on writing a partition's changelog after its next owner restored
the table would leave that owner's state without those writes while the offsets they
stand for are committed; stopping at the next send keeps the revocation short (Faust
waits for the batch), and the next owner reads the records again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from aiokafka.errors import KafkaError, MessageSizeTooLargeError, RecordTooLargeError

from streams.common.send_batches import SendFailed, send_all

__all__ = ["Confirmed", "SendFailed", "Superseded", "caused_by_a_record", "causes", "fenced"]

Headers = list[tuple[str, bytes]]

#: Failures caused by one record's own content: retrying that record can never succeed.
RECORD_ERRORS = (MessageSizeTooLargeError, RecordTooLargeError)


class Superseded(RuntimeError):
    """A rebalance began while the batch was handled: nothing more of it is sent."""


_still_current: ContextVar[Callable[[], bool] | None] = ContextVar("still_current", default=None)


@contextmanager
def fenced(still_current: Callable[[], bool]) -> Iterator[None]:
    """Within this block, every ``confirm()`` first checks ``still_current()``."""
    token = _still_current.set(still_current)
    try:
        yield
    finally:
        _still_current.reset(token)


class Confirmed:
    """The sends of one unit of work, handed to the producer and acknowledged together
    by ``confirm()``.

    Records wait in ``pending`` until then: a unit that fails while it is still being
    computed (a poison record, a bug) has sent nothing, so trying it again does not send
    its dead letters or results twice.
    """

    def __init__(self, producer: Any) -> None:
        self.producer = producer
        self.pending: list[tuple[str, bytes | None, bytes | None, int | None, Any]] = []

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        partition: int | None = None,
        headers: Headers | None = None,
    ) -> None:
        """Add a record to the unit's sends."""
        self.pending.append((topic, key, value, partition, headers))

    async def confirm(self) -> list[Any]:
        """Hand every record to the producer (a Faust transport producer), in record
        batches per partition (send_batches.py), each partition's in order, and await
        each acknowledgement (the records' metadata, in send order); raise
        SendFailed if any send failed, or the error the producer raised at once (a
        record over the size limit). The sends are forgotten either way: a retry sends
        again."""
        records, self.pending = self.pending, []
        if not records:
            return []
        still_current = _still_current.get()
        if still_current is not None and not still_current():
            raise Superseded(f"a rebalance began: {len(records)} record(s) not sent")
        return await send_all(self.producer, records)


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the exceptions it was raised from or during, outermost first."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def caused_by_a_record(exc: BaseException) -> bool:
    """Whether a failure comes from the data being processed, so that retrying the same
    records will fail the same way (then the record is dead-lettered, not retried for
    ever), rather than from the surroundings (Kafka, storage, the network: retried).

    A record over the size limit is the data's fault; any other Kafka or I/O error is
    the surroundings'; an exception raised by the pipeline's own code (a ValueError on
    a value no rule foresaw) is the data's.
    """
    for cause in causes(exc):
        if isinstance(cause, Superseded):
            return False
        if isinstance(cause, RECORD_ERRORS):
            return True
        if isinstance(cause, KafkaError | OSError | TimeoutError | asyncio.CancelledError):
            return False
    return True
