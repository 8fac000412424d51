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
    continued_connections,
    country_keys,
    exfiltration,
    long_lived,
    new_countries,
    port_scans,
    stale_streaks,
    streak_keys,
)
from streams.flowlogs.detect_base import flows as normalised


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
    """The alerts of ``window`` of the VPC ``vpc_key`` (``<account>|<vpc>``; ``flows``: its
    rows, ``previous``: the window before's, None when it had none; ``since``: the VPC's
    last window closed before this one, empty ones included)."""
    account, _, vpc = vpc_key.partition("|")
    if flows is None or flows.num_rows == 0:
        _drop_stale_streaks(state, window, since, account, vpc)
        return []
    flows = normalised(flows)  # once, not once per detector
    alerts = port_scans(flows, window, settings)
    found, updates = exfiltration(flows, window, _read(state, baseline_keys(flows)), settings)
    alerts += found
    _write(state, updates)
    continued = continued_connections(flows, previous)
    streaks = _read(state, streak_keys(continued, window))
    found, changes = long_lived(continued, window, streaks, settings)
    alerts += found
    _write(state, changes)
    _drop_stale_streaks(state, window, since, account, vpc)
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


def _drop_stale_streaks(
    state: PartitionState, window: int, since: int, account: str, vpc: str
) -> None:
    # Every streak entry of the VPC still under an older window did not continue into
    # this one. The range holds nothing else, so the cost is the deletions themselves.
    for key in state.keys_between(*stale_streaks(window, account, vpc, since=since)):
        state.delete(key)
