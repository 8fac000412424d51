"""The benchmarks' steady rate: a counter moving once per batch still gives its rate."""

from __future__ import annotations

import pytest

from bench.pipeline import steady_rate


def test_a_smooth_counter_gives_its_rate() -> None:
    samples = [(t / 10, 1_000.0 * t / 10) for t in range(200)]  # polled every 0.1 s
    assert steady_rate(samples) == pytest.approx(1_000.0)


def test_a_counter_moving_once_per_two_second_batch_gives_its_rate() -> None:
    """400,000 readings every 2 s, polled every 0.2 s: 200,000/s. Windows of 1 s hold
    a whole step or none, so their median was 0 or twice the rate (400,000 here)."""
    samples = [(t * 0.2, 400_000.0 * (int(t * 0.2) // 2)) for t in range(150)]
    assert steady_rate(samples) == pytest.approx(200_000.0, rel=0.05)
