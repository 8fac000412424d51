"""Closed windows of the VPCs of a partition through the four detectors, their state in
the table.

The detectors (detect.py) are pure: they name the state entries they read, get them,
and return the entries to write. Here those entries are read from and written to the
partition's table through the batch's PartitionState, so they reach the changelog and
RocksDB with the rest of the batch, and a replayed window changes nothing twice (each
detector guards its entries by window). A batch's windows are closed together: their
figures found at once (detect_batch.py), their state read and written window by window.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from streams.common.exactly_once import PartitionState
from streams.flowlogs.detect import Alert, DetectorSettings, stale_streaks
from streams.flowlogs.detect_baseline import exfiltration_of
from streams.flowlogs.detect_batch import WindowFigures, window_figures
from streams.flowlogs.detect_countries import countries_in, country_key
from streams.flowlogs.detect_streaks import streaks_of

#: Rows of windows whose figures are found together at most: the stacked copy is memory.
ROWS_AT_ONCE = 1_000_000


@dataclass(frozen=True)
class Closing:
    """One window of one VPC to close: ``vpc_key`` ``<account>|<vpc>``, ``flows`` its rows
    and ``previous`` the window before's (None when it had none), ``since`` the VPC's last
    window closed before this one, empty ones included."""

    vpc_key: str
    window: int
    flows: pa.Table | None
    previous: pa.Table | None
    since: int


def close_window(
    state: PartitionState,
    vpc_key: str,
    flows: pa.Table | None,
    previous: pa.Table | None,
    window: int,
    settings: DetectorSettings,
    *,
    since: int,
) -> list[Alert]:
    """The alerts of ``window`` of the VPC ``vpc_key`` (see ``Closing``)."""
    return close_windows(state, [Closing(vpc_key, window, flows, previous, since)], settings)


def close_windows(
    state: PartitionState, closings: Sequence[Closing], settings: DetectorSettings
) -> list[Alert]:
    """The alerts of each window, in order, as if each were closed alone in turn.

    The detectors' figures are found for many windows at once (detect_batch.py); their
    state is read and written window after window, so a window sees what the windows
    before it wrote, as when they were closed one by one. Pass a window that is also the
    window before the next as the same table object: it is then read once.
    """
    alerts: list[Alert] = []
    for group in _groups(closings):
        with_rows = [(c.flows, c.previous, c.window) for c in group if c.flows is not None]
        figures = iter(window_figures([w for w in with_rows if w[0].num_rows], settings))
        for closing in group:
            if closing.flows is not None and closing.flows.num_rows:
                alerts += _close(state, closing, next(figures), settings)
            else:
                _drop_stale_streaks(state, closing)
    return alerts


def _groups(closings: Sequence[Closing]) -> Iterator[list[Closing]]:
    """Consecutive closings holding ``ROWS_AT_ONCE`` rows at most (one at least)."""
    group: list[Closing] = []
    rows = 0
    for closing in closings:
        size = closing.flows.num_rows if closing.flows is not None else 0
        if group and rows + size > ROWS_AT_ONCE:
            yield group
            group, rows = [], 0
        group.append(closing)
        rows += size
    if group:
        yield group


def _close(
    state: PartitionState, closing: Closing, figures: WindowFigures, settings: DetectorSettings
) -> list[Alert]:
    # The order of the per-window detectors: each reads the state as they did.
    window = closing.window
    alerts = list(figures.scans)
    baselines = _read(state, list(figures.sent))
    found, updates = exfiltration_of(figures.sent, window, baselines, settings)
    alerts += found
    _write(state, updates)
    streaks = _read(state, figures.streaks_read)
    found, changes = streaks_of(
        figures.streaks_read, figures.streaks_written, figures.continued, window, streaks, settings
    )
    alerts += found
    _write(state, changes)
    _drop_stale_streaks(state, closing)
    seen = _read(state, [country_key(*vpc) for vpc in figures.vpcs])
    found, updates = countries_in(figures.vpcs, figures.countries, window, seen, settings)
    alerts += found
    _write(state, updates)
    return alerts


def _read(state: PartitionState, keys: list[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key in keys:
        value = state.get(key)
        if value is not None:
            found[key] = value
    return found


def _write(state: PartitionState, updates: Mapping[str, object | None]) -> None:
    for key, value in updates.items():
        if value is None:
            state.delete(key)
        else:
            state.put(key, value)  # type: ignore[arg-type]


def _drop_stale_streaks(state: PartitionState, closing: Closing) -> None:
    # Every streak entry of the VPC still under an older window did not continue into
    # this one. The range holds nothing else, so the cost is the deletions themselves.
    account, _, vpc = closing.vpc_key.partition("|")
    stale = stale_streaks(closing.window, account, vpc, since=closing.since)
    for key in state.keys_between(*stale):
        state.delete(key)
