"""Where the lake keeps its flows: ``<lake>/flows/hour=YYYY-MM-DDTHH/``.

Shared by the workers that write the lake (lake.py) and by what reads it (query.py, and
the dashboard through it). Pure and free of pyarrow and numpy, so that reading the lake
does not bring in what writing it needs.
"""

from __future__ import annotations

from datetime import UTC, datetime

#: The lake's directory of flows, under its root (a directory or an s3:// prefix).
FLOWS = "flows"


def hour_dir(epoch: int) -> str:
    """``hour=YYYY-MM-DDTHH``: the directory of flows starting in that UTC hour."""
    hour = datetime.fromtimestamp(epoch - epoch % 3600, UTC)
    # The year in four digits, always: strftime's %Y writes year 500 as "500" on glibc,
    # and the queries compare these names as text ("hour=500-" sorts after "hour=2026-").
    return f"hour={hour.year:04d}-{hour.month:02d}-{hour.day:02d}T{hour.hour:02d}"
