"""What the four flow-log detectors share: settings, the alert, clean flow rows, addresses, keys.

The rules themselves, and why they read the rows the way they do, are described in
``streams/flowlogs/detect.py``.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Literal, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

#: The wiring's tumbling event-time window; streaks and learning periods count these.
WINDOW_SECONDS = 300

TEXT_COLUMNS = ("account_id", "vpc_id", "interface_id", "srcaddr", "dstaddr", "action")
NUMBER_COLUMNS = ("srcport", "dstport", "protocol", "bytes", "start", "end")
#: One connection as logged by one interface, and the same without the interface.
FIVE_TUPLE = ["srcaddr", "dstaddr", "srcport", "dstport", "protocol"]
VPC = ["account_id", "vpc_id"]

AddressKind = Literal["internal", "public", "other"]

# Private address space as a VPC uses it: RFC 1918, the shared 100.64/10 (AWS allows it
# as a VPC CIDR and it is what a carrier-grade NAT hands out), and IPv6 unique local.
INTERNAL_NETWORKS = tuple(
    ipaddress.ip_network(cidr)
    for cidr in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)


@dataclass(frozen=True)
class DetectorSettings:
    """Every threshold of the four detectors, with its default (see ``detect.py``).

    scan_port_score, scan_host_score: weighted distinct ports / hosts of one source in one
        window that make a port scan (reached, not exceeded).
    scan_failed_weight: weight of a port or host that no connection of the window reached.
    scan_host_success_weight: weight of a host that a connection reached (a port that one
        reached weighs 1): a busy client or proxy talks to many hosts, successfully; a
        sweep of hosts is mostly refused or unanswered.
    exfil_min_bytes: bytes to public addresses in one window below which nothing alerts.
    exfil_min_history: windows with traffic the source's baseline needs before it scores.
    exfil_alpha: weight of the newest window in the baseline's EWMA.
    exfil_z: deviations above the baseline mean that make exfiltration (strictly beyond).
    exfil_spread_floor_bytes, exfil_spread_floor_share: the least spread assumed, absolute
        and as a share of the mean, so a perfectly steady source is not scored infinitely.
    exfil_forget_after_windows: a baseline not updated for this many windows starts over.
    long_lived_windows: consecutive windows of one connection that make it long-lived.
    country_learning_windows: windows from a VPC's first that learn its countries silently.
    """

    scan_port_score: float = 100.0
    scan_host_score: float = 50.0
    scan_failed_weight: float = 2.0
    scan_host_success_weight: float = 0.25
    exfil_min_bytes: float = 1_000_000.0
    exfil_min_history: int = 12
    exfil_alpha: float = 0.1
    exfil_z: float = 4.0
    exfil_spread_floor_bytes: float = 1_000_000.0
    exfil_spread_floor_share: float = 0.1
    exfil_forget_after_windows: int = 2016
    long_lived_windows: int = 12
    country_learning_windows: int = 12

    def __post_init__(self) -> None:
        if not 0 < self.exfil_alpha <= 1:
            raise ValueError("exfil_alpha must be in (0, 1]")
        if self.exfil_forget_after_windows < 1:
            raise ValueError("exfil_forget_after_windows must be at least 1")
        if self.long_lived_windows < 2:
            raise ValueError("long_lived_windows must be at least 2: one window is no streak")


@dataclass(frozen=True)
class Alert:
    """One finding: ``subject`` is a source address, a connection or a country code."""

    kind: str
    account_id: str
    vpc_id: str
    subject: str
    window_start: int
    detail: dict[str, object] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """The same finding always gets the same id, so a replayed window dedupes downstream."""
        parts = (self.kind, self.account_id, self.vpc_id, self.subject, str(self.window_start))
        return hashlib.sha256(key_of(parts).encode()).hexdigest()[:20]

    def to_json(self) -> dict[str, object]:
        """Flat and typed for a JSON topic; the identifying fields win over any detail."""
        return {
            **{name: _plain(value) for name, value in self.detail.items()},
            "id": self.id,
            "kind": self.kind,
            "subject": self.subject,
            "window_start": iso_time(self.window_start),
            "window_end": iso_time(self.window_start + WINDOW_SECONDS),
            "account_id": self.account_id,
            "vpc_id": self.vpc_id,
        }


def _plain(value: object) -> object:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return value
    return str(value)


_NORMALISED = b"flowlogs.detect.flows"
R = TypeVar("R")


def per_table(compute: Callable[[pa.Table], R]) -> Callable[[pa.Table], R]:
    """``compute``, remembered for the last eight tables it was given (by identity, the
    tables held so their ids stay theirs): a window's figures are asked for by two
    detector calls, and again when it is the window before the next one."""
    cache: OrderedDict[int, tuple[pa.Table, R]] = OrderedDict()

    @functools.wraps(compute)
    def remembered(table: pa.Table) -> R:
        hit = cache.get(id(table))
        if hit is not None and hit[0] is table:
            cache.move_to_end(id(table))
            return hit[1]
        result = compute(table)
        cache[id(table)] = (table, result)
        while len(cache) > 8:  # each holds a window: memory, not only time
            cache.popitem(last=False)
        return result

    return remembered


def iso_time(epoch_seconds: int) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat().replace("+00:00", "Z")


def flows(window: pa.Table, carry: tuple[str, ...] = ()) -> pa.Table:
    """The window's flows (``log_status`` OK, both addresses known) with uniform columns.

    Text columns are strings with null as "-" (version-2 logs have no ``vpc_id``);
    ports, protocol, bytes, start and end are int64 with null and NaN as 0 (-1 for
    protocol);
    ``tcp_flags`` stays nullable, because "unknown" differs from "no flags".
    ``carry``: columns of ``window`` kept as they are (the batch's table numbers).
    """
    if (window.schema.metadata or {}).get(_NORMALISED) == b"1":
        return window  # already done once for this window: every detector reads it
    rows = window.num_rows
    columns = {name: window[name] for name in carry}
    columns.update({name: _text(window, name, rows) for name in TEXT_COLUMNS})
    for name in NUMBER_COLUMNS:
        columns[name] = pc.fill_null(_integer(window, name, rows), -1 if name == "protocol" else 0)
    columns["bytes"] = pc.max_element_wise(columns["bytes"], 0)
    columns["tcp_flags"] = _integer(window, "tcp_flags", rows)
    table = pa.table(columns)
    status = _text(window, "log_status", rows) if "log_status" in window.column_names else None
    keep = pc.and_(_known(table["srcaddr"]), _known(table["dstaddr"]))
    if status is not None:
        keep = pc.and_(keep, pc.equal(status, "OK"))
    return table.filter(keep).replace_schema_metadata({_NORMALISED: b"1"})


def _known(addresses: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.invert(pc.is_in(addresses, value_set=pa.array(["-", ""])))


def _text(window: pa.Table, name: str, rows: int) -> pa.ChunkedArray:
    if name not in window.column_names:
        return pa.chunked_array([pa.nulls(rows, pa.string())]).fill_null("-")
    column = window[name]
    if column.type != pa.string():
        column = pc.cast(column, pa.string())
    return pc.fill_null(column, "-")


def _integer(window: pa.Table, name: str, rows: int) -> pa.ChunkedArray:
    if name not in window.column_names:
        return pa.chunked_array([pa.nulls(rows, pa.int64())])
    column = window[name]
    if pa.types.is_floating(column.type):
        # NaN has no integer; a corrupt figure counts as missing, not as a crash.
        column = pc.if_else(pc.is_finite(column), column, pa.scalar(None, column.type))
    try:
        return pc.cast(column, pa.int64(), safe=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.chunked_array([pa.nulls(rows, pa.int64())])


@lru_cache(maxsize=1 << 16)
def address_kind(text: str) -> AddressKind:
    """The address's space: "internal" (above), "public" (global unicast) or "other"."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return "other"
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in network for network in INTERNAL_NETWORKS):
        return "internal"
    if address.is_global and not address.is_multicast:
        return "public"
    return "other"


def addresses_of_kind(columns: list[pa.ChunkedArray], kind: AddressKind) -> pa.Array:
    """The distinct addresses of ``kind`` among these columns, for ``pc.is_in``."""
    chunks = [chunk for column in columns for chunk in column.chunks]
    distinct = pc.unique(pa.chunked_array(chunks, pa.string()))
    return pa.array([a for a in distinct.to_pylist() if address_kind(a) == kind], pa.string())


def quote(part: str) -> str:
    """A key part that cannot contain the separator or a line break, and stays injective."""
    return part.replace("%", "%25").replace("|", "%7C").replace("\n", "%0A").replace("\r", "%0D")


def key_of(parts: tuple[str, ...] | list[str]) -> str:
    return "|".join(quote(part) for part in parts)


def keys_of(prefix: tuple[str, ...], columns: list[pa.ChunkedArray]) -> list[str]:
    """``key_of((*prefix, *row))`` for every row at once; numbers are written in decimal."""
    quoted = [_quoted(pc.cast(column, pa.string())) for column in columns]
    if not quoted or len(quoted[0]) == 0:
        return []
    joined = pc.binary_join_element_wise(key_of(prefix), *quoted, "|")
    return [str(key) for key in joined.to_pylist()]


def _quoted(column: pa.ChunkedArray) -> pa.ChunkedArray:
    for raw, escaped in (("%", "%25"), ("|", "%7C"), ("\n", "%0A"), ("\r", "%0D")):
        column = pc.replace_substring(column, raw, escaped)
    return column


def host_port(address: str, port: int) -> str:
    """``addr:port``, with an IPv6 address bracketed so the port stays readable."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
