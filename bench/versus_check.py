"""Is each workload's result right? Revenue and count per day, channel and state.

The expected figures are computed here from the generated orders, independently of the
workloads' code: the standard library's ``json`` (the workloads use orjson), the date
as written in the order's UTC timestamp (they parse it), and ``Decimal`` prices (they
round floats). Each workload's figures are read back from its changelog topic once its
consumer group has committed every order: what a restarted worker would restore, not
what one process holds in memory. No crash happens during a run, so at-least-once has
nothing to count twice: the figures must be exact.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from bench.versus_work import day_label

#: (day, channel, state) -> (orders, revenue in cents).
Figures = dict[tuple[str, str, str], tuple[int, int]]


class VersusMismatch(RuntimeError):
    """A workload's figures differ from the independent computation."""


@dataclass(frozen=True)
class Consumed:
    """One changelog record: its key, value (None: a tombstone) and headers."""

    key: bytes
    value: bytes | None
    headers: Mapping[str, bytes]


def expected(records: Iterable[tuple[bytes | None, bytes]]) -> Figures:
    """The figures computed from the orders themselves (no workload code)."""
    totals: dict[tuple[str, str, str], list[int]] = {}
    for _key, raw in records:
        order = json.loads(raw)
        stamp: str = order["timestamp"]
        if not stamp.endswith("Z"):
            raise ValueError(f"not a UTC timestamp: {stamp}")
        cents = sum(
            Decimal(str(item["unit_price"])) * 100 * item["quantity"] for item in order["items"]
        )
        if cents != cents.to_integral_value():
            raise ValueError(f"{order['order_id']}: a price with more than two decimals")
        key = (stamp[:10], order["channel"], order["shipping_address"]["state"])
        figures = totals.setdefault(key, [0, 0])
        figures[0] += 1
        figures[1] += int(cents)
    return {key: (n, c) for key, (n, c) in totals.items()}


def newest(records: Iterable[Consumed]) -> dict[bytes, Consumed]:
    """The newest record per key, tombstones removing theirs (records in offset order)."""
    out: dict[bytes, Consumed] = {}
    for record in records:
        if record.value is None:
            out.pop(record.key, None)
        else:
            out[record.key] = record
    return out


def _add(figures: Figures, key: tuple[str, str, str], orders: int, cents: int) -> None:
    n, c = figures.get(key, (0, 0))
    figures[key] = (n + orders, c + cents)


def same_work_figures(records: Iterable[Consumed]) -> Figures:
    """Our same-work table: ``<day>|<channel>|<state>|<partition>`` -> {n, c, _o}."""
    figures: Figures = {}
    for record in newest(records).values():
        day, channel, state, _partition = orjson.loads(record.key).split("|")
        value = orjson.loads(record.value or b"null")
        _add(figures, (day, channel, state), int(value["n"]), int(value["c"]))
    return figures


def full_figures(records: Iterable[Consumed]) -> Figures:
    """The orders pipeline's table: ``daily|<day>|<channel>|<state>|<partition>`` ->
    {"s": {status: [orders, cents, units]}}, every status added up."""
    figures: Figures = {}
    # Most of its changelog is per-customer and per-order keys: left out before decoding.
    daily = (r for r in records if r.key.startswith(b'"daily|'))
    for record in newest(daily).values():
        key: str = orjson.loads(record.key)
        _, day, channel, state, _partition = key.split("|")
        statuses = orjson.loads(record.value or b"null")["s"]
        orders = sum(int(counts[0]) for counts in statuses.values())
        cents = sum(int(counts[1]) for counts in statuses.values())
        _add(figures, (day, channel, state), orders, cents)
    return figures


#: Quix's window keys: ``<message key>|<start ms>|<end ms>``, both big-endian uint64.
_WINDOW = struct.Struct(">QcQ")
QUIX_FAMILY = "__column_family__"


def quix_figures(records: Iterable[Consumed]) -> Figures:
    """Quix's tumbling-window changelog: the ``default`` column family holds
    ``"<channel>|<state>"|<start>|<end>`` -> {"revenue/Sum/cents": c, "count/Count": n}
    (quixstreams/state/rocksdb/windowed/serialization.py)."""
    figures: Figures = {}
    windows = [r for r in records if r.headers.get(QUIX_FAMILY, b"default") == b"default"]
    for record in newest(windows).values():
        prefix, start = parse_quix_window_key(record.key)
        channel, state = orjson.loads(prefix).split("|")
        value = orjson.loads(record.value or b"null")
        _add(figures, (day_label(start), channel, state), value["count/Count"],
             value["revenue/Sum/cents"])  # fmt: skip
    return figures


def parse_quix_window_key(key: bytes) -> tuple[bytes, int]:
    """(message key, window start ms) of a Quix window key."""
    size = _WINDOW.size
    if len(key) <= size + 1 or key[-size - 1 : -size] != b"|":
        raise ValueError(f"not a window key: {key!r}")
    start, _sep, _end = _WINDOW.unpack(key[-size:])
    return key[: -size - 1], start


def differences(want: Figures, found: Figures, limit: int = 10) -> list[str]:
    """What differs, one line per (day, channel, state), at most ``limit`` lines."""
    lines = []
    for key in sorted(want.keys() | found.keys()):
        if want.get(key) != found.get(key):
            lines.append(f"{'/'.join(key)}: expected {want.get(key)}, found {found.get(key)}")
    if len(lines) > limit:
        lines = [*lines[:limit], f"... and {len(lines) - limit} more"]
    return lines


def verify(workload: str, want: Figures, found: Figures) -> dict[str, Any]:
    """Raise VersusMismatch unless ``found`` is ``want`` exactly; else a summary."""
    wrong = differences(want, found)
    if wrong:
        raise VersusMismatch(f"{workload}: figures differ from the orders:\n" + "\n".join(wrong))
    return {
        "exact": True,
        "groups": len(found),
        "orders": sum(n for n, _c in found.values()),
        "revenue_cents": sum(c for _n, c in found.values()),
    }


def read_topic(bootstrap: str, topic: str) -> list[Consumed]:
    """Every record of ``topic`` up to its end, partition by partition, in offset order."""
    # Imported here: the figures above are checked without Faust or a broker.
    from streams.common.topic_reader import read_topic as read_records

    return [
        Consumed(r.key or b"", r.value, {k: v.encode() for k, v in r.headers.items()})
        for r in read_records(bootstrap, topic)
    ]
