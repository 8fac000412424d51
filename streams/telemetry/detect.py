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
"""

from __future__ import annotations

import math
from typing import Any

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


def statistical_reason(history: History, mean: float, detector: Detector) -> Reason | None:
    """Whether ``mean`` strays more than ``detector.z`` deviations from ``history``."""
    if detector.kind == "off":
        return None
    if detector.kind == "zscore":
        past = history.get("m", [])[-detector.history :]
        if len(past) < detector.min_windows:
            return None
        centre = math.fsum(past) / len(past)
        spread = math.sqrt(math.fsum((x - centre) ** 2 for x in past) / len(past))
    else:
        n, centre, variance = history.get("e", (0, 0.0, 0.0))
        if n < detector.min_windows:
            return None
        spread = math.sqrt(variance)
    floor = max(detector.min_std, detector.min_relative_std * abs(centre), 1e-12)
    z = (mean - centre) / max(spread, floor)
    if abs(z) <= detector.z:
        return None
    return {
        "kind": detector.kind,
        "z": round(z, 3),
        "mean": mean,
        "expected": round(centre, 6),
        "direction": "spike" if z > 0 else "drop",
    }


def updated_history(history: History, mean: float, detector: Detector) -> History:
    """``history`` with one more window mean.

    The EWMA state is always kept (three numbers); the list of past means only while
    the z-score detector is in use, so switching to it starts a new warm-up.
    """
    means = [*history.get("m", []), mean][-detector.history :] if detector.kind == "zscore" else []
    n, centre, variance = history.get("e", (0, 0.0, 0.0))
    if n == 0:
        centre, variance = mean, 0.0
    else:
        diff = mean - centre
        step = detector.alpha * diff
        centre += step
        variance = (1 - detector.alpha) * (variance + diff * step)
    updated: History = {"e": [n + 1, centre, variance]}
    if means:
        updated["m"] = means
    return updated
