"""Idle telemetry devices expire on a real worker: forgotten by its views and its changelog."""

from __future__ import annotations

import pytest

from streams.common.broker import EmbeddedBroker
from tests.support.telemetry import TelemetryProcesses, group_record, read_aggregates, settle
from tests.support.workers import Worker, produce, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

READINGS = "telemetry.readings"
BASE_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a window start: event time in the past
WINDOW_MS = 10_000
ENV = {
    "TELEMETRY_WINDOW_SECONDS": "10",
    "TELEMETRY_GRACE_SECONDS": "1",
    "TELEMETRY_BATCH_SECONDS": "0.1",
    "TELEMETRY_DEVICE_EXPIRY_SECONDS": "2",
}
QUIET, ACTIVE = "dhcp-10-0-0-7", "core-sw-01"


def view(worker: Worker, device: str) -> int:
    return worker.status(f"/telemetry/devices/{device}/windows")[0]


def test_quiet_device_expires_while_an_active_one_stays(
    broker: EmbeddedBroker, telemetry: TelemetryProcesses
) -> None:
    """A device that sent once is emitted, then forgotten (404, also after a restore from the
    changelog), while a device that keeps sending into an open window still answers."""
    worker = telemetry.start(ENV)
    settle(worker)
    # The quiet device's only reading ends its window: the idle close comes soon after.
    quiet = group_record(QUIET, [("eth0", "utilization", 5.0, BASE_MS + WINDOW_MS - 100, 1)])
    sent = 0

    def keep_active() -> None:
        # Every reading in one window, which stays open: the device is never forgotten.
        nonlocal sent
        sent += 1
        row = ("eth0", "utilization", 40.0, BASE_MS + WINDOW_MS + sent, sent)
        produce(broker.bootstrap, READINGS, [group_record(ACTIVE, [row])])

    keep_active()
    produce(broker.bootstrap, READINGS, [quiet])
    wait_until(lambda: view(worker, ACTIVE) == 200, timeout=60, what="the active device seen")

    def forgotten() -> bool:
        keep_active()
        emitted = read_aggregates(broker.bootstrap).windows == 1
        return emitted and view(worker, QUIET) == 404

    wait_until(forgotten, timeout=60, what="the quiet device emitted, then forgotten")
    assert view(worker, ACTIVE) == 200
    assert "telemetry: devices expired: 1 " in worker.log()

    # A worker with no local state restores the table from its changelog: the tombstones
    # keep the quiet device forgotten there too.
    worker.stop()
    restored = telemetry.start(ENV)
    settle(restored)
    wait_until(lambda: view(restored, ACTIVE) == 200, timeout=60, what="the active device again")
    assert view(restored, QUIET) == 404
