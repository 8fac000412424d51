"""Query-string parameters of web views, checked: a bad one is a 400 that names it.

Each parser takes the request's query mapping and the parameter's name, and returns the
value, its default when the parameter is absent or empty (``?from=`` is how forms send
"no value"), or raises :class:`~streams.common.errors.BadRequest` naming the parameter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, date, datetime

from streams.common.errors import BadRequest

Query = Mapping[str, str]

_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
#: Longer values are cut in error messages: the answer stays small whatever was sent.
_SHOWN = 64


def integer(query: Query, name: str, default: int, low: int, high: int) -> int:
    """An integer from ``low`` to ``high``."""
    raw = _raw(query, name)
    if raw is None:
        return default
    # A pattern, not str.isdigit(): that accepts "²", which int() then refuses.
    if not _INTEGER.fullmatch(raw) or not low <= int(raw) <= high:
        raise _bad(name, f"an integer from {low} to {high}", raw)
    return int(raw)


def number(query: Query, name: str, default: float, low: float, high: float) -> float:
    """A finite decimal number from ``low`` to ``high`` (``1.5``, ``-2``, ``3e2``)."""
    raw = _raw(query, name)
    if raw is None:
        return default
    value = float(raw) if _NUMBER.fullmatch(raw) else math.nan
    if not (math.isfinite(value) and low <= value <= high):
        raise _bad(name, f"a number from {low:g} to {high:g}", raw)
    return value


def boolean(query: Query, name: str, default: bool) -> bool:
    """``true``/``false`` (also ``1``/``0``, ``yes``/``no``, ``on``/``off``)."""
    raw = _raw(query, name)
    if raw is None:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise _bad(name, "true or false", raw)


def choice(query: Query, name: str, choices: Sequence[str], default: str | None = None) -> str:
    """One of ``choices``; absent, ``default`` or else the first choice."""
    raw = _raw(query, name)
    if raw is None:
        return choices[0] if default is None else default
    if raw not in choices:
        raise _bad(name, f"one of {', '.join(choices)}", raw)
    return raw


def names(
    query: Query, name: str, allowed: Collection[str], default: tuple[str, ...] = ()
) -> tuple[str, ...]:
    """A comma-separated list of values from ``allowed``, each once, in the given order."""
    raw = _raw(query, name)
    if raw is None:
        return default
    given = [part.strip() for part in raw.split(",") if part.strip()]
    unknown = [part for part in given if part not in allowed]
    if unknown or not given:
        raise _bad(name, f"a comma-separated list of {', '.join(sorted(allowed))}", raw)
    return tuple(dict.fromkeys(given))


def text(query: Query, name: str, pattern: str | re.Pattern[str], max_length: int) -> str | None:
    """A string of at most ``max_length`` characters matching ``pattern`` whole, or None."""
    raw = _raw(query, name)
    if raw is None:
        return None
    # Length first: the pattern never runs on an unbounded input.
    if len(raw) > max_length or not re.fullmatch(pattern, raw):
        raise _bad(name, f"at most {max_length} characters matching {_source(pattern)}", raw)
    return raw


def iso_date(query: Query, name: str, default: date | None = None) -> date | None:
    """A calendar date, ISO 8601 (``2025-08-01``)."""
    raw = _raw(query, name)
    if raw is None:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise _bad(name, "a date like 2025-08-01", raw) from None


def iso_datetime(query: Query, name: str, default: datetime | None = None) -> datetime | None:
    """A moment, ISO 8601 with a time zone (``2025-08-01T12:00:00Z``, ``...+02:00``), in UTC.

    A time without a zone is refused rather than guessed: it names a different moment
    on every machine that reads it.
    """
    raw = _raw(query, name)
    if raw is None:
        return default
    if "T" in raw:
        # An unescaped "+" in a query string arrives as a space: "...T12:00:00 02:00".
        raw = re.sub(r" ([0-9]{2}(?::?[0-9]{2})?)$", r"+\1", raw)
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise _bad(name, "an ISO 8601 time with a time zone, like 2025-08-01T12:00:00Z", raw)
    return _in_utc(name, moment, raw)


def _in_utc(name: str, moment: datetime, raw: str) -> datetime:
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        # Year 1 at +14:00 is before year 1 in UTC: the format is right, the time is not.
        raise BadRequest(
            f"{name} is out of range: {_shown(raw)!r} is outside years 1-9999 in UTC",
            parameter=name,
        ) from None


def _raw(query: Query, name: str) -> str | None:
    return query.get(name) or None


def _bad(name: str, expected: str, raw: str) -> BadRequest:
    return BadRequest(f"{name} must be {expected}, got {_shown(raw)!r}", parameter=name)


def _shown(raw: str) -> str:
    return raw if len(raw) <= _SHOWN else raw[:_SHOWN] + "..."


def _source(pattern: str | re.Pattern[str]) -> str:
    return pattern if isinstance(pattern, str) else pattern.pattern
