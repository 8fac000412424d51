"""What the dashboard's filters select, from its controls or its URL (pure).

The URL parameters are the worker views' own (``account_id``, ``vpc_id``, ``subnet_id``,
``interface_id``, ``protocol``, ``action``, ``start``, ``end``, ``by``), checked by the
views' own parser (streams/flowlogs/filters.py), so a views query string pasted after
the dashboard's address shows the same flows, and the figures equal the views' answers.
Three more: ``window`` (a preset: the last hours of data held), ``address`` and
``port`` (either end of a flow), which the alerts' links set to select the flows
behind an alert.

A value the page cannot use is left out with a message, never an error page: the other
filters still apply, and the message says which value was refused and why.
"""

from __future__ import annotations

import ipaddress
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
    query.update({k: v for k, v in (("start", start), ("end", end)) if v})
    filters = parse_filters(query)
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


def controls_from_url(search: str | None) -> Controls:
    """The controls a URL's query string sets (``?vpc_id=vpc-1,vpc-2&window=6h``); values
    are checked later, by ``select``, like the ones a user picks."""
    params: Mapping[str, str] = dict(parse_qsl((search or "").lstrip("?")))
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
    window = params.get("window", "")
    if window in WINDOWS or window == RANGE:
        found["window"] = window
    elif found.get("start") or found.get("end"):
        found["window"] = RANGE
    return replace(Controls(), **found)  # type: ignore[arg-type]


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


def _window(controls: Controls, latest: int | None, errors: list[str]) -> tuple[str, str]:
    if controls.window != RANGE:
        if controls.window not in WINDOWS:
            errors.append(f"window: {controls.window[:64]!r} is not a preset")
        bounds = window_bounds(controls.window, latest)
        return ("", "") if bounds is None else (iso_time(bounds[0]), iso_time(bounds[1]))
    start, end = _utc(controls.start), _utc(controls.end)
    start = start if _parses(errors, {"start": start}) else ""
    end = end if _parses(errors, {"end": end}) else ""
    if start and end and not _parses(errors, {"start": start, "end": end}):
        return "", ""
    return start, end


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
