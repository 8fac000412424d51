"""Long-lived connections: one connection in ``long_lived_windows`` consecutive windows.

The rule and its reasons are in ``detect.py``. Streak entries are namespaced by the
window they were last seen in, ``ll|<window:012d>|<account>|<vpc>|<client>|<client
port>|<server>|<server port>|<protocol>`` -> ``[streak, window]``. A window reads the
namespace of the window before and writes its own; the wiring then drops every
namespace older than the window before with one range delete (``stale_streaks``), never
scanning the state. Keeping the window before means a window applied again reads what
it read the first time and writes the same entries: replays are harmless.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    keys_of,
)

PREFIX = "ll"
ENDPOINTS = ["client", "client_port", "server", "server_port", "protocol"]


def streak_keys(window: pa.Table, window_start: int) -> list[str]:
    """The entries ``long_lived`` reads: the window's connections as of the window before."""
    return _keys(_connections(window), window_start - WINDOW_SECONDS)


def stale_streaks(window_start: int) -> tuple[str, str]:
    """The key range ``[begin, end)`` to delete once ``window_start`` has been applied:
    streaks last seen before the window before it, which therefore did not continue."""
    return f"{PREFIX}|", f"{PREFIX}|{_namespace(window_start - WINDOW_SECONDS)}|"


def long_lived(
    window: pa.Table,
    window_start: int,
    streaks: Mapping[str, object],
    settings: DetectorSettings,
) -> tuple[list[Alert], dict[str, object | None]]:
    """Alerts for connections whose streak reaches the limit in this window, and each
    connection's streak to write under this window (never None: old entries go by range)."""
    connections = _connections(window)
    before = _keys(connections, window_start - WINDOW_SECONDS)
    now = _keys(connections, window_start)
    alerts: list[Alert] = []
    updated: dict[str, object | None] = {}
    for row, (key_before, key_now) in enumerate(zip(before, now, strict=True)):
        streak = _continued(streaks.get(key_before), window_start) + 1
        updated[key_now] = [streak, window_start]
        # Exactly at the limit: one finding per streak, however long it then lasts.
        if streak == settings.long_lived_windows:
            [connection] = connections.slice(row, 1).to_pylist()
            alerts.append(_alert(connection, window_start, streak))
    return alerts, updated


def _continued(previous: object, window_start: int) -> int:
    """The streak ``previous`` carries into this window; 0 unless seen in the one before."""
    if not isinstance(previous, list | tuple) or len(previous) != 2:
        return 0
    streak, last = previous
    if not isinstance(streak, int) or last != window_start - WINDOW_SECONDS:
        return 0
    return max(streak, 0)


def _connections(window: pa.Table) -> pa.Table:
    """The distinct accepted connections of the window, each in its client-to-server sense.

    Both directions of a connection are logged (and both ends' interfaces may log each):
    all these rows are one connection. The client is the side with the higher port (an
    ephemeral one), the lower address text breaking a tie, so either direction names it
    the same way.
    """
    rows = flows(window)
    rows = rows.filter(pc.equal(rows["action"], "ACCEPT"))
    src, dst, sport, dport = (rows[n] for n in ("srcaddr", "dstaddr", "srcport", "dstport"))
    reverse = pc.or_(pc.less(sport, dport), pc.and_(pc.equal(sport, dport), pc.greater(src, dst)))
    canonical = pa.table(
        {
            **{name: rows[name] for name in VPC},
            "client": pc.if_else(reverse, dst, src),
            "client_port": pc.if_else(reverse, dport, sport),
            "server": pc.if_else(reverse, src, dst),
            "server_port": pc.if_else(reverse, sport, dport),
            "protocol": rows["protocol"],
        }
    )
    return canonical.group_by([*VPC, *ENDPOINTS]).aggregate([])


def _namespace(window_start: int) -> str:
    # Zero-padded so that key order is window order and one range holds all older ones.
    return f"{window_start:012d}"


def _keys(connections: pa.Table, window_start: int) -> list[str]:
    return keys_of(
        (PREFIX, _namespace(window_start)), [connections[name] for name in (*VPC, *ENDPOINTS)]
    )


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
