"""The filters every flow-logs view takes, checked, and their SQL (pure).

``account_id, vpc_id, subnet_id, interface_id, protocol, action``: each one value or
several separated by commas (any of them matches); ``protocol`` as its IANA number
(``6``) or name (``tcp``); ``action`` ``ACCEPT`` or ``REJECT`` (any case). ``start``
and ``end``: ISO 8601 instants (a flow counts when its ``start`` is in
``[start, end)``); none means everything held. A value outside these rules is a 400.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from streams.common.errors import BadRequest
from streams.common.query import Query, iso_datetime

#: IANA protocol numbers of the names a user is likely to type.
PROTOCOLS = {
    "hopopt": 0, "icmp": 1, "igmp": 2, "ipv4": 4, "tcp": 6, "egp": 8, "igp": 9, "udp": 17,
    "ipv6": 41, "ipv6-route": 43, "ipv6-frag": 44, "rsvp": 46, "gre": 47, "esp": 50,
    "ah": 51, "icmpv6": 58, "ipv6-icmp": 58, "ipv6-nonxt": 59, "ipv6-opts": 60,
    "eigrp": 88, "ospf": 89, "pim": 103, "vrrp": 112, "l2tp": 115, "sctp": 132,
}  # fmt: skip
TEXT_FILTERS = ("account_id", "vpc_id", "subnet_id", "interface_id")
ACTIONS = ("ACCEPT", "REJECT")
# AWS ids are letters, digits and hyphens; nothing else can match, so nothing else passes.
_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
_PROTOCOL_NUMBER = re.compile(r"[0-9]{1,3}")
MAX_VALUES = 100
T = TypeVar("T")


@dataclass(frozen=True)
class Filters:
    account_id: tuple[str, ...] = ()
    vpc_id: tuple[str, ...] = ()
    subnet_id: tuple[str, ...] = ()
    interface_id: tuple[str, ...] = ()
    protocol: tuple[int, ...] = ()
    action: tuple[str, ...] = ()
    start: int | None = None  # epoch seconds, inclusive
    end: int | None = None  # epoch seconds, exclusive

    def where(self) -> tuple[str, list[object]]:
        """A SQL condition over the flow columns and its parameters (``?`` placeholders)."""
        terms: list[str] = []
        params: list[object] = []
        for column in (*TEXT_FILTERS, "protocol", "action"):
            values = getattr(self, column)
            if values:
                terms.append(f"{column} IN ({', '.join('?' * len(values))})")
                params.extend(values)
        if self.start is not None:
            terms.append('"start" >= ?')
            params.append(self.start)
        if self.end is not None:
            terms.append('"start" < ?')
            params.append(self.end)
        return (" AND ".join(terms) or "TRUE"), params


FILTER_PARAMETERS = frozenset({*TEXT_FILTERS, "protocol", "action", "start", "end"})


def strict(query: Query, *others: str) -> None:
    """A 400 for a parameter the view does not take (``acount_id`` would otherwise be
    ignored and the answer cover everything) or one given twice (which would count?)."""
    known = FILTER_PARAMETERS | set(others)
    unknown = sorted(set(query) - known)
    if unknown:
        raise BadRequest(f"unknown parameter {unknown[0][:64]!r}", known=sorted(known))
    getall = getattr(query, "getall", None)
    if getall is not None:
        for name in set(query):
            if len(getall(name)) > 1:
                raise BadRequest(f"{name} given twice: give several values as a,b", parameter=name)


def parse_filters(query: Query) -> Filters:
    start, end = iso_datetime(query, "start"), iso_datetime(query, "end")
    # The instants as given, not rounded: 10:00:00.2 is before 10:00:00.5.
    if start is not None and end is not None and end < start:
        raise BadRequest("end is before start", start=query.get("start"), end=query.get("end"))
    return Filters(
        account_id=_values(query, "account_id", _ids),
        vpc_id=_values(query, "vpc_id", _ids),
        subnet_id=_values(query, "subnet_id", _ids),
        interface_id=_values(query, "interface_id", _ids),
        protocol=_values(query, "protocol", _protocol),
        action=_values(query, "action", _action),
        start=_epoch(start),
        end=_epoch(end),
    )


def protocol_number(raw: str) -> int | None:
    text = raw.strip().lower()
    # A pattern, not str.isdigit(): that accepts "²" (which int() refuses) and "٦" or
    # fullwidth "6" (which int() reads as 6); a protocol number is typed in ASCII digits.
    if _PROTOCOL_NUMBER.fullmatch(text) and int(text) <= 255:
        return int(text)
    return PROTOCOLS.get(text)


def _values(query: Query, name: str, parse: Callable[[str, str], T]) -> tuple[T, ...]:
    raw = query.get(name)
    if not raw or not raw.strip():  # "?account_id=" is how forms send no value
        return ()
    parts = [part.strip() for part in raw.split(",") if part.strip()]
    if not parts:
        raise BadRequest(f"{name} names no value", parameter=name)
    if len(parts) > MAX_VALUES:
        raise BadRequest(f"at most {MAX_VALUES} values of {name}", parameter=name)
    return tuple(dict.fromkeys(parse(name, part) for part in parts))


def _ids(name: str, raw: str) -> str:
    if not _ID.fullmatch(raw):
        raise BadRequest(f"{name}: {raw[:64]!r} is not an AWS id", parameter=name)
    return raw


def _protocol(name: str, raw: str) -> int:
    number = protocol_number(raw)
    if number is None:
        raise BadRequest(
            f"protocol: {raw[:64]!r} is neither a number 0-255 nor a known name",
            parameter=name,
            names=sorted(PROTOCOLS),
        )
    return number


def _action(name: str, raw: str) -> str:
    action = raw.upper()
    if action not in ACTIONS:
        raise BadRequest(f"action: {raw[:64]!r} is not ACCEPT or REJECT", parameter=name)
    return action


def _epoch(moment: datetime | None) -> int | None:
    # Up, for start as for end: flows start on whole seconds, so [10:00:00.5, ...) holds
    # the same flows as [10:00:01, ...) (a flow at 10:00:00 began before 10:00:00.5),
    # and [..., 10:00:00.5) the same as [..., 10:00:01).
    return None if moment is None else math.ceil(moment.timestamp())
