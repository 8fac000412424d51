"""A correction of Faust 0.15.3: records skipped during a rebalance must not be acked.

When a rebalance starts, records already fetched carry the old consumer generation.
Faust's stream skips them (faust/streams.py, ``_py_aiter``: ``value = skipped_value``)
and then *acknowledges* them (``do_ack or value is skipped_value``), so their offsets
are committed although no agent ever saw them. A partition that stays with the same
worker then resumes after them, and a new owner starts after them: those records are
lost. Measured here: a worker joining while readings flowed left windows short.

With this correction a stale record's ack is ignored: the offset stays uncommitted and
the record is read again after the rebalance, by whichever worker owns it then. A
record of the old generation that an agent did process (its batch ended during the
rebalance) is read again too; the pipelines' exactly-once state skips it.
"""

from __future__ import annotations

from typing import Any

from faust.transport.consumer import Consumer

_installed = False


def install_rebalance_ack_fix() -> None:
    """Make ``Consumer.ack`` ignore records of an earlier consumer generation (idempotent)."""
    global _installed
    if _installed:
        return
    original = Consumer.ack

    def ack(self: Any, message: Any) -> bool:
        generation = getattr(message, "generation_id", None)
        if generation is not None and generation != self.app.consumer_generation_id:
            return False
        return bool(original(self, message))

    Consumer.ack = ack  # type: ignore[method-assign]
    _installed = True
