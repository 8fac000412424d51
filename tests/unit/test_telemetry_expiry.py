"""Idle devices expire: forgotten in memory and in the table, never counted twice."""

from __future__ import annotations

import pytest

from streams.telemetry.settings import TelemetrySettings
from streams.telemetry.state import FLOOR_KEY, Closed, PartitionWindows, expiry_due, new_meta
from tests.unit.test_telemetry_state import CONFIG, T0, Store, at, handle, restart, series, util

#: An hour: longer than a window plus grace and than silent_after_seconds (300 s).
EXPIRY_MS = 3_600_000
#: The clock of a device whose last reading is at ``at(1)``, quiet for the whole expiry.
EXPIRED = at(1) + EXPIRY_MS


def quiet_device(windows: PartitionWindows, device: str, offset: int, clock: float) -> None:
    """``device`` sends one reading at ``at(1)``; the timer then reaches ``clock`` on it."""
    handle(windows, [(device, offset, [util(10.0, 1, offset)])])
    done = Closed()
    windows.close(device, clock, CONFIG, "idle", done)
    windows.silence(device, clock, CONFIG, done)


def test_device_expires_only_when_quiet_for_the_setting_with_nothing_left_to_emit() -> None:
    """Quiet for the expiry with every window closed and its silence reported: due; else kept."""
    meta = {**new_meta(), "max": at(1), "closed": at(60), "silent": at(1)}
    assert expiry_due(meta, EXPIRED, EXPIRY_MS, CONFIG)
    assert not expiry_due(meta, EXPIRED - 1, EXPIRY_MS, CONFIG)
    assert not expiry_due({**meta, "open": {str(at(60)): [at(120), 1]}}, EXPIRED, EXPIRY_MS, CONFIG)
    assert not expiry_due({**meta, "silent": None}, EXPIRED, EXPIRY_MS, CONFIG)


def test_expiry_shorter_than_silence_does_not_wait_for_the_silent_alert() -> None:
    """With an expiry under silent_after_seconds, a device expires before any silence is due."""
    meta = {**new_meta(), "max": at(1), "closed": at(60)}
    assert expiry_due(meta, at(1) + 120_000, 120_000, CONFIG)


def test_expired_device_is_forgotten_in_memory_and_in_the_store() -> None:
    """An expired device's meta leaves memory and its meta, history and windows get tombstones."""
    store = Store()
    windows = PartitionWindows(store, {})
    quiet_device(windows, "gone", 0, EXPIRED)
    quiet_device(windows, "kept", 1, EXPIRED - 1)
    store.writes.clear()
    expired = windows.expire_quiet({"gone": EXPIRED, "kept": EXPIRED - 1}, EXPIRY_MS, CONFIG, 10)
    assert expired == ["gone"]
    assert list(windows.metas) == ["kept"]
    # The floor before the tombstones: a restore never forgets a device without it.
    assert store.writes == [FLOOR_KEY, f"-w|gone|{T0}", "-h|gone", "-m|gone"]
    assert set(store) == {FLOOR_KEY, "h|kept", "m|kept", f"w|kept|{T0}"}
    assert list(restart(store).metas) == ["kept"]


def test_device_with_an_open_window_is_kept() -> None:
    """A device whose window is still open (due to close later) is not forgotten."""
    windows = PartitionWindows(Store(), {})
    handle(windows, [("d", 0, [util(10.0, 1, 1)])])
    assert windows.expire_quiet({"d": EXPIRED}, EXPIRY_MS, CONFIG, 10) == []
    assert list(windows.metas) == ["d"]


def test_device_sending_again_after_expiry_starts_afresh() -> None:
    """A forgotten device that sends again gets new windows holding only its new readings."""
    windows = PartitionWindows(Store(), {})
    quiet_device(windows, "d", 0, EXPIRED)
    windows.expire_quiet({"d": EXPIRED}, EXPIRY_MS, CONFIG, 10)
    later = 7_200  # two hours on, in a window of its own
    handle(windows, [("d", 1, [util(3.0, later + 1, 1), util(5.0, later + 2, 2)])])
    assert windows.metas["d"]["closed"] == 0 and "silent" not in windows.metas["d"]
    _, closed = handle(windows, [("d", 2, [util(0.0, later + 65, 3)])])
    assert [(s["count"], s["mean"]) for s in series(closed)] == [(2, 4.0)]
    assert windows.metas["d"]["recent"] == [at(later)]


def test_redelivered_records_of_an_expired_device_are_not_applied_again() -> None:
    """After expiry, its old records redelivered (even to a restarted worker) count nothing."""
    store = Store()
    windows = PartitionWindows(store, {})
    handle(windows, [("d", 3, [util(10.0, 1, 1)]), ("d", 5, [util(20.0, 1, 2)])])
    quiet_device(windows, "other", 4, EXPIRED)
    windows.close("d", EXPIRED, CONFIG, "idle", Closed())
    windows.silence("d", EXPIRED, CONFIG, Closed())
    windows.expire_quiet({"d": EXPIRED, "other": EXPIRED}, EXPIRY_MS, CONFIG, 10)
    assert windows.metas == {}
    for again in (windows, restart(store)):
        replay = [("d", 3, [util(10.0, 1, 1)]), ("other", 4, [util(10.0, 1, 4)])]
        applied, closed = handle(again, [*replay, ("d", 5, [util(20.0, 1, 2)])])
        assert [a.replayed for a in applied] == [True, True, True]
        assert again.metas == {} and closed.aggregates == []
    # A record past the floor is new, from a device old or new.
    applied, _ = handle(windows, [("d", 6, [util(1.0, 90, 3)]), ("new", 7, [util(1.0, 90, 1)])])
    assert [a.readings for a in applied] == [1, 1]


def test_memory_stays_flat_as_devices_come_once_and_go_quiet() -> None:
    """10,000 devices, 1,000 new a tick, each sending once then quiet: held state never grows."""
    store = Store()
    windows = PartitionWindows(store, {})
    offset, held = 0, []
    waves = [[f"dhcp-{w}-{n}" for n in range(1_000)] for w in range(10)]
    for wave in [*waves, []]:
        for device in wave:
            windows.apply(device, offset, [util(1.0, 1, 1)], CONFIG)
            offset += 1
        windows.flush_applied()
        # What the timer sees: earlier waves quiet for the whole expiry, this one just sent.
        fresh = set(wave)
        clocks = {device: at(2) if device in fresh else EXPIRED for device in windows.metas}
        done = Closed()
        for device, clock in clocks.items():
            windows.close(device, clock, CONFIG, "idle", done)
            windows.silence(device, clock, CONFIG, done)
        windows.expire_quiet(clocks, EXPIRY_MS, CONFIG, 1_000)
        held.append(len(windows.metas))
    assert held == [1_000] * 10 + [0]
    assert list(store) == [FLOOR_KEY] and store[FLOOR_KEY] == offset - 1


def test_at_most_the_limit_of_devices_expire_at_once() -> None:
    """Devices due beyond the limit of one tick are left for the next ticks."""
    windows = PartitionWindows(Store(), {})
    for n in range(25):
        quiet_device(windows, f"d{n}", n, EXPIRED)
    clocks = dict.fromkeys(windows.metas, EXPIRED)
    ticks = []
    while expired := windows.expire_quiet(clocks, EXPIRY_MS, CONFIG, 10):
        ticks.append(len(expired))
    assert ticks == [10, 10, 5] and windows.metas == {}


def test_expiry_setting_defaults_to_a_week_and_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """TELEMETRY_DEVICE_EXPIRY_SECONDS sets the expiry; a week when it is not set."""
    assert TelemetrySettings().device_expiry_seconds == 604_800
    monkeypatch.setenv("TELEMETRY_DEVICE_EXPIRY_SECONDS", "2")
    assert TelemetrySettings().device_expiry_seconds == 2
