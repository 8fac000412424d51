"""Tumbling windows per device: which window a reading belongs to, and its figures.

Pure functions over plain values, so every rule is unit-tested without Kafka.

Windows are aligned to the epoch (a 60 s window starts on the minute) and a device's
windows never overlap. Sizes can change at run time: a window keeps the size it opened
with, and a window opening next to an existing one is clipped so the two do not overlap
(one short window marks the change). Readings before the newest closed window's end
are late: their window has been emitted and will not be again.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import Any

Window = tuple[int, int]


def window_for(
    ts: int, size: int, open_windows: Mapping[int, int], closed_until: int
) -> Window | None:
    """The window (start, end) in ms that holds ``ts``, or None when ``ts`` is late.

    ``open_windows`` maps each open window's start to its end. A new window is aligned
    to ``size`` and clipped to the neighbours it would overlap.
    """
    if ts < closed_until:
        return None
    for start, end in open_windows.items():
        if start <= ts < end:
            return start, end
    start = ts - ts % size
    end = start + size
    start = max(start, closed_until)
    for other_start, other_end in open_windows.items():
        if other_end <= ts:
            start = max(start, other_end)
        elif other_start > ts:
            end = min(end, other_start)
    return start, end


def due(open_windows: Mapping[int, int], clock: float, grace: int) -> list[Window]:
    """Open windows whose end plus ``grace`` is at or before ``clock``, oldest first."""
    return sorted((s, e) for s, e in open_windows.items() if e + grace <= clock)


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of sorted values, linearly interpolated.

    The same definition as numpy's default ("linear"), so figures can be checked with
    any data tool: p95 of 1..100 is 95.05.
    """
    if not ordered:
        raise ValueError("no values")
    rank = (len(ordered) - 1) * q
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(slots=True)
class Figures:
    """The figures of one series' window (slots, not frozen: built ~50,000 times a second)."""

    count: int
    min: float
    max: float
    mean: float
    p95: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Figures:
        ordered = sorted(values)
        if not ordered:
            raise ValueError("a window has at least one value")
        count = len(ordered)
        mean = math.fsum(ordered) / count
        return cls(count, ordered[0], ordered[-1], mean, percentile(ordered, 0.95))

    def get(self, figure: str) -> float:
        return float(getattr(self, figure))

    def as_series(self, interface: str, metric: str) -> dict[str, Any]:
        """The figures as one entry of a window record's ``series``."""
        return {
            "interface": interface,
            "metric": metric,
            "count": self.count,
            "min": self.min,
            "max": self.max,
            "mean": self.mean,
            "p95": self.p95,
        }

    def as_dict(self) -> dict[str, float | int]:
        return {
            "count": self.count,
            "min": self.min,
            "max": self.max,
            "mean": self.mean,
            "p95": self.p95,
        }


SERIES = itemgetter(0, 1)
SEQ = itemgetter(4)
READING = itemgetter(0, 1, 4)


@dataclass(slots=True)
class WindowValues:
    """A window's values per (interface, metric) series, in one of two shapes: ``polls``,
    rows of one value per series (when every record held the same series in the same
    order, one poll each: the usual window), or ``columns``, a list per series."""

    series: list[tuple[str, str]]
    polls: list[tuple[float, ...]] | None = None
    columns: list[list[float]] | None = None
    duplicates: int = 0

    def as_dict(self) -> dict[tuple[str, str], list[float]]:
        columns = self.columns if self.polls is None else map(list, zip(*self.polls, strict=True))
        return dict(zip(self.series, columns or [], strict=True))


def series_values(chunks: Iterable[Iterable[Mapping[str, Any]]]) -> WindowValues:
    """The values of a window's chunks per (interface, metric) series, and duplicates.

    A chunk is a list of groups ``{"readings": [[interface, metric, value, ts, seq], ...]}``.

    A reading is identified by its series and its device's sequence number (one per
    reading or one per poll): a second reading with a sequence number already seen in
    the series is a duplicate (resent by the device or the client) and counts once,
    with the value first seen.
    """
    groups = [group["readings"] for chunk in chunks for group in chunk]
    rows = list(chain.from_iterable(groups))
    if not _unique(groups, rows):
        return _first_of_each(rows)
    polls = _polls_alike(groups)
    if polls is not None:
        return polls
    values: dict[tuple[str, str], list[float]] = {}
    for interface, metric, value, _ts, _seq in rows:
        found = values.get((interface, metric))
        if found is None:
            values[(interface, metric)] = [value]
        else:
            found.append(value)
    return WindowValues(list(values), columns=list(values.values()))


def _unique(groups: list[Any], rows: list[Any]) -> bool:
    """Whether no reading is there twice, checked the cheap ways first: sequence
    numbers all different (one per reading), or one per group and each group's own."""
    if len(set(map(SEQ, rows))) == len(rows):
        return True
    polls = [set(map(SEQ, readings)) for readings in groups]
    if all(len(seqs) == 1 for seqs in polls) and len(set().union(*polls)) == len(polls):
        return all(len(set(map(SERIES, readings))) == len(readings) for readings in groups)
    return len(set(map(READING, rows))) == len(rows)


def _first_of_each(rows: list[Any]) -> WindowValues:
    seen: dict[tuple[str, str], dict[int, float]] = {}
    duplicates = 0
    for interface, metric, value, _ts, seq in rows:
        series = seen.setdefault((interface, metric), {})
        if seq in series:
            duplicates += 1
        else:
            series[seq] = value
    columns = [list(by_seq.values()) for by_seq in seen.values()]
    return WindowValues(list(seen), columns=columns, duplicates=duplicates)


def _polls_alike(groups: list[Any]) -> WindowValues | None:
    """The window as a table of polls by series when every group holds the same series
    in the same order (one poll each, the usual case), else None.

    Each group is transposed in C (``zip``): no Python loop per reading, which was the
    largest single cost of a worker.
    """
    if not groups:
        return WindowValues([], columns=[])
    interfaces, metrics, *_ = first = list(zip(*groups[0], strict=True))
    polls = []
    for readings in groups:
        columns = list(zip(*readings, strict=True)) if readings is not groups[0] else first
        if columns[0] != interfaces or columns[1] != metrics:
            return None
        polls.append(columns[2])
    series = list(zip(interfaces, metrics, strict=True))
    if len(set(series)) != len(series):
        return None
    return WindowValues(series, polls=polls)
