"""What a deploy command prints, and the exit codes it ends with.

:class:`Output` writes what the command does (``deploy: ...`` on stdout), a dry run's
calls, the job's logs, and warnings and failures (``deploy: warning: ...``,
``deploy: failed: ...`` on stderr).
"""

from __future__ import annotations

import sys

#: Exit codes: the job and the check passed; the job or the check failed; an invalid
#: setting; a deploy step failed (an AWS or docker error, a timeout, an interrupt).
OK, FAILED, INVALID, STEP_FAILED = 0, 1, 2, 3


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
        # Flushed: a subprocess (docker, the check) writes to the same stdout next.
        sys.stdout.write(f"{text}\n")
        sys.stdout.flush()
