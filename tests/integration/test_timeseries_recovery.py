"""Time-series workers killed with SIGKILL mid-write, restarted on their RocksDB, and
replaced by a worker with nothing but the changelog: every acknowledged write is kept,
none is applied twice (a retried create with its Idempotency-Key makes one series).

The expected series are what the clients were told was written, recorded here.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from tests.support.timeseries import TimeSeriesWorkers, call, serving
from tests.support.workers import Worker

T0 = 1_767_225_600
Expected = dict[str, dict[int, float]]  # series id -> Unix ms -> value


def written(url: str, path: str, body: dict[str, Any], key: str, deadline: float) -> Any:
    """POST until the API acknowledges it, as a client with an Idempotency-Key does:
    a 503 (the owner was killed, the partition moves) or a dropped connection is retried."""
    while time.monotonic() < deadline:
        try:
            answer = call(url + path, "POST", body, headers={"Idempotency-Key": key}, timeout=30)
        except OSError:
            answer = None
        if answer is not None and answer.status in (200, 201):
            return answer.body
        assert answer is None or answer.status == 503, answer
        time.sleep(0.2)
    raise AssertionError(f"{path} not acknowledged in time")


class Writer(threading.Thread):
    """Creates series and appends to them through one worker, recording what was
    acknowledged."""

    def __init__(self, url: str, expected: Expected, rounds: int) -> None:
        super().__init__(daemon=True)
        self.url, self.expected, self.rounds = url, expected, rounds
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            deadline = time.monotonic() + 240
            for k in range(self.rounds):
                body = {"name": f"w{k}", "points": [{"ts": T0 + k, "value": float(k)}]}
                created = written(self.url, "/series", body, f"create-{k}", deadline)
                self.expected[created["id"]] = {(T0 + k) * 1000: float(k)}
                target = sorted(self.expected)[k % len(self.expected)]
                point = {"points": [{"ts": T0 + 10_000 + k, "value": -float(k)}]}
                written(self.url, f"/series/{target}/points", point, f"append-{k}", deadline)
                self.expected[target][(T0 + 10_000 + k) * 1000] = -float(k)
        except BaseException as exc:  # reported by the test
            self.failure = exc


def stored(worker: Worker, series_id: str) -> dict[int, float]:
    answer = call(f"{worker.url}/series/{series_id}?format=columns")
    assert answer.status == 200, (series_id, answer)
    assert answer.body["next"] is None
    return dict(zip(answer.body["timestamps"], answer.body["values"], strict=True))


def check(worker: Worker, expected: Expected) -> None:
    serving(worker)
    listed = call(f"{worker.url}/series?limit=1000").body
    assert listed["count"] == len(expected)
    assert sorted(item["id"] for item in listed["items"]) == sorted(expected)
    for series_id, points in expected.items():
        assert stored(worker, series_id) == points, series_id


def test_killed_restarted_and_replaced_workers_keep_every_acknowledged_write(
    timeseries: TimeSeriesWorkers,
) -> None:
    survivor, victim = timeseries.start(), timeseries.start()
    serving(survivor)
    serving(victim)
    expected: Expected = {}
    for n in range(8):
        points = [{"ts": T0 + 60 * i, "value": float(n * i)} for i in range(2_500)]
        created = call(f"{survivor.url}/series", "POST", {"points": points}).body
        expected[created["id"]] = {(T0 + 60 * i) * 1000: float(n * i) for i in range(2_500)}
    writer = Writer(survivor.url, expected, rounds=40)
    writer.start()
    time.sleep(1.0)
    victim_dir = victim.data_dir
    victim.kill()  # SIGKILL, writes in flight
    assert writer.is_alive(), "the writes ended before the kill: nothing was in flight"
    restarted = timeseries.start(data_dir=victim_dir)
    writer.join(timeout=300)
    assert writer.failure is None, writer.failure
    assert not writer.is_alive()
    check(restarted, expected)
    check(survivor, expected)

    # A replacement with an empty data dir, alone: every partition from the changelog.
    restarted.kill()
    survivor.stop()
    replacement = timeseries.start()
    check(replacement, expected)
