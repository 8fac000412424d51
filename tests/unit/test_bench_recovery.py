"""The recovery benchmark's reading of a worker's log and its probe orders."""

from __future__ import annotations

from datetime import datetime

import orjson
import pytest

from bench.recovery import fill_orders, log_marks

LOG = [
    "[2026-12-03 15:42:10,811] [11643] [INFO] [^Worker]: Starting... ",
    "[2026-12-03 15:42:11,000] [999] [INFO] Setting newly assigned partitions ",
    "[2026-12-03 15:42:29,994] [11643] [INFO] Setting newly assigned partitions ",
    "| orders-aggregates-changelog | 0 | 12356 |",
    "[2026-12-03 15:42:35,350] [11643] [INFO] [^---Recovery]: Recovery complete ",
    "[2026-12-03 15:42:35,559] [11643] [INFO] orders: catalog of 50 products loaded ",
    "[2026-12-03 15:42:40,000] [11643] [INFO] Setting newly assigned partitions ",
]


def test_log_marks_are_the_first_lines_of_the_process_from_its_start() -> None:
    """Each mark is the first matching line of that process id, in seconds from start."""
    started = datetime(2026, 12, 3, 15, 42, 10, 500_000).astimezone()
    marks = log_marks(LOG, 11643, started)
    assert marks == pytest.approx(
        {"assigned": 19.494, "tables_recovered": 24.85, "views_ready": 25.059}
    )


def test_probes_are_dated_after_every_order_of_the_fill_on_days_of_their_own() -> None:
    """The full figure (days before the first probe) and each probe are told apart."""
    orders, probes = fill_orders(1000)
    last = max(orjson.loads(value)["timestamp"][:10] for _key, value in orders)
    days = [orjson.loads(value)["timestamp"][:10] for _key, value in probes]
    assert last < days[0] < days[1]
    assert len(orders) == 1000
