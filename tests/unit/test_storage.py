"""Atomic puts and filesystems of streams.common.storage, on a local directory."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import BinaryIO

import pyarrow.fs as pafs
import pytest

from streams.common import storage


def files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_put_bytes_writes_and_replaces_a_file_leaving_nothing_else(tmp_path: Path) -> None:
    """Putting bytes creates the file (and its directory), a second put replaces it,
    and no temporary file remains."""
    fs, root = storage.open_filesystem(str(tmp_path / "store"))
    path = f"{root}/launches/2025.json"

    storage.put_bytes(fs, path, b"first")
    storage.put_bytes(fs, path, b"second")

    assert Path(path).read_bytes() == b"second"
    assert files_under(tmp_path / "store") == ["launches/2025.json"]


def test_a_writer_that_fails_leaves_no_partial_file(tmp_path: Path) -> None:
    """A writer raising mid-write leaves nothing under a new name, and an existing file
    under its old content, with no temporary file left."""
    fs, root = storage.open_filesystem(str(tmp_path))
    storage.put_bytes(fs, f"{root}/kept.parquet", b"old content")

    def crashing(out: BinaryIO) -> None:
        out.write(b"half of the")
        raise OSError("disk gone")

    for name in ("new.parquet", "kept.parquet"):
        with pytest.raises(OSError, match="disk gone"):
            storage.put(fs, f"{root}/{name}", crashing)

    assert files_under(tmp_path) == ["kept.parquet"]
    assert (tmp_path / "kept.parquet").read_bytes() == b"old content"


def test_a_process_killed_mid_write_leaves_only_a_temp_file_that_is_removed(
    tmp_path: Path,
) -> None:
    """A process that dies mid-write (no cleanup runs) never leaves its file under the
    final name; the hidden temporary file it leaves is what remove_temp_files deletes."""
    script = textwrap.dedent(
        f"""
        import os
        from streams.common import storage

        def dying(out):
            out.write(b"half of the")
            out.flush()
            os._exit(9)

        fs, root = storage.open_filesystem({str(tmp_path)!r})
        storage.put(fs, root + "/day=2025-08-01/part-p001-1.parquet", dying)
        """
    )
    died = subprocess.run([sys.executable, "-c", script], check=False, timeout=60)
    (tmp_path / "day=2025-08-01" / "other.json").write_bytes(b"{}")
    leftovers = files_under(tmp_path)
    fs, root = storage.open_filesystem(str(tmp_path))

    assert died.returncode == 9
    assert len(leftovers) == 2 and not any(f.endswith("part-p001-1.parquet") for f in leftovers)
    assert storage.remove_temp_files(fs, root, "part-p002-") == 0
    assert storage.remove_temp_files(fs, root, "part-p001-") == 1
    assert files_under(tmp_path) == ["day=2025-08-01/other.json"]


def test_put_file_copies_a_local_file(tmp_path: Path) -> None:
    """A local file is copied whole under the destination name."""
    source = tmp_path / "extract.json"
    source.write_bytes(b'[{"id": "5eb87cd9ffd86e000604b32a"}]')
    fs, root = storage.open_filesystem(str(tmp_path / "lake"))

    storage.put_file(fs, f"{root}/raw/launches.json", source)

    assert (tmp_path / "lake" / "raw" / "launches.json").read_bytes() == source.read_bytes()


def test_open_filesystem_creates_a_local_root(tmp_path: Path) -> None:
    """A local URI gives a local filesystem and an existing root directory."""
    fs, root = storage.open_filesystem(f"file://{tmp_path}/a/b", None)
    assert isinstance(fs, pafs.LocalFileSystem)
    assert Path(root) == tmp_path / "a" / "b"
    assert Path(root).is_dir()


def test_open_filesystem_splits_an_s3_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    """An S3 URI gives an S3 filesystem in the configured region, rooted at bucket/prefix."""
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    fs, root = storage.open_filesystem("s3://orders-lake/enriched/", "http://127.0.0.1:9000")
    assert isinstance(fs, pafs.S3FileSystem)
    assert fs.region == "eu-west-1"
    assert root == "orders-lake/enriched"
