"""A series as table values: one index and chunks of at most ``CHUNK_POINTS`` points (pure).

Faust changelogs a whole value on every write, and Kafka refuses records near 1 MB: a
series kept as one value would cost its whole size per append and stop growing at a
few tens of thousands of points. So a series is

- ``s|<id>``, its meta: name, creation time, point count, and the index of its chunks
  ``[[first_time, points, chunk_number], ...]`` in time order. Chunks never overlap in
  time: chunk ``i`` holds the times from its first up to the next chunk's first.
- ``c|<id>|<chunk_number>``: up to ``CHUNK_POINTS`` points, times (int64 Unix ms) and
  values (float64) as base64 of little-endian arrays: 16 bytes a point before base64,
  ~22 kB a full chunk, decoded with one ``numpy.frombuffer`` each.

An append touches only the chunks whose time span it reaches (the last one for points
newer than the rest, the usual case); a chunk that grows past ``CHUNK_POINTS`` is split
in halves, the new half under the next unused chunk number. A 10-million-point series
is ~9,800 chunks and an index of ~280 kB, well under Kafka's limit; ``MAX_POINTS``
(2^24) keeps the index under ~480 kB.
"""

from __future__ import annotations

import base64
import bisect
from collections.abc import Iterator
from typing import Any

import numpy as np

from streams.timeseries.points import Points, merge

CHUNK_POINTS = 1024
MAX_POINTS = 2**24

Index = list[list[int]]  # [[first_time, points, chunk_number], ...]


def meta_key(series_id: str) -> str:
    return f"s|{series_id}"


def chunk_key(series_id: str, number: int) -> str:
    return f"c|{series_id}|{number:08d}"


def encode(points: Points) -> dict[str, str]:
    return {
        "t": base64.b64encode(points.times.astype("<i8").tobytes()).decode(),
        "v": base64.b64encode(points.values.astype("<f8").tobytes()).decode(),
    }


def decode(value: dict[str, Any]) -> Points:
    """The points of a chunk (or a command); ValueError on anything but base64 arrays."""
    times = np.frombuffer(base64.b64decode(value["t"], validate=True), dtype="<i8")
    values = np.frombuffer(base64.b64decode(value["v"], validate=True), dtype="<f8")
    return Points(times.astype(np.int64), values.astype(np.float64))


def reached(index: Index, first: int, last: int) -> range:
    """Positions in ``index`` of the chunks whose span holds any time in [first, last]."""
    starts = [entry[0] for entry in index]
    low = max(bisect.bisect_right(starts, first) - 1, 0)
    high = max(bisect.bisect_right(starts, last), low + 1)
    return range(low, min(high, len(index)))


def split(points: Points, limit: int = CHUNK_POINTS) -> Iterator[Points]:
    """``points`` in pieces of at most ``limit``, as even as possible."""
    pieces = max(-(-len(points) // limit), 1)
    for part in np.array_split(np.arange(len(points)), pieces):
        if len(part):
            yield Points(points.times[part], points.values[part])


class Rewrite:
    """The chunk writes of one append: which chunks change and the index after it."""

    def __init__(self, index: Index, next_number: int) -> None:
        self.index = [list(entry) for entry in index]
        self.next_number = next_number
        #: Chunks written by this append, by number.
        self.chunks: dict[int, Points] = {}
        #: Chunk numbers no longer in the index (their span merged into fewer chunks).
        self.dropped: list[int] = []

    def apply(self, new: Points, read_chunk: Any) -> None:
        """Write ``new`` over the series; ``read_chunk(number)`` gives a stored chunk."""
        if not len(new):
            return
        if not self.index:
            self._replace(0, 0, new)
            return
        span = reached(self.index, int(new.times[0]), int(new.times[-1]))
        old = [self._current(self.index[i][2], read_chunk) for i in span]
        merged = merge(_joined(old), new)
        self._replace(span.start, span.stop, merged)

    def _current(self, number: int, read_chunk: Any) -> Points:
        if number in self.chunks:
            return self.chunks[number]
        stored: Points = read_chunk(number)
        return stored

    def _replace(self, start: int, stop: int, points: Points) -> None:
        reused = [entry[2] for entry in self.index[start:stop]]
        entries = []
        for piece in split(points):
            number = reused.pop(0) if reused else self._new_number()
            self.chunks[number] = piece
            entries.append([int(piece.times[0]), len(piece), number])
        self.index[start:stop] = entries
        for number in reused:  # more chunks than the span's points now need
            self.chunks.pop(number, None)
            self.dropped.append(number)

    def _new_number(self) -> int:
        number = self.next_number
        self.next_number += 1
        return number

    @property
    def count(self) -> int:
        return sum(entry[1] for entry in self.index)


def _joined(parts: list[Points]) -> Points:
    if len(parts) == 1:
        return parts[0]
    return Points(
        np.concatenate([p.times for p in parts]), np.concatenate([p.values for p in parts])
    )
