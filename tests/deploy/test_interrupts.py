"""A deploy's exit code survives a second signal that arrives after it handled the first."""

import signal
import subprocess
import sys

import pytest

# The deploy's shape: the first signal raises inside the context and is answered with a
# failure line; the second arrives once that is done, as CI saw it once (a SIGTERM that
# killed the deploy after it had printed "interrupted"), and then the process exits 3.
LATE_SECOND_SIGNAL = """
import os, signal, sys
from deploy.output import interrupts_raised
first, second = signal.Signals[sys.argv[1]], signal.Signals[sys.argv[2]]
with interrupts_raised():
    try:
        os.kill(os.getpid(), first)
        signal.pause()
    except KeyboardInterrupt:
        print("interrupted", flush=True)
os.kill(os.getpid(), second)
print("exiting", flush=True)
sys.exit(3)
"""


@pytest.mark.parametrize(
    ("first", "second"), [("SIGINT", "SIGTERM"), ("SIGTERM", "SIGINT"), ("SIGINT", "SIGINT")]
)
def test_a_signal_after_the_handled_one_keeps_the_exit_code(first: str, second: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", LATE_SECOND_SIGNAL, first, second],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (done.returncode, done.stdout) == (3, "interrupted\nexiting\n"), done.stderr
    assert "Traceback" not in done.stderr


def test_without_a_signal_the_previous_handlers_come_back() -> None:
    from deploy.output import interrupts_raised

    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    with interrupts_raised():
        assert signal.getsignal(signal.SIGTERM) is not before[signal.SIGTERM]
    assert {sig: signal.getsignal(sig) for sig in before} == before
