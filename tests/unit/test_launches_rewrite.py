"""The worker's debounce: one rewrite for a burst of changes, never starved by a stream."""

from __future__ import annotations

import asyncio

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


class Group:
    """The coordinator's answers to membership heartbeats, in turn; each takes
    ``delay`` seconds of the clock."""

    def __init__(self, clock: Clock, answers: list[bool], delay: float = 0.0) -> None:
        self.clock, self.answers, self.delay, self.asked = clock, answers, delay, 0

    async def member(self) -> bool:
        self.asked += 1
        self.clock.now += self.delay
        return self.answers.pop(0)


def looks(pauses: Pauses) -> bool:
    return asyncio.run(pauses.may_write())


def test_a_pause_holds_writes_until_the_coordinator_accepts_a_heartbeat() -> None:
    """SIGSTOP for 30 s (session 10 s): refused heartbeats hold writes, however long
    after the session (what a fixed wait let through); the first accepted ends it."""
    clock = Clock()
    group = Group(clock, [False] * 40 + [True])
    pauses = Pauses(session=10.0, member=group.member, clock=clock)
    assert looks(pauses)
    clock.now += 0.5
    assert looks(pauses)
    assert group.asked == 0  # no pause: the coordinator is not asked
    clock.now += 30.0  # stood still
    for _ in range(40):
        assert not looks(pauses)
        clock.now += 0.5
    assert looks(pauses)
    assert looks(pauses)
    assert group.asked == 41


def test_an_answer_slow_enough_to_hide_another_pause_proves_nothing() -> None:
    """Accepted, but the answer came 6 s later (the process may have stood still again
    after it was sent): still held, asked again."""
    clock = Clock()
    group = Group(clock, [True, True], delay=6.0)
    pauses = Pauses(session=10.0, member=group.member, clock=clock)
    assert looks(pauses)
    clock.now += 30.0
    assert not looks(pauses)
    group.delay = 0.1
    clock.now += 0.5
    assert looks(pauses)


async def never_asked() -> bool:
    raise AssertionError("membership asked without a pause")


def test_short_stalls_and_the_first_look_hold_nothing() -> None:
    """A 4 s stall (under half the session) and a slow start are no pause."""
    clock = Clock()
    clock.now = 1000.0
    pauses = Pauses(session=10.0, member=never_asked, clock=clock)
    assert looks(pauses)
    clock.now += 4.0
    assert looks(pauses)
