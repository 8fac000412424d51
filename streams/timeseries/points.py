"""Points as a request gives them, checked and put in order (pure).

A point is ``{"ts": ..., "value": ...}``. ``ts`` is ISO 8601 with an offset
(``2026-12-03T10:00:00Z``, ``...+01:00``) or Unix seconds (an integer or a decimal
number); a time without an offset is refused, since guessing its zone would silently
shift it. Times are kept at millisecond resolution, as Prometheus and VictoriaMetrics
keep them: finer fractions are rounded to the nearest millisecond. They must fall in
years 1900-9999. ``value`` is a finite number; ``true``, ``"1.5"``, NaN and infinities
are refused, never coerced.

Order and duplicates, decided here for every write:

- Points may come in any order; they are stored sorted by time.
- Two points at the same millisecond are one point: the one given last wins, within a
  request and across requests (an append can correct a value, as a write to the same
  series and timestamp does in InfluxDB). So a retried append changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

#: The accepted span of times, in Unix milliseconds: 1900-01-01 to 9999-12-31T23:59:59.999.
EARLIEST_MS = int(datetime(1900, 1, 1, tzinfo=UTC).timestamp() * 1000)
LATEST_MS = int(datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC).timestamp() * 1000)

Times = npt.NDArray[np.int64]
Values = npt.NDArray[np.float64]


class PointError(ValueError):
    """A point the API refuses (422): ``index`` in the request, ``field``, ``problem``."""

    def __init__(self, index: int, field: str, problem: str) -> None:
        super().__init__(f"points[{index}].{field}: {problem}")
        self.index = index
        self.field = field
        self.problem = problem


@dataclass(frozen=True)
class Points:
    """Times (Unix ms) and values, sorted by time, one value per time."""

    times: Times
    values: Values

    def __len__(self) -> int:
        return len(self.times)


def parse_time(raw: Any) -> int:
    """Unix milliseconds of an ISO 8601 string with an offset or of Unix seconds.

    Raises ValueError with the problem (the caller names the field).
    """
    if isinstance(raw, bool):
        raise ValueError("a time, not a boolean")
    if isinstance(raw, int):
        return _in_span(raw * 1000)
    if isinstance(raw, float):
        if not math.isfinite(raw * 1000):  # 1e308 seconds overflow as milliseconds
            raise ValueError("a finite number of Unix seconds")
        return _in_span(round(raw * 1000))
    if isinstance(raw, str):
        return _in_span(_iso_ms(raw))
    raise ValueError("ISO 8601 with an offset, or Unix seconds")


def _iso_ms(text: str) -> int:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("ISO 8601 with an offset, or Unix seconds") from None
    if parsed.tzinfo is None:
        raise ValueError("an offset is required (Z or +HH:MM)")
    try:
        moment = parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError("outside years 1900-9999") from None
    whole = int(moment.replace(microsecond=0).timestamp()) * 1000
    return whole + round(moment.microsecond / 1000)


def _in_span(ms: int) -> int:
    if not EARLIEST_MS <= ms <= LATEST_MS:
        raise ValueError("outside years 1900-9999")
    return ms


def parse_value(raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ValueError("a number")
    try:
        value = float(raw)
    except OverflowError:  # an integer beyond a double's range
        raise ValueError("a finite number") from None
    if not math.isfinite(value):
        raise ValueError("a finite number")
    return value


def parse_points(raw: Any, *, limit: int) -> Points:
    """The points of a request body's ``points``: checked, sorted, one per time.

    Raises PointError for the first bad point, ValueError if ``raw`` is no list or holds
    more than ``limit`` points.
    """
    if not isinstance(raw, list):
        raise ValueError("points must be a list")
    if len(raw) > limit:
        raise ValueError(f"at most {limit} points per request")
    times = np.empty(len(raw), dtype=np.int64)
    values = np.empty(len(raw), dtype=np.float64)
    for index, point in enumerate(raw):
        if not isinstance(point, dict):
            raise PointError(index, "", 'a point is {"ts": ..., "value": ...}')
        unknown = point.keys() - {"ts", "value"}
        if unknown:
            raise PointError(index, sorted(unknown)[0], "unknown field")
        times[index] = _field(index, point, "ts", parse_time)
        values[index] = _field(index, point, "value", parse_value)
    return latest_per_time(times, values)


def _field(index: int, point: dict[str, Any], name: str, parse: Any) -> Any:
    if name not in point:
        raise PointError(index, name, "required")
    try:
        return parse(point[name])
    except ValueError as exc:
        raise PointError(index, name, str(exc)) from None


def latest_per_time(times: Times, values: Values) -> Points:
    """Sorted by time; of points at the same time, the last given is kept."""
    if len(times) == 0:
        return Points(times, values)
    order = np.argsort(times, kind="stable")
    times, values = times[order], values[order]
    # A point is kept unless the next one (given later: the sort is stable) has its time.
    keep = np.append(times[1:] != times[:-1], True)
    return Points(times[keep], values[keep])


def merge(old: Points, new: Points) -> Points:
    """``old`` with ``new`` written over it: ``new`` wins at equal times."""
    return latest_per_time(
        np.concatenate([old.times, new.times]), np.concatenate([old.values, new.values])
    )


def iso(ms: int) -> str:
    """``2026-12-03T10:00:00.250Z``: the form every answer gives times in."""
    seconds, millis = divmod(ms, 1000)
    moment = datetime.fromtimestamp(seconds, UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{millis:03d}Z"


def as_rows(points: Points) -> list[dict[str, Any]]:
    """``[{"ts": iso(t), "value": v}, ...]``; the times formatted by numpy at once (10x
    faster than ``iso`` per point: 10,000 rows in ~5 ms, not ~50)."""
    stamps = np.datetime_as_string(points.times.astype("datetime64[ms]"), unit="ms").tolist()
    return [
        {"ts": f"{stamp}Z", "value": value}
        for stamp, value in zip(stamps, points.values.tolist(), strict=True)
    ]


def within(points: Points, start: int | None, end: int | None) -> Points:
    """The points in ``[start, end)`` (either bound may be open)."""
    low = 0 if start is None else int(np.searchsorted(points.times, start, "left"))
    high = len(points) if end is None else int(np.searchsorted(points.times, end, "left"))
    return Points(points.times[low:high], points.values[low:high])


def concat(parts: Sequence[Points]) -> Points:
    """Parts already in order and disjoint in time, as one."""
    if not parts:
        return Points(np.empty(0, np.int64), np.empty(0, np.float64))
    return Points(
        np.concatenate([p.times for p in parts]), np.concatenate([p.values for p in parts])
    )
