"""Long-lived connections: one connection in ``long_lived_windows`` consecutive windows.

The rule and its reasons are in ``detect.py``. A connection seen in a window and in the
one before it (``continued_connections``: the wiring keeps the window before's rows) has
a streak of two or more; only those connections get an entry, so the state holds the
few connections that last, never the many seen once. Entries are namespaced by their
VPC and the window they were last seen in, ``ll|<account>|<vpc>|<window:012d>|<client>|
<client port>|<server>|<server port>|<protocol>`` -> ``[streak, window]``. A window reads
the namespace of the window before and writes its own; the wiring then drops the VPC's
namespace two windows back with one range delete (``stale_streaks``), never scanning
the state. The VPC comes first because VPCs sharing a partition close their windows
each on its own clock: one VPC's window must never drop another's streaks. Keeping the
window before means a window applied again reads what it read the first time and
writes the same entries: replays are harmless.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from streams.flowlogs.detect_base import (
    VPC,
    WINDOW_SECONDS,
    Alert,
    DetectorSettings,
    flows,
    host_port,
    iso_time,
    key_of,
    keys_of,
    per_table,
)

PREFIX = "ll"
ENDPOINTS = ["client", "client_port", "server", "server_port", "protocol"]


def streak_keys(continued: pa.Table, window_start: int) -> list[str]:
    """The entries ``long_lived`` reads: the streaks, as of the window before, of the
    ``continued`` connections (``continued_connections``)."""
    return _keys(continued, window_start - WINDOW_SECONDS)


def stale_streaks(
    window_start: int, account_id: str, vpc_id: str, *, since: int | None = None
) -> tuple[str, str]:
    """The key range ``[begin, end)`` to delete once ``window_start`` of the VPC has been
    applied: the VPC's streaks last seen before the window before it, which did not
    continue.

    ``since`` is the VPC's window closed before this one (default: the window before).
    Entries can exist only under it and the one before it, so the range starts there
    rather than at the VPC's first key: RocksDB walks over the tombstones of deleted
    keys, and a range from the start would walk every streak ever deleted.
    """
    vpc = key_of((PREFIX, account_id or "-", vpc_id or "-"))
    previous = window_start - WINDOW_SECONDS
    first = min(previous if since is None else since, previous) - WINDOW_SECONDS
    return f"{vpc}|{namespace(first)}|", f"{vpc}|{namespace(previous)}|"


def long_lived(
    continued: pa.Table,
    window_start: int,
    streaks: Mapping[str, object],
    settings: DetectorSettings,
) -> tuple[list[Alert], dict[str, object | None]]:
    """Alerts for connections whose streak reaches the limit in this window, and the
    streaks to write under this window (never None: old entries go by range).

    ``continued``: the window's connections also seen in the window before
    (``continued_connections``); each has a streak of at least two. Only those get an
    entry, so the state holds the few connections that last, never the many that do not.
    """
    before = _keys(continued, window_start - WINDOW_SECONDS)
    now = _keys(continued, window_start)
    return streaks_of(before, now, continued, window_start, streaks, settings)


def streaks_of(
    before: Sequence[str],
    now: Sequence[str],
    continued: pa.Table,
    window_start: int,
    streaks: Mapping[str, object],
    settings: DetectorSettings,
) -> tuple[list[Alert], dict[str, object | None]]:
    """``long_lived`` with the keys of ``continued``'s rows, as of the window before
    (``before``) and of this one (``now``), already made."""
    alerts: list[Alert] = []
    updated: dict[str, object | None] = {}
    for row, (key_before, key_now) in enumerate(zip(before, now, strict=True)):
        streak = _carried(streaks.get(key_before), window_start) + 1
        updated[key_now] = [streak, window_start]
        # Exactly at the limit: one finding per streak, however long it then lasts.
        if streak == settings.long_lived_windows:
            [connection] = continued.slice(row, 1).to_pylist()
            alerts.append(_alert(connection, window_start, streak))
    return alerts, updated


def _carried(previous: object, window_start: int) -> int:
    """The streak a connection seen in the window before carries: 1 unless its entry
    says it had been seen in the window before that too."""
    if not isinstance(previous, list | tuple) or len(previous) != 2:
        return 1
    streak, last = previous
    if not isinstance(streak, int) or last != window_start - WINDOW_SECONDS:
        return 1
    return max(streak, 1)


def continued_connections(window: pa.Table, previous: pa.Table | None) -> pa.Table:
    """The connections of ``window`` also seen in ``previous`` (the window before's rows,
    None if it had none)."""
    connections = _connections(window)
    if previous is None or previous.num_rows == 0 or connections.num_rows == 0:
        return connections.slice(0, 0)
    before = _connections(previous)
    return connections.join(
        before, keys=[*VPC, *ENDPOINTS], join_type="left semi", use_threads=False
    )


@per_table
def _connections(window: pa.Table) -> pa.Table:
    return connections_of(flows(window))


def connections_of(rows: pa.Table, apart: Sequence[str] = ()) -> pa.Table:
    """The distinct accepted connections of normalised flows, each in its client-to-server
    sense, kept apart by the columns ``apart`` (a batch's windows).

    Both directions of a connection are logged (and both ends' interfaces may log each):
    all these rows are one connection. The client is the side with the higher port (an
    ephemeral one), the lower address text breaking a tie, so either direction names it
    the same way.
    """
    read = [*apart, *VPC, "srcaddr", "dstaddr", "srcport", "dstport", "protocol"]
    rows = rows.select(read).filter(pc.equal(rows["action"], "ACCEPT"))
    src, dst, sport, dport = (rows[n] for n in ("srcaddr", "dstaddr", "srcport", "dstport"))
    reverse = pc.or_(pc.less(sport, dport), pc.and_(pc.equal(sport, dport), pc.greater(src, dst)))
    canonical = pa.table(
        {
            **{name: rows[name] for name in (*apart, *VPC)},
            "client": pc.if_else(reverse, dst, src),
            "client_port": pc.if_else(reverse, dport, sport),
            "server": pc.if_else(reverse, src, dst),
            "server_port": pc.if_else(reverse, sport, dport),
            "protocol": rows["protocol"],
        }
    )
    return canonical.group_by([*apart, *VPC, *ENDPOINTS], use_threads=False).aggregate([])


def namespace(window_start: int) -> str:
    """The part of a streak key naming the window it was last seen in."""
    # Zero-padded so that key order is window order and one range holds all older ones.
    return f"{window_start:012d}"


def _keys(connections: pa.Table, window_start: int) -> list[str]:
    return streak_keys_at(connections, [namespace(window_start)] * connections.num_rows)


def streak_keys_at(connections: pa.Table, namespaces: pa.Array | list[str]) -> list[str]:
    """The streak key of each connection under its own window's namespace (``namespace``)."""
    window = namespaces if isinstance(namespaces, pa.Array) else pa.array(namespaces, pa.string())
    columns = [connections[VPC[0]], connections[VPC[1]], window]
    return keys_of((PREFIX,), [*columns, *(connections[name] for name in ENDPOINTS)])


def _alert(row: dict[str, Any], window_start: int, streak: int) -> Alert:
    client, server = str(row["client"]), str(row["server"])
    client_port, server_port = int(row["client_port"]), int(row["server_port"])
    protocol = row["protocol"]
    return Alert(
        kind="long_lived",
        account_id=str(row["account_id"]),
        vpc_id=str(row["vpc_id"]),
        subject=f"{host_port(client, client_port)}>{host_port(server, server_port)}/{protocol}",
        window_start=window_start,
        detail={
            "streak_windows": streak,
            "since": iso_time(window_start - (streak - 1) * WINDOW_SECONDS),
            "srcaddr": client,
            "srcport": client_port,
            "dstaddr": server,
            "dstport": server_port,
            "protocol": protocol,
        },
    )
