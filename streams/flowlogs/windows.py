"""Event time per account and VPC, and the 5-minute windows the detectors close (pure).

Each account and VPC has its own clock: the latest flow ``start`` seen of it. A window
``[w, w + 300)`` closes for detection once that clock passes ``w + 300 + lateness``:
AWS delivers a flow log every few minutes per ENI, so flows of one window arrive in
objects minutes apart. The clock is per VPC, not per partition, because partitions
hold several VPCs whose objects are read one after another (a day of one, then a day
of the next): a partition clock would make the second VPC's flows all late.

Only detection waits for windows to close. Figures (rollups, lake) count every flow
whenever it arrives; a flow whose window was already closed for detection is counted
as late for detection (a metric) and is not seen by the detectors.

Clock entries are ``clock|<account>|<vpc>`` -> ``{"wm": latest start, "closed": start of
the last window closed, "rows": start of the last closed window that held rows}``.
Only windows holding rows are closed through the detectors; the empty ones between are
closed by moving ``closed`` past them.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

WINDOW = 300
PREFIX = "clock|"
#: The columns the detectors read; the window buffers hold only these.
DETECTOR_COLUMNS = (
    "account_id", "vpc_id", "interface_id", "srcaddr", "dstaddr", "srcport", "dstport",
    "protocol", "packets", "bytes", "start", "end", "action", "log_status", "tcp_flags",
    "flow_direction",
)  # fmt: skip


def clock_key(vpc_key: str) -> str:
    return PREFIX + vpc_key


def window_start(start: int) -> int:
    return start - start % WINDOW


def due(clock: dict[str, int], lateness: int) -> int | None:
    """The newest window the clock has made due, if it moved; marks it (and every window
    before it) closed. Only windows that hold rows need closing (``OpenWindows.due``): a
    VPC silent for a day, or one flow from the year 2000, costs nothing per empty window."""
    last = window_start(clock["wm"] - lateness) - WINDOW
    if last <= clock["closed"]:
        return None
    clock["closed"] = last
    return last


def advance(clock: dict[str, int] | None, earliest: int, latest: int) -> dict[str, int]:
    """The clock after flows starting between ``earliest`` and ``latest`` were seen."""
    if clock is None:
        # Nothing before the first window seen is closed: its flows are not late.
        return {"wm": latest, "closed": window_start(earliest) - WINDOW}
    clock["wm"] = max(clock["wm"], latest)
    return clock


def by_window(flows: pa.Table) -> list[tuple[int, pa.Table]]:
    """The rows of each window (by ``start``), each in their order, oldest window first.

    One stable sort and at most one copy (none when the rows are in window order), then
    a zero-copy slice per window: a filter per window would copy the rows once each.
    """
    if flows.column("start").null_count:  # no window: never staged (no flow lacks one)
        flows = flows.filter(pc.is_valid(flows.column("start")))
    if flows.num_rows == 0:
        return []
    starts = np.asarray(flows.column("start").to_numpy())
    windows = starts - starts % WINDOW
    if np.any(windows[1:] < windows[:-1]):
        order = np.argsort(windows, kind="stable")
        flows, windows = flows.take(pa.array(order)), windows[order]
    bounds = [0, *(np.flatnonzero(windows[1:] != windows[:-1]) + 1).tolist(), len(windows)]
    return [
        (int(windows[begin]), flows.slice(begin, end - begin))
        for begin, end in itertools.pairwise(bounds)
    ]


@dataclass
class OpenWindows:
    """The flows of one partition's windows not yet closed, and of the last closed, per
    VPC (detector columns).

    Additions of a batch are staged and kept only once the batch is done, so a batch
    that is tried again does not add its flows twice.
    """

    held: dict[tuple[str, int], list[pa.Table]] = field(default_factory=lambda: defaultdict(list))
    staged: list[tuple[tuple[str, int], pa.Table]] = field(default_factory=list)
    #: Rows held per VPC window at most: memory stays bounded whatever one object holds.
    cap: int = 2_000_000

    def stage(self, vpc_key: str, flows: pa.Table) -> int:
        """Stage the rows; the count left out because their window is full."""
        left_out = 0
        for window, rows in by_window(flows.select(list(DETECTOR_COLUMNS))):
            room = self.cap - self._rows((vpc_key, window))
            if rows.num_rows > room:
                left_out += rows.num_rows - max(room, 0)
                rows = rows.slice(0, max(room, 0))
            if rows.num_rows:
                self.staged.append(((vpc_key, window), rows))
        return left_out

    def _rows(self, key: tuple[str, int]) -> int:
        held: int = sum(t.num_rows for t in self.held.get(key, ()))
        staged: int = sum(t.num_rows for k, t in self.staged if k == key)
        return held + staged

    def due(self, vpc_key: str, after: int, upto: int) -> list[int]:
        """The VPC's windows in ``(after, upto]`` holding rows, oldest first."""
        found = {w for k, w in self.held if k == vpc_key and after < w <= upto}
        found |= {w for (k, w), _ in self.staged if k == vpc_key and after < w <= upto}
        return sorted(found)

    def take(self, vpc_key: str, window: int) -> pa.Table | None:
        """The window's flows, held and staged; forgotten once the batch is kept."""
        held = self.held.get((vpc_key, window))
        if held and len(held) > 1:
            # Joined once and kept so: the same table object each time, which the
            # detectors' per-table memory recognises (a window is asked for twice).
            held[:] = [pa.concat_tables(held)]
        parts = list(held or ())
        parts += [table for key, table in self.staged if key == (vpc_key, window)]
        if len(parts) == 1:
            return parts[0]
        return pa.concat_tables(parts) if parts else None

    def keep(self, closed: dict[str, int]) -> None:
        """The batch is done: hold its flows; of the windows closed, keep only the last
        of each VPC (the long-lived detector compares a window with the one before)."""
        for key, table in self.staged:
            self.held[key].append(table)
        self.staged.clear()
        for key in [k for k in self.held if k[1] < closed.get(k[0], k[1])]:
            del self.held[key]

    def discard(self) -> None:
        self.staged.clear()
