"""The edges every deploy command shares: what it prints, the exit codes it ends with,
its settings refused before any call (the region and the default image tag among them),
and SIGINT and SIGTERM.

:class:`Output` writes what the command does (``deploy: ...`` on stdout), a dry run's
calls, the job's logs, and warnings and failures (``deploy: warning: ...``,
``deploy: failed: ...`` on stderr). :class:`SettingsParser` is argparse ending in that
failure line and exit 2; :func:`interrupts_raised` turns both signals into
KeyboardInterrupt, so a command can clean up what it started.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import NoReturn

import boto3
from botocore.exceptions import BotoCoreError

#: Exit codes: the job and the check passed; the job or the check failed (for services:
#: their rollout failed); an invalid setting; a deploy step failed (an AWS, docker or
#: terraform error, a timeout, an interrupt); no Docker engine to build an image that is
#: not in the registry yet.
OK, FAILED, INVALID, STEP_FAILED, NO_DOCKER = 0, 1, 2, 3, 4

REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")


class Output:
    """The command's output: what it does, a dry run's calls, the job's logs, errors."""

    def __init__(self, dry_run: bool) -> None:
        self.dry_run = dry_run

    def call(self, line: str) -> None:
        self.line(line)

    def step(self, message: str) -> None:
        if not self.dry_run:  # a dry run looks nothing up: it has no outcome to tell
            self.line(f"deploy: {message}")

    def note(self, message: str) -> None:
        self.line(f"deploy: {message}")

    def warn(self, message: str) -> None:
        sys.stderr.write(f"deploy: warning: {' '.join(message.split())}\n")
        sys.stderr.flush()

    @staticmethod
    def error(message: str) -> None:
        sys.stderr.write(f"deploy: failed: {' '.join(message.split())}\n")
        sys.stderr.flush()

    @staticmethod
    def line(text: str) -> None:
        # Flushed: a subprocess (docker, terraform, the check) writes to the same stdout next.
        sys.stdout.write(f"{text}\n")
        sys.stdout.flush()


# --- settings -------------------------------------------------------------------------


class InvalidSetting(Exception):
    """A setting refused before any call; the message is the one-line reason."""


class SettingsParser(argparse.ArgumentParser):
    """argparse whose own errors (an unknown flag, a missing value) end as every refused
    setting does: its usage, then one ``deploy: failed:`` line, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        Output.error(message)
        sys.exit(INVALID)


def positive_seconds(flag: str, text: str) -> float:
    """``text`` as a finite positive number of seconds; else InvalidSetting naming ``flag``."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise InvalidSetting(f"{flag} must be a finite positive number of seconds, not {text!r}")
    return seconds


def region_setting(given: str | None) -> str:
    """The region: ``given`` (a flag), else where every AWS tool takes it from; refused
    (InvalidSetting) when there is none or it is not shaped like one. No default: a
    guessed region would fail late, or create things where nobody looks for them."""
    try:
        profile_region = boto3.Session().region_name
    except BotoCoreError as exc:  # e.g. AWS_PROFILE names no profile
        raise InvalidSetting(f"AWS configuration: {exc}") from exc
    region = (
        given
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or profile_region
    )
    if not region:
        raise InvalidSetting("no AWS region: pass --region or set AWS_REGION")
    if not REGION.fullmatch(region):
        raise InvalidSetting(f"--region {region!r} is not an AWS region (like eu-west-1)")
    return region


@dataclass(frozen=True)
class Commit:
    sha: str
    dirty: bool  # uncommitted changes, untracked files included: the sha does not name them


def git_commit(root: Path) -> Commit | None:
    """The checkout's commit, the default image tag; None outside a git checkout."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root, capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
        status = subprocess.run(
            ["git", "status", "--porcelain"],
            cwd=root, capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    if sha.returncode != 0 or not sha.stdout.strip() or status.returncode != 0:
        return None
    return Commit(sha.stdout.strip(), bool(status.stdout.strip()))


# --- signals --------------------------------------------------------------------------


INTERRUPTS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def interrupts_raised() -> Iterator[None]:
    """SIGINT and SIGTERM raise KeyboardInterrupt (even where inherited as ignored), so
    the deploy can stop what it started; the previous handlers are restored after,
    unless one was heard: the process is then on its way out with its exit code, and a
    second signal sent just after the first (CI measured one arriving once the deploy
    had printed its failure) must not turn that code into a kill by the signal."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in INTERRUPTS}
    _heard.clear()
    raise_next_interrupt()
    try:
        yield
    finally:
        if _heard:
            ignore_interrupts()
        else:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def raise_next_interrupt() -> None:
    """The next SIGINT or SIGTERM raises KeyboardInterrupt, and only that one: a second
    signal (Ctrl-C pressed twice, a SIGTERM after it) must not cut short the handling of
    the first. Whoever handles it may call this again to hear the next."""
    if threading.current_thread() is threading.main_thread():
        for sig in INTERRUPTS:
            signal.signal(sig, _raise_once)


#: The signals heard since :func:`interrupts_raised` began (signals are the process's).
_heard: list[int] = []


def _raise_once(signum: int, frame: FrameType | None) -> None:
    _heard.append(signum)
    ignore_interrupts()
    raise KeyboardInterrupt


def ignore_interrupts() -> None:
    """While a deploy cleans up: a second Ctrl-C must not cut the clean-up short. A
    handler that does nothing, not SIG_IGN: a signal already received but not yet
    handled would then make Python print "ignored due to race condition"."""
    if threading.current_thread() is threading.main_thread():
        for sig in INTERRUPTS:
            signal.signal(sig, _swallow)


def _swallow(signum: int, frame: FrameType | None) -> None:
    pass
