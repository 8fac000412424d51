"""What the dashboard's filters select, from its controls or its URL (pure).

The URL parameters are the worker views' own (``account_id``, ``vpc_id``, ``subnet_id``,
``interface_id``, ``protocol``, ``action``, ``start``, ``end``, ``by``), checked by the
views' own parser (streams/flowlogs/filters.py), so a views query string pasted after
the dashboard's address shows the same flows, and the figures equal the views' answers.
Three more: ``window`` (a preset: the last hours of data held), ``address`` and
``port`` (either end of a flow), which the alerts' links set to select the flows
behind an alert.

A value the page cannot use is left out with a message, never an error page: the other
filters still apply, and the message says which value was refused and why. So is a URL
parameter the page does not take, one given twice, an unknown ``window`` and a
``start``/``end`` next to a preset (``read_url``). Times are whole seconds of years
1-9999: a time rounding past the last second of 9999 names no start a flow can have,
and is refused; so is an end at or before the first second of year 1.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import TypeVar
from urllib.parse import parse_qsl, urlencode

from streams.common.errors import BadRequest
from streams.flowlogs.detect_base import iso_time
from streams.flowlogs.filters import MAX_VALUES, Filters, parse_filters, protocol_number
from streams.flowlogs.query import TOP_BY, Condition

#: Presets of the time window: the last N seconds of data held, in whole hours.
WINDOWS: dict[str, int | None] = {
    "all": None,
    "1h": 3600,
    "6h": 6 * 3600,
    "24h": 24 * 3600,
    "7d": 7 * 24 * 3600,
}
RANGE = "range"
T = TypeVar("T")
LISTS = ("account_id", "vpc_id", "subnet_id", "interface_id", "protocol", "action")
#: The first and the last whole second a date can name (epoch seconds, UTC).
FIRST = int(datetime(1, 1, 1, tzinfo=UTC).timestamp())
LAST = int(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp())


@dataclass(frozen=True)
class Controls:
    """What the filter controls hold, as the page sends them (and the URL names them)."""

    account_id: tuple[str, ...] = ()
    vpc_id: tuple[str, ...] = ()
    subnet_id: tuple[str, ...] = ()
    interface_id: tuple[str, ...] = ()
    protocol: tuple[str, ...] = ()
    action: tuple[str, ...] = ()
    window: str = "all"
    start: str = ""
    end: str = ""
    address: str = ""
    port: str = ""
    by: str = "bytes"


@dataclass(frozen=True)
class Selection:
    """The flows the figures count: the views' filters, plus address and port."""

    filters: Filters = field(default_factory=Filters)
    address: tuple[str, ...] = ()
    port: tuple[int, ...] = ()
    by: str = "bytes"

    def narrows(self) -> bool:
        """Whether anything but the time window selects flows (an account, a VPC, an
        action, an address...): then few flows are likely to be selected."""
        return bool(self.address or self.port or any(getattr(self.filters, n) for n in LISTS))

    def also(self) -> Condition | None:
        """The condition beyond the views' filters (None: the views' own selection)."""
        terms: list[str] = []
        params: list[object] = []
        for values, columns in (
            (self.address, ("srcaddr", "dstaddr")),
            (self.port, ("srcport", "dstport")),
        ):
            if values:
                marks = ", ".join("?" * len(values))
                terms.append(" OR ".join(f"{column} IN ({marks})" for column in columns))
                params.extend([*values, *values])
        if not terms:
            return None
        return " AND ".join(f"({term})" for term in terms), params


def select(controls: Controls, latest: int | None) -> tuple[Selection, list[str]]:
    """The selection ``controls`` make and a message per value left out. ``latest``: the
    newest flow start held (the presets count back from the end of its hour)."""
    errors: list[str] = []
    query: dict[str, str] = {}
    for name in LISTS:
        values = getattr(controls, name)
        if len(values) > MAX_VALUES:
            errors.append(f"at most {MAX_VALUES} values of {name}")
            continue
        # Value by value, so one refused value leaves the others in force.
        query[name] = ",".join(v for v in values if _parses(errors, {name: v}))
    start, end = _window(controls, latest, errors)
    filters = replace(parse_filters(query), start=start, end=end)
    by = controls.by if controls.by in TOP_BY else "bytes"
    if by != controls.by:
        errors.append(f"by: {controls.by[:64]!r} is not one of {', '.join(TOP_BY)}")
    address = _list(controls.address, "address", _address, errors)
    port = _list(controls.port, "port", _port, errors)
    return Selection(filters, address, port, by), errors


def window_bounds(window: str, latest: int | None) -> tuple[int, int] | None:
    """A preset's [start, end): whole hours ending with the hour of the newest flow."""
    seconds = WINDOWS.get(window)
    if seconds is None or latest is None:
        return None
    end = latest - latest % 3600 + 3600
    return end - seconds, end


def moment(epoch: int | None, default: str = "?") -> str:
    """An epoch second as the page prints it (``default`` for none), whatever its year."""
    if epoch is None:
        return default
    if epoch > LAST:
        return "after year 9999"
    if epoch < FIRST:
        return "before year 1"
    return iso_time(epoch)


def controls_from_url(search: str | None) -> Controls:
    """The controls a URL's query string sets (``?vpc_id=vpc-1,vpc-2&window=6h``); values
    are checked later, by ``select``, like the ones a user picks."""
    return read_url(search)[0]


def read_url(search: str | None) -> tuple[Controls, list[str]]:
    """``controls_from_url``'s controls, and a note per parameter it left out: one the
    page does not take, one given twice (the last counts), an unknown window, a start or
    end next to a preset."""
    given: dict[str, list[str]] = defaultdict(list)
    for name, value in parse_qsl((search or "").lstrip("?"), keep_blank_values=True):
        given[name].append(value)
    notes = _url_notes(given)
    params: Mapping[str, str] = {name: values[-1] for name, values in given.items()}
    found: dict[str, object] = {}
    for name in LISTS:
        if params.get(name):
            parts = [part.strip() for part in params[name].split(",") if part.strip()]
            if name == "protocol":  # the page's choices are numbers: "tcp" is "6"
                parts = [str(_number(part)) for part in parts]
            elif name == "action":
                parts = [part.upper() for part in parts]
            found[name] = tuple(dict.fromkeys(parts))
    for name in ("start", "end", "address", "port", "by"):
        if params.get(name):
            found[name] = params[name].strip()
    window = params.get("window", "").strip()
    if window in WINDOWS or window == RANGE:
        found["window"] = window
    elif found.get("start") or found.get("end"):
        found["window"] = RANGE
    if window and window not in WINDOWS and window != RANGE:
        shown = "the range of start and end" if found.get("window") == RANGE else "all data"
        notes.append(
            f"URL: window: {window[:64]!r} is not a preset ({', '.join([*WINDOWS, RANGE])}): "
            f"{shown} shown"
        )
    ignored = [name for name in ("start", "end") if found.get(name)]
    if ignored and found.get("window", "all") != RANGE:
        preset = found.get("window", "all")
        notes.append(
            f"URL: {' and '.join(ignored)} ignored next to window={preset} (a preset sets its "
            "own hours; window=range takes start and end)"
        )
        for name in ignored:
            del found[name]
    return replace(Controls(), **found), notes  # type: ignore[arg-type]


#: Every parameter the page takes.
PARAMETERS = (*LISTS, "window", "start", "end", "address", "port", "by")


def _url_notes(given: Mapping[str, list[str]]) -> list[str]:
    notes = []
    unknown = [name for name in given if name not in PARAMETERS]
    if unknown:
        names = ", ".join(repr(name[:64]) for name in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        notes.append(
            f"URL: unknown parameter {names}{more} ignored (the page takes {', '.join(PARAMETERS)})"
        )
    for name in PARAMETERS:
        if len([v for v in given.get(name, []) if v.strip()]) > 1:
            notes.append(
                f"URL: {name} given {len(given[name])} times: only the last is used "
                "(give several values as a,b)"
            )
    return notes


def url_of(controls: Controls) -> str:
    """The query string that sets ``controls`` (``?`` and nothing else: no filter)."""
    default = Controls()
    params: list[tuple[str, str]] = []
    for control in fields(Controls):
        value = getattr(controls, control.name)
        if control.name in ("start", "end") and controls.window != RANGE:
            continue
        if value != getattr(default, control.name) and value:
            params.append((control.name, ",".join(value) if isinstance(value, tuple) else value))
    return "?" + urlencode(params, safe=",:")


# ---- checks ----------------------------------------------------------------------------


def _parses(errors: list[str], query: dict[str, str]) -> bool:
    try:
        parse_filters(query)
    except BadRequest as exc:
        errors.append(exc.message)
        return False
    return True


def _window(
    controls: Controls, latest: int | None, errors: list[str]
) -> tuple[int | None, int | None]:
    if controls.window != RANGE:
        if controls.window not in WINDOWS:
            errors.append(f"window: {controls.window[:64]!r} is not a preset")
        if latest is not None and latest > LAST:
            errors.append(
                f"the lake holds a flow dated after year 9999: the presets count back from "
                f"{iso_time(LAST)}"
            )
            latest = LAST
        bounds = window_bounds(controls.window, latest)
        if bounds is None:
            return None, None
        # Nothing can be named before year 1 or after 9999: no bound there.
        return (bounds[0] if bounds[0] >= FIRST else None), (
            bounds[1] if bounds[1] <= LAST else None
        )
    start, end = _utc(controls.start), _utc(controls.end)
    start = start if _parses(errors, {"start": start}) else ""
    end = end if _parses(errors, {"end": end}) else ""
    if start and end and not _parses(errors, {"start": start, "end": end}):
        return None, None
    first = parse_filters({"start": start}).start if start else None
    last = parse_filters({"end": end}).end if end else None
    if first is not None and first > LAST:
        errors.append(
            f"start: {controls.start.strip()[:64]!r} is after the last second of year 9999 "
            "(times round up to whole seconds): no flow can start then"
        )
        first = None
    if last is not None and last <= FIRST:
        errors.append(
            f"end: {controls.end.strip()[:64]!r} is not after the first second of year 1: "
            "no flow can start before it"
        )
        last = None
    return first, (last if last is None or last <= LAST else None)


def _utc(text: str) -> str:
    # The page labels its times UTC, so a time typed without a zone is read as UTC (the
    # views refuse one: on their own, it would name a different moment on each machine).
    text = text.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    return moment.replace(tzinfo=UTC).isoformat() if moment.tzinfo is None else text


def _list(raw: str, name: str, parse: Callable[[str], T], errors: list[str]) -> tuple[T, ...]:
    values: list[T] = []
    parts = [part.strip() for part in raw.split(",") if part.strip()]
    if len(parts) > MAX_VALUES:
        errors.append(f"{name}: at most {MAX_VALUES} values")
        return ()
    for part in parts:
        try:
            values.append(parse(part))
        except ValueError:
            errors.append(f"{name}: {part[:64]!r} is not {_WHAT[name]}")
    return tuple(dict.fromkeys(values))


_WHAT = {"address": "an IP address", "port": "a port number 0-65535"}


def _number(protocol: str) -> int | str:
    number = protocol_number(protocol)
    return protocol if number is None else number


def _address(text: str) -> str:
    # The lake holds addresses as AWS writes them, which is the canonical text.
    return str(ipaddress.ip_address(text))


def _port(text: str) -> int:
    if not (text.isascii() and text.isdigit() and int(text) <= 65535):
        raise ValueError(text)
    return int(text)
