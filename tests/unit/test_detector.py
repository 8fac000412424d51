"""The shared spike-and-drop detector: one number at a time and whole columns agree exactly."""

from __future__ import annotations

import random

import numpy as np
import pytest

from streams.common.detector import (
    EMPTY,
    Ewma,
    Floor,
    direction,
    ewma_memory,
    ewma_update,
    ewma_update_columns,
    ewma_zscore,
    ewma_zscores,
    is_anomalous,
    noise_floor,
    noise_floors,
    past_stats,
    zscore,
)

FLOORS = [Floor(), Floor(relative=0.1), Floor(relative=0.1, poisson=True), Floor(1e-12, 0.1)]


def random_series(rng: random.Random, length: int) -> list[float]:
    """Values at a random level and scale, with zeros of both signs and rare outliers."""
    level, scale = rng.choice([0.0, 1.0, 50.0, 1e6]), rng.choice([0.0, 0.01, 3.0, 1e4])
    values = []
    for _ in range(length):
        value = level + rng.gauss(0, scale) + (rng.random() < 0.05) * 40 * (scale + 1)
        values.append(rng.choice([0.0, -0.0]) if rng.random() < 0.05 else value)
    return values


def bits(values: list[float]) -> list[str]:
    return [float(v).hex() for v in values]


@pytest.mark.parametrize("alpha", [0.3, 0.05, 1.0])
def test_columns_update_and_score_exactly_as_one_series_at_a_time(alpha: float) -> None:
    """Many series updated and scored as columns give bit for bit the states and
    z-scores of each series on its own, with every floor."""
    rng = random.Random(alpha)
    series = [random_series(rng, 60) for _ in range(40)]
    states: list[Ewma] = [EMPTY] * len(series)
    n = np.zeros(len(series), dtype=np.int64)
    mean, variance = np.zeros(len(series)), np.zeros(len(series))
    for step in range(60):
        x = np.array([values[step] for values in series])
        for floor in FLOORS:
            expected = [ewma_zscore(s, float(v), floor) for s, v in zip(states, x, strict=True)]
            assert bits(ewma_zscores(mean, variance, x, floor).tolist()) == bits(expected)
        n, mean, variance = ewma_update_columns(n, mean, variance, x, alpha)
        states = [ewma_update(s, float(v), alpha) for s, v in zip(states, x, strict=True)]
        assert n.tolist() == [s[0] for s in states]
        assert bits(mean.tolist()) == bits([s[1] for s in states])
        assert bits(variance.tolist()) == bits([s[2] for s in states])


def test_noise_floors_of_columns_equal_each_floor() -> None:
    """The floor of every column position is the scalar floor of that level, bit for bit."""
    levels = random_series(random.Random(5), 500)
    for floor in FLOORS:
        expected = [noise_floor(level, floor) for level in levels]
        assert bits(noise_floors(np.array(levels), floor).tolist()) == bits(expected)


def test_both_variance_forms_of_the_former_copies_are_the_same_number() -> None:
    """The orders form (1 - a) * (v + a * d * d) and the telemetry form
    (1 - a) * (v + d * (a * d)) give the same bits, so either pipeline may use the other's."""
    rng = random.Random(7)
    for _ in range(100_000):
        a, d, v = rng.random(), rng.uniform(-1e6, 1e6), rng.uniform(0, 1e9)
        assert (1 - a) * (v + a * d * d) == (1 - a) * (v + d * (a * d))


def test_ewma_starts_at_the_first_value_then_moves_alpha_towards_each() -> None:
    """The first observation is the mean with no variance; later ones pull it by alpha."""
    state = ewma_update(EMPTY, 10.0, 0.3)
    assert state == (1, 10.0, 0.0)
    n, mean, variance = ewma_update(state, 20.0, 0.3)
    assert n == 2 and mean == pytest.approx(13.0)
    assert variance == pytest.approx(0.7 * 0.3 * 100.0)


@pytest.mark.parametrize("alpha", [0.3, 0.05, 0.5, 0.99])
def test_ewma_memory_is_where_the_start_is_forgotten(alpha: float) -> None:
    """After ewma_memory observations the starting point weighs under the bound, one
    fewer and it does not; two EWMAs started apart then agree to that precision."""
    k = ewma_memory(alpha, 1e-9)
    assert (1 - alpha) ** k <= 1e-9 < (1 - alpha) ** (k - 1)
    values = random_series(random.Random(3), k + 50)
    values = [abs(v) + 100.0 for v in values]
    early, late = ewma_update(EMPTY, 5000.0, alpha), EMPTY
    for value in values:
        early, late = ewma_update(early, value, alpha), ewma_update(late, value, alpha)
    assert late[1] == pytest.approx(early[1], rel=1e-6)


def test_zscore_uses_the_floor_and_is_zero_without_any_level() -> None:
    """A steady history scores against the floor; with no level and no floor, nothing scores."""
    assert zscore(13.0, 10.0, 0.0, Floor(relative=0.1)) == pytest.approx(3.0)
    assert zscore(25.0, 16.0, 0.0, Floor(relative=0.1, poisson=True)) == pytest.approx(2.25)
    assert zscore(5.0, 0.0, 0.0, Floor(relative=0.1, poisson=True)) == 0.0
    assert zscore(5.0, 0.0, 0.0, Floor(absolute=1.0)) == 5.0


def test_past_stats_are_the_mean_and_population_deviation() -> None:
    """The z-score detector's centre and spread of [10, 12] * 5 are 11 and 1."""
    assert past_stats([10.0, 12.0] * 5) == (11.0, 1.0)


def test_decision_is_strictly_beyond_the_limit_either_way() -> None:
    """A z-score past the limit is anomalous, a spike when positive and a drop when
    negative; one at the limit, or undefined, is not."""
    assert is_anomalous(3.01, 3.0) and is_anomalous(-3.01, 3.0)
    assert not is_anomalous(3.0, 3.0) and not is_anomalous(float("nan"), 3.0)
    assert is_anomalous(np.array([3.01, -4.0, 3.0, np.nan]), 3.0).tolist() == [
        True,
        True,
        False,
        False,
    ]
    assert (direction(3.5), direction(-3.5)) == ("spike", "drop")
