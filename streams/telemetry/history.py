"""The detector's history of one device, as columns, and the rules applied to whole windows.

Stored under ``h|<device>`` as ``{"s": [series], "e": [[n...], [mean...], [variance...]],
"m": [[means...], ...]}``: per series (``interface|metric``) the EWMA state and, while
the z-score detector is in use, its last window means (detect.py defines both). A
window's figures (columns.py) are checked in a few vector operations; only the series a
rule may have flagged go through the rules of detect.py, one at a time, which write
the reasons. The EWMA's column form is the shared detector's (streams/common/detector.py),
bit-identical to the form the rules use, so the two agree
(tests/unit/test_telemetry_columns.py compares them on random windows).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from streams.common.detector import ewma_update_columns, ewma_zscores, is_anomalous
from streams.telemetry.columns import Floats, SeriesFigures
from streams.telemetry.config import Detector, TelemetryConfig, Threshold
from streams.telemetry.detect import History, floor_of, updated_history

Positions = npt.NDArray[np.intp]
FIGURE_ROWS = {"min": 0, "max": 1, "mean": 2, "p95": 3}


@dataclass
class SeriesHistory:
    """Every series' history of one device; ``positions`` maps a window's series in."""

    names: list[str] = field(default_factory=list)
    count: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    centre: Floats = field(default_factory=lambda: np.zeros(0))
    variance: Floats = field(default_factory=lambda: np.zeros(0))
    means: list[list[float]] = field(default_factory=list)

    @classmethod
    def load(cls, document: dict[str, Any] | None) -> SeriesHistory:
        if not document:
            return cls()
        if "s" not in document:
            return cls._from_series(document)
        n, centre, variance = document["e"]
        names = document["s"]
        means = document.get("m") or [[] for _ in names]
        return cls(names, np.array(n, dtype=np.int64), np.array(centre), np.array(variance), means)

    @classmethod
    def _from_series(cls, document: dict[str, History]) -> SeriesHistory:
        """Read the earlier layout, one ``{"e": [...], "m": [...]}`` per series name."""
        names = list(document)
        states = [document[name].get("e", (0, 0.0, 0.0)) for name in names]
        history = cls(
            names,
            np.array([s[0] for s in states], dtype=np.int64),
            np.array([s[1] for s in states], dtype=np.float64),
            np.array([s[2] for s in states], dtype=np.float64),
            [list(document[name].get("m", [])) for name in names],
        )
        return history

    def dump(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "s": self.names,
            "e": [self.count.tolist(), self.centre.tolist(), self.variance.tolist()],
        }
        if any(self.means):
            document["m"] = self.means
        return document

    def positions(self, names: list[str]) -> Positions:
        """Where each of ``names`` is in the columns; a series seen first is added."""
        if names == self.names:
            return np.arange(len(names))
        index = {name: i for i, name in enumerate(self.names)}
        new = [name for name in names if name not in index]
        if new:
            index.update((name, len(self.names) + k) for k, name in enumerate(new))
            self.names = [*self.names, *new]
            self.count = np.concatenate([self.count, np.zeros(len(new), dtype=np.int64)])
            self.centre = np.concatenate([self.centre, np.zeros(len(new))])
            self.variance = np.concatenate([self.variance, np.zeros(len(new))])
            self.means = [*self.means, *([] for _ in new)]
        return np.array([index[name] for name in names], dtype=np.intp)

    def past(self, position: int) -> History:
        """One series' history as detect.py's rules read it."""
        state = [int(self.count[position]), float(self.centre[position])]
        past: History = {"e": [*state, float(self.variance[position])]}
        if self.means[position]:
            past["m"] = self.means[position]
        return past

    def update(self, positions: Positions, means: Floats, detector: Detector) -> None:
        """Add one window mean per series: detect.updated_history, on whole columns."""
        n, centre, variance = ewma_update_columns(
            self.count[positions],
            self.centre[positions],
            self.variance[positions],
            means,
            detector.alpha,
        )
        self.count[positions] = n
        self.centre[positions] = centre
        self.variance[positions] = variance
        if detector.kind == "zscore":
            for position, mean in zip(positions.tolist(), means.tolist(), strict=True):
                past = {"m": self.means[position]}
                self.means[position] = updated_history(past, mean, detector)["m"]
        elif any(self.means):
            for position in positions.tolist():  # as updated_history: this window's series
                self.means[position] = []


def flagged(
    figures: SeriesFigures, history: SeriesHistory, positions: Positions, config: TelemetryConfig
) -> list[int]:
    """The series of a window that some rule may flag; detect.py decides for each.

    Thresholds and flat lines are the rules' own comparisons; the EWMA test is too. The
    z-score detector keeps a list of means per series: its series with enough history
    are all passed on.
    """
    if not len(figures):
        return []
    rows = np.vstack([figures.min, figures.max, figures.mean, figures.p95])
    above, below, figure = _threshold_columns(figures.metrics, config)
    value = rows[figure, np.arange(len(figures))]
    hit = (value > above) | (value < below)
    flat = config.flatline
    if flat.enabled:
        names = set(flat.metrics)
        listed = np.array([metric in names for metric in figures.metrics], dtype=bool)
        hit |= listed & (figures.count >= flat.min_count) & (figures.min == figures.max)
    detector = config.detector
    if detector.kind == "ewma":
        hit |= _ewma_outliers(figures.mean, history, positions, detector)
    elif detector.kind == "zscore":
        warm = [len(history.means[p]) >= detector.min_windows for p in positions.tolist()]
        hit |= np.array(warm, dtype=bool)
    return np.flatnonzero(hit).tolist()


def _threshold_columns(
    metrics: list[str], config: TelemetryConfig
) -> tuple[Floats, Floats, npt.NDArray[np.intp]]:
    """Per series: the limit above and below (infinite when none) and the figure's row."""
    limits = {metric: _limits(config.thresholds.get(metric)) for metric in set(metrics)}
    above, below, figure = zip(*map(limits.__getitem__, metrics), strict=True)
    return np.array(above), np.array(below), np.array(figure, dtype=np.intp)


def _limits(threshold: Threshold | None) -> tuple[float, float, int]:
    if threshold is None:
        return np.inf, -np.inf, 0
    above = np.inf if threshold.above is None else threshold.above
    below = -np.inf if threshold.below is None else threshold.below
    return above, below, FIGURE_ROWS[threshold.figure]


def _ewma_outliers(
    means: Floats, history: SeriesHistory, positions: Positions, detector: Detector
) -> npt.NDArray[np.bool_]:
    """detect.statistical_reason's EWMA test on every series at once."""
    z = ewma_zscores(
        history.centre[positions], history.variance[positions], means, floor_of(detector)
    )
    outliers: npt.NDArray[np.bool_] = (history.count[positions] >= detector.min_windows) & (
        is_anomalous(z, detector.z)
    )
    return outliers
