"""What the browser sends back, read and checked: the controls' values, the lake's
version kept in the Store, and the dropdowns' choices and placeholders sent with them.

Every value here comes from the client, so a stale page or a crafted request may send
anything; each reader keeps only what it can use, and never raises.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from streams.common.errors import BadRequest
from streams.flowlogs.dashboard import ids
from streams.flowlogs.dashboard.data import OPTIONS
from streams.flowlogs.dashboard.layout import PLACEHOLDERS
from streams.flowlogs.dashboard.selection import LISTS, Controls
from streams.flowlogs.filters import PROTOCOLS, parse_filters, protocol_number

#: Each control's Controls field, in the order the callbacks receive their values.
CONTROLS = (
    ("account_id", ids.ACCOUNT),
    ("vpc_id", ids.VPC),
    ("subnet_id", ids.SUBNET),
    ("interface_id", ids.ENI),
    ("protocol", ids.PROTOCOL),
    ("action", ids.ACTION),
    ("window", ids.WINDOW),
    ("start", ids.START),
    ("end", ids.END),
    ("address", ids.ADDRESS),
    ("port", ids.PORT),
    ("by", ids.RANK_BY),
)
#: The dropdowns, whose choices are what the lake holds.
OPTION_IDS = CONTROLS[:5]
#: The ``title`` of a dropdown's option that was typed, not listed.
TYPED = "typed: not among the values listed"
_NAMES = {number: name for name, number in sorted(PROTOCOLS.items(), reverse=True)}


def controls_of(values: Sequence[Any]) -> Controls:
    """The controls' values as the page sends them (lists, None for an empty input). A
    crafted request may send anything: a single value where a list is expected is one
    value, not its characters; address and port sent as lists are their items."""
    found: dict[str, Any] = {}
    for (name, _), value in zip(CONTROLS, values, strict=True):
        if value in (None, "", []):
            continue
        items = value if isinstance(value, list) else [value]
        if name in LISTS:
            found[name] = tuple(str(v) for v in items)
        elif name in ("address", "port"):
            found[name] = ",".join(str(v) for v in items)
        else:
            found[name] = str(value)
    return Controls(**found)


def values_of(controls: Controls) -> list[Any]:
    """The controls' values for the page (lists for the multi-value ones)."""
    return [
        list(value) if isinstance(value, tuple) else value
        for value in (getattr(controls, name) for name, _ in CONTROLS)
    ]


def lake_of(store: Any) -> dict[str, Any]:
    """The lake's version as the browser sends it back, keeping only usable values: the
    Store is the client's to send, so a stale or crafted one may hold anything."""
    if not isinstance(store, dict):
        return {"version": None, "error": None, "earliest": None, "latest": None, "options": {}}
    options = store.get("options")
    held: dict[str, list[str]] = {}
    for name, _ in OPTION_IDS:
        values = options.get(name) if isinstance(options, dict) else None
        if isinstance(values, list):
            held[name] = [str(v) for v in values if isinstance(v, str | int)]
    version, error, attempt = store.get("version"), store.get("error"), store.get("attempt")
    return {
        "version": version if isinstance(version, str) else None,
        "error": str(error) if error else None,
        "earliest": _epoch(store.get("earliest")),
        "latest": _epoch(store.get("latest")),
        "options": held,
        "attempt": attempt if isinstance(attempt, int) else 0,
    }


def choices(held: dict[str, list[str]], controls: Controls) -> list[list[dict[str, str]]]:
    """Each dropdown's choices: what the lake holds, and the values picked (an alert's
    VPC may not be in the lake yet); protocols by number, labelled with their names."""
    out = []
    for name, _ in OPTION_IDS:
        values = list(dict.fromkeys([*held.get(name, []), *getattr(controls, name)]))
        label = _protocol_label if name == "protocol" else str
        out.append([{"label": label(v), "value": v} for v in values])
    return out


def placeholders(held: dict[str, list[str]]) -> list[str]:
    """Each dropdown's placeholder, saying so when its list is cut at OPTIONS values."""
    out = []
    for name, i in OPTION_IDS:
        text = PLACEHOLDERS[i]
        if len(held.get(name, [])) >= OPTIONS:
            text += f" (the first {OPTIONS:,} listed: type an id to pick another)"
        out.append(text)
    return out


def is_id(value: str) -> bool:
    """Whether a value typed in a dropdown is a well-formed id, worth offering."""
    try:
        parse_filters({"vpc_id": value})  # every id column has the same rule
    except BadRequest:
        return False
    return True


def _protocol_label(value: str) -> str:
    # protocol_number, not str.isdigit: "²" is a digit that int() refuses.
    number = protocol_number(value)
    name = _NAMES.get(number) if number is not None and value.strip() == str(number) else None
    return f"{name} ({value})" if name else value


def _epoch(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
