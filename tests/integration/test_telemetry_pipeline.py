"""The telemetry pipeline end to end on the embedded broker: the device simulator posts
to a real ingest, two real workers window and judge its readings, and the live config
changes under them."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner

from producers.telemetry import series_per_device
from streams.common.broker import EmbeddedBroker
from streams.telemetry.config import TelemetryConfig, apply_changes
from streams.telemetry.config_cli import write_config
from streams.telemetry.models import decode_groups, iso_ms
from tests.support.telemetry import (
    Aggregates,
    Row,
    TelemetryProcesses,
    epoch_ms,
    exact_aggregates,
    group_record,
    labelled,
)
from tests.support.workers import Record, Worker, produce, read_topic, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

READINGS, AGGREGATES, ALERTS = "telemetry.readings", "telemetry.aggregates", "telemetry.alerts"
PARTITIONS = 6
SMALL_WINDOWS = {
    "TELEMETRY_WINDOW_SECONDS": "10",
    "TELEMETRY_GRACE_SECONDS": "1",
    "TELEMETRY_BATCH_SECONDS": "0.1",
}
WINDOW_MS, POLL_MS = 10_000, 2_000  # five polls a window: the flat-line rule's minimum count
# Replayed event time starts on a window boundary, so a seed gives the same windows each run.
START = datetime(2026, 1, 1, tzinfo=UTC)
START_MS = int(START.timestamp() * 1000)
DEVICES, INTERFACES = 8, 1
WARMUP_POLLS = 30  # six windows: the statistical detector judges from the sixth on
STATISTICAL = frozenset({"ewma", "zscore"})
SPIKY = ("utilization", "cpu", "memory")  # spikes read 97-100 %


def detection() -> TelemetryConfig:
    """Small windows, and spiking metrics judged on each window's max.

    A spike reads 97-100 % or hundreds of errors or drops, far above any normal reading,
    yet one spiked poll among five can leave a window's p95 or mean under the default
    limits: on the max, every window a spike touches must alert.
    """
    small = TelemetryConfig(window_seconds=10, grace_seconds=1)
    return apply_changes(small, {f"thresholds.{m}.figure": "max" for m in SPIKY})


def simulate(ingest: Worker, report: Path, seed: int, polls: int, **options: float) -> Any:
    """Replay ``polls`` polls of the simulated fleet into ``ingest``; the run's report."""
    count = polls * DEVICES * series_per_device(INTERFACES)
    run = subprocess.run(
        [sys.executable, "-m", "producers", "telemetry", "--url", f"{ingest.url}/telemetry",
         "--devices", str(DEVICES), "--interfaces", str(INTERFACES),
         "--interval-seconds", str(POLL_MS / 1000), "--start", START.isoformat(),
         "--count", str(count), "--seed", str(seed), "--report", str(report),
         *(f"--{name.replace('_', '-')}={value}" for name, value in options.items())],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    summary = orjson.loads(report.read_bytes())
    assert summary["stats"]["rejected"] == {}
    return summary


def published(broker: EmbeddedBroker) -> list[tuple[str, list[Row]]]:
    """Every reading group the ingest published, as (device, readings)."""
    found = read_topic(broker.bootstrap, READINGS)
    groups = [group for record in found for group in decode_groups(record.value or b"")]
    return [(group.device_id, group.readings) for group in groups]


def exact(broker: EmbeddedBroker, groups: list[tuple[str, list[Row]]]) -> Aggregates:
    return exact_aggregates(broker.bootstrap, groups, WINDOW_MS)


def records(broker: EmbeddedBroker, topic: str) -> list[dict[str, Any]]:
    return [orjson.loads(record.value or b"null") for record in read_topic(broker.bootstrap, topic)]


ASSIGNMENT = re.compile(r"Setting newly assigned partitions(.*?)for group", re.S)
READINGS_ROW = re.compile(r"^\| telemetry\.readings\s+\| \{([-\d, ]*)\}", re.M)


def owned(worker: Worker) -> set[int]:
    """The partitions of telemetry.readings the worker's newest assignment (logged) gave it."""
    blocks = ASSIGNMENT.findall(worker.log())
    rows = READINGS_ROW.findall(blocks[-1]) if blocks else []
    partitions: set[int] = set()
    for part in rows[0].split(",") if rows else []:
        first, _, last = part.strip().partition("-")
        partitions.update(range(int(first), int(last or first) + 1))
    return partitions


def sharing(workers: list[Worker]) -> list[set[int]] | None:
    """Each worker's partitions, once every partition has exactly one of them as owner."""
    owners = [owned(worker) for worker in workers]
    ok = all(owners) and sorted(p for o in owners for p in o) == list(range(PARTITIONS))
    return owners if ok else None


def partition_of(device: str) -> int:
    everything = list(range(PARTITIONS))
    return int(DefaultPartitioner()(device.encode(), everything, everything))


def alert_kinds(broker: EmbeddedBroker) -> dict[tuple[str, str, str, int], set[str]]:
    """Kinds alerted per (device, interface, metric, window start)."""
    kinds: dict[tuple[str, str, str, int], set[str]] = defaultdict(set)
    for alert in records(broker, ALERTS):
        series = alert["device_id"], alert["interface"], alert["metric"]
        kinds[(*series, epoch_ms(alert["window_start"]))].update(alert["kinds"])
    return kinds


def judged_faults(faults: list[dict[str, Any]], broker: EmbeddedBroker) -> Counter[str]:
    """Windows judged per rule; raises while an injected fault lacks its alert.

    Every window a flat line fills needs a flatline alert; every window a spike touches,
    a threshold alert, except for latency: a spike there (20 times a normal reading)
    overlaps other devices' normal latencies, so only the statistical detector sees it,
    and only the first of a series: the moving average then learns it as history.
    """
    kinds, judged, missed = alert_kinds(broker), Counter[str](), []
    spiked: set[tuple[str, str, str]] = set()
    for fault in sorted(faults, key=lambda f: f["start_ms"]):
        series = fault["device_id"], fault["interface"], fault["metric"]
        stamps = [fault["start_ms"] + poll * POLL_MS for poll in range(fault["polls"])]
        polls = Counter(ts - ts % WINDOW_MS for ts in stamps)
        found = {start: kinds.get((*series, start), set()) for start in polls}
        if fault["kind"] == "flatline":
            full = [start for start, n in polls.items() if n == WINDOW_MS // POLL_MS]
            judged["flatline"] += len(full)
            missed += [(fault, start) for start in full if "flatline" not in found[start]]
        elif series[2] != "latency_ms":
            judged["threshold"] += len(found)
            missed += [(fault, start) for start, k in found.items() if "threshold" not in k]
        elif series not in spiked:
            judged["statistical"] += 1
            if not any(k & (STATISTICAL | {"threshold"}) for k in found.values()):
                missed.append((fault, None))
        if fault["kind"] == "spike":
            spiked.add(series)
    if missed:
        raise ValueError(f"{len(missed)} faults without their alert, first {missed[:3]}")
    return judged


def test_simulated_fleet_is_counted_once_and_every_injected_fault_alerts(
    broker: EmbeddedBroker, telemetry: TelemetryProcesses, tmp_path: Path
) -> None:
    """Two workers fed by the simulator through the ingest count every accepted reading
    once, close the last windows on their own, alert on every injected spike and flat
    line, and answer for every device whichever of them is asked."""
    asyncio.run(write_config(broker.bootstrap, detection()))
    ingest = telemetry.start(command="ingest")
    workers = [telemetry.start(SMALL_WINDOWS) for _ in range(2)]
    wait_until(lambda: sharing(workers), timeout=60, what="both workers to own partitions")
    report = simulate(
        ingest, tmp_path / "report.json", seed=3, polls=150, warmup_polls=WARMUP_POLLS,
        spikes=0.01, flatlines=0.05, duplicates=0.01,
    )  # fmt: skip

    groups = published(broker)
    found = wait_until(lambda: exact(broker, groups), timeout=90, what="every window exact")
    accepted, duplicates = report["accepted"], report["stats"]["accepted_duplicates"]
    assert duplicates > 0
    assert found.readings() == accepted - duplicates
    assert (found.reemitted, found.conflicts) == ([], [])
    assert read_topic(broker.bootstrap, "telemetry.dlq") == []
    readings = [worker.metric("streams_telemetry_readings_total") for worker in workers]
    assert all(readings) and sum(readings) == accepted
    assert sum(w.metric("streams_telemetry_duplicate_readings_total") for w in workers) == (
        duplicates
    )
    # Nothing follows a device's newest window: only the idle close can have closed it.
    windows = records(broker, AGGREGATES)
    newest = {w["device_id"]: w for w in sorted(windows, key=lambda w: w["window_start"])}
    assert len(newest) == DEVICES
    assert {w["closed_by"] for w in newest.values()} == {"idle"}
    assert {w["closed_by"] for w in windows} == {"idle", "event_time"}

    judged = wait_until(
        lambda: judged_faults(report["truth"]["faults"], broker),
        timeout=30,
        what="an alert for every injected fault",
    )
    assert all(judged[rule] for rule in ("flatline", "threshold", "statistical")), judged

    emitted = {window["id"]: window for window in windows}
    last: dict[str, int] = defaultdict(int)
    for device, rows in groups:
        last[device] = max(last[device], *(row[3] for row in rows))
    for worker in workers:
        for device, window in newest.items():
            status, answer = worker.status(f"/telemetry/devices/{device}/windows")
            assert status == 200, answer
            assert (answer["last_reading"], answer["open"]) == (iso_ms(last[device]), [])
            # Its last closed windows as they were emitted, newest first.
            recent = answer["recent"]
            assert recent[0] == window and len(recent) > 1
            assert recent == [emitted[shown["id"]] for shown in recent]
            starts = [shown["window_start"] for shown in recent]
            assert starts == sorted(starts, reverse=True)
        assert worker.status("/telemetry/devices/sw-9999/windows")[0] == 404


def test_clean_fleet_raises_no_alert(
    broker: EmbeddedBroker, telemetry: TelemetryProcesses, tmp_path: Path
) -> None:
    """A simulated fleet with no fault injected, duplicates aside, has every window
    emitted and raises no alert."""
    asyncio.run(write_config(broker.bootstrap, detection()))
    ingest = telemetry.start(command="ingest")
    worker = telemetry.start(SMALL_WINDOWS)
    # Five windows: thresholds and the flat-line rule judge each one, while the statistical
    # detector is still learning every series (it judges from the sixth on; its rate of
    # false alarms on long clean runs is a question of tuning, not of the pipeline).
    report = simulate(ingest, tmp_path / "report.json", seed=4, polls=25, duplicates=0.02)

    groups = published(broker)
    found = wait_until(lambda: exact(broker, groups), timeout=60, what="every window exact")
    assert found.readings() == report["accepted"] - report["stats"]["accepted_duplicates"]
    # Counted once a window's figures and alerts are acknowledged.
    wait_until(
        lambda: worker.metric("streams_telemetry_windows_closed_total") == found.windows,
        timeout=30,
        what="every window counted as closed",
    )
    assert read_topic(broker.bootstrap, ALERTS) == []
    assert worker.metric("streams_telemetry_alerts_total") == 0
    assert "ALERT" not in worker.log()


def cpu_round(devices: list[str], window: int) -> list[Record]:
    """Per device five cpu readings near 52 % in ``window`` (above 20, under 90), then
    one at 1 % just past its grace, which closes the window on event time."""
    start = START_MS + window * WINDOW_MS
    out = []
    for n, device in enumerate(devices):
        polls = [("chassis", "cpu", 50.0 + k + n / 10, start + k * POLL_MS, k) for k in range(5)]
        closer = ("chassis", "cpu", 1.0, start + WINDOW_MS + 1_000, 5)
        rows = [(i, m, v, ts, window * 10 + seq) for i, m, v, ts, seq in [*polls, closer]]
        out.append(group_record(device, rows))
    return out


def test_config_change_applies_on_every_worker_without_a_restart(
    broker: EmbeddedBroker, telemetry: TelemetryProcesses
) -> None:
    """A cpu limit lowered with `config set` reaches both running workers, and the windows
    each of them closes afterwards alert on readings the old limit let pass."""
    workers = [telemetry.start(SMALL_WINDOWS) for _ in range(2)]
    owners = wait_until(lambda: sharing(workers), timeout=60, what="both workers to own partitions")
    devices = [f"rack-{n:02d}" for n in range(12)]
    theirs = [[d for d in devices if partition_of(d) in owned] for owned in owners]
    assert all(theirs)

    produce(broker.bootstrap, READINGS, cpu_round(devices, 0))
    wait_until(
        lambda: sum(w.metric("streams_telemetry_windows_closed_total") for w in workers) >= 12,
        timeout=30,
        what="the first window of every device closed",
    )
    assert read_topic(broker.bootstrap, ALERTS) == []

    changed = subprocess.run(
        [sys.executable, "-m", "streams.telemetry", "config", "set", "thresholds.cpu.above=20"],
        # The command seeds an empty topic from the environment, as the workers do.
        env={**os.environ, "KAFKA_BOOTSTRAP": broker.bootstrap, **SMALL_WINDOWS},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert changed.returncode == 0, changed.stderr
    assert changed.stdout == "config v1 written: thresholds.cpu.above 95.0 -> 20.0\n"
    for worker in workers:

        def in_force(w: Worker = worker) -> bool:
            return bool(w.get("/telemetry/config")["version"] == 1)

        wait_until(in_force, timeout=30, what=f"config v1 on worker {worker.port}")
        assert "telemetry config v1 applied: thresholds.cpu.above 95.0 -> 20.0" in worker.log()

    produce(broker.bootstrap, READINGS, cpu_round(devices, 6))
    window = iso_ms(START_MS + 6 * WINDOW_MS)
    expected = {f"{device}|chassis|cpu|{window}" for device in devices}

    def alerted() -> dict[str, Any] | None:
        found = {alert["id"]: alert for alert in records(broker, ALERTS)}
        return found if found.keys() >= expected else None

    alerts = wait_until(alerted, timeout=30, what="a threshold alert for every device")
    assert alerts.keys() == expected
    assert {(tuple(a["kinds"]), a["config_version"]) for a in alerts.values()} == {
        (("threshold",), 1)
    }
    for worker, own in zip(workers, theirs, strict=True):
        lines = [f"ALERT threshold {device}|chassis|cpu|{window}" for device in own]

        def logged(w: Worker = worker, lines: list[str] = lines) -> bool:
            return all(line in w.log() for line in lines)

        wait_until(logged, timeout=30, what=f"worker {worker.port} to log its devices' alerts")
        counted = labelled(worker.metrics(), "streams_telemetry_alerts_total", kind="threshold")
        assert counted == len(own)
