"""Telemetry workers killed mid-stream: every window's figures stay exact."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.common.broker import EmbeddedBroker
from streams.common.partitioning import partition_for
from tests.support.telemetry import (
    Aggregates,
    Row,
    TelemetryProcesses,
    batch_record,
    committed_records,
    exact_aggregates,
    expected_figures,
    figure_differences,
    group_record,
    labelled,
    read_aggregates,
    settle,
)
from tests.support.workers import Consumed, Record, Worker, produce, read_topic, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

READINGS = "telemetry.readings"
PARTITIONS = 6  # the workers' default
BASE_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: event time in the past
WINDOW_MS = 10_000
SMALL_WINDOWS = {"TELEMETRY_WINDOW_SECONDS": "10", "TELEMETRY_GRACE_SECONDS": "1"}
DEVICES = [f"edge-{n:03d}" for n in range(48)]
SERIES = [("eth0", "rx_bytes"), ("eth0", "tx_bytes"), ("eth1", "rx_bytes"), ("eth1", "errors")]
STEP_MS = 500  # a reading of each series every half second
PROCESSED = "streams_telemetry_records_total"


@pytest.fixture
def telemetry(broker: EmbeddedBroker, tmp_path: Path) -> Iterator[TelemetryProcesses]:
    processes = TelemetryProcesses(broker.bootstrap, tmp_path)
    yield processes
    processes.stop_all()


def window_round(window: int, seed: int) -> list[tuple[str, list[Row]]]:
    """Every device's readings of one window, sent as two records (halves) per device.

    A round holds whole windows, so however long the test waits between rounds no
    reading of a later round can fall in a window a quiet spell closed.
    """
    rng = random.Random(seed * 1_000 + window)
    groups = []
    per_window = WINDOW_MS // STEP_MS
    for number, device in enumerate(DEVICES):
        phase = number * 7 % STEP_MS
        start = BASE_MS + window * WINDOW_MS + phase
        rows = [
            (interface, metric, round(rng.uniform(0, 1e6), 3), start + step * STEP_MS, seq)
            for step, seq in enumerate(range(window * per_window, (window + 1) * per_window))
            for interface, metric in SERIES
        ]
        half = len(rows) // 2
        groups += [(device, rows[:half]), (device, rows[half:])]
    return groups


def send_round(bootstrap: str, window: int, seed: int) -> list[tuple[str, list[Row]]]:
    """Produce one round (at a pace a worker keeps up with); returns what was sent.

    Both forms of record: each device's first half keyed by the device, the second
    halves as the ingest sends them, one record per partition holding its devices.
    """
    groups = window_round(window, seed)
    records: list[Record] = [group_record(device, rows) for device, rows in groups[::2]]
    by_partition: dict[int, list[tuple[str, list[Row]]]] = {}
    for device, rows in groups[1::2]:
        by_partition.setdefault(partition_for(device.encode(), PARTITIONS), []).append(
            (device, rows)
        )
    records += [batch_record(part, partition) for partition, part in by_partition.items()]
    produce(bootstrap, READINGS, records, rate=300)
    return groups


class Sender:
    """Sends rounds of windows from a thread, one after the other, until stopped."""

    def __init__(self, bootstrap: str, seed: int, first: int = 0) -> None:
        self.bootstrap, self.seed, self.next = bootstrap, seed, first
        self.sent: list[tuple[str, list[Row]]] = []
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(1)
        self._done = self._pool.submit(self._run)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sent += send_round(self.bootstrap, self.next, self.seed)
            self.next += 1

    def running(self) -> bool:
        return not self._done.done()

    def rounds_after(self, rounds: int) -> Callable[[], bool]:
        first = self.next
        return lambda: self.next >= first + rounds

    def stop(self) -> list[tuple[str, list[Row]]]:
        """Stop after the round being sent; what was sent in all."""
        self._stop.set()
        self._done.result(timeout=60)
        self._pool.shutdown()
        return self.sent


def committed(broker: EmbeddedBroker) -> int:
    return committed_records(broker.bootstrap, "telemetry", READINGS, partitions=6)


def exact(broker: EmbeddedBroker, sent: list[tuple[str, list[Row]]]) -> Aggregates:
    return exact_aggregates(broker.bootstrap, sent, WINDOW_MS)


def assert_clean(broker: EmbeddedBroker, found: Aggregates, *workers: Worker) -> None:
    assert found.conflicts == [], "windows emitted twice with different figures"
    assert read_topic(broker.bootstrap, "telemetry.dlq") == []
    for worker in workers:
        assert worker.metric("streams_telemetry_dead_letters_total") == 0


def kill_mid_stream(broker: EmbeddedBroker, victim: Worker, seed: int) -> tuple[int, Sender]:
    """Send rounds; SIGKILL ``victim`` once a few rounds' offsets are committed (so a
    replacement must restore state rather than recompute it from offset 0), keep
    sending two rounds. Returns the windows emitted before the kill (no id may repeat
    among those) and the stopped sender."""
    sender = Sender(broker.bootstrap, seed)
    try:
        wait_until(lambda: committed(broker) >= 400, what="offsets committed")
        assert sender.running()
        victim.kill()
        before = read_aggregates(broker.bootstrap)
        wait_until(sender.rounds_after(2), what="rounds sent after the kill")
    finally:
        sender.stop()
    assert before.reemitted == [] and before.conflicts == []
    return before.windows, sender


def send_rounds(broker: EmbeddedBroker, windows: range, seed: int) -> list[tuple[str, list[Row]]]:
    return [group for window in windows for group in send_round(broker.bootstrap, window, seed)]


def report(stage: str, emitted_before_kill: int, found: Aggregates) -> None:
    """Re-emits are allowed (identical, after the crash): say how many (pytest -s)."""
    print(
        f"\n{stage}: {found.windows} windows, {emitted_before_kill} emitted before the kill, "
        f"{len(found.reemitted)} re-emitted since (e.g. {found.reemitted[:2]})"
    )


def test_killed_worker_survivor_takes_over_then_restart_on_kept_rocksdb_is_exact(
    broker: EmbeddedBroker, telemetry: TelemetryProcesses, tmp_path: Path
) -> None:
    """Of two workers one is SIGKILLed mid-stream, the survivor takes its partitions over
    and, once it restarts on its kept RocksDB, every window is still exactly right."""
    kept = tmp_path / "kept"
    victim = telemetry.start(SMALL_WINDOWS, data_dir=kept)
    survivor = telemetry.start(SMALL_WINDOWS)
    # Rebalances here start with no reading in flight; the last test covers one that does.
    settle(survivor, victim)
    emitted_before, sender = kill_mid_stream(broker, victim, seed=1)
    sent = sender.sent

    found = wait_until(lambda: exact(broker, sent), timeout=120, what="survivor exact")
    assert_clean(broker, found, survivor)
    report("survivor took over", emitted_before, found)

    restarted = telemetry.start(SMALL_WINDOWS, data_dir=kept)
    settle(restarted, survivor)
    sent += send_rounds(broker, range(sender.next, sender.next + 4), seed=1)
    found = wait_until(lambda: exact(broker, sent), timeout=120, what="exact after restart")
    assert_clean(broker, found, survivor, restarted)
    assert restarted.metric(PROCESSED) > 0
    report("victim restarted on kept RocksDB", emitted_before, found)


def test_killed_worker_replaced_from_changelog_alone_is_exact(
    broker: EmbeddedBroker, telemetry: TelemetryProcesses
) -> None:
    """A lone worker SIGKILLed mid-stream and replaced by one with an empty data dir
    rebuilds its windows from the changelog, and every window is exactly right."""
    victim = telemetry.start(SMALL_WINDOWS)
    settle(victim)
    emitted_before, sender = kill_mid_stream(broker, victim, seed=2)
    replacement = telemetry.start(SMALL_WINDOWS)
    settle(replacement)
    sent = sender.sent + send_rounds(broker, range(sender.next, sender.next + 2), seed=2)

    found = wait_until(lambda: exact(broker, sent), timeout=120, what="exact from changelog")
    assert_clean(broker, found, replacement)
    report("replaced from the changelog", emitted_before, found)


def as_json(value: bytes | None) -> Any:
    """A value as JSON when it is JSON, else as it is."""
    try:
        return orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return value


def test_bad_records_are_dead_lettered_and_the_worker_keeps_counting(
    broker: EmbeddedBroker, telemetry: TelemetryProcesses
) -> None:
    """Undecodable, misshapen, mis-keyed, non-numeric and late records, and devices sent
    to another partition than their id's (in the array form and keyed), each land in
    telemetry.dlq with their reason and origin, counted by reason, while the worker goes
    on windowing every valid reading, the late ones' and the stray device's neighbours
    included, and a keyed record in the array form."""
    worker = telemetry.start(SMALL_WINDOWS)
    late_row: Row = ("eth0", "cpu", 7.0, BASE_MS + 2_000, 4)
    on_time = [
        (
            "late-1",
            [("eth0", "cpu", 1.0, BASE_MS + 1_000, 1), ("eth0", "cpu", 3.0, BASE_MS + 1_500, 2)],
        ),
        ("late-1", [("eth0", "cpu", 5.0, BASE_MS + 39_000, 3)]),  # closes window 0
    ]
    bad: list[tuple[str, Record]] = [
        ("invalid", (b"bad-1", b"{not json")),
        ("invalid", (b"bad-2", b'{"device_id": "bad-2", "values": [1, 2]}')),
        ("invalid", group_record("bad-3", [("eth0", "cpu", 1.0, BASE_MS, 1)], key="someone-else")),
        (
            "invalid",
            (
                b"bad-4",
                b'{"device_id": "bad-4", "readings": [["eth0", "cpu", "high", 1767225600000, 1]]}',
            ),
        ),
    ]
    mixed: tuple[str, list[Row]] = ("late-1", [late_row, ("eth0", "cpu", 9.0, BASE_MS + 39_500, 5)])
    # One record for a partition holding a device that belongs in another one.
    stray: tuple[str, list[Row]] = ("stray-1", [("eth0", "cpu", 2.0, BASE_MS + 500, 1)])
    target = (partition_for(b"stray-1", PARTITIONS) + 1) % PARTITIONS
    mate_id = next(
        f"mate-{n}" for n in range(99) if partition_for(f"mate-{n}".encode(), PARTITIONS) == target
    )
    mate: tuple[str, list[Row]] = (mate_id, [("eth0", "cpu", 4.0, BASE_MS + 600, 1)])
    records = [group_record(*group) for group in on_time]
    records += [record for _, record in bad] + [group_record(*mixed)]
    records.append(batch_record([stray, mate], target))
    # A keyed record sent to another partition than its key's: refused whole.
    lost = group_record("lost-1", [("eth0", "cpu", 6.0, BASE_MS + 700, 1)])
    lost_key, lost_value = lost[0], lost[1]
    records.append((lost_key, lost_value, (partition_for(b"lost-1", PARTITIONS) + 1) % PARTITIONS))
    # The array form keyed by its one device: windowed like the object form.
    keyed: tuple[str, list[Row]] = ("keyed-1", [("eth0", "cpu", 8.0, BASE_MS + 800, 1)])
    records.append((b"keyed-1", batch_record([keyed], 0)[1]))
    produce(broker.bootstrap, READINGS, records)

    def dead_letters() -> list[Consumed]:
        letters = read_topic(broker.bootstrap, "telemetry.dlq")
        return letters if len(letters) >= 7 else []

    letters = wait_until(dead_letters, what="seven dead letters")

    good = ("good-1", [("eth1", "temperature", 40.5, BASE_MS + 9_500, 1)])
    produce(broker.bootstrap, READINGS, [group_record(*good)])
    valid = [*on_time, ("late-1", mixed[1][1:]), mate, keyed, good]
    wait_until(
        lambda: (
            not figure_differences(
                expected_figures(valid, WINDOW_MS), read_aggregates(broker.bootstrap).figures
            )
        ),
        what="every valid reading in its window",
    )
    assert worker.alive()

    sources = {(r.partition, r.offset): r for r in read_topic(broker.bootstrap, READINGS)}
    expected_letters = [(reason, record[0], record[1]) for reason, record in bad]
    expected_letters.append(("late", b"late-1", group_record("late-1", [late_row])[1]))
    expected_letters.append(("invalid", None, group_record(*stray)[1]))
    expected_letters.append(("invalid", lost_key, lost_value))
    found_letters = []
    for letter in letters:
        assert letter.headers["dlq.topic"] == READINGS
        source = sources[(int(letter.headers["dlq.partition"]), int(letter.headers["dlq.offset"]))]
        assert source.key == letter.key
        if letter.headers["dlq.reason"] == "late":
            assert source.value == group_record(*mixed)[1]
        elif source.key is None:  # the stray device's group, out of its record
            assert (source.partition, source.value) == (target, batch_record([stray, mate], 0)[1])
        else:
            assert source.value == letter.value
        # Values compared as JSON: the worker re-encodes the group it refuses.
        found_letters.append((letter.headers["dlq.reason"], letter.key, as_json(letter.value)))
    expected = [(reason, key, as_json(value)) for reason, key, value in expected_letters]
    assert sorted(found_letters, key=repr) == sorted(expected, key=repr)
    assert len(letters) == 7
    page = worker.metrics()
    assert labelled(page, "streams_telemetry_dead_letters_total", reason="invalid") == 6
    assert labelled(page, "streams_telemetry_dead_letters_total", reason="late") == 1


def test_readings_flowing_while_a_worker_joins_are_all_counted(
    broker: EmbeddedBroker, telemetry: TelemetryProcesses
) -> None:
    """A second worker joining while readings flow takes half the partitions over
    without a reading lost or counted twice."""
    first = telemetry.start(SMALL_WINDOWS)
    settle(first)
    sender = Sender(broker.bootstrap, seed=3)
    try:
        wait_until(lambda: first.metric(PROCESSED) > 200, what="the first worker reading")
        second = telemetry.start(SMALL_WINDOWS)
        settle(second)
        wait_until(sender.rounds_after(2), what="rounds sent after the rebalance")
    finally:
        sent = sender.stop()
    found = wait_until(lambda: exact(broker, sent), timeout=60, what="exact through a rebalance")
    assert_clean(broker, found, first, second)
