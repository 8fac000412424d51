"""A correction of Faust 0.15.3: records skipped during a rebalance are read again.

When a rebalance starts, records already fetched (and some fetched just after the
seek to the committed offsets, before the new generation is set) carry the old
consumer generation. Faust's stream skips them (faust/streams.py, ``_py_aiter``:
``value = skipped_value``) and then *acknowledges* them (``do_ack or value is
skipped_value``): their offsets were committed although no agent saw them, and, even
unacknowledged, the fetch position is already past them. Measured here: windows came
out short after a worker joined while readings flowed (5 runs of 7), with the new
owner starting 23 offsets after the committed one.

With this correction a stale record's ack is ignored, so its offset stays uncommitted,
and its partition, if this worker still owns it, is sought back to the oldest skipped
offset: the record is read again in the new generation.

A second path loses records the same way: after the rebalance Faust seeks each
partition back to its committed offset, but records of a fetch already in progress
(offsets after the committed one) are still delivered, and Faust then *drops* every
re-read record below the highest offset delivered (``DROPPED MESSAGE ROFF`` in
faust/transport/consumer.py, logged only at dev level). The committed offset stays
behind, and the worker reads on from the later offset. Faust's "read offset" filter
is therefore switched off: every fetched record reaches the agent.

Records of the old generation that an agent did process, and records read twice after
a seek, are skipped by the pipelines' exactly-once state (table values guarded by
source offsets), so reading a record again is always safe and losing one never is.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from faust.transport.consumer import Consumer

log = logging.getLogger(__name__)

_installed = False
_seeks: set[asyncio.Task[None]] = set()


def install_rebalance_ack_fix() -> None:
    """Make ``Consumer.ack`` ignore and re-read records of an earlier generation (idempotent)."""
    global _installed
    if _installed:
        return
    original = Consumer.ack

    def ack(self: Any, message: Any) -> bool:
        generation = getattr(message, "generation_id", None)
        if generation is not None and generation != self.app.consumer_generation_id:
            _read_again(self, message)
            return False
        return bool(original(self, message))

    Consumer.ack = ack  # type: ignore[method-assign]
    original_init = Consumer.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self._read_offset = _NoReadOffsetFilter(self._read_offset)

    Consumer.__init__ = init  # type: ignore[method-assign]
    _installed = True


class _NoReadOffsetFilter(dict[Any, Any]):
    """Faust's read offsets, kept for its other uses, but never used to drop a record.

    The drain loop reads them with ``__getitem__``: None there means "deliver".
    """

    def __getitem__(self, key: Any) -> None:
        return None


def _read_again(consumer: Any, message: Any) -> None:
    """Seek the record's partition back to it, once per burst of skipped records."""
    tp = message.tp
    try:
        owned = tp in consumer.assignment()
        loop = asyncio.get_running_loop()
    except Exception:  # no consumer or no loop (a unit test): the committed offset holds
        return
    if not owned:
        return  # the new owner starts from the committed offset, which did not move
    pending: dict[Any, int] = consumer.__dict__.setdefault("_stale_rewinds", {})
    if tp in pending:
        pending[tp] = min(pending[tp], message.offset)
        return
    pending[tp] = message.offset

    async def seek_back() -> None:
        offset = pending.pop(tp)
        log.info("re-reading %s from %d: skipped during a rebalance", tp, offset)
        await consumer.seek(tp, offset)

    # Kept until done: the loop holds only weak references to tasks.
    task = loop.create_task(seek_back())
    _seeks.add(task)
    task.add_done_callback(_seeks.discard)
