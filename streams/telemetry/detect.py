"""Anomaly rules applied to each closed window: thresholds, flat lines, a statistical test.

Pure functions over plain values. The statistical detector looks at window means of
the same device, interface and metric:

- ``zscore``: distance of the mean from the mean of the last ``history`` windows, in
  their (population) standard deviations;
- ``ewma``: distance from an exponentially weighted moving mean, in the square root of
  the exponentially weighted variance (weight ``alpha`` for the newest window); it
  adapts to slow drifts and needs no list of past values.

Both compare against the history *before* the window, floor the deviation at
``min_std`` and at ``min_relative_std`` times the expected level (a nearly constant
or slowly wandering series would otherwise flag every wobble), and stay
silent until ``min_windows`` windows of history exist. Every window updates the
history, anomalous or not, so a lasting change of level becomes the new normal.
The arithmetic is the shared detector's (streams/common/detector.py), the orders
reporter's too.
"""

from __future__ import annotations

from typing import Any

from streams.common.detector import (
    EMPTY,
    Floor,
    direction,
    ewma_update,
    ewma_zscore,
    is_anomalous,
    past_stats,
    zscore,
)
from streams.telemetry.config import Detector, Flatline, Threshold
from streams.telemetry.windows import Figures

Reason = dict[str, Any]
History = dict[str, Any]


def threshold_reasons(figures: Figures, threshold: Threshold | None) -> list[Reason]:
    if threshold is None:
        return []
    value = figures.get(threshold.figure)
    reasons = []
    if threshold.above is not None and value > threshold.above:
        reasons.append(_threshold(threshold.figure, value, "above", threshold.above))
    if threshold.below is not None and value < threshold.below:
        reasons.append(_threshold(threshold.figure, value, "below", threshold.below))
    return reasons


def _threshold(figure: str, value: float, direction: str, limit: float) -> Reason:
    return {"kind": "threshold", "figure": figure, "value": value, direction: limit}


def flatline_reason(metric: str, figures: Figures, flatline: Flatline) -> Reason | None:
    if not flatline.enabled or metric not in flatline.metrics:
        return None
    if figures.count >= flatline.min_count and figures.min == figures.max:
        return {"kind": "flatline", "value": figures.min, "count": figures.count}
    return None


def floor_of(detector: Detector) -> Floor:
    """The detector's noise floor; never zero, so a z-score is always defined."""
    return Floor(absolute=max(detector.min_std, 1e-12), relative=detector.min_relative_std)


def statistical_reason(history: History, mean: float, detector: Detector) -> Reason | None:
    """Whether ``mean`` strays more than ``detector.z`` deviations from ``history``."""
    if detector.kind == "off":
        return None
    if detector.kind == "zscore":
        past = history.get("m", [])[-detector.history :]
        if len(past) < detector.min_windows:
            return None
        centre, spread = past_stats(past)
        z = zscore(mean, centre, spread, floor_of(detector))
    else:
        n, centre, variance = history.get("e", EMPTY)
        if n < detector.min_windows:
            return None
        z = ewma_zscore((n, centre, variance), mean, floor_of(detector))
    if not is_anomalous(z, detector.z):
        return None
    return {
        "kind": detector.kind,
        "z": round(z, 3),
        "mean": mean,
        "expected": round(centre, 6),
        "direction": direction(z),
    }


def updated_history(history: History, mean: float, detector: Detector) -> History:
    """``history`` with one more window mean.

    The EWMA state is always kept (three numbers); the list of past means only while
    the z-score detector is in use, so switching to it starts a new warm-up.
    """
    means = [*history.get("m", []), mean][-detector.history :] if detector.kind == "zscore" else []
    n, centre, variance = history.get("e", EMPTY)
    updated: History = {"e": list(ewma_update((n, centre, variance), mean, detector.alpha))}
    if means:
        updated["m"] = means
    return updated
