"""Simulated network devices polled for telemetry (a pure, seeded generator).

Device ``sw-0001`` .. ``sw-NNNN`` each has interfaces ``eth0`` .. carrying utilization
(%), errors and drops (counts per poll) and latency_ms, and a ``chassis`` with cpu and
memory (%). Every ``interval`` seconds of event time a device polls: one reading per
(interface, metric), each with the device's next sequence number. Devices are staggered
across the interval so load is smooth, and readings come out in event-time order.

Faults are injected with the seed, and every one is written down in ``truth`` as the
reading that carries it is yielded, so the record matches what was actually produced.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

IFACE_METRICS = ("utilization", "errors", "drops", "latency_ms")
CHASSIS, CHASSIS_METRICS = "chassis", ("cpu", "memory")
#: What the worker's flat-line check watches by default (streams/telemetry/config.py).
FLATLINE_METRICS = frozenset({"utilization", "latency_ms", "cpu"})
COUNTS = frozenset({"errors", "drops"})
# metric: (baseline range, step of the slow wander, noise of one reading). latency_ms
# wanders on a log scale, counts are Poisson with the baseline as their mean.
NORMAL = {
    "utilization": ((15.0, 65.0), 1.5, 1.0),
    "latency_ms": ((2.0, 25.0), 0.03, 0.08),
    "cpu": ((8.0, 45.0), 1.2, 0.8),
    "memory": ((35.0, 70.0), 0.3, 0.2),
    "errors": ((0.3, 2.0), 0.0, 0.0),
    "drops": ((0.5, 5.0), 0.0, 0.0),
}
SPIKE_POLLS = (1, 3)
FLATLINE_SECONDS = (150, 210)  # covers a whole 60 s window however windows are aligned
MALFORMED_KINDS = (
    "missing_field",
    "non_numeric",
    "nan",
    "null_value",
    "bad_ts",
    "negative_seq",
    "unknown_field",
    "bad_device",
)

Kind = Literal["ok", "duplicate", "malformed"]


class Emitted(NamedTuple):
    """One reading as sent, the device it belongs to, and its event time for pacing."""

    device_id: str
    reading: dict[str, Any]
    kind: Kind
    ts_ms: int


@dataclass(frozen=True)
class Faults:
    """Fractions 0..1: of readings inside spikes, flat lines, resent or malformed; of
    devices that go silent."""

    spikes: float = 0.0
    flatlines: float = 0.0
    silent: float = 0.0
    duplicates: float = 0.0
    malformed: float = 0.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a fraction from 0 to 1, not {value}")


@dataclass
class Injected:
    """One injected fault; a silent device has interface and metric ``*`` and no end."""

    kind: Literal["spike", "flatline", "silent"]
    device_id: str
    interface: str
    metric: str
    start_ms: int
    end_ms: int | None
    polls: int = 0


@dataclass
class GroundTruth:
    faults: list[Injected] = field(default_factory=list)
    duplicates: list[tuple[str, str, str, int, int]] = field(default_factory=list)
    malformed: Counter[str] = field(default_factory=Counter)

    @property
    def silent_devices(self) -> list[str]:
        return [f.device_id for f in self.faults if f.kind == "silent"]

    def as_json(self) -> dict[str, Any]:
        keys = ("device_id", "interface", "metric", "seq", "ts_ms")
        return {
            "faults": [asdict(f) for f in self.faults],
            "silent_devices": self.silent_devices,
            "duplicates": [dict(zip(keys, d, strict=True)) for d in self.duplicates],
            "malformed": dict(self.malformed),
        }


@dataclass
class _Series:
    interface: str
    metric: str
    base: float
    wander: float = 0.0
    fault: Injected | None = None
    left: int = 0
    flat: float | None = None


@dataclass
class _Device:
    device_id: str
    phase_ms: int
    series: list[_Series]
    seq: int = 0
    silent_from: int | None = None


def series_per_device(interfaces: int) -> int:
    return interfaces * len(IFACE_METRICS) + len(CHASSIS_METRICS)


def iso_ms(ms: int) -> str:
    stamp = datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


class TelemetryGenerator:
    """Readings of ``devices`` devices, in event-time order, forever (see module doc)."""

    def __init__(
        self,
        *,
        devices: int = 20,
        interfaces: int = 4,
        interval: float = 5.0,
        start: datetime | None = None,
        seed: int = 7,
        faults: Faults = Faults(),
        warmup_polls: int = 0,
        silence_within_polls: int = 60,
    ) -> None:
        if devices < 1 or interfaces < 0 or interval <= 0:
            raise ValueError("needs at least one device and a positive interval")
        self.rng = rng = random.Random(seed)
        self.faults, self.warmup = faults, warmup_polls
        self.interval_ms = max(1, round(interval * 1000))
        start = start or datetime(2025, 8, 1, tzinfo=UTC)
        self.start_ms = int(start.timestamp() * 1000)
        self.truth = GroundTruth()
        names = [(f"eth{i}", m) for i in range(interfaces) for m in IFACE_METRICS]
        names += [(CHASSIS, m) for m in CHASSIS_METRICS]
        self.devices = [
            _Device(
                f"sw-{n + 1:04d}",
                n * self.interval_ms // devices,
                [_Series(i, m, rng.uniform(*NORMAL[m][0])) for i, m in names],
            )
            for n in range(devices)
        ]
        for device in rng.sample(self.devices, round(faults.silent * devices)):
            device.silent_from = warmup_polls + rng.randrange(max(1, silence_within_polls))
        self.readings_per_poll = len(names) * devices
        flat_polls = [max(6, math.ceil(s * 1000 / self.interval_ms)) for s in FLATLINE_SECONDS]
        self.flat_polls = (flat_polls[0], flat_polls[1])
        # Starts per device poll that put about the requested fraction of readings inside.
        self._spike_p = faults.spikes * len(names) / (sum(SPIKE_POLLS) / 2)
        self._flat_p = faults.flatlines * len(names) / (sum(self.flat_polls) / 2)

    def __iter__(self) -> Iterator[Emitted]:
        poll = 0
        while True:
            for device in self.devices:
                yield from self._poll(device, poll)
            poll += 1

    def _poll(self, device: _Device, poll: int) -> Iterator[Emitted]:
        ts_ms = self.start_ms + poll * self.interval_ms + device.phase_ms
        if device.silent_from is not None and poll >= device.silent_from:
            if poll == device.silent_from:
                silent = Injected("silent", device.device_id, "*", "*", ts_ms, None)
                self.truth.faults.append(silent)
            return
        rng, faults, stamp = self.rng, self.faults, iso_ms(ts_ms)
        if poll >= self.warmup:
            self._start_faults(device)
        for series in device.series:
            value, seq = self._value(series, ts_ms), device.seq
            reading: dict[str, Any] = {
                "device_id": device.device_id,
                "interface": series.interface,
                "metric": series.metric,
                "value": value,
                "ts": stamp,
                "seq": seq,
            }
            device.seq += 1
            yield Emitted(device.device_id, reading, "ok", ts_ms)
            if faults.duplicates and rng.random() < faults.duplicates:
                self.truth.duplicates.append(
                    (device.device_id, series.interface, series.metric, seq, ts_ms)
                )
                yield Emitted(device.device_id, reading, "duplicate", ts_ms)
            if faults.malformed and rng.random() < faults.malformed:
                yield Emitted(device.device_id, self._malformed(reading), "malformed", ts_ms)

    def _start_faults(self, device: _Device) -> None:
        rng = self.rng
        if self._spike_p and rng.random() < self._spike_p:
            series = rng.choice(device.series)
            if series.fault is None:
                series.left = rng.randint(*SPIKE_POLLS)
                series.fault = Injected(
                    "spike", device.device_id, series.interface, series.metric, 0, 0
                )
        if self._flat_p and rng.random() < self._flat_p:
            series = rng.choice([s for s in device.series if s.metric in FLATLINE_METRICS])
            if series.fault is None:
                series.left = rng.randint(*self.flat_polls)
                series.flat = self._normal(series)
                series.fault = Injected(
                    "flatline", device.device_id, series.interface, series.metric, 0, 0
                )

    def _value(self, series: _Series, ts_ms: int) -> float:
        fault = series.fault
        if fault is None:
            return self._normal(series)
        if fault.polls == 0:
            fault.start_ms = ts_ms
            self.truth.faults.append(fault)
        fault.polls += 1
        fault.end_ms = ts_ms
        series.left -= 1
        if series.left <= 0:
            series.fault = None
        if series.flat is not None:
            value = series.flat
            if series.fault is None:
                series.flat = None
            return value
        return self._spike(series)

    def _normal(self, series: _Series) -> float:
        rng, metric = self.rng, series.metric
        if metric in COUNTS:
            return float(_poisson(rng, series.base))
        _range, step, noise = NORMAL[metric]
        series.wander = 0.9 * series.wander + rng.gauss(0.0, step)
        if metric == "latency_ms":
            return round(series.base * math.exp(series.wander + rng.gauss(0.0, noise)), 3)
        return round(series.base + series.wander + rng.gauss(0.0, noise), 2)

    def _spike(self, series: _Series) -> float:
        rng, metric = self.rng, series.metric
        if metric == "latency_ms":
            return round(self._normal(series) * 20, 3)
        if metric in COUNTS:
            return float(rng.randint(200, 1000) * (2 if metric == "drops" else 1))
        return round(rng.uniform(97.0, 100.0), 2)

    def _malformed(self, good: dict[str, Any]) -> dict[str, Any]:
        rng = self.rng
        kind = rng.choice(MALFORMED_KINDS)
        self.truth.malformed[kind] += 1
        bad = dict(good)
        if kind == "missing_field":
            del bad[rng.choice(sorted(bad))]
        elif kind == "non_numeric":
            bad["value"] = rng.choice(("high", "", "12,5", "n/a"))
        elif kind == "nan":
            bad["value"] = rng.choice(("NaN", "nan", "Infinity", "-inf"))
        elif kind == "null_value":
            bad["value"] = None
        elif kind == "bad_ts":
            naive = str(bad["ts"]).removesuffix("Z")
            bad["ts"] = rng.choice(("yesterday", "2025-13-40T25:61:00Z", naive, ""))
        elif kind == "negative_seq":
            bad["seq"] = -rng.randint(1, 1000)
        elif kind == "unknown_field":
            bad["unit"] = "%"
        else:
            bad["device_id"] = rng.choice(("", "sw 0001", "-sw"))
        return bad


def _poisson(rng: random.Random, mean: float) -> int:
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count
