"""Exactly-once table results without broker transactions.

Kafka delivers at least once: after a crash, records since the last committed offset
come again. Every table value here carries ``_o``, the highest offset of its source
partition already applied to it. A partition is read in order, so a record whose
offset is not above ``_o`` has already been counted in that value and is skipped.
Values are whole snapshots written to the changelog, so the offset and the figures it
guards always travel together.

Each key a batch touches is read once and written once (coalesced), whether a record
changed it or was skipped as a replay: rewriting the snapshot heals a changelog that
missed writes RocksDB had kept when the worker died.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, Protocol

import orjson

OFFSET = "_o"

Value = dict[str, Any]


class KeyValues(Protocol):
    """Where a PartitionState reads and writes: a dict in tests, a table partition live."""

    def get(self, key: Any, /) -> Any: ...

    def __setitem__(self, key: Any, value: Any, /) -> None: ...

    def __delitem__(self, key: Any, /) -> None: ...


def _no_barrier() -> None:
    """A store written in one step (a dict in tests) has no phases to separate."""


class PartitionState:
    """One source partition's view of a table during one batch: read once, write once."""

    def __init__(self, table: KeyValues) -> None:
        self.table = table
        self._cache: dict[Any, Value] = {}
        self._absent: set[Any] = set()
        self._deleted: set[Any] = set()
        #: Values read by ``peek``: not written at flush unless ``get`` asks for them.
        self._peeked: dict[Any, Value] = {}

    def get(self, key: Any) -> Value | None:
        """The value at ``key``, written back at flush (changed or not: a replay that
        reads its keys rewrites them, and so heals a changelog that lost them)."""
        if key in self._cache:
            return self._cache[key]
        if key in self._absent:
            return None
        stored = self._peeked.pop(key, None)
        if stored is None:
            stored = self.table.get(key)
        if stored is None:
            self._absent.add(key)
            return None
        # An in-memory store hands out its own objects, and changing them before the
        # flush would leak a batch that never completed into the table: copy those.
        fresh = getattr(self.table, "returns_fresh_values", False)
        value: Value = stored if fresh else orjson.loads(orjson.dumps(stored))
        self._cache[key] = value
        return value

    def peek(self, key: Any) -> Value | None:
        """The value at ``key``, read only: not written at flush unless ``get`` reads it
        too before the flush (and then changes it). Never change what this returns."""
        if key in self._cache:
            return self._cache[key]
        if key in self._absent:
            return None
        peeked = self._peeked.get(key)
        if peeked is None:
            peeked = self.table.get(key)
            if peeked is None:
                self._absent.add(key)
                return None
            self._peeked[key] = peeked
        return peeked

    def update(
        self, key: Any, offset: int, apply: Callable[[Value], None], new: Callable[[], Value]
    ) -> bool:
        """Apply ``apply`` to the value at ``key`` unless ``offset`` was applied already."""
        value = self.get(key)
        if value is None:
            value = self._cache[key] = new()
            self._absent.discard(key)
        if value.get(OFFSET, -1) >= offset:
            return False
        apply(value)
        value[OFFSET] = offset
        return True

    def put(self, key: Any, value: Value) -> None:
        """Replace the value at ``key`` (written at flush, with the rest)."""
        self._cache[key] = value
        self._absent.discard(key)
        self._deleted.discard(key)

    def keys_between(self, begin: str, end: str) -> list[str]:
        """The string keys in ``[begin, end)``, stored or written in this batch, not deleted."""
        found = {k for k in self._cache if isinstance(k, str) and begin <= k < end}
        between = getattr(self.table, "keys_between", None)
        if between is not None:
            stored = between(begin, end)
        else:  # a dict in tests
            stored = [k for k in list(self.table) if isinstance(k, str) and begin <= k < end]  # type: ignore[call-overload]
        found.update(stored)
        return sorted(found - self._deleted)

    def detach(self, key: Any) -> Value | None:
        """The value this batch wrote at ``key``, taken out of the flush: for a caller
        that writes it apart (earlier than the rest)."""
        return self._cache.pop(key, None)

    def delete(self, key: Any) -> None:
        """Delete ``key`` at flush, with the rest (a tombstone in the changelog)."""
        self._cache.pop(key, None)
        self._absent.add(key)
        self._deleted.add(key)

    def applied(self, key: Any, offset: int) -> bool:
        value = self.get(key)
        return value is not None and value.get(OFFSET, -1) >= offset

    def flush_in_phases(self, phase: Callable[[Any, bool], int]) -> int:
        """Write every touched key once, in ascending ``phase(key, deleted)``, each phase
        acknowledged before the next is sent (a table with phases); returns the count.

        For writers whose keys depend on each other: data before the index that points
        at it, a request's recorded result after everything it stands for.
        """
        barrier = getattr(self.table, "barrier", _no_barrier)
        steps: dict[int, list[tuple[Any, Value | None]]] = {}
        for key, value in self._cache.items():
            steps.setdefault(phase(key, False), []).append((key, value))
        for key in self._deleted:
            steps.setdefault(phase(key, True), []).append((key, None))
        for number, step in enumerate(sorted(steps)):
            if number:
                barrier()
            for key, written_value in steps[step]:
                if written_value is not None:
                    self.table[key] = written_value
                else:
                    with contextlib.suppress(KeyError):  # a dict (tests) that never held it
                        del self.table[key]
        written = len(self._cache) + len(self._deleted)
        self._cache.clear()
        self._absent.clear()
        self._peeked.clear()
        self._deleted.clear()
        return written

    def flush(self, first: Any = None, last: Any = None) -> int:
        """Write every touched key once, ``first`` before all others and ``last`` after
        them; returns the count.

        A table with phases (streams/common/table_io.py) has each acknowledged before
        the next is sent: a marker written last (the partition's clock) proves that
        everything before it was written too, and a record written first (what a batch
        decided) is there whenever any of the keys it decided is.
        """
        head = self._cache.pop(first, None) if first is not None else None
        marker = self._cache.pop(last, None)
        barrier = getattr(self.table, "barrier", _no_barrier)
        if head is not None:
            self.table[first] = head
            barrier()
        for key, value in self._cache.items():
            self.table[key] = value
        for key in self._deleted:
            with contextlib.suppress(KeyError):  # a dict (tests) that never held it
                del self.table[key]
        if marker is not None:
            barrier()
            self.table[last] = marker
        written = len(self._cache) + len(self._deleted) + (marker is not None) + (head is not None)
        self._cache.clear()
        self._absent.clear()
        self._peeked.clear()
        self._deleted.clear()
        return written
