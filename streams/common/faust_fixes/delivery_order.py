"""Which fetched record may reach the agents: each partition's records in offset order.

The pipelines keep exactly-once state by remembering the offset they applied last (per
device for telemetry, per partition for orders) and skipping records at or below it as
replays. That is exact only if each partition's records are applied in offset order.
Faust 0.15.3 does not guarantee it around a rebalance: records fetched before it seeks a
partition back to its committed offset are still delivered after the seek. Measured
(telemetry, a worker joining under load): committed offset 103, the new owner was given
offsets 112-271 first, then, after the seek, 103-301; the records 103-111 of devices
whose later record had been applied were skipped as replays and lost.

``DeliveryOrder`` decides per record, from three facts: the consumer generation, the
offset each partition was last sought to, and how many fetches have returned since
(records of a fetch that returned before a seek describe the old position):

- nothing of a generation is delivered before its first seek (Faust seeks every
  partition to its committed offset once the tables are ready);
- after a seek, a partition's records are delivered only in sequence from the offset
  sought; a record already delivered in this sequence is dropped;
- a later offset from a fetch of before the seek is dropped (the seek reads it again);
- a later offset from a fetch of after the seek means the log has a hole (records
  deleted by retention, transaction markers): the partition is sought back once more,
  and if the hole is still there the sequence jumps over it.

A dropped record never reaches Faust's stream, so it is never acknowledged and its
offset cannot be committed.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable, Mapping
from dataclasses import dataclass


class Verdict(enum.Enum):
    DELIVER = "deliver"
    DROP = "drop"
    #: Seek the partition back to ``DeliveryOrder.expected(tp)`` and drop the record.
    SEEK_BACK = "seek back"
    #: Deliver, after offsets missing from the log were jumped over.
    DELIVER_AFTER_HOLE = "deliver after a hole"


@dataclass
class _Sequence:
    expected: int | None  # None: the next record read after the seek starts the sequence
    fetches_at_seek: int
    sought_back_to: int | None = None
    #: The first offset of the sequence: what a commit may not pass unprocessed.
    first: int | None = None


class DeliveryOrder:
    """The delivery rule of every partition one consumer reads, for one generation."""

    def __init__(self) -> None:
        self.generation: int | None = None
        self.fetches = 0
        self._sequences: dict[Hashable, _Sequence] = {}

    def fetched(self) -> None:
        """A fetch returned: the records converted from now on come from it."""
        self.fetches += 1

    def sought(self, generation: int, offsets: Mapping[Hashable, int | None]) -> None:
        """Partitions were sought (None: to where the reset policy puts them)."""
        if generation != self.generation:
            self._sequences.clear()
            self.generation = generation
        for tp, offset in offsets.items():
            self._sequences[tp] = _Sequence(offset, self.fetches, first=offset)

    def first(self, tp: Hashable) -> int | None:
        """The offset this generation started ``tp`` at (None: not known yet)."""
        sequence = self._sequences.get(tp)
        return None if sequence is None else sequence.first

    def admitted_since_seek(self) -> dict[Hashable, int]:
        """Partition -> the offset it was sought to, for each partition a record was
        delivered of since its last seek."""
        return {
            tp: sequence.first
            for tp, sequence in self._sequences.items()
            if sequence.first is not None and sequence.expected not in (None, sequence.first)
        }

    def expected(self, tp: Hashable) -> int | None:
        sequence = self._sequences.get(tp)
        return None if sequence is None else sequence.expected

    def seek_failed(self, tp: Hashable) -> None:
        """A SEEK_BACK did not happen: the next gap seeks back again."""
        sequence = self._sequences.get(tp)
        if sequence is not None:
            sequence.sought_back_to = None

    def admit_run(
        self, tp: Hashable, first: int, last: int, count: int, generation: int | None
    ) -> bool:
        """Admit a whole fetched run at once when ``admit`` would deliver each of its
        records (True; the sequence moves past ``last``); False changes nothing and
        leaves the run to ``admit``, record by record. ``count`` records, ascending."""
        sequence = self._sequences.get(tp)
        if sequence is None or generation != self.generation or last - first != count - 1:
            return False
        if sequence.expected is None:
            if self.fetches <= sequence.fetches_at_seek:
                return False
            sequence.first = first
        elif sequence.expected != first:
            return False
        sequence.expected = last + 1
        return True

    def admit(self, tp: Hashable, offset: int, generation: int | None) -> Verdict:
        sequence = self._sequences.get(tp)
        if sequence is None or generation != self.generation:
            return Verdict.DROP
        after_seek = self.fetches > sequence.fetches_at_seek
        if sequence.expected is None:
            if not after_seek:
                return Verdict.DROP
            sequence.expected = sequence.first = offset
        if offset == sequence.expected:
            sequence.expected = offset + 1
            return Verdict.DELIVER
        if offset < sequence.expected or not after_seek:
            return Verdict.DROP
        if sequence.sought_back_to != sequence.expected:
            sequence.sought_back_to = sequence.expected
            sequence.fetches_at_seek = self.fetches
            return Verdict.SEEK_BACK
        sequence.expected = offset + 1
        return Verdict.DELIVER_AFTER_HOLE
