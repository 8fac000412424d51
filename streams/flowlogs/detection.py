"""One closed window of one VPC through the four detectors, their state in the table.

The detectors (detect.py) are pure: they name the state entries they read, get them,
and return the entries to write. Here those entries are read from and written to the
partition's table through the batch's PartitionState, so they reach the changelog and
RocksDB with the rest of the batch, and a replayed window changes nothing twice (each
detector guards its entries by window).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from streams.common.exactly_once import PartitionState
from streams.flowlogs.detect import (
    Alert,
    DetectorSettings,
    baseline_keys,
    country_keys,
    exfiltration,
    long_lived,
    new_countries,
    port_scans,
    stale_streaks,
    streak_keys,
)


def close_window(
    state: PartitionState,
    flows: pa.Table | None,
    window: int,
    settings: DetectorSettings,
) -> list[Alert]:
    """The alerts of ``window`` (``flows``: its rows of one VPC; None when it had none)."""
    if flows is None or flows.num_rows == 0:
        _drop_stale_streaks(state, window)
        return []
    alerts = port_scans(flows, window, settings)
    found, updates = exfiltration(flows, window, _read(state, baseline_keys(flows)), settings)
    alerts += found
    _write(state, updates)
    found, changes = long_lived(flows, window, _read(state, streak_keys(flows, window)), settings)
    alerts += found
    _write(state, changes)
    _drop_stale_streaks(state, window)
    found, updates = new_countries(flows, window, _read(state, country_keys(flows)), settings)
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


def _drop_stale_streaks(state: PartitionState, window: int) -> None:
    # Every streak entry still under an older window did not continue into this one.
    # The range holds nothing else, so the cost is the deletions themselves.
    for key in state.keys_between(*stale_streaks(window)):
        state.delete(key)
