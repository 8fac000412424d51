"""The writes agent's batch over a real RocksDB and a producer whose sends can fail:
answers only after the table is written, each command applied once, a bad record a
dead letter, and a new owner restoring the changelog sees every answered write."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import orjson
import pytest
from prometheus_client import CollectorRegistry, Counter

from streams.common.partitioning import partition_for
from streams.common.table_io import RocksPartition
from streams.timeseries import commands, reads, store
from streams.timeseries.answers import Answers, waiting_key
from streams.timeseries.batch import DLQ, Applier, handle_batch
from streams.timeseries.chunks import meta_key
from streams.timeseries.points import Points
from tests.support.fake_kafka import Producer, Store, rocks_table
from tests.support.messages import FakeMessage

CHANGELOG = "timeseries-series-changelog"
SERIES = "ab" * 16


def event(offset: int, value: bytes, partition: int = 0) -> Any:
    message = FakeMessage(
        topic="timeseries.writes", partition=partition, offset=offset, key=None, value=value,
        timestamp=0.0, headers=[],
    )  # fmt: skip
    return SimpleNamespace(message=message)


def writes() -> list[Any]:
    times = np.arange(0, 3000, dtype=np.int64) * 1000
    return [
        event(0, commands.encode({"op": "create", "id": SERIES, "rid": "c", "at": 1})),
        event(
            1,
            commands.encode(
                {"op": "append", "id": SERIES, "rid": "a"},
                Points(times, times.astype(np.float64) / 2),
            ),
        ),
        event(2, b"{not a command"),
        event(3, commands.encode({"op": "append", "id": "cd" * 16, "rid": "x"})),
    ]


def applier(store_: Store, producer: Producer, partitions: int | None = None) -> Applier:
    registry = CollectorRegistry()
    return Applier(
        rocks_table(store_, "series", CHANGELOG),
        producer,
        Answers(),
        Counter("applied", "", ["op", "status"], registry=registry),
        Counter("letters", "", ["reason"], registry=registry),
        partitions=partitions,
    )


async def handled(target: Applier, events: list[Any]) -> dict[str, Any]:
    waiting = {rid: target.answers.expect(waiting_key(rid, None)) for rid in ("c", "a", "x")}
    await handle_batch(target, events)
    return {rid: future.result() for rid, future in waiting.items() if future.done()}


def test_commands_are_applied_answered_and_a_bad_record_dead_lettered(tmp_path: Path) -> None:
    producer = Producer(lambda *_: None)
    target = applier(Store(tmp_path), producer)
    answers = asyncio.run(handled(target, writes()))
    assert answers["c"]["status"] == 201
    assert answers["a"] == {"status": 200, "body": {"id": SERIES, "count": 3000}}
    assert answers["x"]["status"] == 404
    letters = producer.delivered[DLQ]
    assert len(letters) == 1
    assert dict(letters[0][2])["dlq.reason"] == b"invalid_command"
    io = RocksPartition(target.table, 0)
    assert io.get(meta_key(SERIES))["count"] == 3000


def test_a_batch_replayed_after_a_crash_changes_nothing(tmp_path: Path) -> None:
    producer = Producer(lambda *_: None)
    target = applier(Store(tmp_path), producer)
    first = asyncio.run(handled(target, writes()))
    changelog_before = len(producer.delivered[CHANGELOG])
    again = asyncio.run(handled(target, writes()))
    assert again == first
    io = RocksPartition(target.table, 0)
    assert io.get(meta_key(SERIES))["count"] == 3000
    assert len(producer.delivered[CHANGELOG]) > changelog_before  # answers rewritten, same


def test_no_answer_before_the_changelog_is_acknowledged(tmp_path: Path) -> None:
    """A failed changelog send: nobody is answered, RocksDB is untouched; the retry
    answers everyone once."""
    failing = {"on": True}

    def rule(topic: str, *_: Any) -> Any:
        return "later" if topic == CHANGELOG and failing["on"] else None

    producer = Producer(rule)
    target = applier(Store(tmp_path), producer)

    async def attempt() -> tuple[bool, dict[str, Any]]:
        waiting = target.answers.expect(waiting_key("a", None))
        with pytest.raises(Exception, match="sends failed"):
            await handle_batch(target, writes())
        unanswered = not waiting.done()
        failing["on"] = False
        await handle_batch(target, writes())
        return unanswered, waiting.result()

    unanswered, answer = asyncio.run(attempt())
    assert unanswered
    assert answer["body"]["count"] == 3000


def test_a_new_owner_restoring_the_changelog_has_every_answered_write(tmp_path: Path) -> None:
    producer = Producer(lambda *_: None)
    target = applier(Store(tmp_path / "old"), producer)
    asyncio.run(handled(target, writes()))
    restored: dict[str, Any] = {}
    for key, value, _headers in producer.delivered[CHANGELOG]:
        name = orjson.loads(key or b"null")
        if value is None:
            restored.pop(name, None)
        else:
            restored[name] = orjson.loads(value)
    meta = restored[meta_key(SERIES)]
    points = reads.read_range(restored.get, meta)
    assert points.times.tolist() == list(range(0, 3_000_000, 1000))
    assert restored[store.answer_key("a")]["body"]["count"] == 3000


def test_a_command_on_another_partition_than_its_series_is_dead_lettered_not_applied(
    tmp_path: Path,
) -> None:
    """A series created in a partition its reads never look in would be listed and
    counted but never found: such a command is a dead letter, whatever its op."""
    producer = Producer(lambda *_: None)
    target = applier(Store(tmp_path), producer, partitions=4)
    home, other = partition_for(SERIES.encode(), 4), "cd" * 16
    stray = next(p for p in range(4) if p not in (home, partition_for(other.encode(), 4)))
    events = [
        event(0, commands.encode({"op": "create", "id": SERIES, "rid": "c", "at": 1}), stray),
        event(1, commands.encode({"op": "create", "id": other, "rid": "x", "at": 1}), stray),
        event(0, commands.encode({"op": "create", "id": SERIES, "rid": "a", "at": 1}), home),
    ]

    answers = asyncio.run(handled(target, events))

    assert set(answers) == {"a"} and answers["a"]["status"] == 201
    letters = producer.delivered[DLQ]
    assert [dict(letter[2])["dlq.reason"] for letter in letters] == [b"misplaced_command"] * 2
    assert RocksPartition(target.table, stray).get(meta_key(SERIES)) is None
    assert RocksPartition(target.table, stray).get(meta_key(other)) is None
    assert RocksPartition(target.table, home).get(meta_key(SERIES))["count"] == 0
    assert target.dead_letters.labels("misplaced_command")._value.get() == 2
    assert target.applied.labels("create", "201")._value.get() == 1
