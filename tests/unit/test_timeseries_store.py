"""A series' writes and reads over a partition's table: checked against a plain dict of
time -> value (last write wins), the rule the API documents."""

from __future__ import annotations

import copy
import random
from typing import Any

import numpy as np
import orjson
import pytest

from streams.common.exactly_once import PartitionState
from streams.timeseries import chunks, reads, store
from streams.timeseries.points import latest_per_time

NOW = 1_800_000_000_000


class PhasedTable(dict[str, Any]):
    """A table recording the phase of each write (barriers between them)."""

    def __init__(self) -> None:
        super().__init__()
        self.phase = 0
        self.writes: list[tuple[int, str, bool]] = []

    def barrier(self) -> None:
        self.phase += 1

    def __setitem__(self, key: str, value: Any) -> None:
        self.writes.append((self.phase, key, True))
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.writes.append((self.phase, key, False))
        super().__delitem__(key)


def run(table: PhasedTable, command: dict[str, Any], times: list[int], values: list[float]) -> Any:
    state = PartitionState(table)
    points = latest_per_time(np.array(times, np.int64), np.array(values, np.float64))
    result = store.apply(state, command, points, NOW)
    state.flush_in_phases(store.phase)
    return result


def stored(table: dict[str, Any], series_id: str) -> dict[int, float]:
    meta = table[chunks.meta_key(series_id)]
    points = reads.read_range(table.get, meta)
    return dict(zip(points.times.tolist(), points.values.tolist(), strict=True))


def create(table: PhasedTable, series_id: str = "a" * 32, rid: str = "r0") -> Any:
    command = {"op": "create", "id": series_id, "rid": rid, "name": "s", "at": NOW}
    return run(table, command, [], [])


@pytest.mark.parametrize("seed", range(8))
def test_random_appends_read_back_as_a_dict_of_the_last_writes(seed: int) -> None:
    """Appends in any order, overlapping, with repeated times: the series reads back as
    the last value written per time, in time order, in chunks within their bounds."""
    rng = random.Random(seed)
    table = PhasedTable()
    assert create(table)["status"] == 201
    expected: dict[int, float] = {}
    for n in range(40):
        size = rng.choice([1, 5, 300, 1500])
        base = rng.choice([0, 10**6, rng.randrange(10**7)])
        times = [base + rng.randrange(20_000) for _ in range(size)]
        values = [rng.uniform(-1e6, 1e6) for _ in times]
        result = run(table, {"op": "append", "id": "a" * 32, "rid": f"r{n + 1}"}, times, values)
        expected.update(zip(times, values, strict=True))
        assert result == {"status": 200, "body": {"id": "a" * 32, "count": len(expected)}}
    assert stored(table, "a" * 32) == dict(sorted(expected.items()))
    meta = table[chunks.meta_key("a" * 32)]
    firsts = [entry[0] for entry in meta["index"]]
    assert firsts == sorted(set(firsts))
    chunk_keys = {k for k in table if k.startswith("c|")}
    assert chunk_keys == {chunks.chunk_key("a" * 32, e[2]) for e in meta["index"]}
    for key in chunk_keys:
        assert 0 < len(chunks.decode(table[key])) <= chunks.CHUNK_POINTS
        assert len(orjson.dumps(table[key])) < 100_000


def test_a_repeated_request_is_answered_as_before_and_applied_once() -> None:
    table = PhasedTable()
    create(table)
    first = run(table, {"op": "append", "id": "a" * 32, "rid": "x"}, [1000], [1.0])
    again = run(table, {"op": "append", "id": "a" * 32, "rid": "x"}, [1000, 2000], [9.0, 2.0])
    assert first == again == {"status": 200, "body": {"id": "a" * 32, "count": 1}}
    assert stored(table, "a" * 32) == {1000: 1.0}


def test_writes_go_out_chunks_first_then_meta_then_answers() -> None:
    """An answer, once in the changelog, stands for a complete write."""
    table = PhasedTable()
    create(table)
    table.writes.clear()
    run(table, {"op": "append", "id": "a" * 32, "rid": "y"}, list(range(3000)), [0.0] * 3000)
    phases = {key[:2]: phase for phase, key, _put in table.writes}
    assert phases["c|"] < phases["s|"] < phases["r|"]


def test_delete_forgets_the_series_and_its_chunks_after_its_meta() -> None:
    table = PhasedTable()
    create(table)
    create(table, "b" * 32, "rb")
    run(table, {"op": "append", "id": "a" * 32, "rid": "y"}, list(range(5000)), [1.0] * 5000)
    table.writes.clear()
    assert run(table, {"op": "delete", "id": "a" * 32, "rid": "d"}, [], []) == {
        "status": 204,
        "body": None,
    }
    # Only the marker a replay would finish the delete with stays (until its answer expires).
    assert [k for k in table if "a" * 32 in k] == [store.deleting_key("a" * 32)]
    meta_gone = next(p for p, k, _ in table.writes if k.startswith("s|"))
    assert all(p > meta_gone for p, k, _ in table.writes if k.startswith("c|"))
    assert table[store.COUNT]["series"] == 1
    missing = run(table, {"op": "append", "id": "a" * 32, "rid": "z"}, [1], [1.0])
    assert missing["status"] == 404


def test_reads_of_a_range_touch_only_its_chunks() -> None:
    table = PhasedTable()
    create(table)
    run(table, {"op": "append", "id": "a" * 32, "rid": "y"}, list(range(10_000)), [1.0] * 10_000)
    read: list[str] = []

    def get(key: str) -> Any:
        read.append(key)
        return table[key]

    points = reads.read_range(get, table[chunks.meta_key("a" * 32)], 5000, 5010)
    assert points.times.tolist() == list(range(5000, 5010))
    assert len(read) == 1
    assert len(reads.read_range(get, table[chunks.meta_key("a" * 32)], 20_000, None)) == 0


def test_a_series_past_its_limit_is_refused_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chunks, "MAX_POINTS", 100)
    table = PhasedTable()
    create(table)
    result = run(table, {"op": "append", "id": "a" * 32, "rid": "y"}, list(range(101)), [1.0] * 101)
    assert result["status"] == 413
    assert stored(table, "a" * 32) == {}


def test_create_of_an_existing_id_is_a_conflict() -> None:
    table = PhasedTable()
    create(table)
    assert create(table, rid="other")["status"] == 409
    assert table[store.COUNT]["series"] == 1


def test_a_key_replayed_with_the_same_body_gets_the_kept_answer() -> None:
    """Same request id and digest: the first answer, nothing applied again (a create
    retried is a 201 again, not a conflict)."""
    table = PhasedTable()
    made = {"op": "create", "id": "a" * 32, "rid": "k0", "name": "s", "at": NOW, "digest": "d0"}
    assert run(table, dict(made), [], [])["status"] == 201
    assert run(table, dict(made), [], [])["status"] == 201
    command = {"op": "append", "id": "a" * 32, "rid": "k1", "digest": "d1"}
    first = run(table, dict(command), [1000], [1.0])
    run(table, {"op": "append", "id": "a" * 32, "rid": "k2", "digest": "d2"}, [1000], [5.0])

    again = run(table, dict(command), [1000], [1.0])

    assert first == again == {"status": 200, "body": {"id": "a" * 32, "count": 1}}
    assert stored(table, "a" * 32) == {1000: 5.0}
    assert table[store.COUNT]["series"] == 1


def test_a_key_replayed_with_another_body_is_a_422_and_nothing_is_written() -> None:
    """Same request id, another digest (a key reused for another body): a 422 naming the
    Idempotency-Key; the series, its answer and its count stay as they were."""
    table = PhasedTable()
    made = {"op": "create", "id": "a" * 32, "rid": "k0", "name": "s", "at": NOW, "digest": "d0"}
    created = run(table, dict(made), [], [])
    command = {"op": "append", "id": "a" * 32, "rid": "k1", "digest": "d1"}
    appended = run(table, dict(command), [1000], [1.0])
    before = copy.deepcopy(dict(table))

    refusals = [
        run(table, {**made, "name": "other", "digest": "d9"}, [5], [5.0]),
        run(table, {**command, "digest": "d2"}, [1000, 2000], [9.0, 2.0]),
        run(table, {**command, "digest": None}, [1000], [1.0]),
    ]

    for refused in refusals:
        assert refused["status"] == 422
        assert set(refused["body"]) == {"error", "detail"}
        assert refused["body"]["detail"] == {"field": "Idempotency-Key"}
    assert dict(table) == before
    assert table[chunks.meta_key("a" * 32)]["name"] == "s"
    assert stored(table, "a" * 32) == {1000: 1.0}
    assert run(table, dict(made), [], []) == created
    assert run(table, dict(command), [1000], [1.0]) == appended


def test_refusals_of_a_series_name_its_id() -> None:
    """A conflict and a missing series answer {"error", "detail": {"id"}}."""
    table = PhasedTable()
    create(table)
    missing = {"op": "append", "id": "b" * 32, "rid": "m"}
    refusals = {
        409: create(table, rid="again"),
        404: run(table, missing, [1], [1.0]),
    }
    deleted = run(table, {**missing, "op": "delete", "rid": "n"}, [], [])
    assert deleted == refusals[404]
    for status, refused in refusals.items():
        assert refused["status"] == status
        assert set(refused["body"]) == {"error", "detail"}
        assert isinstance(refused["body"]["error"], str)
    assert refusals[409]["body"]["detail"] == {"id": "a" * 32}
    assert refusals[404]["body"]["detail"] == {"id": "b" * 32}
