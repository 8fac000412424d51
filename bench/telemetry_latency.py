"""How long the telemetry bench's windows took to close, read from what the topics and
a worker's metrics hold afterwards (bench/telemetry.py runs the live part)."""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from datetime import datetime
from typing import Any

import orjson


def groups(value: bytes | None) -> list[tuple[bytes, list[Any]]]:
    """(device id, readings) of each group of a telemetry.readings record, either form
    (none for a tombstone)."""
    found = orjson.loads(value) if value is not None else []
    groups = found if isinstance(found, list) else [found]
    return [(group["device_id"].encode(), group["readings"]) for group in groups]


def latencies(aggregates: list[Any], readings: list[Any], grace_ms: int) -> dict[str, Any]:
    """Per closed window: emission - (end + grace) in s, and where the time went."""
    # Per device, in the order read: (newest ts of the record, its readings, its Kafka ts).
    polls: dict[bytes, list[tuple[int, list[int], int]]] = defaultdict(list)
    for r in readings:
        for owner, rows in groups(r.value):
            stamps = [row[3] for row in rows]
            polls[owner].append((max(stamps), sorted(stamps), r.timestamp))
    total: dict[str, list[float]] = defaultdict(list)
    parts: dict[str, list[float]] = defaultdict(list)
    for record in aggregates:
        window = orjson.loads(record.value)
        if window["device_id"] == "probe":
            continue
        due = epoch_ms(window["window_end"]) + grace_ms
        total[window["closed_by"]].append((record.timestamp - due) / 1000)
        device = polls[record.key.split(b"|", 1)[0]]
        i = bisect.bisect_left([newest for newest, _, _ in device], due)
        if window["closed_by"] != "event_time" or i == len(device):
            continue
        _, stamps, accepted = device[i]
        poll = stamps[bisect.bisect_left(stamps, due)]
        parts["next_poll"].append((poll - due) / 1000)
        parts["simulator_ingest"].append((accepted - poll) / 1000)
        parts["worker"].append((record.timestamp - accepted) / 1000)
    everything = [x for values in total.values() for x in values]
    return {
        "latency_s": quantiles(everything),
        "latency_s_by_trigger": {k: quantiles(v) for k, v in sorted(total.items())},
        "event_time_breakdown_s": {k: quantiles(v) for k, v in parts.items()},
    }


def epoch_ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def quantiles(values: list[float]) -> dict[str, float | int | None]:
    ordered = sorted(values)
    if not ordered:
        return {"count": 0, "p50": None, "p99": None, "max": None}

    def rank(q: float) -> float:  # nearest rank
        return ordered[max(math.ceil(len(ordered) * q) - 1, 0)]

    return {"count": len(ordered), "p50": rank(0.5), "p99": rank(0.99), "max": ordered[-1]}


def histogram(text: str, name: str) -> dict[str, Any]:
    """A Prometheus histogram: cumulative buckets, count, sum, and bucket-bound p50/p99."""
    buckets: dict[str, float] = {}
    out: dict[str, Any] = {"buckets": buckets}
    for line in text.splitlines():
        sample, _, value = line.rpartition(" ")
        if sample.startswith(f'{name}_bucket{{le="'):
            buckets[sample.split('"')[1]] = float(value)
        elif sample in (f"{name}_count", f"{name}_sum"):
            out[sample.rsplit("_", 1)[1]] = float(value)
    count = out.get("count", 0.0)
    for q in (0.5, 0.99):
        bound = next((le for le, c in buckets.items() if count and c >= q * count), None)
        out[f"p{round(q * 100)}_at_most"] = bound
    return out
