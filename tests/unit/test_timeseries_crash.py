"""A worker killed in the middle of writing a batch, at every point of it: the batch's
commands replayed from the state the changelog kept must leave the same series, the
same count and the same answers as the batch applied without a crash.

The changelog is a sequence of records; a crash keeps a prefix of the batch's. Each
prefix is tried (the phases order them: new chunks and delete markers, metas and counts,
answers and dropped chunks), and the replay is tried as one batch and as one batch per command (a
restarted worker may cut its batches differently). The expected state is read from the
run without a crash, through the reads a client makes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from streams.common.exactly_once import PartitionState
from streams.timeseries import reads, store
from streams.timeseries.points import latest_per_time

NOW = 1_800_000_000_000
A, B, C = "a" * 32, "b" * 32, "c" * 32
Command = tuple[dict[str, Any], list[int], list[float]]


class Changelog(dict[str, Any]):
    """A table whose writes are recorded in the order they reach the changelog."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[str, Any]] = []

    def barrier(self) -> None:
        pass

    def __setitem__(self, key: str, value: Any) -> None:
        self.records.append((key, value))
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.records.append((key, None))
        self.pop(key, None)


def batch(table: Changelog, commands: list[Command]) -> list[Any]:
    state = PartitionState(table)
    answers = []
    for command, times, values in commands:
        points = latest_per_time(np.array(times, np.int64), np.array(values, np.float64))
        answers.append(store.apply(state, command, points, NOW))
    state.flush_in_phases(store.phase)
    return answers


def create(series_id: str, rid: str, times: range) -> Command:
    command = {"op": "create", "id": series_id, "rid": rid, "at": NOW}
    return command, list(times), [float(t) for t in times]


def append(series_id: str, rid: str, times: list[int], value: float) -> Command:
    return {"op": "append", "id": series_id, "rid": rid}, times, [value] * len(times)


def delete(series_id: str, rid: str) -> Command:
    return {"op": "delete", "id": series_id, "rid": rid}, [], []


def seen(table: dict[str, Any]) -> dict[str, Any]:
    """What clients can see: every series' points and the count of series."""
    series = {}
    for key, meta in table.items():
        if key.startswith("s|"):
            points = reads.read_range(table.get, meta)
            series[meta["id"]] = dict(
                zip(points.times.tolist(), points.values.tolist(), strict=True)
            )
            assert meta["count"] == len(points)
    counted = table.get(store.COUNT, {"series": 0})["series"]
    return {"series": series, "count": counted}


BEFORE = [create(A, "ca", range(1000)), create(B, "cb", range(0, 30_000, 10))]
BATCHES = {
    "an append that splits a chunk": [append(A, "x1", list(range(1000, 1100)), 2.0)],
    "an append at both ends of a long series": [append(B, "x2", [-5, 40_000], 7.0)],
    "a create": [create(C, "cc", range(2000))],
    "a delete": [delete(B, "db")],
    "a mixed batch": [
        create(C, "cc", range(50)),
        append(A, "x3", [-1, 500, 999, 5000], 3.0),
        append(C, "x4", list(range(40, 1500)), 4.0),
        delete(B, "db"),
        delete(A, "da"),
    ],
}


@pytest.mark.parametrize("name", sorted(BATCHES))
@pytest.mark.parametrize("one_by_one", [False, True], ids=["as one batch", "one by one"])
def test_a_crash_anywhere_in_a_batch_is_completed_exactly_by_its_replay(
    name: str, one_by_one: bool
) -> None:
    commands = BATCHES[name]
    before = Changelog()
    batch(before, BEFORE)
    done = Changelog()
    done.update(before)
    expected_answers = batch(done, commands)
    expected = seen(done)
    written = done.records  # update() above bypassed the recording
    assert written, "the batch wrote nothing"
    for kept in range(len(written) + 1):
        crashed = Changelog()
        crashed.update(before)
        for key, value in written[:kept]:
            if value is None:
                crashed.pop(key, None)
            else:
                crashed[key] = value
        if one_by_one:
            answers = [batch(crashed, [command])[0] for command in commands]
        else:
            answers = batch(crashed, commands)
        where = f"crash after {kept} of {len(written)} records"
        assert seen(crashed) == expected, where
        for n, (got, wanted) in enumerate(zip(answers, expected_answers, strict=True)):
            assert got == wanted or raced_a_delete(commands, n, got), (where, n)


def raced_a_delete(commands: list[Command], n: int, answer: Any) -> bool:
    """An append the batch's later delete of its series overtook in the replay: answered
    404, as if the delete came first. No client had its answer (a batch's answers are
    given once all of it is durable), and the series ends deleted either way."""
    series_id = commands[n][0]["id"]
    deleted_later = any(c["op"] == "delete" and c["id"] == series_id for c, _, _ in commands[n:])
    return deleted_later and answer["status"] == 404
