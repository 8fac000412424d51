"""Keeps the child processes of ``python -m streams run`` running.

A child that exits while the product runs (a crash, a SIGKILL, any exit code, 0
included: every child is meant to run until Ctrl-C) is reported on the console and
started again with the same command and environment, after a backoff: 1 s, doubling
up to 30 s, each delay shortened by up to a fifth at random so that children that died
together do not all come back in the same instant. A child that stayed up for a
minute before it exited starts again from 1 s: it was a new failure, not a crash loop.
The other children keep running throughout; a restarted worker rejoins its consumer
group and recovers its tables as after any restart.

The embedded broker is not one of these children; streams/launcher.py watches it and
explains why its death stops everything.
"""

from __future__ import annotations

import logging
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from streams.processes import Process

log = logging.getLogger("streams")


@dataclass
class RestartRule:
    """When one child may start again; the clock and the randomness are injected."""

    clock: Callable[[], float] = time.monotonic
    rand: Callable[[], float] = random.random
    first_delay: float = 1.0
    max_delay: float = 30.0
    jitter: float = 0.2
    stable_after: float = 60.0
    restarts: int = 0
    _quick_exits: int = field(default=0, repr=False)
    _started_at: float | None = field(default=None, repr=False)

    def started(self) -> None:
        self._started_at = self.clock()

    def uptime(self) -> float:
        return 0.0 if self._started_at is None else self.clock() - self._started_at

    def exited(self) -> float:
        """Record an exit and count the restart to come; the delay before it, in seconds."""
        if self.uptime() >= self.stable_after:
            self._quick_exits = 0
        base = min(self.max_delay, self.first_delay * 2.0**self._quick_exits)
        self._quick_exits += 1
        self.restarts += 1
        self._started_at = None
        # Jitter only shortens, so max_delay stays a true upper bound.
        return base * (1 - self.jitter * self.rand())


class Handle(Protocol):
    """What the supervisor needs of a running child (subprocess.Popen has it)."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None: ...


H = TypeVar("H", bound=Handle)


@dataclass
class Child(Generic[H]):
    process: Process
    handle: H | None  # None while it waits for its restart
    rule: RestartRule
    restart_at: float = 0.0


def describe_exit(code: int) -> str:
    """'killed by SIGKILL' or 'exited with code 1', as a user reads it."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


class Supervisor(Generic[H]):
    """Restarts every child that exits; ``check()`` does one pass, the caller loops."""

    def __init__(
        self,
        start: Callable[[Process], H],
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
        exited: Callable[[Process], None] = lambda _process: None,
    ) -> None:
        self.start = start
        self.exited = exited
        self.clock = clock
        self.rand = rand
        self.children: list[Child[H]] = []

    def add(self, process: Process, handle: H) -> None:
        """Supervise ``process``, already started as ``handle``."""
        rule = RestartRule(clock=self.clock, rand=self.rand)
        rule.started()
        self.children.append(Child(process, handle, rule))

    def check(self) -> None:
        for child in self.children:
            if child.handle is not None:
                code = child.handle.poll()
                if code is not None:
                    self._schedule(child, child.handle.pid, code)
            elif self.clock() >= child.restart_at:
                self._restart(child)

    def _schedule(self, child: Child[H], pid: int, code: int) -> None:
        uptime = child.rule.uptime()
        delay = child.rule.exited()
        child.handle, child.restart_at = None, self.clock() + delay
        self.exited(child.process)
        log.error(
            "%s (pid %s) %s after %.0f s; restart %s in %.1f s (see its log)",
            child.process.name, pid, describe_exit(code), uptime, child.rule.restarts, delay,
        )  # fmt: skip

    def _restart(self, child: Child[H]) -> None:
        try:
            child.handle = self.start(child.process)
        except OSError as exc:  # e.g. out of processes or file descriptors: try later
            delay = child.rule.exited()
            child.restart_at = self.clock() + delay
            log.error("%s could not start (%s); retry in %.1f s", child.process.name, exc, delay)
            return
        child.rule.started()
        log.warning(
            "%s restarted as pid %s (restart %s)",
            child.process.name, child.handle.pid, child.rule.restarts,
        )  # fmt: skip

    def restarts(self) -> dict[str, int]:
        """Restarts so far, by child name."""
        return {c.process.name: c.rule.restarts for c in self.children}
