"""Component: the recovery intake restores a table's changelog from fetches, in runs.

A make_app app with a real RocksDB table; Faust's Recovery set up as its rebalance and
``_restart_recovery`` leave it (active partitions, offsets seeded from the persisted
offset, highwaters, recovery started); fetches handed to ``RecoveryIntake.take`` as the
corrected ``_getmany`` hands them. What the intake leaves in a fetch goes on to Faust's
path, played here by the slurp loop's own rule (apply what is above the last applied
offset). Pass or fail rests on RocksDB's contents against the log folded independently
(last value per key, a tombstone deletes), on what reaches Faust, and on Recovery's own
``need_recovery``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord, TopicPartition
from faust.tables.manager import TableManager
from faust.tables.recovery import Recovery
from faust.types import TP
from prometheus_client import CollectorRegistry

from streams.common.app import make_app
from streams.common.faust_fixes import Fix, PatchMismatchError, counts
from streams.common.faust_fixes.rebalance import RECOVERY_INTAKE_ATTRIBUTE
from streams.common.settings import KafkaSettings, WorkerSettings

PARTITIONS = 4
#: partition -> (offset, key, value) in offset order; a None value is a tombstone.
Entry = tuple[int, bytes, bytes | None]
Log = Mapping[int, Sequence[Entry]]


class Consumer:
    """What the intake reads of Faust's consumer; seeks recorded."""

    def __init__(self, ends: dict[Any, int]) -> None:
        self.flow_active = True
        self.ends = ends
        self.seeks: list[tuple[Any, int]] = []

    def highwater(self, tp: Any) -> int:
        return self.ends[tp]

    async def _seek(self, tp: Any, offset: int) -> None:
        self.seeks.append((tp, offset))


class Restore:
    """One table being restored by one worker."""

    def __init__(self, tmp_path: Path, env: Mapping[str, Any] | None = None) -> None:
        worker = WorkerSettings.model_validate({"STREAMS_DATA_DIR": tmp_path, **(env or {})})
        self.app = make_app("restore", KafkaSettings(), worker, CollectorRegistry(), partitions=4)
        self.table = self.app.Table("t", default=None, partitions=PARTITIONS, key_type=str)
        self.topic = self.table.changelog_topic_name
        self.intake: Any = getattr(self.app, RECOVERY_INTAKE_ATTRIBUTE, None)
        self.recovery = self.app.tables.recovery
        self.tps = [TP(self.topic, p) for p in range(PARTITIONS)]
        self.consumer = Consumer({})
        self.faust_got: list[tuple[int, int]] = []

    def db(self, partition: int) -> Any:
        return self.table.data._db_for_partition(partition)

    def contents(self) -> dict[int, dict[bytes, bytes]]:
        offset_key = self.table.data.offset_key
        return {
            p: {k: v for k, v in self.db(p).items() if k != offset_key} for p in range(PARTITIONS)
        }

    def persisted(self, partition: int) -> int | None:
        offset: int | None = self.table.data.persisted_offset(self.tps[partition])
        return offset

    def start(self, log: Log) -> None:
        """Recovery's state when ``_restart_recovery`` resumes the partitions."""
        recovery = self.recovery
        recovery.active_tps = set(self.tps)
        for tp in self.tps:
            recovery.tp_to_table[tp] = self.table
            persisted = self.persisted(tp.partition)
            recovery.active_offsets[tp] = -1 if persisted is None else persisted
            end = log[tp.partition][-1][0] + 1 if log[tp.partition] else 0
            recovery.active_highwaters[tp] = end - 1
            self.consumer.ends[tp] = end
        recovery._set_recovery_started()
        self.app.flow_control.resume()

    async def fetch(self, runs: Mapping[int, list[ConsumerRecord]], **take: Any) -> Any:
        """One fetch through the intake; what it leaves goes through Faust's rule."""
        records = {TopicPartition(self.topic, p): list(run) for p, run in runs.items() if run}
        before = take.pop("before", None) or self.intake.token()
        await self.intake.take(self.consumer, records, take.pop("active", None), before)
        for fetched, left in records.items():
            self.faust_path(TP(fetched.topic, fetched.partition), left)
        return records

    def faust_path(self, tp: Any, records: list[ConsumerRecord]) -> None:
        """``_slurp_changelogs``'s rule: apply what is above the last applied offset."""
        for record in records:
            self.faust_got.append((tp.partition, record.offset))
            if record.offset > self.recovery.active_offsets[tp]:
                self.recovery.active_offsets[tp] = record.offset
                self.table.apply_changelog_batch([event(tp, record)])


def event(tp: Any, record: ConsumerRecord) -> Any:
    message = SimpleNamespace(
        tp=tp, partition=tp.partition, offset=record.offset, key=record.key, value=record.value
    )
    # The memory store reads the event's own key and value (decoded, in Faust).
    return SimpleNamespace(message=message, key=record.key, value=record.value)


def record(topic: str, partition: int, offset: int, key: bytes, value: bytes | None) -> Any:
    return ConsumerRecord(topic, partition, offset, 0, 0, key, value, None, len(key), 0, [])


def random_log(rng: random.Random, size: int) -> dict[int, list[Entry]]:
    """Per partition: offsets with holes, keys repeated, some tombstones."""
    log: dict[int, list[Entry]] = {}
    for p in range(PARTITIONS):
        offset, entries = 0, []
        for n in range(rng.randrange(size)):
            offset += 1 if rng.random() < 0.9 else rng.randrange(2, 6)
            key = f"k{rng.randrange(40)}".encode()
            value = None if rng.random() < 0.1 else f"{p}:{n}".encode()
            entries.append((offset, key, value))
        log[p] = entries
    return log


def folded(log: Log, upto: Mapping[int, int] | None = None) -> dict[int, dict[bytes, bytes]]:
    """Each partition's last value per key, up to an offset (inclusive)."""
    state: dict[int, dict[bytes, bytes]] = {}
    for p, entries in log.items():
        values: dict[bytes, bytes] = {}
        for offset, key, value in entries:
            if upto is not None and offset > upto[p]:
                break
            if value is None:
                values.pop(key, None)
            else:
                values[key] = value
        state[p] = values
    return state


def preload(restore: Restore, log: Log, upto: Mapping[int, int]) -> None:
    """RocksDB as a worker left it: the log applied up to ``upto`` and that offset kept."""
    for p, values in folded(log, upto).items():
        for key, value in values.items():
            restore.db(p)[key] = value
        if upto[p] >= 0:
            restore.table.data.set_persisted_offset(restore.tps[p], upto[p])


async def fetch_all(restore: Restore, log: Log, rng: random.Random) -> None:
    """Read every partition from where Faust seeks it, in fetches of random sizes."""
    position = {p: max(restore.recovery.active_offsets[tp], 0) for p, tp in enumerate(restore.tps)}
    pending = {
        p: [record(restore.topic, p, o, k, v) for o, k, v in log[p] if o >= position[p]]
        for p in range(PARTITIONS)
    }
    while any(pending.values()):
        runs = {}
        for p, left in pending.items():
            n = rng.randrange(0, 60)
            runs[p], pending[p] = left[:n], left[n:]
        await restore.fetch(runs)


@pytest.fixture
def restore(tmp_path: Path) -> Iterator[Restore]:
    restoring = Restore(tmp_path)
    yield restoring
    restoring.table.data._dbs.clear()


def test_make_app_installs_the_intake_unless_it_is_turned_off(tmp_path: Path) -> None:
    assert Restore(tmp_path / "on").intake is not None
    assert Restore(tmp_path / "off", {"STREAMS_RECOVERY_INTAKE": False}).intake is None


@pytest.mark.parametrize("seed", range(12))
def test_restored_table_is_the_log_folded_and_faust_ends_recovery(
    tmp_path: Path, seed: int
) -> None:
    """Random logs (holes, repeats, tombstones) over RocksDB left mid-log by a worker:
    the intake writes everything below each highwater, Faust gets exactly the highwater
    records, and recovery is due until Faust applied them."""
    rng = random.Random(seed)
    restore = Restore(tmp_path)
    log = random_log(rng, 400)
    kept = {p: rng.choice([-1, *(o for o, _, _ in log[p])]) for p in range(PARTITIONS)}
    preload(restore, log, kept)
    restore.start(log)
    restored_before = counts()[Fix.CHANGELOG_RECORDS_RESTORED]

    asyncio.run(fetch_all(restore, log, rng))

    assert restore.contents() == folded(log)
    # The highwater record; also when it is the one kept, which Faust seeks back to.
    assert sorted(restore.faust_got) == [(p, log[p][-1][0]) for p in range(PARTITIONS) if log[p]]
    assert not restore.recovery.need_recovery()
    below_highwaters = sum(
        1 for p in range(PARTITIONS) for o, _, _ in log[p] if kept[p] < o < log[p][-1][0]
    )
    assert counts()[Fix.CHANGELOG_RECORDS_RESTORED] - restored_before == below_highwaters
    for p in range(PARTITIONS):
        if log[p]:
            assert restore.persisted(p) == max(log[p][-1][0], kept[p])


def test_recovery_is_due_until_faust_applies_the_highwater_record(restore: Restore) -> None:
    log = {p: [(o, b"k", str(o).encode()) for o in range(10)] for p in range(PARTITIONS)}
    restore.start(log)
    runs = {p: [record(restore.topic, p, o, k, v) for o, k, v in log[p][:-1]] for p in log}
    left = asyncio.run(restore.fetch(runs))
    assert not left
    assert restore.recovery.need_recovery()
    assert all(restore.recovery.active_offsets[tp] == 8 for tp in restore.tps)
    assert restore.contents() == {p: {b"k": b"8"} for p in range(PARTITIONS)}
    # Bookkeeping Faust's progress log and stall warnings read moved with the runs.
    assert set(restore.recovery._active_events_received_at) == set(restore.tps)
    assert restore.recovery._processing_times


def test_fausts_buffered_events_of_the_table_go_first(restore: Restore) -> None:
    """Faust's buffer holds an older value of a key: applied before the run, so the
    run's newer value is the one kept (applied after, it would go back in time)."""
    log = {p: [(o, b"k", f"v{o}".encode()) for o in range(6)] for p in range(PARTITIONS)}
    restore.start(log)
    tp = restore.tps[0]
    restore.recovery.buffers[restore.table].append(
        event(tp, record(restore.topic, 0, 0, b"k", b"old"))
    )
    restore.recovery.active_offsets[tp] = 0
    runs = {0: [record(restore.topic, 0, o, k, v) for o, k, v in log[0][1:5]]}
    asyncio.run(restore.fetch(runs))
    restore.recovery.flush_buffers()  # as Faust does at the end of recovery
    assert restore.contents()[0] == {b"k": b"v4"}
    assert restore.recovery.buffers[restore.table] == []


def test_a_fetch_that_straddled_a_recovery_restart_is_read_again(restore: Restore) -> None:
    log = {p: [(o, b"k", f"v{o}".encode()) for o in range(20)] for p in range(PARTITIONS)}
    restore.start(log)
    before = restore.intake.token()
    asyncio.run(restore.fetch({0: [record(restore.topic, 0, 0, b"k", b"v0")]}))
    restore.recovery.active_offsets[restore.tps[1]] = 7
    restore.recovery._set_recovery_started()  # a restart while the next fetch was out
    runs = {p: [record(restore.topic, p, o, k, v) for o, k, v in log[p][10:15]] for p in (0, 1)}
    left = asyncio.run(restore.fetch(runs, before=before))
    assert not left and not restore.faust_got
    assert restore.consumer.seeks == [(restore.tps[0], 0), (restore.tps[1], 7)]
    assert restore.contents()[0] == {b"k": b"v0"} and restore.contents()[1] == {}


def test_a_fetch_from_an_earlier_generation_is_read_again(restore: Restore) -> None:
    log = {p: [(o, b"k", b"v") for o in range(20)] for p in range(PARTITIONS)}
    restore.start(log)
    before = restore.intake.token()
    restore.app.consumer_generation_id += 1
    left = asyncio.run(restore.fetch({2: [record(restore.topic, 2, 0, b"k", b"v")]}, before=before))
    assert not left and restore.consumer.seeks == [(restore.tps[2], 0)]
    assert restore.contents()[2] == {}


def test_nothing_is_taken_while_a_revocation_has_the_flow_stopped(restore: Restore) -> None:
    log = {p: [(o, b"k", b"v") for o in range(20)] for p in range(PARTITIONS)}
    restore.start(log)
    runs = {0: [record(restore.topic, 0, 0, b"k", b"v")]}
    restore.consumer.flow_active = False
    records = {TopicPartition(restore.topic, 0): list(runs[0])}
    asyncio.run(restore.intake.take(restore.consumer, records, None, restore.intake.token()))
    assert len(records[TopicPartition(restore.topic, 0)]) == 1
    restore.consumer.flow_active = True
    restore.app.flow_control.suspend()
    asyncio.run(restore.intake.take(restore.consumer, records, None, restore.intake.token()))
    assert len(records[TopicPartition(restore.topic, 0)]) == 1
    assert restore.contents()[0] == {}


def test_a_partition_left_to_faust_while_the_flow_was_stopped_stays_faust_s(
    restore: Restore,
) -> None:
    """Records left in a fetch while the flow was stopped may still reach Faust's
    queue: until the next recovery, none of that partition's are written ahead of them."""
    log = {p: [(o, b"k", f"v{o}".encode()) for o in range(20)] for p in range(PARTITIONS)}
    restore.start(log)
    restore.consumer.flow_active = False
    first = [record(restore.topic, 0, o, b"k", f"v{o}".encode()) for o in range(5)]
    assert asyncio.run(restore.fetch({0: first})) == {TopicPartition(restore.topic, 0): first}
    restore.consumer.flow_active = True
    then = [record(restore.topic, 0, o, b"k", f"v{o}".encode()) for o in range(5, 10)]
    assert asyncio.run(restore.fetch({0: then})) == {TopicPartition(restore.topic, 0): then}
    restore.recovery._set_recovery_started()
    again = [record(restore.topic, 0, o, b"k", f"v{o}".encode()) for o in range(10, 15)]
    assert not asyncio.run(restore.fetch({0: again}))


def untouched(restore: Restore, records: dict[Any, list[Any]], active: Any = None) -> bool:
    before = {tp: list(run) for tp, run in records.items()}
    asyncio.run(restore.intake.take(restore.consumer, records, active, restore.intake.token()))
    return records == before and not any(restore.contents().values())


def test_standbys_other_topics_paused_partitions_and_normal_running_are_faust_s(
    restore: Restore,
) -> None:
    log = {p: [(o, b"k", b"v") for o in range(20)] for p in range(PARTITIONS)}
    restore.start(log)
    standby = restore.tps[3]
    restore.recovery.active_tps.discard(standby)
    restore.recovery.standby_tps = {standby}

    def fetched(topic: str, partition: int) -> dict[Any, list[Any]]:
        return {TopicPartition(topic, partition): [record(topic, partition, 1, b"k", b"v")]}

    assert untouched(restore, fetched(restore.topic, 3))
    assert untouched(restore, fetched("orders.raw", 0))
    assert untouched(restore, fetched(restore.topic, 0), active={restore.tps[1]})
    restore.app.__dict__["in_transaction"] = True
    assert untouched(restore, fetched(restore.topic, 0))
    restore.app.__dict__["in_transaction"] = False
    restore.recovery._set_recovery_ended()
    assert untouched(restore, fetched(restore.topic, 0))


def test_tables_watching_their_changelog_or_in_memory_keep_fausts_path(tmp_path: Path) -> None:
    log = {p: [(o, b"k", b"v") for o in range(20)] for p in range(PARTITIONS)}
    memory = Restore(tmp_path / "memory", {"STREAMS_STORE": "memory://"})
    memory.start(log)
    run = [record(memory.topic, 0, o, b"k", b"v") for o in range(5)]
    assert asyncio.run(memory.fetch({0: run})) == {TopicPartition(memory.topic, 0): run}
    watched = Restore(tmp_path / "watched")
    watched.table._on_changelog_event = lambda event: None
    watched.start(log)
    run = [record(watched.topic, 0, o, b"k", b"v") for o in range(5)]
    assert asyncio.run(watched.fetch({0: run})) == {TopicPartition(watched.topic, 0): run}


def test_a_partition_handed_to_faust_stays_faust_s_until_the_next_recovery(
    restore: Restore,
) -> None:
    log = {p: [(o, b"k", f"v{o}".encode()) for o in range(5)] for p in range(PARTITIONS)}
    restore.start(log)
    asyncio.run(
        restore.fetch({0: [record(restore.topic, 0, o, b"k", f"v{o}".encode()) for o in range(5)]})
    )
    assert restore.faust_got == [(0, 4)]
    later = [record(restore.topic, 0, 5, b"k", b"v5")]
    assert asyncio.run(restore.fetch({0: later})) == {TopicPartition(restore.topic, 0): later}
    restore.consumer.ends[restore.tps[0]] = 10
    restore.recovery.active_highwaters[restore.tps[0]] = 9
    restore.recovery._set_recovery_started()  # the next recovery: the intake's again
    again = [record(restore.topic, 0, o, b"k", f"v{o}".encode()) for o in range(5, 9)]
    assert not asyncio.run(restore.fetch({0: again}))
    assert restore.contents()[0] == {b"k": b"v8"}


def test_killed_between_the_data_and_its_offset_a_second_recovery_ends_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The data's WriteBatch is written, then the offset: a kill between the two leaves
    the offset behind, and the records re-applied from it give the same table."""
    rng = random.Random(5)
    log = random_log(rng, 200)
    log[0] = [(o, f"k{o % 7}".encode(), f"v{o}".encode()) for o in range(1, 150)]
    first = Restore(tmp_path)
    first.start(log)
    store_type = type(first.table.data)
    set_offset = store_type.set_persisted_offset
    monkeypatch.setattr(store_type, "set_persisted_offset", _raises)
    run = [record(first.topic, 0, o, k, v) for o, k, v in log[0][:100]]
    with pytest.raises(OSError):
        asyncio.run(first.fetch({0: run}))
    assert first.persisted(0) is None and first.contents()[0]  # data written, no offset
    monkeypatch.setattr(store_type, "set_persisted_offset", set_offset)
    first.table.data._dbs.clear()

    second = Restore(tmp_path)
    second.start(log)
    asyncio.run(fetch_all(second, log, rng))
    assert second.contents() == folded(log)


def _raises(self: Any, tp: Any, offset: int) -> None:
    raise OSError("killed before the offset was written")


def test_a_changed_faust_recovery_stops_the_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The intake keeps Recovery's bookkeeping: another ``need_recovery`` (a release, a
    local patch) is refused at make_app, and so is a Recovery of another class."""
    monkeypatch.setattr(Recovery, "need_recovery", lambda self: False)
    with pytest.raises(PatchMismatchError, match="need_recovery"):
        Restore(tmp_path / "changed")
    monkeypatch.undo()

    class Other(Recovery):  # type: ignore[misc]  # Faust's class is untyped
        pass

    monkeypatch.setattr(TableManager, "recovery", property(lambda self: Other.__new__(Other)))
    with pytest.raises(PatchMismatchError, match="not Faust's Recovery"):
        Restore(tmp_path / "subclassed")
