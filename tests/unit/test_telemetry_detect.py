"""Anomaly rules applied to closed windows: thresholds, flat lines, zscore, ewma."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any

import pytest
from pydantic import ValidationError

from streams.telemetry.config import Detector, Flatline, Threshold
from streams.telemetry.detect import (
    History,
    flatline_reason,
    statistical_reason,
    threshold_reasons,
    updated_history,
)
from streams.telemetry.windows import Figures

#: Window means that wobble around 10 by one (population standard deviation ~0.82).
WOBBLE = [10.0, 11.0, 9.0] * 4

ONE_TO_HUNDRED = Figures.of(float(v) for v in range(1, 101))


def history_of(means: Iterable[float], detector: Detector) -> History:
    """The detector history after windows with these means, oldest first."""
    history: History = {}
    for mean in means:
        history = updated_history(history, mean, detector)
    return history


def detector(kind: str, **fields: Any) -> Detector:
    return Detector.model_validate({"kind": kind, "min_windows": 5, "min_std": 0.1, **fields})


def test_threshold_above_checks_the_configured_figure() -> None:
    """A limit on p95 flags a window whose p95 is above it even though its mean is not."""
    assert threshold_reasons(ONE_TO_HUNDRED, Threshold(figure="p95", above=95.0)) == [
        {"kind": "threshold", "figure": "p95", "value": pytest.approx(95.05), "above": 95.0}
    ]
    assert threshold_reasons(ONE_TO_HUNDRED, Threshold(figure="mean", above=95.0)) == []


def test_threshold_below_flags_a_low_figure() -> None:
    """A lower limit flags a window whose figure is under it, and not one at the limit."""
    assert threshold_reasons(ONE_TO_HUNDRED, Threshold(figure="min", below=2.0)) == [
        {"kind": "threshold", "figure": "min", "value": 1.0, "below": 2.0}
    ]
    assert threshold_reasons(ONE_TO_HUNDRED, Threshold(figure="min", below=1.0)) == []


def test_threshold_at_the_limit_or_missing_is_silent() -> None:
    """A figure equal to its upper limit, or a metric without a threshold, raises nothing."""
    assert threshold_reasons(ONE_TO_HUNDRED, Threshold(figure="max", above=100.0)) == []
    assert threshold_reasons(ONE_TO_HUNDRED, None) == []


def test_flatline_needs_min_count_identical_values() -> None:
    """A listed metric flat for min_count readings is flagged; fewer or varied readings are not."""
    flatline = Flatline(min_count=5, metrics=["cpu"])
    assert flatline_reason("cpu", Figures.of([7.0] * 5), flatline) == {
        "kind": "flatline",
        "value": 7.0,
        "count": 5,
    }
    assert flatline_reason("cpu", Figures.of([7.0] * 4), flatline) is None
    assert flatline_reason("cpu", Figures.of([7.0] * 4 + [7.5]), flatline) is None


def test_flatline_only_for_listed_metrics_when_enabled() -> None:
    """A flat metric that is not listed, or any metric with flatline disabled, is not flagged."""
    flat = Figures.of([0.0] * 10)
    assert flatline_reason("errors", flat, Flatline(metrics=["cpu"])) is None
    assert flatline_reason("cpu", flat, Flatline(enabled=False, metrics=["cpu"])) is None


@pytest.mark.parametrize("kind", ["zscore", "ewma"])
def test_statistical_detector_is_silent_during_warm_up(kind: str) -> None:
    """Until min_windows windows of history exist even a huge spike is not flagged."""
    rules = detector(kind)
    assert statistical_reason({}, 1e9, rules) is None
    assert statistical_reason(history_of(WOBBLE[:4], rules), 1e9, rules) is None
    assert statistical_reason(history_of(WOBBLE[:5], rules), 1e9, rules) is not None


@pytest.mark.parametrize("kind", ["zscore", "ewma"])
def test_statistical_detector_flags_spikes_and_drops(kind: str) -> None:
    """A mean far above the history is a spike, far below a drop; a usual mean is neither."""
    rules = detector(kind)
    history = history_of(WOBBLE, rules)
    spike = statistical_reason(history, 30.0, rules)
    drop = statistical_reason(history, -10.0, rules)
    assert spike is not None and drop is not None
    assert (spike["kind"], spike["direction"], spike["mean"]) == (kind, "spike", 30.0)
    assert (drop["kind"], drop["direction"], drop["mean"]) == (kind, "drop", -10.0)
    assert spike["z"] > rules.z and drop["z"] < -rules.z
    assert spike["expected"] == pytest.approx(10.0, abs=0.5)
    assert statistical_reason(history, 11.0, rules) is None


def test_zscore_measures_distance_in_population_deviations() -> None:
    """zscore compares with the mean and population deviation of the past windows."""
    rules = Detector(kind="zscore", z=2.0, min_windows=2, min_std=0.0, min_relative_std=0.0)
    past = [10.0, 12.0] * 5
    history = history_of(past, rules)
    assert statistical_reason(history, 14.0, rules) == {
        "kind": "zscore",
        "z": 3.0,
        "mean": 14.0,
        "expected": statistics.fmean(past),
        "direction": "spike",
    }


def test_a_zscore_that_could_never_start_is_refused() -> None:
    """A history shorter than the warm-up would keep the z-score silent for ever: refused."""
    with pytest.raises(ValidationError, match="min_windows cannot exceed history"):
        detector("zscore", history=3, min_windows=5)


@pytest.mark.parametrize("kind", ["zscore", "ewma"])
def test_min_std_is_a_noise_floor(kind: str) -> None:
    """On a constant series the deviation counts as min_std: small moves pass, large ones flag."""
    rules = detector(kind, z=4.0, min_std=1.0)
    history = history_of([10.0] * 8, rules)
    assert statistical_reason(history, 13.9, rules) is None
    reason = statistical_reason(history, 15.0, rules)
    assert reason is not None and reason["z"] == 5.0


def test_detector_off_never_flags() -> None:
    """With the detector off, no history and no mean raises anything."""
    rules = detector("off")
    assert statistical_reason(history_of(WOBBLE, rules), 1e9, rules) is None
    assert statistical_reason({}, -1e9, rules) is None


def test_history_keeps_the_newest_history_means() -> None:
    """The z-score history keeps the newest ``history`` window means, oldest dropped."""
    means = [float(v) for v in range(12)]
    assert history_of(means, detector("zscore", history=5, min_windows=5))["m"] == means[-5:]
    assert history_of(means, detector("zscore", history=8, min_windows=2))["m"] == means[-8:]


def test_ewma_keeps_no_list_of_means() -> None:
    """With the EWMA detector only three numbers per series are kept, not past means."""
    history = history_of([float(v) for v in range(12)], detector("ewma"))
    assert "m" not in history and len(history["e"]) == 3


def test_ewma_converges_to_a_constant_input() -> None:
    """After a change of level the moving mean reaches the new level and the variance fades."""
    rules = detector("ewma", alpha=0.2)
    history = history_of([0.0, 40.0, -40.0] + [10.0] * 150, rules)
    count, centre, variance = history["e"]
    assert count == 153
    assert centre == pytest.approx(10.0, abs=1e-6)
    assert variance == pytest.approx(0.0, abs=1e-6)
    assert statistical_reason(history, 10.3, rules) is None


def test_ewma_follows_the_exponential_moving_mean() -> None:
    """The moving mean is the textbook recursion: first mean, then alpha towards each new one."""
    rules = detector("ewma", alpha=0.3)
    means = [5.0, 8.0, 2.0, 9.0, 4.0]
    expected = means[0]
    for mean in means[1:]:
        expected += 0.3 * (mean - expected)
    assert history_of(means, rules)["e"][1] == pytest.approx(expected)


@pytest.mark.parametrize("kind", ["zscore", "ewma"])
def test_a_wandering_level_is_not_an_anomaly(kind: str) -> None:
    """A link whose utilization drifts a few percent per window raises nothing."""
    rules = Detector(kind=kind)
    drift = [57.0, 58.1, 56.9, 57.6, 58.4, 57.2, 56.5]
    assert statistical_reason(history_of(drift, rules), 54.6, rules) is None
    assert statistical_reason(history_of(drift, rules), 98.0, rules) is not None
