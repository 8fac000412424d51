"""What a worker's table forgets, so its state stays bounded (pure rules over a partition).

- ``obj|`` entries (dedupe.py): objects first seen more than ``dedupe_days`` ago;
- ``5m|`` and ``1h|`` rollups of windows older than ``five_minute_days`` and
  ``hourly_days`` (wall clock): the lake keeps every flow, and the views read the lake;
- ``exf|`` baselines of sources silent for two weeks (the detector would start them
  over anyway after ``exfil_forget_after_windows``).

Clocks, country sets and the few streak entries stay: one or a handful per VPC.
"""

from __future__ import annotations

from typing import Protocol

from streams.flowlogs import dedupe
from streams.flowlogs.rollups import window_text

DAY = 86_400
BASELINE_SILENCE = 14 * DAY


class Scannable(Protocol):
    def scan(self, prefix: str) -> object: ...

    def keys_between(self, begin: str, end: str) -> list[str]: ...


def stale_keys(
    io: Scannable, now: float, *, dedupe_days: float, five_minute_days: float, hourly_days: float
) -> list[str]:
    stale = dedupe.expired(io.scan(dedupe.PREFIX), now, dedupe_days * DAY)  # type: ignore[arg-type]
    for resolution, days in (("5m", five_minute_days), ("1h", hourly_days)):
        # Keys sort by window (12 digits): the old ones are one range.
        cutoff = window_text(int(now - days * DAY))
        stale += io.keys_between(f"{resolution}|", f"{resolution}|{cutoff}")
    for key, value in io.scan("exf|"):  # type: ignore[attr-defined]
        if isinstance(value, list) and len(value) == 4 and value[3] < now - BASELINE_SILENCE:
            stale.append(key)
    return stale
