"""The state directory of ``python -m streams run``, and when the launcher may empty it.

A fresh embedded broker needs a fresh state directory (see streams/launcher.py), so
the launcher empties it at each start. But ``STATE_DIR`` and ``--state-dir`` accept any
path, and a user who points them at a home or a project directory must not lose it. So
the launcher empties only a directory it marked as its own: it writes a marker file
into every state directory it creates or finds empty, and refuses to start (before
starting anything) when the directory exists, holds anything and has no marker. A
state directory left by a version that wrote no marker is refused too, once: the
message says how to remove it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

MARKER = ".streams-state"
MARKER_TEXT = (
    "This directory was created by `python -m streams run` (make run), which deletes\n"
    "everything in it at each start on the embedded broker. Delete this file to stop it.\n"
)


class StateDirRefused(Exception):
    """The state directory is not one the launcher created; nothing was deleted."""


def is_marked(state_dir: Path) -> bool:
    return (state_dir / MARKER).is_file()


def is_foreign(state_dir: Path) -> bool:
    """True when emptying ``state_dir`` could delete something the launcher did not create."""
    if not state_dir.exists():
        return False
    if not state_dir.is_dir():
        return True
    return not is_marked(state_dir) and any(state_dir.iterdir())


def prepare(state_dir: Path, *, fresh: bool) -> None:
    """Create and mark ``state_dir``; with ``fresh``, empty it, or refuse if it is foreign."""
    if state_dir.exists() and not state_dir.is_dir():
        raise StateDirRefused(f"the state directory {state_dir} is a file, not a directory")
    if fresh and is_foreign(state_dir):
        raise StateDirRefused(
            f"refusing to empty the state directory {state_dir}: it is not empty and has no "
            f"{MARKER} file, so make run did not create it. Point STATE_DIR (--state-dir) at "
            "a new or empty directory, or, if it is the state of an older make run, delete "
            f"it yourself (make clean, or rm -r {state_dir})."
        )
    state_dir.mkdir(parents=True, exist_ok=True)
    if fresh:
        for entry in state_dir.iterdir():
            if entry.name == MARKER:
                continue
            # A symbolic link is removed, never followed: what it points at is not ours.
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    # With an external Kafka an unmarked directory is kept and used, never marked: a
    # later run on the embedded broker must still refuse to empty it.
    if not is_marked(state_dir) and not any(state_dir.iterdir()):
        (state_dir / MARKER).write_text(MARKER_TEXT)
