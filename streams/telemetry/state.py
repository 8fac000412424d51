"""Window state of one partition of ``telemetry.readings``: exact under redelivery.

Keys of the ``device-windows`` table (all JSON, all in the partition of their device):

- ``m|<device>``  the device's meta: ``_o`` (offset of the last record applied), ``max``
  (newest event time seen), ``closed`` (end of the newest closed window), ``sealed``
  (end of the newest window being closed on wall clock), ``open`` (start -> [end,
  chunks written]) and ``silent`` (the event time a silence was reported at);
- ``c|<device>|<start>|<n>``  chunk ``n`` of an open window: the groups of readings
  one batch added, ``[{"readings": [[interface, metric, value, ts, seq], ...]}, ...]``,
  usually the records' values exactly as received (never encoded again);
- ``h|<device>``  per series: the detector's history;
- ``w|<device>|<start>``  the last few closed windows as emitted (for the device view);
  their starts are listed in the meta's ``recent``;
- ``p|floor``  the highest ``_o`` of any device forgotten after it expired (one key per
  partition; absent until a device expires).

A batch appends one chunk per window it touched instead of rewriting the window, so a
window costs its readings once in the changelog, whatever its size. Chunks are written
before the meta that counts them, acknowledged before it is sent (a barrier), so a
meta in the changelog proves its chunks are there too; a chunk written without its
meta is overwritten by the replay, under the same number. Records at or below ``_o``
are skipped: redelivery after a crash changes nothing.

Closing a window reads its chunks, emits one record with the figures of each of its
series (interface and metric; and an alert per series that broke a rule), and only then
advances ``closed`` and deletes the chunks: a crash in between emits the same window
again with the same id and the same figures, never different ones.

A device quiet for long enough, with nothing left to emit, is forgotten (``expire``):
its keys get tombstones, so the changelog forgets it too, and it starts afresh if it
sends again. Its ``_o`` goes with its meta; the partition's floor keeps what it proved.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Protocol

import orjson

from streams.telemetry.columns import SeriesFigures
from streams.telemetry.config import TelemetryConfig
from streams.telemetry.history import SeriesHistory, flagged
from streams.telemetry.models import ReadingRow
from streams.telemetry.results import series_alert, silent_alert, window_record
from streams.telemetry.windows import series_values, window_for

Meta = dict[str, Any]
Record = dict[str, Any]


class Store(Protocol):
    """Where a partition's state lives: a dict in tests, a RocksDB table partition live."""

    def get(self, key: str, /) -> Any: ...

    def __setitem__(self, key: str, value: Any, /) -> None: ...

    def __delitem__(self, key: str, /) -> None: ...


def barrier(store: Store) -> None:
    """Have what ``store`` holds pending acknowledged before what follows is sent, where
    the store has phases (streams/common/table_io.py); a dict in tests has none."""
    separate = getattr(store, "barrier", None)
    if separate is not None:
        separate()


def delete_last(store: Store, key: str) -> None:
    """Delete ``key`` once all else pending is acknowledged, where the store has phases
    (streams/common/table_io.py); at once in a dict in tests."""
    later = getattr(store, "delete_last", None)
    if later is not None:
        later(key)
    else:
        del store[key]


def meta_key(device: str) -> str:
    return f"m|{device}"


def history_key(device: str) -> str:
    return f"h|{device}"


def recent_key(device: str, start: int) -> str:
    return f"w|{device}|{start}"


def chunk_key(device: str, start: int, n: int) -> str:
    return f"c|{device}|{start}|{n}"


#: The partition's own key, outside every device's prefixes (``m|`` ``h|`` ``w|`` ``c|``).
FLOOR_KEY = "p|floor"


def new_meta() -> Meta:
    return {"_o": -1, "max": None, "closed": 0, "open": {}}


def open_windows(meta: Meta) -> dict[int, int]:
    return {int(start): end for start, (end, _n) in meta["open"].items()}


def sealed_until(meta: Meta, grace: int) -> int:
    """The end of the newest window no reading may join any more.

    That is a closed window, a sealed one, or one due at the device's event time before
    this record: the batch that saw that time closes it, whatever the batch boundaries,
    so a record after it is late in a first run and in a replay alike.
    """
    cutoff = max(meta["closed"], meta.get("sealed", 0))
    newest = meta["max"]
    if newest is not None:
        for end, _n in meta["open"].values():
            if end + grace <= newest and end > cutoff:
                cutoff = end
    return int(cutoff)


def expiry_due(meta: Meta, clock: float, expiry_ms: int, config: TelemetryConfig) -> bool:
    """Whether a device may be forgotten: quiet for ``expiry_ms`` on its own clock (as
    for ``silence``), and nothing of it left to emit: no open window, and its ``silent``
    alert raised when one is due (forgetting it first would lose the alert)."""
    last = meta["max"]
    if last is None or meta["open"]:
        return False
    quiet = clock - last
    if quiet < expiry_ms:
        return False
    return quiet < config.silent_after_seconds * 1000 or bool(meta.get("silent") == last)


@dataclass
class Applied:
    """What one record did: readings windowed, late ones (for the dead letters)."""

    replayed: bool = False
    readings: int = 0
    late: list[ReadingRow] = field(default_factory=list)


@dataclass
class Closed:
    """What closing some windows produced, ready to send."""

    aggregates: list[Record] = field(default_factory=list)
    alerts: list[Record] = field(default_factory=list)
    duplicates: int = 0
    windows: list[tuple[str, int, str]] = field(default_factory=list)  # device, end, trigger
    #: Windows that raised as they were computed (an input no rule foresaw): each is
    #: closed all the same and its readings go to the dead-letter topic, so one window
    #: never holds its device's, and the worker's, closing for ever.
    failed: list[Record] = field(default_factory=list)


class PartitionWindows:
    """The devices of one partition: metas held in memory, everything written through."""

    def __init__(self, store: Store, metas: dict[str, Meta], *, recent: int = 10) -> None:
        self.store = store
        self.metas = metas
        self.recent = recent
        floor = store.get(FLOOR_KEY)
        self.floor: int = -1 if floor is None else int(floor)
        # Per (device, window): the groups of readings this batch added (a chunk).
        self._groups: dict[tuple[str, int], list[Any]] = defaultdict(list)
        self._touched: dict[str, None] = {}

    def apply(
        self,
        device: str,
        offset: int,
        rows: Iterable[ReadingRow],
        config: TelemetryConfig,
        raw: bytes | None = None,
    ) -> Applied:
        """Put one record's readings into their windows, unless it was applied already.

        ``raw`` is the record's value as received (a valid ReadingGroup): when the whole
        record falls in one window it is kept as it is, with no encoding again.
        """
        meta = self.metas.get(device)
        if meta is None:
            if offset <= self.floor:
                # A partition is applied in offset order and the floor is an offset an
                # expired device had applied: this record was applied before, and its
                # device forgotten since (``expire``). It is not a new device.
                return Applied(replayed=True)
            meta = self.metas[device] = new_meta()
        if meta["_o"] >= offset:
            return Applied(replayed=True)
        applied = Applied()
        closed = sealed_until(meta, config.grace_ms)
        windows = {start: end for start, end in open_windows(meta).items() if end > closed}
        rows = rows if isinstance(rows, list) else list(rows)
        stamps = [row[3] for row in rows]
        first, last = min(stamps), max(stamps)
        window = window_for(first, config.window_ms, windows, closed)
        if window is not None and last < window[1]:
            # One window holds the whole record (a device's poll, the usual case).
            group = orjson.Fragment(raw) if raw is not None else {"readings": rows}
            self._chunk(device, meta, window).append(group)
            applied.readings = len(rows)
        else:
            last = self._apply_one_by_one(device, meta, rows, windows, closed, config, applied)
        if applied.readings and (meta["max"] is None or last > meta["max"]):
            meta["max"] = last
        meta["_o"] = offset
        self._touched[device] = None
        return applied

    def _apply_one_by_one(
        self,
        device: str,
        meta: Meta,
        rows: list[ReadingRow],
        windows: dict[int, int],
        closed: int,
        config: TelemetryConfig,
        applied: Applied,
    ) -> int:
        """Readings spread over several windows, or late: returns the newest time kept."""
        newest = -1
        lo = hi = 0
        by_window: dict[tuple[int, int], list[ReadingRow]] = {}
        bucket: list[ReadingRow] = []
        for row in rows:
            ts = row[3]
            if not lo <= ts < hi:
                window = window_for(ts, config.window_ms, windows, closed)
                if window is None:
                    applied.late.append(row)
                    continue
                lo, hi = window
                windows[lo] = hi
                bucket = by_window.setdefault(window, [])
            bucket.append(row)
            applied.readings += 1
            newest = max(newest, ts)
        for window, kept in by_window.items():
            self._chunk(device, meta, window).append({"readings": kept})
        return newest

    def _chunk(self, device: str, meta: Meta, window: tuple[int, int]) -> list[Any]:
        start, end = window
        meta["open"].setdefault(str(start), [end, 0])
        return self._groups[(device, start)]

    def flush_applied(self) -> None:
        """Write this batch's chunks, then the metas that count them (in that order)."""
        for (device, start), groups in self._groups.items():
            entry = self.metas[device]["open"][str(start)]
            self.store[chunk_key(device, start, entry[1])] = groups
            entry[1] += 1
        barrier(self.store)  # a meta in the changelog proves its chunks are there
        for device in self._touched:
            self.store[meta_key(device)] = self.metas[device]
        self._groups.clear()
        self._touched.clear()

    def seal(self, device: str, clock: float, config: TelemetryConfig) -> bool:
        """Refuse new readings to the windows due at ``clock``, before they are emitted.

        Windows due on the device's own event time are sealed by ``max`` already; a
        quiet device's windows close on a wall clock no replay would see again, so that
        decision is written down before anything is emitted.
        """
        meta = self.metas.get(device)
        if meta is None:
            return False
        ends = [end for end, _n in meta["open"].values() if end + config.grace_ms <= clock]
        if not ends or max(ends) <= meta.get("sealed", 0):
            return False
        meta["sealed"] = max(ends)
        self.store[meta_key(device)] = meta
        return True

    def close(
        self, device: str, clock: float, config: TelemetryConfig, trigger: str, into: Closed
    ) -> None:
        """Close every window of ``device`` whose end plus grace is at or before ``clock``."""
        meta = self.metas.get(device)
        if meta is None:
            return
        ready = sorted(
            (int(start), end, n)
            for start, (end, n) in meta["open"].items()
            if end + config.grace_ms <= clock
        )
        if not ready:
            return
        history = SeriesHistory.load(self.store.get(history_key(device)))
        recent = meta.setdefault("recent", [])
        spent: list[str] = []
        for start, end, chunks in ready:
            keys = [chunk_key(device, start, n) for n in range(chunks)]
            stored = [self.store.get(key) or [] for key in keys]
            try:
                values = series_values(stored)
                window = window_record(device, start, end, trigger, config, values.duplicates)
                figures = SeriesFigures.of(values)
                window["series"] = figures.as_series()
                positions = history.positions(figures.names())
                alerts = [
                    series_alert(
                        window, figures.interfaces[i], figures.metrics[i], figures.at(i),
                        history.past(int(positions[i])), config,
                    )
                    for i in flagged(figures, history, positions, config)
                ]  # fmt: skip
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                into.failed.append(
                    {"device": device, "start": start, "error": error, "chunks": stored}
                )
            else:
                into.duplicates += values.duplicates
                into.alerts.extend(alert for alert in alerts if alert is not None)
                history.update(positions, figures.mean, config.detector)
                into.aggregates.append(window)
                # The closed window itself is kept for the device's view, written once.
                self.store[recent_key(device, start)] = window
                recent.append(start)
                while len(recent) > self.recent:
                    del self.store[recent_key(device, recent.pop(0))]
            spent.extend(keys)
            del meta["open"][str(start)]
            meta["closed"] = max(meta["closed"], end)
            into.windows.append((device, end, trigger))
        self.store[history_key(device)] = history.dump()
        self.store[meta_key(device)] = meta
        # Chunks go once the meta that no longer counts them is acknowledged: a restore
        # never finds an open window whose chunks are gone.
        for key in spent:
            delete_last(self.store, key)

    def silence(self, device: str, clock: float, config: TelemetryConfig, into: Closed) -> None:
        """Report a device that has sent nothing for ``silent_after_seconds``, once."""
        meta = self.metas.get(device)
        if meta is None or meta["max"] is None or meta.get("silent") == meta["max"]:
            return
        if clock - meta["max"] < config.silent_after_seconds * 1000:
            return
        last = meta["max"]
        into.alerts.append(silent_alert(device, last, clock, config))
        meta["silent"] = last
        self.store[meta_key(device)] = meta

    def expire_quiet(
        self, clocks: Mapping[str, float], expiry_ms: int, config: TelemetryConfig, limit: int
    ) -> list[str]:
        """Forget at most ``limit`` devices due to expire at their clocks; those forgotten."""
        due = (
            device
            for device, clock in clocks.items()
            if (meta := self.metas.get(device)) is not None
            and expiry_due(meta, clock, expiry_ms, config)
        )
        return self.expire(list(islice(due, limit)))

    def expire(self, devices: Iterable[str]) -> list[str]:
        """Forget ``devices``: tombstones for their meta, history and recent windows (an
        expired device has no open window, so no chunk), after the floor that keeps their
        records from counting again; those forgotten.

        A device's ``_o`` skips its records if they are delivered again. They no longer
        can be in the ordinary course: a device expires days after its last record, from
        a partition read to its end, long since committed past it. Only a rewind could
        bring them back (offsets reset by hand; with a short expiry, a crash before the
        offset commit), and without ``_o`` they would open windows again. Every record
        of the partition up to the highest ``_o`` forgotten was applied already, so the
        floor skips any of them for a device with no meta, at the cost of one key per
        partition. It is acknowledged before the tombstones are sent (``barrier``): a
        restore never has a device forgotten without its floor.
        """
        gone = [device for device in dict.fromkeys(devices) if device in self.metas]
        if not gone:
            return []
        floor = max(int(self.metas[device]["_o"]) for device in gone)
        if floor > self.floor:
            self.floor = floor
            self.store[FLOOR_KEY] = floor
            barrier(self.store)
        for device in gone:
            meta = self.metas.pop(device)
            for start in meta.get("recent", []):
                del self.store[recent_key(device, start)]
            del self.store[history_key(device)]
            del self.store[meta_key(device)]
        return gone
