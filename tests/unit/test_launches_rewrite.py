"""The worker's debounce: one rewrite for a burst of changes, never starved by a stream."""

from __future__ import annotations

from streams.launches.rewrite import Pauses, Rewriter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_written_once_it_is_quiet() -> None:
    """Changes 0.1 s apart: not due until the table was quiet for the debounce."""
    clock = Clock()
    rewriter = Rewriter(quiet=2.0, longest=30.0, clock=clock)
    for _ in range(10):
        rewriter.changed()
        clock.now += 0.1
    assert not rewriter.due()
    clock.now += 1.9
    assert rewriter.due()


def test_a_steady_stream_is_written_at_the_longest_wait() -> None:
    """A change every second never leaves 2 s of quiet: written 30 s after the first."""
    clock = Clock()
    rewriter = Rewriter(quiet=2.0, longest=30.0, clock=clock)
    while clock.now < 29.5:
        rewriter.changed()
        assert not rewriter.due()
        clock.now += 1.0
    rewriter.changed()
    assert rewriter.due()


def test_a_change_during_a_rewrite_keeps_the_object_stale() -> None:
    """A rewrite that read the table before the last change does not clear it."""
    clock = Clock()
    rewriter = Rewriter(quiet=1.0, longest=30.0, clock=clock)
    rewriter.changed()
    clock.now += 1.0
    seen = rewriter.changes
    rewriter.changed()  # lands while the rewrite uploads
    rewriter.written(seen)
    clock.now += 1.0
    assert rewriter.due()
    rewriter.written(rewriter.changes)
    assert not rewriter.due()


def test_nothing_is_due_without_a_change() -> None:
    """An idle worker never rewrites."""
    clock = Clock()
    rewriter = Rewriter(quiet=1.0, longest=30.0, clock=clock)
    clock.now += 100
    assert not rewriter.due()


def test_a_pause_longer_than_half_a_session_holds_writes_for_a_session() -> None:
    """SIGSTOP for 30 s (session 10 s): no write for 10 s after it resumes, then again."""
    clock = Clock()
    pauses = Pauses(session=10.0, clock=clock)
    assert pauses.may_write()
    clock.now += 0.5
    assert pauses.may_write()
    clock.now += 30.0  # stood still
    assert not pauses.may_write()
    for _ in range(19):
        clock.now += 0.5
        assert not pauses.may_write()
    clock.now += 0.5
    assert pauses.may_write()


def test_short_stalls_and_the_first_look_hold_nothing() -> None:
    """A 4 s stall (under half the session) and a slow start are no pause."""
    clock = Clock()
    clock.now = 1000.0
    pauses = Pauses(session=10.0, clock=clock)
    assert pauses.may_write()
    clock.now += 4.0
    assert pauses.may_write()
