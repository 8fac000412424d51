"""make run empties only a state directory it created itself; any other it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.state_dir import MARKER, StateDirRefused, prepare


def test_a_missing_directory_is_created_and_marked(tmp_path: Path) -> None:
    """The first run creates the state directory with its marker file."""
    state = tmp_path / "var"
    prepare(state, fresh=True)
    assert [p.name for p in state.iterdir()] == [MARKER]


def test_an_empty_directory_is_adopted(tmp_path: Path) -> None:
    """An existing empty directory is used and marked: there is nothing in it to lose."""
    prepare(tmp_path, fresh=True)
    assert (tmp_path / MARKER).is_file()


def test_a_marked_directory_is_emptied_for_a_fresh_broker(tmp_path: Path) -> None:
    """The previous run's state goes, the marker stays, a symlink's target is untouched."""
    state, outside = tmp_path / "var", tmp_path / "keep"
    outside.mkdir()
    (outside / "precious.txt").write_text("mine")
    prepare(state, fresh=True)
    (state / "worker0" / "tables").mkdir(parents=True)
    (state / "logs.txt").write_text("old")
    (state / "link").symlink_to(outside)
    prepare(state, fresh=True)
    assert [p.name for p in state.iterdir()] == [MARKER]
    assert (outside / "precious.txt").read_text() == "mine"


def test_an_unmarked_directory_with_files_is_refused_and_kept(tmp_path: Path) -> None:
    """A home or project directory given as STATE_DIR is refused, with nothing deleted."""
    (tmp_path / "notes.md").write_text("mine")
    with pytest.raises(StateDirRefused, match=f"no {MARKER} file"):
        prepare(tmp_path, fresh=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.md"]


def test_a_file_is_refused_as_state_directory(tmp_path: Path) -> None:
    """A STATE_DIR that names a file is refused in either mode, and the file is kept."""
    state = tmp_path / "var"
    state.write_text("mine")
    for fresh in (True, False):
        with pytest.raises(StateDirRefused, match="is a file"):
            prepare(state, fresh=fresh)
    assert state.read_text() == "mine"


def test_an_external_kafka_keeps_an_unmarked_directory_unmarked(tmp_path: Path) -> None:
    """With an external Kafka nothing is deleted, and the directory does not become
    deletable by a later run on the embedded broker."""
    (tmp_path / "worker0").mkdir()
    prepare(tmp_path, fresh=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["worker0"]
    with pytest.raises(StateDirRefused):
        prepare(tmp_path, fresh=True)


def test_an_external_kafka_keeps_the_contents_of_a_marked_directory(tmp_path: Path) -> None:
    """Tables kept for a real Kafka survive the next run."""
    prepare(tmp_path, fresh=True)
    (tmp_path / "worker0").mkdir()
    prepare(tmp_path, fresh=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([MARKER, "worker0"])
