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

An append rewrites only the chunks that receive a point (the last one for points newer
than the rest, the usual case; two for two points at both ends of a long series); a
chunk that grows past ``CHUNK_POINTS`` is split in even pieces. Copy on write: every
chunk written takes a new number and the numbers it replaces are dropped (deleted once
the new index is durable), so a crash between the chunks and the index leaves the
stored index pointing at intact chunks. A 10-million-point series is ~9,800 chunks and
an index of ~280 kB, well under Kafka's limit; ``MAX_POINTS`` (2^24) keeps the index
under ~480 kB.
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
        """Write ``new`` (sorted, one per time) over the series; ``read_chunk(number)``
        gives a stored chunk."""
        if not len(new):
            return
        if not self.index:
            self._replace(0, new)
            return
        starts = np.array([entry[0] for entry in self.index], dtype=np.int64)
        # Each point goes to the last chunk starting at or before it (the first chunk
        # for points older than the series).
        target = np.maximum(np.searchsorted(starts, new.times, "right") - 1, 0)
        positions, firsts = np.unique(target, return_index=True)
        bounds = [*firsts[1:].tolist(), len(new)]
        # From the last chunk back, so the positions still to do stay where they are.
        for position, low, high in reversed(list(zip(positions, firsts, bounds, strict=True))):
            number = self.index[position][2]
            old = self.chunks[number] if number in self.chunks else read_chunk(number)
            self._replace(
                int(position), merge(old, Points(new.times[low:high], new.values[low:high]))
            )

    def _replace(self, position: int, points: Points) -> None:
        """The chunk at ``position`` (none in an empty index) replaced by ``points``, in
        as many new chunks as needed."""
        replaced = self.index[position : position + 1]
        entries = []
        for piece in split(points):
            number = self._new_number()
            self.chunks[number] = piece
            entries.append([int(piece.times[0]), len(piece), number])
        self.index[position : position + 1] = entries
        for _first, _count, number in replaced:
            if self.chunks.pop(number, None) is None:  # stored: delete it once durable
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
