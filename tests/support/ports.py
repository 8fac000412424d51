"""TCP ports for the servers the tests start, never handed to two test processes at once.

``streams.common.broker.free_port`` asks the OS for a port that is free *now*; the server
it is for binds it only seconds later (a worker binds its web port after its imports).
The suite runs in several processes (pytest-xdist) and a developer may run it twice at
once: in that gap another test process could be handed the same port, and its server
would then fail to bind, or worse, a test would talk to another test's server. Every
port handed out here is written to a machine-wide registry (a file under an exclusive
lock) and not handed out again by any test process for ``HOLD_SECONDS``.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from pathlib import Path

from streams.common import broker

#: Long enough for any test to start (and restart) the servers it picked ports for.
HOLD_SECONDS = 600.0
REGISTRY = Path(tempfile.gettempdir()) / f"streams-test-ports-{os.getuid()}"


def free_port() -> int:
    """A port free now on 127.0.0.1 that no test process was handed in the last
    ``HOLD_SECONDS``."""
    with REGISTRY.open("a+") as registry:
        fcntl.flock(registry, fcntl.LOCK_EX)  # released when the file is closed
        registry.seek(0)
        now = time.time()
        held: dict[int, float] = {}
        for line in registry.read().splitlines():
            number, _, at = line.partition(" ")
            try:
                if now - float(at) < HOLD_SECONDS:
                    held[int(number)] = float(at)
            except ValueError:
                continue  # a line cut short by a killed writer
        for _ in range(100):
            port = broker.free_port()
            if port not in held:
                break
        else:
            raise RuntimeError(f"no free port outside the {len(held)} held in {REGISTRY}")
        held[port] = now
        registry.seek(0)
        registry.truncate()
        registry.write("".join(f"{p} {at}\n" for p, at in held.items()))
    return port
