"""A window's figures and rules on whole columns equal the per-series definitions exactly.

columns.py and history.py compute what windows.Figures.of and the rules of detect.py
define, for every series of a window at once. These tests run both on random windows
and compare results bit for bit: figures, the alerts' reasons and the history kept.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from streams.telemetry.columns import SeriesFigures
from streams.telemetry.config import Detector, Flatline, TelemetryConfig, Threshold
from streams.telemetry.detect import (
    flatline_reason,
    statistical_reason,
    threshold_reasons,
    updated_history,
)
from streams.telemetry.history import SeriesHistory, flagged
from streams.telemetry.windows import Figures, series_values

METRICS = ("utilization", "errors", "latency_ms", "cpu")
INTERFACES = ("eth0", "eth1", "chassis")
SERIES = [(i, m) for i in INTERFACES for m in METRICS]


def random_window(rng: random.Random, polls: int, *, alike: bool) -> list[list[dict[str, Any]]]:
    """A window's chunks: ``polls`` groups, each one poll of a random set of series."""
    layout = rng.sample(SERIES, rng.randint(1, len(SERIES)))
    level = rng.choice([0.0, 5.0, 50.0, 1e6])
    groups = []
    for seq in range(polls):
        series = layout if alike else rng.sample(SERIES, rng.randint(1, len(SERIES)))
        spike = 40.0 * level + 100 if rng.random() < 0.15 else 0.0
        flat = rng.random() < 0.2
        digits = rng.randint(0, 6)
        rows = [
            (i, m, level if flat else round(level + spike + rng.gauss(0, 3), digits), 0, seq)
            for i, m in series
        ]
        if rng.random() < 0.2:  # zeros of both signs: equal, yet printed differently
            rows = [(i, m, rng.choice([0.0, -0.0]), ts, s) for i, m, _v, ts, s in rows]
        groups.append({"readings": rows})
    # Groups split over chunks the way batches split them.
    cut = rng.randint(0, polls)
    return [groups[:cut], groups[cut:]]


def rules(
    figures: Figures, metric: str, past: dict[str, Any], config: TelemetryConfig
) -> list[Any]:
    reasons = threshold_reasons(figures, config.thresholds.get(metric))
    flat = flatline_reason(metric, figures, config.flatline)
    unusual = statistical_reason(past, figures.mean, config.detector)
    return reasons + [r for r in (flat, unusual) if r is not None]


def bits(figures: Figures) -> tuple[str, ...]:
    """Figures as their exact representations: 0.0 and -0.0, 5 and 5.0 differ here."""
    return tuple(repr(getattr(figures, name)) for name in ("count", "min", "max", "mean", "p95"))


def config_for(rng: random.Random, kind: str) -> TelemetryConfig:
    figure = rng.choice(["min", "max", "mean", "p95"])
    return TelemetryConfig(
        thresholds={
            "utilization": Threshold(figure=figure, above=rng.choice([20.0, 60.0, 1e5])),
            "errors": Threshold(figure="p95", below=rng.choice([-1.0, 2.0, 45.0])),
            "latency_ms": Threshold(figure="max", above=55.0, below=-5.0),
        },
        flatline=Flatline(min_count=3, metrics=["cpu", "utilization"]),
        detector=Detector(kind=kind, min_windows=2, z=rng.choice([1.0, 3.0]), history=4),
    )


@pytest.mark.parametrize("alike", [True, False])
def test_figures_of_every_series_equal_the_per_series_figures(alike: bool) -> None:
    """count, min, max, mean and p95 of each series, in series order, bit for bit."""
    rng = random.Random(11 if alike else 12)
    for _ in range(300):
        # Up to 40 polls: numpy sorts short and long columns with different algorithms.
        values = series_values(random_window(rng, rng.randint(1, 40), alike=alike))
        figures = SeriesFigures.of(values)
        expected = sorted((key, bits(Figures.of(v))) for key, v in values.as_dict().items())
        found = [
            ((figures.interfaces[i], figures.metrics[i]), bits(figures.at(i)))
            for i in range(len(figures))
        ]
        assert found == expected
        if alike:
            assert values.polls is not None  # the table path was the one compared


@pytest.mark.parametrize("kind", ["ewma", "zscore", "off", "switched"])
def test_alerts_and_history_equal_the_per_series_rules(kind: str) -> None:
    """Over a device's windows, the series screened and checked alert with exactly the
    reasons the per-series rules give, and the history kept is the same; "switched"
    changes the detector's kind between windows, as a live config change does."""
    rng = random.Random(kind)
    flagged_any = 0
    for _ in range(40):
        config = config_for(rng, "ewma" if kind == "switched" else kind)
        history, scalar = SeriesHistory(), dict[str, Any]()
        for _ in range(12):
            if kind == "switched":
                config = config_for(rng, rng.choice(["ewma", "zscore", "off"]))
            values = series_values(random_window(rng, rng.randint(1, 8), alike=rng.random() < 0.7))
            figures = SeriesFigures.of(values)
            positions = history.positions(figures.names())
            found = {}
            for i in flagged(figures, history, positions, config):
                past = history.past(int(positions[i]))
                reasons = rules(figures.at(i), figures.metrics[i], past, config)
                if reasons:
                    found[figures.names()[i]] = reasons
            history.update(positions, figures.mean, config.detector)
            expected = {}
            for (interface, metric), v in sorted(values.as_dict().items()):
                name = f"{interface}|{metric}"
                each = Figures.of(v)
                reasons = rules(each, metric, scalar.get(name) or {}, config)
                if reasons:
                    expected[name] = reasons
                scalar[name] = updated_history(scalar.get(name) or {}, each.mean, config.detector)
            assert found == expected
            flagged_any += len(found)
            assert SeriesHistory.load(history.dump()).dump() == SeriesHistory.load(scalar).dump()
    assert flagged_any > 50  # the rules did fire: the comparison is not between silences
