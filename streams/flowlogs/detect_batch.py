"""What the four detectors read of many closed windows, found at once (pure).

A batch closes many windows (every VPC of a partition, several windows each), most of
them small: one window's group-bys and joins cost more in fixed overhead than in rows.
So the rows of all of them are stacked, each row tagged with the window it belongs to,
and every group-by runs once with that tag among its keys: each window's figures are
exactly those it would get alone. What follows a window's figures (the state each
detector reads and writes, window after window) stays per window, in the wiring
(detection.py), in the same order as before.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from streams.flowlogs.detect_base import (
    NUMBER_COLUMNS,
    VPC,
    Alert,
    DetectorSettings,
    flows,
)
from streams.flowlogs.detect_baseline import Sent, sent_by_source, sent_of
from streams.flowlogs.detect_countries import (
    CountryOf,
    Found,
    countries_found,
    found_of,
    registered_countries,
    vpcs_of,
)
from streams.flowlogs.detect_scan import scan_alert, scan_findings
from streams.flowlogs.detect_streaks import (
    ENDPOINTS,
    READ_OFFSETS,
    candidates,
    connections_of,
    reading_keys,
    writing_keys,
)

#: The column naming the input table a stacked row came from.
TABLE = "_table"
#: The column naming the window (its index in the batch) a connection is counted for.
CLOSING = "_closing"


@dataclass(frozen=True)
class WindowFigures:
    """What the detectors read of one window, as the per-window functions would find it."""

    scans: list[Alert]
    sent: dict[str, Sent]
    continued: pa.Table
    streaks_read: list[str]
    streaks_written: list[str]
    vpcs: list[tuple[str, str]]
    countries: Found


def window_figures(
    windows: Sequence[tuple[pa.Table, pa.Table | None, int]],
    settings: DetectorSettings,
    country_of: CountryOf = registered_countries,
) -> list[WindowFigures]:
    """The figures of each ``(flows, previous, window start)``: ``flows`` the window's
    rows, ``previous`` the window before's (None: it had none). A table passed more
    than once (a window that is also the one before the next) is read once."""
    if not windows:
        return []
    tables: list[pa.Table] = []
    index: dict[int, int] = {}

    def number(table: pa.Table) -> int:
        if id(table) not in index:
            index[id(table)] = len(tables)
            tables.append(table)
        return index[id(table)]

    current = [number(table) for table, _, _ in windows]
    before = [-1 if prev is None or prev.num_rows == 0 else number(prev) for _, prev, _ in windows]
    rows = stacked(tables)
    if len(set(current)) < len(tables):  # tables only read as a window before: no scores
        rows_now = rows.filter(pc.is_in(rows[TABLE], value_set=pa.array(current, pa.int32())))
    else:
        rows_now = rows
    scans = _by_table(scan_findings(rows_now, settings, [TABLE]))
    sent = _by_table(sent_by_source(rows_now, [TABLE]))
    vpcs = _by_table(vpcs_of(rows_now, [TABLE]))
    countries = _by_table(countries_found(rows_now, country_of, [TABLE]))
    continued, bounds = _continued(rows, current, before)
    starts = [start for _, _, start in windows]
    row_starts = [starts[closing] for closing in continued[CLOSING].to_pylist()]
    keys_read = reading_keys(continued, row_starts)
    keys_written = writing_keys(continued, row_starts)
    per_row = len(READ_OFFSETS)
    figures = []
    for closing, (table, start) in enumerate(zip(current, starts, strict=True)):
        low, high = int(bounds[closing]), int(bounds[closing + 1])
        figures.append(
            WindowFigures(
                scans=[scan_alert(row, start) for row in scans.get(table, [])],
                sent=sent_of(sent.get(table, [])),
                continued=continued.slice(low, high - low),
                streaks_read=keys_read[low * per_row : high * per_row],
                streaks_written=keys_written[low:high],
                vpcs=[(str(vpc["account_id"]), str(vpc["vpc_id"])) for vpc in vpcs.get(table, [])],
                countries=found_of(countries.get(table, [])),
            )
        )
    return figures


def stacked(tables: Sequence[pa.Table]) -> pa.Table:
    """The normalised flows (``detect_base.flows``) of every table, each row with its
    table's number in ``TABLE``: the same rows as normalising each table alone."""
    first = tables[0].schema
    alike = all(t.schema.equals(first, check_metadata=False) for t in tables)
    if alike and _casts_cannot_fail(first):
        # One normalisation for all: row by row the same as one per table, since no
        # column's cast can fail (a failed cast empties the column of the table it is in).
        joined = pa.concat_tables([t.replace_schema_metadata(None) for t in tables])
        numbers = [_numbered(i, t.num_rows) for i, t in enumerate(tables)]
        joined = joined.append_column(TABLE, pa.chunked_array(numbers, pa.int32()))
        return flows(joined, carry=(TABLE,))
    alone = [flows(t).replace_schema_metadata(None) for t in tables]
    return pa.concat_tables(
        [t.append_column(TABLE, _numbered(i, t.num_rows)) for i, t in enumerate(alone)]
    )


def _numbered(number: int, rows: int) -> pa.Array:
    return pa.array(np.full(rows, number, np.int32))


def _casts_cannot_fail(schema: pa.Schema) -> bool:
    numeric = (pa.types.is_integer, pa.types.is_floating, pa.types.is_null)
    return all(
        any(check(schema.field(name).type) for check in numeric)
        for name in (*NUMBER_COLUMNS, "tcp_flags")
        if name in schema.names
    )


def _by_table(table: pa.Table) -> dict[int, list[dict[str, object]]]:
    """The rows of ``table`` per ``TABLE`` value, in their order, without that column."""
    found: dict[int, list[dict[str, object]]] = defaultdict(list)
    for row in table.to_pylist():
        found[row.pop(TABLE)].append(row)
    return found


def _continued(
    rows: pa.Table, current: list[int], before: list[int]
) -> tuple[pa.Table, np.ndarray]:
    """The candidates of each window (``continued_connections``) in one table sorted by
    window (``CLOSING``), and where each window's rows start."""
    connections = connections_of(rows, [TABLE])
    closings = pa.table(
        {
            TABLE: pa.array(current, pa.int32()),
            "_before": pa.array(before, pa.int32()),
            CLOSING: pa.array(range(len(current)), pa.int32()),
        }
    )
    keys = [CLOSING, *VPC, *ENDPOINTS]
    now = connections.join(
        closings.select([TABLE, CLOSING]), keys=TABLE, join_type="inner", use_threads=False
    )
    then = connections.rename_columns({TABLE: "_before"}).join(
        closings.select(["_before", CLOSING]), keys="_before", join_type="inner", use_threads=False
    )
    # Sorted by window first: each window's rows together, in a deterministic order.
    continued = candidates(now.select([*keys, "long", "reach"]), then.select(keys), keys)
    positions = continued[CLOSING].to_numpy()
    bounds = np.searchsorted(positions, np.arange(len(current) + 1), side="left")
    return continued, bounds
