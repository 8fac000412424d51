"""Long-lived connections: one connection present in ``long_lived_windows`` consecutive windows.

The rule and its reasons are in ``detect.py``. A connection is present in the window of
each of its records' start; a record longer than a minute (only a log at the 10-minute
aggregation interval has those) also in every window up to its end's, at most two
windows on: at that interval a connection has one record per 10 minutes, so counting
records by their start alone would see it in every other window only.

A window's candidates (``continued_connections``) are its connections also seen in the
window before (the wiring keeps the window before's rows) or with a long record: only
those can continue a streak, so only they are looked up, and only a streak of two
windows or more gets an entry: the state holds the few connections that last, never
the many seen once. Entries are namespaced by their VPC and the last window the streak
reaches, ``ll|<account>|<vpc>|<window:012d>|<client>|<client port>|<server>|<server
port>|<protocol>`` -> ``[streak, window that wrote it]``. A window reads the namespaces
of the window before, its own and the next (a long record of the window before may
reach them) and ignores entries it wrote itself, so a window applied again reads what
it read the first time and writes the same entries: replays are harmless. The wiring
then drops the VPC's namespaces two windows back and older with one range delete
(``stale_streaks``), never scanning the state: a streak that reaches no further cannot
continue. The VPC comes first because VPCs sharing a partition close their windows
each on its own clock: one VPC's window must never drop another's streaks.
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
#: A 1-minute log's records last under a minute: a longer one is from a 10-minute log.
LONG_RECORD_SECONDS = 60
#: A record lasts at most 10 minutes: it reaches two windows past its start's at most.
WINDOWS_AHEAD = 2
#: The namespaces a window reads, as offsets from it: entries of earlier windows that
#: reach the window before (a streak this one continues) or beyond.
READ_OFFSETS = (-1, 0, 1)


def streak_keys(continued: pa.Table, window_start: int) -> list[str]:
    """The entries ``long_lived`` reads: per ``continued`` connection
    (``continued_connections``), its keys under each of ``READ_OFFSETS`` in turn."""
    return reading_keys(continued, [window_start] * continued.num_rows)


def reading_keys(continued: pa.Table, starts: Sequence[int]) -> list[str]:
    """``streak_keys`` with each connection's own window start (a batch's windows)."""
    per_offset = [
        streak_keys_at(continued, [namespace(s + offset * WINDOW_SECONDS) for s in starts])
        for offset in READ_OFFSETS
    ]
    return [key for keys in zip(*per_offset, strict=True) for key in keys]


def writing_keys(continued: pa.Table, starts: Sequence[int]) -> list[str]:
    """Each connection's key under the last window its records of this window reach."""
    return streak_keys_at(continued, [namespace(w) for w in windows_reached(continued, starts)])


def windows_reached(continued: pa.Table, starts: Sequence[int]) -> list[int]:
    """The last window each connection's records of its window (``starts``) count in."""
    reaches = continued["reach"].to_pylist()
    return [_window_reached(reach, start) for reach, start in zip(reaches, starts, strict=True)]


def _window_reached(reach: int, window_start: int) -> int:
    # Clamped: a record cannot count before its window, nor, however long it claims to
    # be, further than a 10-minute record can reach.
    reached = reach - reach % WINDOW_SECONDS
    return min(max(reached, window_start), window_start + WINDOWS_AHEAD * WINDOW_SECONDS)


def stale_streaks(
    window_start: int, account_id: str, vpc_id: str, *, since: int | None = None
) -> tuple[str, str]:
    """The key range ``[begin, end)`` to delete once ``window_start`` of the VPC has been
    applied: the VPC's streaks reaching no further than two windows before it, which
    can neither continue nor be read by this window applied again.

    ``since`` is the VPC's window closed before this one (default: the window before).
    Entries can exist only from the window before it on, so the range starts there
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
    streaks to write (never None: old entries go by range).

    ``continued``: the window's candidates (``continued_connections``); ``streaks``:
    what was found of their ``streak_keys``.
    """
    starts = [window_start] * continued.num_rows
    read, write = reading_keys(continued, starts), writing_keys(continued, starts)
    return streaks_of(read, write, continued, window_start, streaks, settings)


def streaks_of(
    read: Sequence[str],
    write: Sequence[str],
    continued: pa.Table,
    window_start: int,
    streaks: Mapping[str, object],
    settings: DetectorSettings,
) -> tuple[list[Alert], dict[str, object | None]]:
    """``long_lived`` with the keys of ``continued``'s rows already made: ``read``
    (``reading_keys``, one per offset of ``READ_OFFSETS``) and ``write``
    (``writing_keys``)."""
    alerts: list[Alert] = []
    updated: dict[str, object | None] = {}
    seen_before = continued["before"].to_pylist()
    reached = windows_reached(continued, [window_start] * continued.num_rows)
    per_row = len(READ_OFFSETS)
    for row, key_now in enumerate(write):
        keys = read[row * per_row : (row + 1) * per_row]
        run = _run_before(keys, streaks, window_start, seen_before[row])
        streak = _extended(run, window_start, reached[row])
        if streak is None:
            continue
        updated[key_now] = [streak, window_start]
        # Once per streak, in the window that takes it to the limit, however long it lasts.
        if (run[0] if run else 0) < settings.long_lived_windows <= streak:
            [connection] = continued.slice(row, 1).to_pylist()
            alerts.append(_alert(connection, window_start, streak, reached[row]))
    return alerts, updated


def _run_before(
    keys: Sequence[str], streaks: Mapping[str, object], window_start: int, seen_before: bool
) -> tuple[int, int] | None:
    """The streak the connection had before this window and the last window it reached:
    the furthest-reaching entry an earlier window wrote, else one window (the window
    before) if its rows hold the connection, else None."""
    found = None
    for offset, key in zip(READ_OFFSETS, keys, strict=True):
        streak = _streak_of(streaks.get(key), window_start)
        if streak:
            found = (streak, window_start + offset * WINDOW_SECONDS)
    if found is None and seen_before:
        return 1, window_start - WINDOW_SECONDS
    return found


def _streak_of(entry: object, window_start: int) -> int:
    """The streak of an entry written by an earlier window; 0 for none, one this window
    wrote (a replay must read what the first application read) or a corrupt one."""
    if not isinstance(entry, list | tuple) or len(entry) != 2:
        return 0
    streak, written = entry
    if not all(type(n) is int for n in (streak, written)):  # bool is no count
        return 0
    return int(streak) if int(streak) > 0 and int(written) < window_start else 0


def _extended(run: tuple[int, int] | None, window_start: int, reached: int) -> int | None:
    """The streak up to ``reached`` (this window's records' last window), or None when
    there is nothing to write: a single window, or no window the run had not reached."""
    if run is None:
        streak = (reached - window_start) // WINDOW_SECONDS + 1
        return streak if streak >= 2 else None
    streak, last = run
    if reached <= last:
        return None
    return streak + (reached - last) // WINDOW_SECONDS


def continued_connections(window: pa.Table, previous: pa.Table | None) -> pa.Table:
    """The window's candidates: its connections also seen in ``previous`` (the window
    before's rows, None if it had none) or with a long record (``LONG_RECORD_SECONDS``),
    with ``before`` (seen in ``previous``) and ``reach``."""
    connections = _connections(window)
    keys = [*VPC, *ENDPOINTS]
    if previous is None or previous.num_rows == 0:
        before = connections.select(keys).slice(0, 0)
    else:
        before = _connections(previous).select(keys)
    return candidates(connections, before, keys)


def candidates(now: pa.Table, before: pa.Table, keys: list[str]) -> pa.Table:
    """The connections of ``now`` (``connections_of``) in ``before`` (same ``keys``) or
    with a long record, marked ``before``, sorted by ``keys``."""
    marks = pa.array([True] * before.num_rows, pa.bool_())
    marked = now.join(
        before.append_column("before", marks), keys=keys, join_type="left outer", use_threads=False
    )
    seen_before = pc.fill_null(marked["before"], False)
    marked = marked.set_column(marked.schema.get_field_index("before"), "before", seen_before)
    kept = marked.filter(pc.or_(seen_before, marked["long"]))
    return kept.sort_by([(name, "ascending") for name in keys])


@per_table
def _connections(window: pa.Table) -> pa.Table:
    return connections_of(flows(window))


def connections_of(rows: pa.Table, apart: Sequence[str] = ()) -> pa.Table:
    """The distinct accepted connections of normalised flows, each in its client-to-server
    sense, kept apart by the columns ``apart`` (a batch's windows), with ``long`` (a
    record longer than ``LONG_RECORD_SECONDS``) and ``reach`` (the latest instant they
    count at: a long record's end, a short one's start).

    Both directions of a connection are logged (and both ends' interfaces may log each):
    all these rows are one connection. The client is the side with the higher port (an
    ephemeral one), the lower address text breaking a tie, so either direction names it
    the same way.
    """
    read = [*apart, *VPC, "srcaddr", "dstaddr", "srcport", "dstport", "protocol", "start", "end"]
    rows = rows.select(read).filter(pc.equal(rows["action"], "ACCEPT"))
    src, dst, sport, dport = (rows[n] for n in ("srcaddr", "dstaddr", "srcport", "dstport"))
    reverse = pc.or_(pc.less(sport, dport), pc.and_(pc.equal(sport, dport), pc.greater(src, dst)))
    long = pc.greater(pc.subtract(rows["end"], rows["start"]), LONG_RECORD_SECONDS)
    canonical = pa.table(
        {
            **{name: rows[name] for name in (*apart, *VPC)},
            "client": pc.if_else(reverse, dst, src),
            "client_port": pc.if_else(reverse, dport, sport),
            "server": pc.if_else(reverse, src, dst),
            "server_port": pc.if_else(reverse, sport, dport),
            "protocol": rows["protocol"],
            "long": long,
            "reach": pc.if_else(long, rows["end"], rows["start"]),
        }
    )
    return (
        canonical.group_by([*apart, *VPC, *ENDPOINTS], use_threads=False)
        .aggregate([("long", "any"), ("reach", "max")])
        .rename_columns({"long_any": "long", "reach_max": "reach"})
    )


def namespace(window_start: int) -> str:
    """The part of a streak key naming the last window the streak reaches."""
    # Zero-padded so that key order is window order and one range holds all older ones.
    return f"{window_start:012d}"


def streak_keys_at(connections: pa.Table, namespaces: pa.Array | list[str]) -> list[str]:
    """The streak key of each connection under its own namespace (``namespace``)."""
    window = namespaces if isinstance(namespaces, pa.Array) else pa.array(namespaces, pa.string())
    columns = [connections[VPC[0]], connections[VPC[1]], window]
    return keys_of((PREFIX,), [*columns, *(connections[name] for name in ENDPOINTS)])


def _alert(row: dict[str, Any], window_start: int, streak: int, reached: int) -> Alert:
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
            "since": iso_time(reached - (streak - 1) * WINDOW_SECONDS),
            "srcaddr": client,
            "srcport": client_port,
            "dstaddr": server,
            "dstport": server_port,
            "protocol": protocol,
        },
    )
