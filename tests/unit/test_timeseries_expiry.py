"""Kept answers expire (streams/timeseries/store.py ``expire_answers``) in a real RocksDB
partition: each answer is kept under ``r|<rid>`` and ``a|<at>|<rid>``; only those given
before the cutoff are forgotten, oldest first, at most ``limit`` at a time; a command
replayed after its answer expired is applied anew."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from streams.common.exactly_once import PartitionState
from streams.common.table_io import RocksPartition
from streams.timeseries import chunks, reads, store
from streams.timeseries.points import Points
from tests.support.fake_kafka import Producer, Store, rocks_table

SERIES = "5e" * 16
T0 = 1_800_000_000_000
DAY = 86_400_000


@pytest.fixture
def io(tmp_path: Path) -> RocksPartition:
    table = rocks_table(Store(tmp_path), "series", "timeseries-series-changelog")
    return RocksPartition(table, 0)


async def applied(
    io: RocksPartition, command: dict[str, Any], now_ms: int, points: dict[int, float] | None = None
) -> store.Answer:
    """One command applied and written as a batch of the writes agent does it."""
    given = points or {}
    times = np.array(list(given), np.int64)
    state = PartitionState(io)
    result = store.apply(state, command, Points(times, np.array(list(given.values()))), now_ms)
    state.flush_in_phases(store.phase)
    await io.write(Producer(lambda *_: None))
    return result


async def expire(io: RocksPartition, before_ms: int, limit: int = 1000) -> int:
    done = store.expire_answers(io, before_ms, limit)
    await io.write(Producer(lambda *_: None))
    return done


def kept(io: RocksPartition) -> list[str]:
    """The request ids whose answers are kept, in the order they were given."""
    by_time = [key.split("|", 2)[2] for key in io.keys_between("a|", "a}")]
    assert sorted(by_time) == [key[2:] for key in io.keys_between("r|", "r}")]
    return by_time


def values(io: RocksPartition) -> dict[int, float]:
    points = reads.read_range(io.get, io.get(chunks.meta_key(SERIES)))
    return dict(zip(points.times.tolist(), points.values.tolist(), strict=True))


def create(rid: str = "create") -> dict[str, Any]:
    return {"op": "create", "id": SERIES, "rid": rid, "at": T0}


def append(rid: str) -> dict[str, Any]:
    return {"op": "append", "id": SERIES, "rid": rid}


async def test_only_answers_given_before_the_cutoff_are_forgotten(io: RocksPartition) -> None:
    await applied(io, create(), T0)
    for day in (1, 2, 3):
        await applied(io, append(f"day{day}"), T0 + day * DAY, {day * 1000: float(day)})
    assert kept(io) == ["create", "day1", "day2", "day3"]

    assert await expire(io, T0) == 0  # nothing given before T0
    assert await expire(io, T0 + 2 * DAY) == 2  # an answer given at the cutoff stays

    assert kept(io) == ["day2", "day3"]
    assert io.get(store.answer_key("day1")) is None
    assert io.get(store.answer_key("day2"))["body"] == {"id": SERIES, "count": 2}
    assert values(io) == {1000: 1.0, 2000: 2.0, 3000: 3.0}  # the series is untouched
    assert io.get(store.COUNT)["series"] == 1


async def test_the_oldest_are_forgotten_first_at_most_limit_at_a_time(
    io: RocksPartition,
) -> None:
    """Oldest by the time they were given, whatever their ids."""
    await applied(io, create("m"), T0)
    for n, rid in enumerate(["z", "a", "q", "b"], start=1):
        await applied(io, append(rid), T0 + n, {n: 1.0})
    assert kept(io) == ["m", "z", "a", "q", "b"]

    rounds = [await expire(io, T0 + DAY, limit=2) for _ in range(4)]

    assert rounds == [2, 2, 1, 0]
    assert kept(io) == []


async def test_a_limit_stops_within_the_expired_answers(io: RocksPartition) -> None:
    await applied(io, create("m"), T0)
    for n in range(1, 6):
        await applied(io, append(f"r{n}"), T0 + n, {n: 1.0})

    assert await expire(io, T0 + 4, limit=2) == 2
    assert kept(io) == ["r2", "r3", "r4", "r5"]
    assert await expire(io, T0 + 4, limit=5) == 2
    assert kept(io) == ["r4", "r5"]


async def test_a_command_replayed_after_its_answer_expired_is_applied_anew(
    io: RocksPartition,
) -> None:
    """Before expiry a replay gets the kept answer and changes nothing; after it, the
    command is applied again: an old append overwrites a newer value, a create of the
    same id is a conflict."""
    created = await applied(io, create(), T0)
    first = await applied(io, append("old"), T0 + DAY, {1000: 1.0})
    await applied(io, append("new"), T0 + 2 * DAY, {1000: 2.0})

    assert await applied(io, append("old"), T0 + 3 * DAY, {1000: 1.0}) == first
    assert await applied(io, create(), T0 + 3 * DAY) == created
    assert values(io) == {1000: 2.0}

    assert await expire(io, T0 + 2 * DAY) == 2  # create and old

    assert await applied(io, append("old"), T0 + 4 * DAY, {1000: 1.0}) == first
    assert values(io) == {1000: 1.0}
    assert kept(io) == ["new", "old"]  # old's new answer, kept at its new time
    # The create's meta names its request id: replayed after its answer expired, it is
    # answered as applied (not 409), and counted once.
    again = await applied(io, create(), T0 + 4 * DAY)
    assert again["status"] == created["status"] == 201
    assert io.get(store.COUNT)["series"] == 1
