"""Reads of one series: the range and page a query asks for, and the page's answer (pure).

``GET /series/{id}?start=&end=&limit=&cursor=&format=``:

- ``start`` (inclusive) and ``end`` (exclusive) as the points' times are given (ISO 8601
  with an offset, or Unix seconds); either may be left out.
- Pages of at most ``limit`` points (default and cap: the server's page limit, 10,000
  unless configured); ``next`` is the cursor of the following page, null on the last.
  A cursor is the time to go on from, so a page read after an append still follows
  on in time order: points appended before the cursor are not shown by later pages.
- ``format=rows`` (default): ``points: [{"ts", "value"}]`` with ISO times;
  ``format=columns``: ``timestamps`` (Unix milliseconds) and ``values`` arrays, as
  VictoriaMetrics exports them: several times faster to produce and to parse.

Only the chunks a page needs are read: a page of a 10-million-point series costs what
a page of a short one does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from streams.common.errors import BadRequest
from streams.common.query import integer
from streams.timeseries import chunks
from streams.timeseries.chunks import chunk_key
from streams.timeseries.points import Points, as_rows, concat, parse_time, within

FORMATS = ("rows", "columns")
_SECONDS = re.compile(r"-?[0-9]{1,12}(?:\.[0-9]{1,9})?")
_SPACED_OFFSET = re.compile(r" ([0-9]{2}(?::?[0-9]{2})?)$")
#: A cursor as pages give them: an integer time in ms (``[0-9]`` is ASCII digits only,
#: so ``int()`` reads whatever matches; ``--1`` or other scripts' digits do not).
_CURSOR = re.compile(r"-?[0-9]{1,19}")
Query = Mapping[str, str]


def time_parameter(query: Query, name: str) -> int | None:
    """A time parameter in Unix ms: Unix seconds, or ISO 8601 with an offset (an
    unescaped ``+`` arriving as a space is read as ``+``, as the kit reads it)."""
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    value: Any = raw
    if _SECONDS.fullmatch(raw):
        value = float(raw) if "." in raw else int(raw)
    elif "T" in raw:
        value = _SPACED_OFFSET.sub(r"+\1", raw)
    try:
        return parse_time(value)
    except ValueError as exc:
        raise BadRequest(f"{name}: {exc}", parameter=name) from None


def time_range(query: Query) -> tuple[int | None, int | None]:
    start, end = time_parameter(query, "start"), time_parameter(query, "end")
    if start is not None and end is not None and end < start:
        raise BadRequest("end is before start", parameter="end")
    return start, end


def page_request(query: Query, page_limit: int) -> tuple[int, int | None, str]:
    """``limit``, the cursor's time (or None) and the format."""
    limit = integer(query, "limit", page_limit, 1, page_limit)
    cursor = query.get("cursor") or None
    after: int | None = None
    if cursor is not None:
        if not _CURSOR.fullmatch(cursor):
            raise BadRequest("cursor is the next field of a previous page", parameter="cursor")
        after = int(cursor)
    form = query.get("format") or "rows"
    if form not in FORMATS:
        raise BadRequest("format is rows or columns", parameter="format")
    return limit, after, form


def read_page(
    get: Callable[[str], Any], meta: dict[str, Any], start: int | None, end: int | None, limit: int
) -> tuple[Points, int | None]:
    """At most ``limit`` points from ``start`` on, before ``end``, and the next cursor."""
    index = meta["index"]
    if not index:
        return concat([]), None
    first = index[0][0] if start is None else start
    span = chunks.reached(index, first, index[-1][0] if end is None else max(end - 1, first))
    parts: list[Points] = []
    held = 0
    for position in span:
        part = within(chunks.decode(get(chunk_key(meta["id"], index[position][2]))), start, end)
        parts.append(part)
        held += len(part)
        if held > limit:
            break
    points = concat(parts)
    if len(points) <= limit:
        return points, None
    return (
        Points(points.times[:limit], points.values[:limit]),
        int(points.times[limit]),
    )


def read_range(
    get: Callable[[str], Any],
    meta: dict[str, Any],
    start: int | None = None,
    end: int | None = None,
) -> Points:
    """Every point of the series in ``[start, end)`` (for metrics, forecasts, checks)."""
    points, _ = read_page(get, meta, start, end, max(meta["count"], 1))
    return points


def read_tail(get: Callable[[str], Any], meta: dict[str, Any], wanted: int) -> Points:
    """The last ``wanted`` points of the series, reading only the chunks that hold them."""
    index = meta["index"]
    held, position = 0, len(index)
    while position > 0 and held < wanted:
        position -= 1
        held += index[position][1]
    parts = [chunks.decode(get(chunk_key(meta["id"], entry[2]))) for entry in index[position:]]
    points = concat(parts)
    return Points(points.times[-wanted:], points.values[-wanted:]) if wanted else concat([])


def page_answer(
    series_id: str, points: Points, next_cursor: int | None, form: str
) -> dict[str, Any]:
    following = None if next_cursor is None else str(next_cursor)
    if form == "columns":
        return {
            "id": series_id,
            "timestamps": points.times.tolist(),
            "values": points.values.tolist(),
            "next": following,
        }
    return {"id": series_id, "points": as_rows(points), "next": following}
