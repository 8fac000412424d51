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
the last window closed, "_o": offset}``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

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


def due(clock: dict[str, int], lateness: int) -> list[int]:
    """The windows the clock has made due, oldest first; marks them closed."""
    last = window_start(clock["wm"] - lateness) - WINDOW
    windows = list(range(clock["closed"] + WINDOW, last + 1, WINDOW))
    if windows:
        clock["closed"] = windows[-1]
    return windows


def advance(clock: dict[str, int] | None, earliest: int, latest: int) -> dict[str, int]:
    """The clock after flows starting between ``earliest`` and ``latest`` were seen."""
    if clock is None:
        # Nothing before the first window seen is closed: its flows are not late.
        return {"wm": latest, "closed": window_start(earliest) - WINDOW}
    clock["wm"] = max(clock["wm"], latest)
    return clock


@dataclass
class OpenWindows:
    """The flows of one partition's windows not yet closed, and of the last closed, per
    VPC (detector columns).

    Additions of a batch are staged and kept only once the batch is done, so a batch
    that is tried again does not add its flows twice.
    """

    held: dict[tuple[str, int], list[pa.Table]] = field(default_factory=lambda: defaultdict(list))
    staged: list[tuple[tuple[str, int], pa.Table]] = field(default_factory=list)

    def stage(self, vpc_key: str, flows: pa.Table) -> None:
        flows = flows.select(list(DETECTOR_COLUMNS))
        windows = pc.subtract(flows.column("start"), pc.remainder(flows.column("start"), WINDOW))
        for window in pc.unique(windows).to_pylist():
            self.staged.append(((vpc_key, window), flows.filter(pc.equal(windows, window))))

    def take(self, vpc_key: str, window: int) -> pa.Table | None:
        """The window's flows, held and staged; forgotten once the batch is kept."""
        parts = list(self.held.get((vpc_key, window), ()))
        parts += [table for key, table in self.staged if key == (vpc_key, window)]
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
