"""Exfiltration: an internal source's bytes to public addresses against its own baseline.

The rule and its reasons are in ``detect.py``. Baseline entries are
``exf|<account>|<vpc>|<srcaddr>`` -> ``[n, mean, variance, last window updated]``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from streams.common.detector import EMPTY, Ewma, Floor, ewma_update, ewma_zscore, noise_floor
from streams.flowlogs.detect_base import (
    FIVE_TUPLE,
    VPC,
    WINDOW_SECONDS,
    Alert,
    DetectorSettings,
    addresses_of_kind,
    flows,
    keys_of,
    per_table,
)

PREFIX = "exf"


@dataclass
class Sent:
    """One source's traffic to public addresses in one window."""

    account_id: str
    vpc_id: str
    srcaddr: str
    top_destination: str
    top_destination_bytes: int
    bytes: int
    destinations: int


def baseline_keys(window: pa.Table) -> list[str]:
    """The baseline entries ``exfiltration`` reads for this window."""
    return list(_sent_by_source(window))


def exfiltration(
    window: pa.Table,
    window_start: int,
    baselines: Mapping[str, list[float] | tuple[float, ...]],
    settings: DetectorSettings,
) -> tuple[list[Alert], dict[str, object]]:
    """Alerts for sources far above their baseline, and the baselines this window changed."""
    return exfiltration_of(_sent_by_source(window), window_start, baselines, settings)


def exfiltration_of(
    sent_by_source: Mapping[str, Sent],
    window_start: int,
    baselines: Mapping[str, list[float] | tuple[float, ...]],
    settings: DetectorSettings,
) -> tuple[list[Alert], dict[str, object]]:
    """``exfiltration`` of a window whose traffic per baseline key was already summed."""
    floor = Floor(settings.exfil_spread_floor_bytes, settings.exfil_spread_floor_share)
    alerts: list[Alert] = []
    updated: dict[str, object] = {}
    for key, sent in sent_by_source.items():
        state, last = _baseline(baselines.get(key), window_start, settings)
        if last >= window_start:
            continue  # a window applied already (a replay) must not be folded twice
        n, mean, variance = state
        volume = float(sent.bytes)
        z = ewma_zscore(state, volume, floor)
        spread = max(math.sqrt(variance), noise_floor(mean, floor))
        alerting = (
            n >= settings.exfil_min_history
            and volume >= settings.exfil_min_bytes
            and z > settings.exfil_z
        )
        if alerting:
            alerts.append(_alert(sent, window_start, volume, state, z))
            # Folded at the alert line, not its full size: one burst barely moves the
            # baseline, a lasting new level is still learned within some windows.
            volume = min(volume, mean + settings.exfil_z * spread)
        updated[key] = [*ewma_update(state, volume, settings.exfil_alpha), window_start]
    return alerts, updated


def _baseline(stored: object, window_start: int, settings: DetectorSettings) -> tuple[Ewma, float]:
    """The stored EWMA and last window; a missing, corrupt or forgotten one starts over."""
    fresh = (EMPTY, -math.inf)
    if not isinstance(stored, list | tuple) or len(stored) != 4:
        return fresh
    try:
        n, mean, variance, last = int(stored[0]), float(stored[1]), float(stored[2]), stored[3]
        last = float(last)
    except (TypeError, ValueError):
        return fresh
    if not all(map(math.isfinite, (mean, variance, last))) or n < 0 or variance < 0:
        return fresh
    if window_start - last > settings.exfil_forget_after_windows * WINDOW_SECONDS:
        return fresh
    return (n, mean, variance), last


@per_table
def _sent_by_source(window: pa.Table) -> dict[str, Sent]:
    return sent_of(sent_by_source(flows(window)).to_pylist())


def sent_by_source(rows: pa.Table, apart: Sequence[str] = ()) -> pa.Table:
    """Per baseline key (column ``key``): bytes, distinct destinations and the top one, of
    accepted flows from internal to public addresses; rows in the order the rule reads
    them (the sources of the largest pairs first).

    ``rows``: normalised flows; ``apart``: columns that keep sets of rows apart (a
    batch's windows), kept in the result. A connection through a NAT gateway is logged
    by the instance's interface and again by the gateway's, with the same 5-tuple: its
    bytes are summed per interface and the largest interface's count taken, so it counts
    once.
    """
    by = list(apart)
    connection = [*by, *VPC, *FIVE_TUPLE]
    source = [*by, *VPC, "srcaddr"]
    accepted = pc.equal(rows["action"], "ACCEPT")
    internal = addresses_of_kind([rows["srcaddr"]], "internal")
    public = addresses_of_kind([rows["dstaddr"]], "public")
    wanted = pc.and_(
        pc.and_(accepted, pc.is_in(rows["srcaddr"], value_set=internal)),
        pc.is_in(rows["dstaddr"], value_set=public),
    )
    # One filter of the columns read (addresses of rejected flows only widen the sets
    # looked up, never what passes).
    rows = rows.select([*connection, "interface_id", "bytes"]).filter(wanted)
    per_pair = (
        rows.group_by([*connection, "interface_id"], use_threads=False)
        .aggregate([("bytes", "sum")])
        .group_by(connection, use_threads=False)
        .aggregate([("bytes_sum", "max")])
        .group_by([*source, "dstaddr"], use_threads=False)
        .aggregate([("bytes_sum_max", "sum")])
        .rename_columns({"bytes_sum_max_sum": "bytes"})
        # The source breaks ties: the order of sources is then the same however the
        # group-bys before ordered their output.
        .sort_by(
            [("bytes", "descending"), ("dstaddr", "ascending")]
            + [(name, "ascending") for name in source]
        )
    )
    # Single-threaded so that "first" is the first pair in that order: the top destination.
    per_source = per_pair.group_by(source, use_threads=False).aggregate(
        [("bytes", "sum"), ([], "count_all"), ("dstaddr", "first"), ("bytes", "first")]
    )
    keys = keys_of((PREFIX,), [per_source[name] for name in (*VPC, "srcaddr")])
    return per_source.append_column("key", pa.array(keys, pa.string()))


def sent_of(per_source: Iterable[Mapping[str, Any]]) -> dict[str, Sent]:
    """``sent_by_source``'s rows as the rule reads them: per baseline key, in order."""
    return {
        row["key"]: Sent(
            row["account_id"],
            row["vpc_id"],
            row["srcaddr"],
            top_destination=row["dstaddr_first"],
            top_destination_bytes=row["bytes_first"],
            bytes=row["bytes_sum"],
            destinations=row["count_all"],
        )
        for row in per_source
    }


def _alert(sent: Sent, window_start: int, volume: float, state: Ewma, z: float) -> Alert:
    n, mean, variance = state
    return Alert(
        kind="exfiltration",
        account_id=sent.account_id,
        vpc_id=sent.vpc_id,
        subject=sent.srcaddr,
        window_start=window_start,
        detail={
            "bytes": int(volume),
            "baseline_mean": round(mean),
            "baseline_std": round(math.sqrt(variance)),
            "baseline_windows": n,
            "z": round(z, 2),
            "destinations": sent.destinations,
            "top_destination": sent.top_destination,
            "top_destination_bytes": sent.top_destination_bytes,
        },
    )
