"""The figures of every series of one window at once, as columns.

A closed window of a 24-interface device holds ~100 series of a handful of values
each: computed one series at a time, the Python overhead per series cost more than the
values themselves (a third of a worker's time). Here a window whose polls share one
layout is a table (polls x series) sorted column-wise in one numpy call, and every
figure is one vector operation. The figures are exactly those of ``Figures.of``: the
same IEEE operations in the same order (the mean is still an exact ``math.fsum``), which
tests/unit/test_telemetry_columns.py checks on random windows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from streams.telemetry.windows import Figures, WindowValues

Floats = npt.NDArray[np.float64]
FIGURE_NAMES = ("min", "max", "mean", "p95")


@dataclass(slots=True)
class SeriesFigures:
    """One window's figures: entry ``i`` of each column is series ``i``, sorted by
    (interface, metric) as the window record lists them."""

    interfaces: list[str]
    metrics: list[str]
    count: npt.NDArray[np.int64]
    min: Floats
    max: Floats
    mean: Floats
    p95: Floats

    @classmethod
    def of(cls, values: WindowValues) -> SeriesFigures:
        series = values.series
        order = sorted(range(len(series)), key=series.__getitem__)
        interfaces = [series[i][0] for i in order]
        metrics = [series[i][1] for i in order]
        if values.polls is not None:
            return cls(interfaces, metrics, *_table_figures(values.polls, order))
        each = [Figures.of(values.columns[i]) for i in order] if values.columns else []
        return cls(
            interfaces,
            metrics,
            np.array([f.count for f in each], dtype=np.int64),
            *(
                np.array([getattr(f, name) for f in each], dtype=np.float64)
                for name in FIGURE_NAMES
            ),
        )

    def __len__(self) -> int:
        return len(self.interfaces)

    def names(self) -> list[str]:
        """``interface|metric`` of each series: its key in the detector's history."""
        return [f"{i}|{m}" for i, m in zip(self.interfaces, self.metrics, strict=True)]

    def at(self, i: int) -> Figures:
        return Figures(
            int(self.count[i]),
            float(self.min[i]),
            float(self.max[i]),
            float(self.mean[i]),
            float(self.p95[i]),
        )

    def figure(self, name: str) -> Floats:
        """One figure's column by name: ``min``, ``max``, ``mean`` or ``p95``."""
        column: Floats = getattr(self, name)
        return column

    def as_series(self) -> list[dict[str, Any]]:
        """The window record's ``series`` entries."""
        return [
            {
                "interface": interface,
                "metric": metric,
                "count": count,
                "min": low,
                "max": high,
                "mean": mean,
                "p95": p95,
            }
            for interface, metric, count, low, high, mean, p95 in zip(
                self.interfaces,
                self.metrics,
                self.count.tolist(),
                self.min.tolist(),
                self.max.tolist(),
                self.mean.tolist(),
                self.p95.tolist(),
                strict=True,
            )
        ]


def _table_figures(
    polls: Sequence[Sequence[float]], order: list[int]
) -> tuple[npt.NDArray[np.int64], Floats, Floats, Floats, Floats]:
    """count, min, max, mean and p95 of each column of ``polls``, columns in ``order``."""
    n = len(polls)
    means = np.array([math.fsum(column) for column in zip(*polls, strict=True)]) / n
    table = np.array(polls, dtype=np.float64)[:, order]
    # Stable, as Python's sorted is: an unstable sort may order 0.0 and -0.0 otherwise.
    table.sort(axis=0, kind="stable")
    # windows.percentile's interpolation, on whole rows of the sorted table.
    rank = (n - 1) * 0.95
    low = math.floor(rank)
    high = min(low + 1, n - 1)
    p95 = table[low] + (table[high] - table[low]) * (rank - low)
    count = np.full(len(order), n, dtype=np.int64)
    return count, table[0], table[-1], means[order], p95
