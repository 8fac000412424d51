"""Closing many windows at once (detection.close_windows, detect_batch.py) gives exactly
what closing them one by one with the per-window detectors gives: alerts and state."""

from __future__ import annotations

import random
from typing import Any

import pyarrow as pa
import pytest

from streams.common.exactly_once import PartitionState
from streams.flowlogs import detection
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
from streams.flowlogs.detect_batch import stacked
from streams.flowlogs.detection import Closing, close_windows
from streams.flowlogs.fields import SCHEMA
from streams.flowlogs.windows import DETECTOR_COLUMNS

W0 = 1_800_000_000 - 1_800_000_000 % 300
SETTINGS = DetectorSettings(
    scan_port_score=12,
    scan_host_score=6,
    exfil_min_history=3,
    exfil_min_bytes=5_000,
    exfil_spread_floor_bytes=1_000,
    long_lived_windows=3,
    country_learning_windows=2,
)
INTERNAL = [f"10.0.{i}.{j}" for i in range(2) for j in range(1, 6)] + ["fd00::5", "100.64.0.9"]
PUBLIC = ["8.8.8.8", "1.1.1.1", "52.94.1.1", "185.60.216.35", "200.160.2.3", "2001:4860::8888"]


def _schema() -> pa.Schema:
    return pa.schema([SCHEMA.field(name) for name in DETECTOR_COLUMNS])


def _row(rng: random.Random, account: str, vpc: str | None, window: int) -> dict[str, Any]:
    src = rng.choice(INTERNAL + PUBLIC[: rng.randrange(1, 4)])
    dst = rng.choice(INTERNAL[:4] + PUBLIC)
    status = rng.choice(["OK"] * 12 + ["NODATA", None])
    return {
        "account_id": account,
        "vpc_id": vpc,
        "interface_id": rng.choice(["eni-1", "eni-2", None]),
        "srcaddr": rng.choice([src] * 20 + ["-", None]),
        "dstaddr": dst,
        "srcport": rng.choice([443, 22, 80, rng.randrange(1, 65536), None]),
        "dstport": rng.choice([443, 22, 80, rng.randrange(1, 200), 40000]),
        "protocol": rng.choice([6, 6, 17, 1, 132, None]),
        "packets": rng.randrange(1, 50),
        "bytes": rng.choice([rng.randrange(0, 3_000), rng.randrange(0, 90_000), None]),
        "start": window + rng.randrange(300),
        "end": window + 299,
        "action": rng.choice(["ACCEPT"] * 4 + ["REJECT", None]),
        "log_status": status,
        "tcp_flags": rng.choice([2, 3, 18, 19, 0, None]),
        "flow_direction": None,
    }


def _window(rng: random.Random, account: str, vpc: str | None, window: int) -> pa.Table:
    rows = [_row(rng, account, vpc, window) for _ in range(rng.randrange(1, 120))]
    # A connection that lasts (streaks) and a sweep (scans) in some windows.
    if rng.random() < 0.8:
        lasting = {"srcaddr": "10.0.0.1", "dstaddr": "8.8.8.8", "srcport": 50000, "dstport": 443}
        rows.append({**rows[0], **lasting, "protocol": 6, "action": "ACCEPT", "log_status": "OK"})
    if rng.random() < 0.3:
        rows += [{**rows[0], "srcaddr": "10.0.1.9", "dstport": port, "protocol": 6,
                  "srcport": 60000, "action": "REJECT", "log_status": "OK", "tcp_flags": 2}
                 for port in range(1, rng.randrange(5, 20))]  # fmt: skip
    return pa.Table.from_pylist(rows, _schema())


def _one_by_one(state: PartitionState, closing: Closing) -> list[Alert]:
    """The wiring of detection.py before it closed windows together: the reference."""
    account, _, vpc = closing.vpc_key.partition("|")
    stale = stale_streaks(closing.window, account, vpc, since=closing.since)
    flows, window = closing.flows, closing.window
    if flows is None or flows.num_rows == 0:
        for key in state.keys_between(*stale):
            state.delete(key)
        return []
    flows = normalised(flows)
    alerts = port_scans(flows, window, SETTINGS)
    found, updates = exfiltration(flows, window, _read(state, baseline_keys(flows)), SETTINGS)
    alerts += found
    _write(state, updates)
    continued = continued_connections(flows, closing.previous)
    found, changes = long_lived(
        continued, window, _read(state, streak_keys(continued, window)), SETTINGS
    )
    alerts += found
    _write(state, changes)
    for key in state.keys_between(*stale):
        state.delete(key)
    seen = _read(state, country_keys(flows))
    found, updates = new_countries(flows, window, seen, SETTINGS)
    alerts += found
    _write(state, updates)
    return alerts


def _read(state: PartitionState, keys: list[str]) -> dict[str, Any]:
    return {key: value for key in keys if (value := state.get(key)) is not None}


def _write(state: PartitionState, updates: dict[str, Any]) -> None:
    for key, value in updates.items():
        if value is None:
            state.delete(key)
        else:
            state.put(key, value)


def _batches(seed: int) -> list[list[Closing]]:
    """Batches of closings as the wiring makes them: per VPC, windows oldest first, the
    window before passed as the same table object; some windows skipped (gaps)."""
    rng = random.Random(seed)
    vpcs = [("111122223333", "vpc-a"), ("111122223333", "vpc-b"), ("444455556666", None)]
    held: dict[tuple[str, int], pa.Table] = {}
    since = {f"{a}|{v or '-'}": W0 - 300 for a, v in vpcs}
    batches = []
    window = W0
    for _ in range(6):
        batch = []
        for account, vpc in vpcs:
            key = f"{account}|{vpc or '-'}"
            for w in range(window, window + 300 * rng.randrange(1, 6), 300):
                if rng.random() < 0.15:
                    continue  # no rows: never closed, breaks streaks
                held[(key, w)] = _window(rng, account, vpc, w)
                batch.append(Closing(key, w, held[(key, w)], held.get((key, w - 300)), since[key]))
                since[key] = w
        window += 300 * 5
        batches.append(batch)
    return batches


def _run(batches: list[list[Closing]], together: bool) -> tuple[list[Alert], dict[str, Any]]:
    store: dict[str, Any] = {}
    alerts: list[Alert] = []
    for batch in batches:
        state = PartitionState(store)
        if together:
            alerts += close_windows(state, batch, SETTINGS)
        else:
            for closing in batch:
                alerts += _one_by_one(state, closing)
        state.flush()
    return alerts, store


def _canonical(alerts: list[Alert]) -> list[tuple[Any, ...]]:
    # Port scans come sorted by source; within a window and kind, other detectors' alerts
    # came in an order of no meaning (a hash join's), now sorted: compare as sets there.
    return sorted(
        (a.window_start, a.vpc_id, a.kind, a.id, sorted(a.detail.items())) for a in alerts
    )


@pytest.mark.parametrize("seed", range(12))
def test_windows_closed_together_equal_windows_closed_one_by_one(seed: int) -> None:
    batches = _batches(seed)
    alone, alone_state = _run(batches, together=False)
    together, together_state = _run(batches, together=True)
    assert _canonical(together) == _canonical(alone)
    assert [a.window_start for a in together] == [a.window_start for a in alone]
    assert together_state == alone_state
    kinds = {a.kind for seed_alerts in (alone,) for a in seed_alerts}
    assert kinds  # the data makes alerts, so the comparison says something


def test_every_kind_of_alert_is_compared() -> None:
    kinds = {a.kind for seed in range(12) for a in _run(_batches(seed), together=True)[0]}
    assert kinds == {"port_scan", "exfiltration", "long_lived", "new_country"}


def test_windows_found_in_several_groups_equal_one_group(monkeypatch: pytest.MonkeyPatch) -> None:
    batches = _batches(3)
    whole = _run(batches, together=True)
    monkeypatch.setattr(detection, "ROWS_AT_ONCE", 150)
    assert _run(batches, together=True) == whole


def test_a_window_without_rows_only_drops_stale_streaks() -> None:
    batches = _batches(5)
    key, window = batches[0][0].vpc_key, batches[0][-1].window + 300
    empty = pa.Table.from_pylist([], _schema())
    nodata = pa.Table.from_pylist(
        [{"account_id": "1", "log_status": "NODATA", "start": window}], _schema()
    )
    extra = [Closing(key, window, empty, None, window - 300),
             Closing(key, window + 300, nodata, empty, window),
             Closing(key, window + 600, None, nodata, window + 300)]  # fmt: skip
    batches[0] = [*batches[0], *extra]
    assert _run(batches, together=True) == _run(batches, together=False)


def test_stacking_tables_of_other_schemas_normalises_each() -> None:
    """Tables that differ in schema are normalised one by one, then stacked."""
    rng = random.Random(1)
    one = _window(rng, "1", "vpc-a", W0)
    other = one.set_column(
        one.schema.get_field_index("srcport"), "srcport", one["srcport"].cast(pa.string())
    )
    rows = stacked([one, other])
    alone = [normalised(one), normalised(other)]
    assert rows.num_rows == sum(t.num_rows for t in alone)
    for number, table in enumerate(alone):
        part = rows.filter(pa.compute.equal(rows["_table"], number)).drop_columns(["_table"])
        assert part.replace_schema_metadata(None) == table.replace_schema_metadata(None)
