"""A partition's windows over a store: exact figures, alerts, and recovery from crashes."""

from __future__ import annotations

import random
import statistics
from collections.abc import Iterable
from typing import Any

import orjson
import pytest

from streams.telemetry.config import Detector, Flatline, TelemetryConfig, Threshold
from streams.telemetry.models import ReadingRow, iso_ms
from streams.telemetry.state import Applied, Closed, PartitionWindows

CONFIG = TelemetryConfig(window_seconds=60, grace_seconds=5)
#: 2025-08-01T12:00:00Z, the start of a minute window.
T0 = 1_754_049_600_000
W0 = "2025-08-01T12:00:00.000Z"

Rec = tuple[str, int, list[ReadingRow]]  # device, offset, readings


class Store(dict[str, Any]):
    """A table partition as RocksDB keeps it: JSON copies in and out, every write logged.

    Keys starting with a prefix in ``lost`` are not written: the worker crashed first.
    """

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []
        self.lost: tuple[str, ...] = ()

    # dict.get's overloads are wider than the Store protocol needs.
    def get(self, key: str, default: Any = None, /) -> Any:  # type: ignore[override]
        return orjson.loads(orjson.dumps(super().get(key, default)))

    def __setitem__(self, key: str, value: Any) -> None:
        if not key.startswith(self.lost):
            self.writes.append(key)
            super().__setitem__(key, orjson.loads(orjson.dumps(value)))

    def __delitem__(self, key: str) -> None:
        if not key.startswith(self.lost):
            self.writes.append(f"-{key}")
            super().__delitem__(key)


def at(seconds: float) -> int:
    return T0 + round(seconds * 1000)


def util(value: float, second: float, seq: int, metric: str = "utilization") -> ReadingRow:
    """One reading of eth0, ``second`` seconds into the first window."""
    return ("eth0", metric, value, at(second), seq)


def restart(store: Store) -> PartitionWindows:
    """The partition as a restarted worker loads it: metas read back from the m| keys."""
    return PartitionWindows(store, {key[2:]: store.get(key) for key in store if key[:2] == "m|"})


def apply_batch(
    windows: PartitionWindows, batch: Iterable[Rec], config: TelemetryConfig = CONFIG
) -> tuple[list[Applied], list[str]]:
    """Apply a batch and write its chunks and metas; returns outcomes and devices changed."""
    applied: list[Applied] = []
    devices: dict[str, None] = {}
    for device, offset, rows in batch:
        applied.append(outcome := windows.apply(device, offset, rows, config))
        if not outcome.replayed:
            devices[device] = None
    windows.flush_applied()
    return applied, list(devices)


def close_due(
    windows: PartitionWindows, devices: Iterable[str], config: TelemetryConfig = CONFIG
) -> Closed:
    """Close what each device's event time made due, as the agent does after a batch."""
    closed = Closed()
    for device in devices:
        windows.close(device, windows.metas[device]["max"], config, "event_time", closed)
    return closed


def handle(
    windows: PartitionWindows, batch: Iterable[Rec], config: TelemetryConfig = CONFIG
) -> tuple[list[Applied], Closed]:
    applied, devices = apply_batch(windows, batch, config)
    return applied, close_due(windows, devices, config)


def run(windows: PartitionWindows, batches: Iterable[list[Rec]]) -> list[Closed]:
    return [handle(windows, batch)[1] for batch in batches]


def series(closed: Closed) -> list[dict[str, Any]]:
    """The figures of every series of every window closed, in order."""
    return [entry for window in closed.aggregates for entry in window["series"]]


def published(closes: Iterable[Closed]) -> dict[str, dict[str, Any]]:
    """What the compacted results topics keep: the last aggregate and alert of each id."""
    kept: dict[str, dict[str, Any]] = {}
    for closed in closes:
        kept.update({f"aggregate {r['id']}": r for r in closed.aggregates})
        kept.update({f"alert {r['id']}": r for r in closed.alerts})
    return kept


#: Two devices; r1's first window closes in the third batch, r2's (with an alert) in the fourth.
STREAM: list[list[Rec]] = [
    [("r1", 0, [util(10.0, 1, 1), util(0.0, 1, 2, "errors")]), ("r2", 1, [util(50.0, 2, 1)])],
    [("r1", 2, [util(30.0, 30, 3), util(35.0, 31, 4)]), ("r1", 3, [util(20.0, 61, 5)])],
    [("r2", 4, [util(99.0, 40, 2)]), ("r1", 5, [util(25.0, 66, 6)])],
    [("r2", 6, [util(70.0, 130, 3)])],
    [("r1", 7, [util(40.0, 200, 7)]), ("r2", 8, [util(1.0, 300, 4)])],
]


def clean_run() -> list[Closed]:
    return run(PartitionWindows(Store(), {}), STREAM)


def test_redelivered_record_is_applied_once() -> None:
    """A record at or below the last applied offset is skipped, reported replayed, not counted."""
    windows = PartitionWindows(Store(), {})
    handle(windows, [("d", 4, [util(10.0, 1, 1)])])
    applied, _ = handle(windows, [("d", 4, [util(10.0, 2, 2)]), ("d", 3, [util(10.0, 3, 3)])])
    assert [(a.replayed, a.readings) for a in applied] == [(True, 0), (True, 0)]
    _, closed = handle(windows, [("d", 5, [util(0.0, 65, 4)])])
    assert [(s["count"], s["mean"]) for s in series(closed)] == [(1, 10.0)]


def test_flush_writes_every_chunk_before_the_metas() -> None:
    """A batch's chunks reach the store before the metas that count them, and nothing earlier."""
    store = Store()
    windows = PartitionWindows(store, {})
    windows.apply("a", 0, [util(1.0, 1, 1), util(2.0, 61, 2)], CONFIG)
    windows.apply("b", 1, [util(3.0, 2, 1)], CONFIG)
    windows.apply("a", 2, [util(4.0, 3, 3)], CONFIG)
    assert store.writes == []
    windows.flush_applied()
    assert store.writes == [f"c|a|{T0}|0", f"c|a|{at(60)}|0", f"c|b|{T0}|0", "m|a", "m|b"]
    rows = [row for group in store[f"c|a|{T0}|0"] for row in group["readings"]]
    assert [(row[0], row[1], row[2], row[4]) for row in rows] == [
        ("eth0", "utilization", 1.0, 1),
        ("eth0", "utilization", 4.0, 3),
    ]
    assert store["m|a"]["open"] == {str(T0): [at(60), 1], str(at(60)): [at(120), 1]}


def test_window_is_emitted_with_exact_figures_after_end_plus_grace() -> None:
    """A window closes when event time reaches its end plus grace, with exact figures."""
    values = [round(random.Random(5).uniform(0, 100), 2) for _ in range(30)]
    rows = [util(v, i, i) for i, v in enumerate(values)]
    windows = PartitionWindows(Store(), {})
    handle(windows, [("d", 0, rows[:12]), ("d", 1, rows[12:])])
    _, before = handle(windows, [("d", 2, [util(1.0, 64.999, 100)])])
    assert before.aggregates == [] and before.windows == []
    _, closed = handle(windows, [("d", 3, [util(1.0, 65, 101)])])
    p95 = statistics.quantiles(values, n=20, method="inclusive")[18]
    assert closed.aggregates == [
        {
            "id": f"d|{W0}",
            "device_id": "d",
            "window_start": W0,
            "window_end": "2025-08-01T12:01:00.000Z",
            "closed_by": "event_time",
            "config_version": 0,
            "duplicates": 0,
            "series": [
                {
                    "interface": "eth0",
                    "metric": "utilization",
                    "count": 30,
                    "min": min(values),
                    "max": max(values),
                    "mean": statistics.fmean(values),
                    "p95": pytest.approx(p95, rel=1e-12),
                }
            ],
        }
    ]
    assert closed.windows == [("d", at(60), "event_time")]


def test_duplicate_reading_in_a_later_record_counts_once() -> None:
    """A reading resent in another record (same seq) counts once and is reported a duplicate."""
    windows = PartitionWindows(Store(), {})
    handle(windows, [("d", 0, [util(10.0, 1, 1), util(20.0, 2, 2)])])
    handle(windows, [("d", 1, [util(10.0, 1, 1)])])
    _, closed = handle(windows, [("d", 2, [util(0.0, 65, 3)])])
    assert [(s["count"], s["mean"]) for s in series(closed)] == [(2, 15.0)]
    assert closed.duplicates == closed.aggregates[0]["duplicates"] == 1


def test_late_readings_are_returned_for_dead_lettering() -> None:
    """Readings before a closed window's end come back as late; the rest of the record counts."""
    windows = PartitionWindows(Store(), {})
    handle(windows, [("d", 0, [util(10.0, 1, 1), util(20.0, 65, 2)])])
    applied, _ = handle(windows, [("d", 1, [util(99.0, 59.999, 3), util(30.0, 70, 4)])])
    assert applied[0].late == [util(99.0, 59.999, 3)]
    assert applied[0].readings == 1
    _, closed = handle(windows, [("d", 2, [util(0.0, 125, 5)])])
    assert [(s["count"], s["max"]) for s in series(closed)] == [(2, 30.0)]


def test_closing_deletes_the_chunks_and_advances_closed() -> None:
    """A closed window's chunks are deleted after the stored meta marks its end as closed
    (a restore never finds an open window whose chunks are gone)."""
    store = Store()
    windows = PartitionWindows(store, {})
    handle(windows, [("d", 0, [util(1.0, 1, 1)])])
    handle(windows, [("d", 1, [util(2.0, 2, 2)])])
    store.writes.clear()
    handle(windows, [("d", 2, [util(3.0, 65, 3)])])
    assert [k for k in store if k.startswith(f"c|d|{T0}|")] == []
    assert store.writes[-5:] == [f"w|d|{T0}", "h|d", "m|d", f"-c|d|{T0}|0", f"-c|d|{T0}|1"]
    assert store["m|d"]["closed"] == at(60)
    assert list(store["m|d"]["open"]) == [str(at(60))]


def test_idle_close_emits_a_quiet_devices_windows() -> None:
    """Closing on a clock past end plus grace emits a quiet device's window, marked idle."""
    windows = PartitionWindows(Store(), {})
    handle(windows, [("d", 0, [util(5.0, 1, 1), util(7.0, 2, 2)])])
    closed = Closed()
    windows.close("d", at(64.999), CONFIG, "idle", closed)
    assert closed.windows == []
    windows.close("d", at(65), CONFIG, "idle", closed)
    assert [(r["closed_by"], r["series"][0]["count"]) for r in closed.aggregates] == [("idle", 2)]
    assert closed.windows == [("d", at(60), "idle")]


def test_silent_device_is_reported_once_per_silence() -> None:
    """A device quiet for silent_after_seconds gets one alert, even after a restart."""
    store = Store()
    windows = PartitionWindows(store, {})
    handle(windows, [("d", 0, [util(1.0, 10, 1)])])
    alerts = Closed()
    windows.silence("d", at(309.999), CONFIG, alerts)
    assert alerts.alerts == []
    windows.silence("d", at(310), CONFIG, alerts)
    windows.silence("d", at(400), CONFIG, alerts)
    restart(store).silence("d", at(500), CONFIG, alerts)
    assert alerts.alerts == [
        {
            "id": "d|silent|2025-08-01T12:00:10.000Z",
            "device_id": "d",
            "interface": None,
            "metric": None,
            "kinds": ["silent"],
            "reasons": [{"kind": "silent", "last_reading": "2025-08-01T12:00:10.000Z"}],
            "at": "2025-08-01T12:05:10.000Z",
            "config_version": 0,
        }
    ]
    handle(windows, [("d", 1, [util(1.0, 600, 2)])])
    windows.silence("d", at(900), CONFIG, alerts)
    assert [a["id"] for a in alerts.alerts][1:] == ["d|silent|2025-08-01T12:10:00.000Z"]


def test_alert_has_its_series_window_id_and_lists_every_reason_kind() -> None:
    """A series window over a threshold, flat and unusual gets one alert named after it."""
    config = TelemetryConfig(
        thresholds={"cpu": Threshold(figure="mean", above=50.0)},
        flatline=Flatline(min_count=3, metrics=["cpu"]),
        detector=Detector(kind="ewma", min_windows=2),
    )
    batches = [
        [("d", 0, [util(v, 1 + i, i, "cpu") for i, v in enumerate([9.0, 11.0, 10.0])])],
        [("d", 1, [util(v, 61 + i, 10 + i, "cpu") for i, v in enumerate([10.0, 12.0, 8.0])])],
        [("d", 2, [util(80.0, 121 + i, 20 + i, "cpu") for i in range(3)])],
        [("d", 3, [util(10.0, 190, 30, "cpu")])],
    ]
    windows = PartitionWindows(Store(), {})
    closes = [handle(windows, batch, config)[1] for batch in batches]
    alerts = [alert for closed in closes for alert in closed.alerts]
    assert len(alerts) == 1
    (alert,) = alerts
    window = closes[-1].aggregates[-1]
    assert window["id"] == f"d|{iso_ms(at(120))}"
    assert alert["id"] == f"d|eth0|cpu|{iso_ms(at(120))}"
    assert (alert["window_start"], alert["window_end"]) == (
        window["window_start"],
        window["window_end"],
    )
    assert alert["kinds"] == ["ewma", "flatline", "threshold"]
    assert [r["kind"] for r in alert["reasons"]] == ["threshold", "flatline", "ewma"]
    assert alert["figures"] == {"count": 3, "min": 80.0, "max": 80.0, "mean": 80.0, "p95": 80.0}


def test_crash_before_flush_replays_to_the_clean_results() -> None:
    """A batch applied but never written is applied again on redelivery, with clean figures."""
    store = Store()
    windows = PartitionWindows(store, {})
    first = run(windows, STREAM[:2])
    written = dict(store)
    unwritten = [windows.apply(device, o, rows, CONFIG) for device, o, rows in STREAM[2]]
    assert all(a.readings for a in unwritten) and dict(store) == written
    windows = restart(store)
    rest = run(windows, STREAM)  # redelivered from the start: applied offsets are skipped
    assert published(first + rest) == published(clean_run())


def test_chunk_without_its_meta_is_overwritten_by_the_replay() -> None:
    """Chunks written without their meta are rewritten under the same numbers: no double count."""
    clean_store = Store()
    run(PartitionWindows(clean_store, {}), STREAM[:2])
    store = Store()
    windows = PartitionWindows(store, {})
    first = run(windows, STREAM[:1])
    store.lost = ("m|",)
    apply_batch(windows, STREAM[1])
    store.lost = ()
    assert f"c|r1|{T0}|1" in store and store["m|r1"]["open"][str(T0)] == [at(60), 1]
    windows = restart(store)
    second = run(windows, STREAM[:2])
    assert dict(store) == dict(clean_store)
    rest = run(windows, STREAM[2:])
    assert published(first + second + rest) == published(clean_run())
    assert sum(closed.duplicates for closed in first + second + rest) == 0


def test_crash_after_emitting_emits_the_same_window_again() -> None:
    """A window emitted but not recorded closed is emitted again with the same id and figures."""
    store = Store()
    windows = PartitionWindows(store, {})
    first = run(windows, STREAM[:3])
    _, devices = apply_batch(windows, STREAM[3])
    store.lost = ("",)
    emitted = close_due(windows, devices)
    store.lost = ()
    assert [r["id"] for r in emitted.aggregates] == [f"r2|{W0}"]
    assert [a["id"] for a in emitted.alerts] == [f"r2|eth0|utilization|{W0}"]
    windows = restart(store)
    rest = run(windows, STREAM)
    again = [r for closed in rest for r in closed.aggregates if r["id"] == f"r2|{W0}"]
    assert again == emitted.aggregates
    assert [a for closed in rest for a in closed.alerts] == emitted.alerts
    assert published([*first, emitted, *rest]) == published(clean_run())


def test_reading_after_a_crash_does_not_change_an_emitted_window() -> None:
    """After a crash between emitting a window and recording it, its straggler is still late."""
    store = Store()
    windows = PartitionWindows(store, {})
    _, devices = apply_batch(windows, [("d", 0, [util(10.0, 1, 1), util(20.0, 70, 2)])])
    store.lost = ("",)
    emitted = close_due(windows, devices)
    store.lost = ()
    windows = restart(store)
    applied, again = handle(windows, [("d", 1, [util(99.0, 30, 3)])])
    assert applied[0].late == [util(99.0, 30, 3)]
    assert again.aggregates == emitted.aggregates


def test_a_record_in_one_window_is_kept_as_received() -> None:
    """A record whose readings share a window is stored as its own bytes, and counts alike."""
    store = Store()
    windows = PartitionWindows(store, {})
    rows = [util(1.0, 1, 1), util(3.0, 2, 2)]
    raw = orjson.dumps({"device_id": "d", "readings": rows})
    windows.apply("d", 0, rows, CONFIG, raw=raw)
    windows.flush_applied()
    assert store[f"c|d|{T0}|0"] == [orjson.loads(raw)]
    closed = Closed()
    windows.close("d", at(65), CONFIG, "idle", closed)
    assert closed.aggregates[0]["series"][0]["count"] == 2
    assert closed.aggregates[0]["series"][0]["mean"] == 2.0


def test_a_window_that_cannot_be_computed_is_closed_as_a_dead_letter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A window whose figures raise (an input no rule foresaw) is closed all the same and
    handed over as a failed window, readings included; its neighbours close as usual,
    and the device's next window opens and closes normally."""
    import streams.telemetry.state as state
    from streams.telemetry.windows import series_values as real

    def fragile(chunks: Any) -> Any:
        chunks = list(chunks)
        if b"666.0" in orjson.dumps(chunks):
            raise OverflowError("intermediate overflow in fsum")
        return real(chunks)

    store = Store()
    windows = PartitionWindows(store, {})
    apply_batch(windows, [("bad", 0, [util(666.0, 1, 1)]), ("good", 1, [util(1.0, 1, 1)])])
    monkeypatch.setattr(state, "series_values", fragile)
    closed = Closed()
    for device in ("bad", "good"):
        windows.close(device, at(65), CONFIG, "idle", closed)

    assert [(f["device"], f["start"], f["error"]) for f in closed.failed] == [
        ("bad", T0, "OverflowError: intermediate overflow in fsum")
    ]
    assert [c for chunk in closed.failed[0]["chunks"] for c in chunk]
    assert [w["device_id"] for w in closed.aggregates] == ["good"]
    assert store["m|bad"]["closed"] == at(60) and store["m|bad"]["open"] == {}
    assert not [key for key in store if key.startswith("c|bad|")]
    apply_batch(windows, [("bad", 2, [util(2.0, 70, 2)])])
    later = Closed()
    windows.close("bad", at(130), CONFIG, "idle", later)
    assert [w["series"][0]["count"] for w in later.aggregates] == [1]
