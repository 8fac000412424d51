"""A child of make run that exits is restarted after a backoff; the others are left alone."""

from __future__ import annotations

import logging
import signal

import pytest

from streams.processes import Process
from streams.supervisor import RestartRule, Supervisor, describe_exit


class Clock:
    """A clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeChild:
    """A running child whose exit the test decides."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.code: int | None = None

    def poll(self) -> int | None:
        return self.code


def delays(rule: RestartRule, clock: Clock, exits: int, uptime: float = 0.0) -> list[float]:
    out = []
    for _ in range(exits):
        rule.started()
        clock.now += uptime
        out.append(rule.exited())
    return out


def test_delays_double_from_one_second_up_to_thirty() -> None:
    """Without jitter, a child that keeps crashing waits 1, 2, 4, 8, 16 then 30 s each time."""
    clock = Clock()
    rule = RestartRule(clock=clock, rand=lambda: 0.0)
    assert delays(rule, clock, 8) == [1, 2, 4, 8, 16, 30, 30, 30]
    assert rule.restarts == 8


def test_jitter_only_shortens_a_delay_by_up_to_a_fifth() -> None:
    """With the most jitter, each delay is 80% of the plain one, never above the 30 s cap."""
    clock = Clock()
    rule = RestartRule(clock=clock, rand=lambda: 1.0)
    assert delays(rule, clock, 7) == pytest.approx([0.8, 1.6, 3.2, 6.4, 12.8, 24, 24])


def test_a_child_that_stayed_up_a_minute_starts_again_from_one_second() -> None:
    """Backoff resets after a minute of uptime, while the restart count keeps growing."""
    clock = Clock()
    rule = RestartRule(clock=clock, rand=lambda: 0.0)
    assert delays(rule, clock, 4, uptime=5) == [1, 2, 4, 8]
    assert delays(rule, clock, 2, uptime=60) == [1, 1]
    assert delays(rule, clock, 1, uptime=59) == [2]
    assert rule.restarts == 7


def test_exits_are_described_by_signal_name_or_code() -> None:
    """The console says 'killed by SIGKILL' for a signal and 'exited with code 3' otherwise."""
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL"
    assert describe_exit(3) == "exited with code 3"
    assert describe_exit(0) == "exited with code 0"


def test_only_the_exited_child_is_restarted_after_its_delay(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A killed worker is reported, started again once its delay has passed, and its
    neighbour keeps its process."""
    clock, pids = Clock(), iter(range(200, 300))
    started: list[str] = []
    exited: list[str] = []

    def start(process: Process) -> FakeChild:
        started.append(process.name)
        return FakeChild(next(pids))

    supervisor = Supervisor(
        start, clock=clock, rand=lambda: 0.0, exited=lambda p: exited.append(p.name)
    )
    worker, ingest = FakeChild(101), FakeChild(102)
    supervisor.add(Process("orders-worker0", ("-m", "x"), port=6066), worker)
    supervisor.add(Process("telemetry-ingest", ("-m", "y"), port=6070), ingest)

    clock.now += 10
    worker.code = -signal.SIGKILL
    with caplog.at_level(logging.INFO, logger="streams"):
        supervisor.check()
        clock.now += 0.5
        supervisor.check()
        assert started == [], "restarted before its delay"
        clock.now += 0.5
        supervisor.check()
    assert started == ["orders-worker0"]
    assert exited == ["orders-worker0"]
    handles = {c.process.name: c.handle for c in supervisor.children}
    assert handles["telemetry-ingest"] is ingest
    assert handles["orders-worker0"] is not None and handles["orders-worker0"].pid == 200
    assert supervisor.restarts() == {"orders-worker0": 1, "telemetry-ingest": 0}
    report = caplog.text
    assert "orders-worker0 (pid 101) killed by SIGKILL after 10 s; restart 1 in 1.0 s" in report
    assert "orders-worker0 restarted as pid 200 (restart 1)" in report


def test_a_child_that_exits_cleanly_is_restarted_too() -> None:
    """Every child runs until Ctrl-C, so an exit with code 0 is a failure to repair."""
    clock = Clock()
    supervisor = Supervisor(lambda p: FakeChild(7), clock=clock, rand=lambda: 0.0)
    producer = FakeChild(5)
    supervisor.add(Process("orders-producer", ("-m", "producers")), producer)
    producer.code = 0
    supervisor.check()
    clock.now += 1
    supervisor.check()
    assert [c.handle.pid for c in supervisor.children if c.handle] == [7]


def test_a_child_that_cannot_start_is_tried_again_later() -> None:
    """An error starting the process (say, no file descriptors left) schedules another try."""
    clock, attempts = Clock(), []

    def start(process: Process) -> FakeChild:
        attempts.append(clock.now)
        if len(attempts) == 1:
            raise OSError("too many open files")
        return FakeChild(9)

    supervisor = Supervisor(start, clock=clock, rand=lambda: 0.0)
    child = FakeChild(1)
    supervisor.add(Process("telemetry-worker0", ("-m", "z"), port=6071), child)
    child.code = 1
    for _ in range(4):
        supervisor.check()
        clock.now += 1
    assert [c.handle.pid for c in supervisor.children if c.handle] == [9]
    assert attempts[1] - attempts[0] >= 2, "the second try waits the doubled delay"
