"""The telemetry device simulator: its seeded generator and its HTTP send loop."""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiohttp import web
from pydantic import ValidationError

from producers.http_send import Batcher, Pace, Sender, SendOptions
from producers.telemetry import (
    FLATLINE_METRICS,
    Emitted,
    Faults,
    GroundTruth,
    Injected,
    TelemetryGenerator,
    series_per_device,
)
from streams.telemetry.models import Reading

START = datetime(2025, 8, 1, tzinfo=UTC)
START_MS = int(START.timestamp() * 1000)
Series = tuple[str, str, str]


def generate(
    count: int, faults: Faults | None = None, *, seed: int = 7
) -> tuple[list[Emitted], GroundTruth]:
    generator = TelemetryGenerator(devices=20, start=START, seed=seed, faults=faults or Faults())
    return list(itertools.islice(generator, count)), generator.truth


def series_values(items: list[Emitted]) -> dict[Series, list[tuple[int, float]]]:
    """Each series' (event time, value) in order, from first copies of good readings only."""
    out: dict[Series, list[tuple[int, float]]] = defaultdict(list)
    for item in items:
        if item.kind == "ok":
            r = item.reading
            out[r["device_id"], r["interface"], r["metric"]].append((item.ts_ms, r["value"]))
    return out


def inside(fault: Injected, ts_ms: int) -> bool:
    return fault.start_ms <= ts_ms <= (fault.end_ms or ts_ms)


def longest_run(values: list[float]) -> int:
    return max(len(list(group)) for _value, group in itertools.groupby(values))


def test_generator_is_deterministic_for_a_seed() -> None:
    """The same seed replays the same readings and ground truth; another seed does not."""
    faults = Faults(spikes=0.01, flatlines=0.01, silent=0.2, duplicates=0.01, malformed=0.01)
    first, again, other = (generate(20_000, faults, seed=seed) for seed in (7, 7, 8))
    assert first[0] == again[0]
    assert first[1].as_json() == again[1].as_json()
    assert first[0] != other[0]


def test_each_device_numbers_its_readings_one_by_one_and_polls_every_interval() -> None:
    """A device's seq goes up by one per reading, and each poll has one reading per series."""
    items, _truth = generate(18 * 20 * 30, Faults(duplicates=0.05))
    by_device: dict[str, list[Emitted]] = defaultdict(list)
    for item in items:
        by_device[item.device_id].append(item)
    assert sorted(by_device) == [f"sw-{n:04d}" for n in range(1, 21)]
    for device_items in by_device.values():
        good = [i for i in device_items if i.kind == "ok"]
        assert [i.reading["seq"] for i in good] == list(range(len(good)))
        polls = [list(g) for _ts, g in itertools.groupby(good, key=lambda i: i.ts_ms)]
        assert all(len(poll) == series_per_device(4) for poll in polls)
        assert {b[0].ts_ms - a[0].ts_ms for a, b in itertools.pairwise(polls)} == {5000}
    assert [i.ts_ms for i in items] == sorted(i.ts_ms for i in items)


def test_a_duplicate_repeats_the_reading_just_sent() -> None:
    """A duplicate is the device's previous reading again: same seq, same value, same time."""
    items, truth = generate(20_000, Faults(duplicates=0.05))
    pairs = [(prev, item) for prev, item in itertools.pairwise(items) if item.kind == "duplicate"]
    assert len(pairs) == len(truth.duplicates) > 500
    assert all(prev.kind == "ok" and prev.reading == item.reading for prev, item in pairs)


def test_healthy_series_vary_within_realistic_ranges() -> None:
    """Without faults no series repeats a value five times running and none looks alarming."""
    values = series_values(generate(18 * 20 * 100)[0])
    limits = {"utilization": 90, "cpu": 90, "memory": 90, "latency_ms": 60, "errors": 50}
    for (_device, _interface, metric), points in values.items():
        numbers = [v for _ts, v in points]
        assert min(numbers) >= 0 and max(numbers) < limits.get(metric, 100)
        if metric not in {"errors", "drops"}:
            assert longest_run(numbers) < 5
            assert len(set(numbers)) > 50


def test_spikes_sit_exactly_where_the_ground_truth_says() -> None:
    """Readings inside a recorded spike are far above normal, and none outside any spike is."""
    items, truth = generate(50_000, Faults(spikes=0.01))
    values = series_values(items)
    spikes = [f for f in truth.faults if f.kind == "spike"]
    assert len(spikes) > 50 and all(1 <= f.polls <= 3 for f in spikes)
    assert {f.metric for f in spikes} == {
        "utilization", "errors", "drops", "latency_ms", "cpu", "memory"
    }  # fmt: skip
    by_series: dict[Series, list[Injected]] = defaultdict(list)
    for fault in spikes:
        by_series[fault.device_id, fault.interface, fault.metric].append(fault)
    for key, points in values.items():
        normal = sorted(v for ts, v in points if not any(inside(f, ts) for f in by_series[key]))
        median = normal[len(normal) // 2]
        for fault in by_series[key]:
            spiked = [v for ts, v in points if inside(fault, ts)]
            assert len(spiked) == fault.polls
            floor = {"latency_ms": 10 * median, "errors": 200, "drops": 400}.get(key[2], 97)
            assert min(spiked) >= floor > max(normal)


def test_flatlines_repeat_one_value_for_the_recorded_stretch() -> None:
    """A recorded flat line is one exact value for all its polls; elsewhere values move."""
    items, truth = generate(100_000, Faults(flatlines=0.02))
    values = series_values(items)
    flats = [f for f in truth.faults if f.kind == "flatline"]
    cut_short = items[-1].ts_ms - 5000  # flat lines still running when the run ended
    assert len(flats) > 5 and all(f.metric in FLATLINE_METRICS for f in flats)
    assert all(30 <= f.polls <= 42 for f in flats if (f.end_ms or 0) < cut_short)
    for fault in flats:
        points = values[fault.device_id, fault.interface, fault.metric]
        flat = [v for ts, v in points if inside(fault, ts)]
        assert len(flat) == fault.polls and len(set(flat)) == 1
        assert (fault.end_ms or 0) - fault.start_ms == (fault.polls - 1) * 5000
    for key, points in values.items():
        if key[2] in FLATLINE_METRICS:
            mine = [f for f in flats if (f.device_id, f.interface, f.metric) == key]
            outside = [v for ts, v in points if not any(inside(f, ts) for f in mine)]
            assert longest_run(outside) < 5


def test_silent_devices_stop_at_the_recorded_time_and_the_rest_keep_polling() -> None:
    """A quarter of devices go quiet from their recorded time on; the others poll to the end."""
    generator = TelemetryGenerator(
        devices=20, start=START, faults=Faults(silent=0.25), warmup_polls=5, silence_within_polls=20
    )
    items = list(itertools.islice(generator, 18 * 20 * 40))
    silent = {f.device_id: f for f in generator.truth.faults if f.kind == "silent"}
    assert len(silent) == 5 and sorted(generator.truth.silent_devices) == sorted(silent)
    last = {item.device_id: item.ts_ms for item in items}
    final_poll = max(last.values()) - 5000
    for device, ts_ms in last.items():
        if device in silent:
            assert ts_ms == silent[device].start_ms - 5000
            assert silent[device].start_ms >= START_MS + 5 * 5000
        else:
            assert ts_ms >= final_poll


@pytest.mark.parametrize("fault", ["spikes", "flatlines", "duplicates", "malformed"])
def test_fault_fractions_come_out_roughly_as_requested(fault: str) -> None:
    """A requested 2% of a fault lands near 2% of the good readings; other faults stay out."""
    items, truth = generate(100_000, Faults(**{fault: 0.02}))
    good = sum(i.kind == "ok" for i in items)
    found = {
        "spikes": sum(f.polls for f in truth.faults if f.kind == "spike"),
        "flatlines": sum(f.polls for f in truth.faults if f.kind == "flatline"),
        "duplicates": sum(i.kind == "duplicate" for i in items),
        "malformed": sum(i.kind == "malformed" for i in items),
    }
    assert 0.01 < found.pop(fault) / good < 0.03
    assert sum(found.values()) == 0


def test_malformed_readings_are_refused_by_the_ingest_model_and_good_ones_pass() -> None:
    """Every malformed reading fails ingest validation; every good or duplicate one passes."""
    items, truth = generate(40_000, Faults(malformed=0.05, duplicates=0.02))
    verdicts: dict[str, set[bool]] = defaultdict(set)
    for item in items:
        try:
            Reading.model_validate(item.reading)
            verdicts[item.kind].add(True)
        except ValidationError:
            verdicts[item.kind].add(False)
    assert verdicts == {"ok": {True}, "duplicate": {True}, "malformed": {False}}
    assert len(truth.malformed) == 8


def test_batches_never_mix_malformed_with_good_readings() -> None:
    """Malformed readings travel in batches of their own, and a device always uses one lane."""
    batcher = Batcher(size=40, lanes=3)
    batches = []
    for item in generate(20_000, Faults(malformed=0.05, duplicates=0.02))[0]:
        ready = batcher.add(item)
        if ready:
            batches.append(ready)
    batches += batcher.flush()
    lanes: dict[str, set[int]] = defaultdict(set)
    for lane, batch in batches:
        assert 1 <= len(batch.items) <= 40
        assert len({item.kind == "malformed" for item in batch.items}) == 1
        assert orjson.loads(batch.body) == [item.reading for item in batch.items]
        for item in batch.items:
            lanes[item.device_id].add(lane)
    assert all(len(used) == 1 for used in lanes.values())
    assert sum(len(b.items) for _lane, b in batches) == 20_000


def test_pace_halves_on_backpressure_and_recovers() -> None:
    """Backpressure halves the release rate once per second; accepted batches win it back."""
    pace = Pace(1000.0, now=0.0)
    for n in range(1000):
        pace.take(n / 1000)
    pace.backoff(now=1.0, started=0.0)
    pace.backoff(now=1.5, started=0.0)
    assert (pace.limit, pace.slowdowns) == (500.0, 1)
    pace.recover(now=3.0)
    assert pace.limit == pytest.approx(500 * 1.25**2)
    pace.recover(now=8.0)
    assert pace.limit == 1000.0
    uncapped = Pace(None, now=0.0)
    for n in range(2000):
        uncapped.take(n / 1000)
    uncapped.backoff(now=2.0, started=0.0)
    assert uncapped.limit == pytest.approx(500, rel=0.01)
    uncapped.recover(now=5.0)
    assert uncapped.limit == pytest.approx(500 * 1.25**3, rel=0.01)
    uncapped.recover(now=9.0)
    assert uncapped.limit is None


class Ingest:
    """A stand-in for POST /telemetry: validates like the ingest, answers as told."""

    def __init__(
        self, answer: Callable[[int], tuple[int, str]] | None = None, api_key: str | None = None
    ) -> None:
        self.answer = answer or (lambda n: (202, ""))
        self.api_key = api_key
        self.requests: list[tuple[float, int, bytes]] = []  # arrival, status, body
        self.accepted: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        at, body = time.monotonic(), await request.read()
        status, retry_after = self.answer(len(self.requests) + 1)
        if self.api_key and request.headers.get("X-API-Key") != self.api_key:
            status = 401
        elif status == 202:
            readings = orjson.loads(body)
            try:
                for reading in readings:
                    Reading.model_validate(reading)
                self.accepted += readings
            except ValidationError:
                status = 422
        self.requests.append((at, status, body))
        headers = {"Retry-After": retry_after} if status in (429, 503) else None
        return web.json_response({"status": status}, status=status, headers=headers)


Serve = Callable[[Ingest], Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Starts an ``Ingest`` on 127.0.0.1 (a free port) and returns its URL."""
    runners: list[web.AppRunner] = []

    async def start(ingest: Ingest) -> str:
        app = web.Application()
        app.router.add_post("/telemetry", ingest.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}/telemetry"

    yield start
    for runner in runners:
        await runner.cleanup()


async def test_sender_retries_the_same_batch_after_429_and_slows_down(serve: Serve) -> None:
    """A 429 or 503 makes the sender wait Retry-After, resend that very batch, and slow down."""
    answers = {1: (429, "1"), 2: (503, "0"), 3: (429, "0")}
    ingest = Ingest(lambda n: answers.get(n, (202, "")))
    options = SendOptions(url=await serve(ingest), batch=18, concurrency=1, count=90, quiet=True)
    stats = await Sender(options).run(TelemetryGenerator(devices=2, start=START))
    arrivals, statuses, bodies = zip(*ingest.requests, strict=True)
    assert list(statuses) == [429, 503, 429] + [202] * 5
    assert bodies[0] == bodies[1] == bodies[2] == bodies[3]
    assert arrivals[1] - arrivals[0] >= 0.9  # waited out Retry-After: 1
    assert (stats.accepted, stats.retries, dict(stats.rejected)) == (90, 3, {})
    assert stats.backpressure == {"429": 2, "503": 1}
    assert stats.slowdowns >= 1 and stats.lowest_rate is not None
    assert [r["seq"] for r in ingest.accepted if r["device_id"] == "sw-0001"] == list(range(54))


async def test_sender_keeps_each_devices_order_and_counts_refusals(serve: Serve) -> None:
    """Under repeated 429s, accepted readings keep per-device order; bad batches count as 422."""
    ingest = Ingest(lambda n: (429, "0") if n % 3 == 0 else (202, ""))
    generator = TelemetryGenerator(
        devices=10, start=START, faults=Faults(duplicates=0.03, malformed=0.03)
    )
    options = SendOptions(url=await serve(ingest), batch=25, concurrency=4, count=3000, quiet=True)
    stats = await Sender(options).run(generator)
    malformed = sum(generator.truth.malformed.values())
    duplicates = len(generator.truth.duplicates)
    assert malformed > 30 and duplicates > 30
    assert stats.rejected == {"422": malformed}
    assert stats.accepted == len(ingest.accepted) == 3000 - malformed
    assert (stats.malformed_sent, stats.duplicates_sent) == (malformed, duplicates)
    assert stats.accepted_duplicates == duplicates
    assert stats.retries == stats.backpressure["429"] > 10
    seqs: dict[str, list[int]] = defaultdict(list)
    for reading in ingest.accepted:
        seqs[reading["device_id"]].append(reading["seq"])
    assert len(seqs) == 10
    for device_seqs in seqs.values():
        assert device_seqs == sorted(device_seqs)
        assert sorted(set(device_seqs)) == list(range(len(set(device_seqs))))


async def test_sender_sends_the_api_key_and_never_retries_a_refusal(serve: Serve) -> None:
    """The key goes in X-API-Key; with a wrong key every batch is refused once and counted."""
    url = await serve(Ingest(api_key="k" * 20))
    runs = []
    for key in ("k" * 20, "wrong"):
        options = SendOptions(url=url, api_key=key, batch=30, concurrency=1, count=90, quiet=True)
        runs.append(await Sender(options).run(TelemetryGenerator(start=START)))
    good, bad = runs
    assert (good.accepted, dict(good.rejected)) == (90, {})
    assert (bad.accepted, dict(bad.rejected), bad.requests, bad.retries) == (0, {"401": 90}, 3, 0)


async def test_live_mode_never_sends_a_reading_ahead_of_the_wall_clock(serve: Serve) -> None:
    """In live mode each poll is released when its time comes, so no reading is from the future."""
    ingest = Ingest()
    options = SendOptions(url=await serve(ingest), live=True, count=18 * 2 * 3, quiet=True)
    generator = TelemetryGenerator(devices=2, interval=0.2, start=datetime.now(UTC))
    stats = await Sender(options).run(generator)
    assert stats.accepted == 108
    wall_minus_monotonic = time.time() - time.monotonic()
    for at, _status, body in ingest.requests:
        newest = max(Reading.model_validate(r).ts.timestamp() for r in orjson.loads(body))
        assert newest <= at + wall_minus_monotonic + 0.1
