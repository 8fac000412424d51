"""A failed batch is tried again until it succeeds or a rebalance takes it away."""

from __future__ import annotations

import asyncio

from streams.common.retry import retry_until_done


class Flaky:
    """An attempt that fails ``failures`` times, then succeeds; counts its calls."""

    def __init__(self, failures: int) -> None:
        self.failures, self.calls = failures, 0

    async def __call__(self) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise OSError(f"failure {self.calls}")


def run(attempt: Flaky, abandon_after: int | None = None) -> tuple[bool, list[float], list[str]]:
    waits: list[float] = []
    errors: list[str] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    def abandon() -> bool:
        return abandon_after is not None and len(waits) >= abandon_after

    done = asyncio.run(
        retry_until_done(
            attempt,
            abandon=abandon,
            on_error=lambda exc, _delay: errors.append(str(exc)),
            first_delay=0.5,
            max_delay=2.0,
            sleep=sleep,
        )
    )
    return done, waits, errors


def test_a_batch_is_retried_with_growing_waits_until_it_succeeds() -> None:
    """Every failure is reported and waited for, the wait doubling up to its cap."""
    attempt = Flaky(failures=4)
    done, waits, errors = run(attempt)
    assert done and attempt.calls == 5
    assert waits == [0.5, 1.0, 2.0, 2.0]
    assert errors == ["failure 1", "failure 2", "failure 3", "failure 4"]


def test_a_batch_that_succeeds_first_time_waits_for_nothing() -> None:
    done, waits, errors = run(Flaky(failures=0))
    assert (done, waits, errors) == (True, [], [])


def test_a_batch_taken_away_by_a_rebalance_is_given_up_not_retried() -> None:
    """Once ``abandon`` says so (a new consumer generation), no further attempt."""
    attempt = Flaky(failures=10)
    done, waits, _errors = run(attempt, abandon_after=2)
    assert not done and attempt.calls == 2 and len(waits) == 2
