"""Which chunks count: the first copy of each (object, seq) in a partition (pure).

A reader sends an object's chunks again when it died between sending them and
recording the object as ingested, and two readers can both send an object around a
rebalance of the ledger's partitions. The copies are identical (chunks.py), so the
first one in the partition's order counts and the others are duplicates.

The decision must come out the same when a record is read again after a crash, or a
replayed duplicate could count (its rollup keys' offset guards would not know it had
been skipped). So each object's entry remembers the offset of the record that
counted for each of its chunks: a record at or below the entry's ``_o`` counted iff it
is that record; a newer one counts iff its chunk has no record yet.

Entries are ``obj|<object>`` -> ``{"seqs": {seq: offset}, "t": first seen (epoch s),
"_o": last offset}``; a sweep forgets objects first seen more than ``keep_seconds``
ago (the reader's ledger stops them being sent again long before).
"""

from __future__ import annotations

from collections.abc import Iterable

from streams.common.exactly_once import OFFSET, PartitionState

PREFIX = "obj|"


def object_key(source: str) -> str:
    return PREFIX + source


def counts(state: PartitionState, source: str, seq: int, offset: int, now: float) -> bool:
    """Whether the chunk ``seq`` of ``source`` in the record at ``offset`` counts;
    records the decision in the object's entry."""
    key = object_key(source)
    entry = state.get(key)
    if entry is None:
        entry = {"seqs": {}, "t": int(now), OFFSET: -1}
        state.put(key, entry)
    seqs: dict[str, int] = entry["seqs"]
    if offset <= entry[OFFSET]:
        return seqs.get(str(seq)) == offset
    entry[OFFSET] = offset
    if str(seq) in seqs:
        return False
    seqs[str(seq)] = offset
    return True


def expired(entries: Iterable[tuple[str, object]], now: float, keep_seconds: float) -> list[str]:
    """The keys of object entries first seen more than ``keep_seconds`` before ``now``."""
    stale = []
    for key, value in entries:
        if isinstance(value, dict) and value.get("t", now) < now - keep_seconds:
            stale.append(key)
    return stale
