"""Read once, write once, skip what was applied (streams.common.exactly_once)."""

from __future__ import annotations

import copy
from typing import Any

from streams.common.exactly_once import OFFSET, PartitionState, Value


class RecordingTable(dict[Any, Any]):
    """A dict that remembers every read and the order of every write."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.reads: list[Any] = []
        self.writes: list[Any] = []

    def get(self, key: Any, default: Any = None) -> Any:
        self.reads.append(key)
        return super().get(key, default)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.writes.append(key)
        super().__setitem__(key, value)


def add(amount: int) -> Any:
    def apply(value: Value) -> None:
        value["n"] = value.get("n", 0) + amount
        value.setdefault("seen", []).append(amount)

    return apply


def counter() -> Value:
    return {"n": 0}


def test_update_counts_each_offset_once() -> None:
    """Applying the same or an older offset again changes nothing and says so."""
    table: dict[Any, Any] = {}
    state = PartitionState(table)
    assert state.update("k", 5, add(1), counter) is True
    assert state.update("k", 5, add(1), counter) is False
    assert state.update("k", 4, add(1), counter) is False
    state.flush()
    assert table["k"]["n"] == 1
    assert table["k"][OFFSET] == 5


def test_offsets_survive_a_flush() -> None:
    """After a flush a new batch still skips offsets the table already holds."""
    table: dict[Any, Any] = {}
    first = PartitionState(table)
    first.update("k", 3, add(1), counter)
    first.flush()
    second = PartitionState(table)
    assert second.applied("k", 3) is True
    assert second.applied("k", 4) is False
    assert second.update("k", 3, add(10), counter) is False
    assert second.update("k", 4, add(10), counter) is True
    second.flush()
    assert table["k"]["n"] == 11


def test_batch_reads_and_writes_each_key_once() -> None:
    """However many records touch a key in a batch, it is read once and written once."""
    table = RecordingTable({"a": {"n": 1, OFFSET: 0}})
    state = PartitionState(table)
    for offset in range(1, 6):
        state.update("a", offset, add(1), counter)
        state.update("b", offset, add(2), counter)
        state.get("b")
    assert state.flush() == 2
    assert sorted(table.reads) == ["a", "b"]
    assert sorted(table.writes) == ["a", "b"]
    assert (table["a"]["n"], table["b"]["n"]) == (6, 10)


def test_skipped_keys_are_rewritten() -> None:
    """A key read only to skip a replay is still written back, healing a lost changelog write."""
    table = RecordingTable({"a": {"n": 1, OFFSET: 9}})
    state = PartitionState(table)
    assert state.update("a", 9, add(1), counter) is False
    state.flush()
    assert table.writes == ["a"]
    assert table["a"] == {"n": 1, OFFSET: 9}


def test_flush_writes_the_marker_last() -> None:
    """The marker key is written after every other key, even if it was touched first."""
    table = RecordingTable()
    state = PartitionState(table)
    for key in ("clock", "x", "y", "z"):
        state.update(key, 1, add(1), counter)
    state.update("clock", 2, add(1), counter)
    assert state.flush(last="clock") == 4
    assert table.writes[-1] == "clock"
    assert sorted(table.writes) == ["clock", "x", "y", "z"]


def test_flush_without_touching_the_marker_writes_the_rest() -> None:
    """A batch that never touched the marker key flushes the others and no marker."""
    table = RecordingTable()
    state = PartitionState(table)
    state.update("x", 1, add(1), counter)
    assert state.flush(last="clock") == 1
    assert table.writes == ["x"]


def test_unflushed_batch_leaves_the_table_untouched() -> None:
    """Work of a batch that dies before its flush never reaches the table, nested or not."""
    table: dict[Any, Any] = {"k": {"n": 1, "seen": [1], OFFSET: 1}}
    before = copy.deepcopy(table)
    state = PartitionState(table)
    state.update("k", 2, add(5), counter)
    assert table == before
