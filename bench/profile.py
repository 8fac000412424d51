"""Summaries of a ``py-spy record --format raw --threads`` file (collapsed stacks)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

_LINE = re.compile(r":\d+\)$")

#: Where a frame's file lives (py-spy prints paths relative to sys.path) -> its layer.
LAYERS = (
    ("streams/orders/lake", "streams: lake (Parquet copy)"),
    ("streams/common/parquet", "streams: lake (Parquet copy)"),
    ("streams/common/mirror", "streams: mirror"),
    ("streams/", "streams: pipeline code"),
    ("faust/", "faust"),
    ("mode/", "mode"),
    ("aiokafka/", "aiokafka"),
    ("kafka/", "aiokafka"),
    ("prometheus_client/", "prometheus_client"),
    ("pydantic", "pydantic"),
    ("pyarrow/", "pyarrow"),
    ("rocksdict/", "rocksdict"),
    ("aiohttp/", "aiohttp"),
    ("yarl/", "aiohttp"),
    ("opentracing/", "faust"),
    ("venusian/", "faust"),
)

#: Innermost frames that mean "in the event loop's own C code" (uvloop shows no frame).
LOOP_ENTRIES = ("Worker.execute_from_commandline (mode/", "ServiceThread._start_thread (mode/")

EVENT_LOOP = "event loop internals (uvloop, C)"


def _function(frame: str) -> str:
    """``name (path/to/file.py:123)`` -> ``name (pkg/file.py)``: lines merged."""
    frame = _LINE.sub(")", frame)
    if "(" in frame:
        name, where = frame.split(" (", 1)
        parts = where.rstrip(")").split("/")
        short = "/".join(parts[-2:]) if len(parts) > 1 else parts[0]
        return f"{name} ({short})"
    return frame


def _layer(frame: str) -> str | None:
    """The layer of a frame's file, or None for the standard library and the unknown."""
    where = frame.rsplit(" (", 1)[-1]
    for marker, layer in LAYERS:
        if where.startswith(marker):
            return layer
    return None


def layer_of(frames: list[str]) -> str:
    """A sample's layer: its innermost frame outside the standard library.

    Time in json, re, asyncio and the like counts for the code that called them.
    """
    if frames[-1].startswith(LOOP_ENTRIES):
        return EVENT_LOOP
    for frame in reversed(frames):
        layer = _layer(frame)
        if layer is not None:
            return layer
    return "standard library only"


def summarize(raw: Path, top: int = 25) -> dict[str, Any]:
    """Self and inclusive shares of samples, per function, layer and thread."""
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    # Frames in (nearly) every sample of a thread (runpy, click, the loop's entry) say
    # nothing about where its time goes.
    per_thread: dict[str, Counter[str]] = {}
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = frames[0] if frames[0].startswith("thread (") else ""
        if thread:
            frames = frames[1:]
        if not frames:
            continue
        total += count
        threads[thread or "?"] += count
        self_time[_function(frames[-1])] += count
        names = {_function(f) for f in frames}
        for name in names:
            inclusive[name] += count
        per_thread.setdefault(thread or "?", Counter()).update(dict.fromkeys(names, count))
        layers[layer_of(frames)] += count

    for thread_name, counts in per_thread.items():
        for name, seen in counts.items():
            if seen >= 0.98 * threads[thread_name]:
                inclusive.pop(name, None)

    def shares(counter: Counter[str], limit: int) -> list[tuple[str, float]]:
        return [(k, 100 * v / total) for k, v in counter.most_common(limit)] if total else []

    return {
        "samples": total,
        "threads": shares(threads, 10),
        "layers": shares(layers, 20),
        "self": shares(self_time, top),
        "inclusive": shares(inclusive, top * 2),
    }


def render(summary: dict[str, Any], seconds: float, rate: int = 100) -> str:
    lines = [
        f"py-spy: {summary['samples']} samples over {seconds:.1f} s at {rate} Hz "
        f"(~{summary['samples'] / max(seconds * rate, 1):.0%} of one core busy, all threads)",
    ]
    for title, key in (
        ("threads", "threads"),
        ("layer of the innermost non-stdlib frame", "layers"),
        ("self time (innermost frame)", "self"),
        ("inclusive time", "inclusive"),
    ):
        lines.append(f"\n{title}:")
        lines.extend(f"  {pct:5.1f}%  {name}" for name, pct in summary[key])
    return "\n".join(lines)
