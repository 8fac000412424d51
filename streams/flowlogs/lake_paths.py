"""Where the lake keeps its flows: ``<lake>/flows/hour=YYYY-MM-DDTHH/``.

Shared by the workers that write the lake (lake.py) and by what reads it (query.py, and
the dashboard through it). Pure and free of pyarrow and numpy, so that reading the lake
does not bring in what writing it needs.

What the lake can hold: a flow's ``start`` names its hour directory, so the writer can
store starts from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z (``EARLIEST_START`` to
``LATEST_START``) and fails a batch holding any other (the parser, which refuses starts
before 2000 or past the object's time, never sends one). The readers count only these
starts and only files ``flows/hour=<a real hour>/<name>.parquet``: a row or a file put
there by another hand outside them is left out of every answer, whatever the window.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime

#: The lake's directory of flows, under its root (a directory or an s3:// prefix).
FLOWS = "flows"
#: The first and last flow starts an hour directory can name (epoch seconds).
EARLIEST_START = int(datetime(1, 1, 1, tzinfo=UTC).timestamp())
LATEST_START = int(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp())


def hour_dir(epoch: int) -> str:
    """``hour=YYYY-MM-DDTHH``: the directory of flows starting in that UTC hour."""
    hour = datetime.fromtimestamp(epoch - epoch % 3600, UTC)
    # The year in four digits, always: strftime's %Y writes year 500 as "500" on glibc,
    # and the queries compare these names as text ("hour=500-" sorts after "hour=2026-").
    return f"hour={hour.year:04d}-{hour.month:02d}-{hour.day:02d}T{hour.hour:02d}"


@functools.lru_cache(maxsize=65536)
def is_hour_dir(name: str) -> bool:
    """Whether ``name`` is a directory ``hour_dir`` writes (``hour=2026-02-30T00`` is not)."""
    try:
        hour = datetime.strptime(name, "hour=%Y-%m-%dT%H").replace(tzinfo=UTC)
    except ValueError:
        return False
    return hour_dir(int(hour.timestamp())) == name
