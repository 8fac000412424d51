"""Files on a local directory or S3, through one pyarrow filesystem, written atomically.

A reader never sees half a file under its final name:

- on a local filesystem, a file is written under a hidden temporary name next to it
  (``.<name>.<random>.tmp``, skipped by dataset readers), synced, renamed over the final
  name, and the directory synced, so a crash or a power loss leaves the old file or the
  new one; a crash leaves at most a temporary file, which :func:`remove_temp_files`
  deletes;
- on S3, the object is uploaded in one request once its bytes are complete, and S3
  makes an object visible only when its upload completes. A writer that fails before
  the upload sends nothing: S3 has no rename, so the bytes are held in memory first.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import pyarrow.fs as pafs

TEMP_SUFFIX = ".tmp"
_TEMP = re.compile(r"^\.(.+)\.[0-9a-f]{32}\.tmp$")

#: Writes a file's content to the binary stream it is given.
Writer = Callable[[BinaryIO], object]


def open_filesystem(
    uri: str, endpoint_url: str | None = None, *, region: str | None = None
) -> tuple[pafs.FileSystem, str]:
    """The filesystem and root path for ``uri``: ``s3://bucket/prefix`` or a local path.

    For S3, credentials come from the AWS SDK's usual sources (``AWS_ACCESS_KEY_ID`` and
    ``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE`` and the shared files, an instance role).
    The endpoint is ``endpoint_url``, else ``AWS_ENDPOINT_URL`` (``http://host:port``, for
    MinIO, moto or another S3-compatible server), else AWS's. The region is ``region``,
    else ``AWS_REGION``, else ``AWS_DEFAULT_REGION``, else ``us-east-1``. These are the
    variables every AWS SDK reads; read here because pyarrow's SDK ignores some of them.
    A local root directory is created; an S3 bucket must already exist.
    """
    if uri.startswith("s3://"):
        root = uri.removeprefix("s3://").strip("/")
        if not root:
            raise ValueError(f"{uri!r} names no bucket")
        options: dict[str, Any] = {
            "region": region
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or "us-east-1",
        }
        endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            parts = urlsplit(endpoint)
            if parts.scheme and parts.netloc:
                options["endpoint_override"] = parts.netloc
                options["scheme"] = parts.scheme
            else:
                options["endpoint_override"] = endpoint
        return pafs.S3FileSystem(**options), root
    path = Path(uri.removeprefix("file://")).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return pafs.LocalFileSystem(), path.as_posix()


def is_local(filesystem: pafs.FileSystem) -> bool:
    return isinstance(filesystem, pafs.LocalFileSystem)


def put(filesystem: pafs.FileSystem, path: str, write: Writer) -> None:
    """Write a file at ``path`` with ``write(stream)``: whole, or not at all.

    If ``write`` raises, the exception propagates and nothing is left under ``path``
    (an existing file there is kept as it was).
    """
    if not is_local(filesystem):
        buffer = io.BytesIO()
        write(buffer)
        put_bytes(filesystem, path, buffer.getbuffer())
        return
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = final.with_name(f".{final.name}.{uuid.uuid4().hex}{TEMP_SUFFIX}")
    try:
        with open(temp, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
    fsync_dir(final.parent)


def put_bytes(filesystem: pafs.FileSystem, path: str, data: bytes | memoryview) -> None:
    """Write ``data`` as the file at ``path``, atomically (see :func:`put`)."""
    if is_local(filesystem):
        put(filesystem, path, lambda out: out.write(data))
        return
    # compression=None: pyarrow would otherwise gzip a path ending in ".gz" once more.
    with filesystem.open_output_stream(path, compression=None) as out:
        out.write(data)


def put_file(filesystem: pafs.FileSystem, path: str, source: Path) -> None:
    """Copy the local file ``source`` to ``path``, atomically (see :func:`put`)."""
    with open(source, "rb") as data:
        put(filesystem, path, lambda out: shutil.copyfileobj(data, out))


def delete_file(filesystem: pafs.FileSystem, path: str) -> None:
    """Delete ``path``; on a local disk the deletion is synced, as a rename is."""
    filesystem.delete_file(path)
    if is_local(filesystem):
        fsync_dir(Path(path).parent)


def remove_temp_files(filesystem: pafs.FileSystem, root: str, prefix: str = "") -> int:
    """Delete what crashed writes of files named ``prefix...`` left under ``root``.

    Only a local filesystem has any (S3 objects have no temporary name); never call it
    while a write to those names may be under way. Returns how many were deleted.
    """
    if not is_local(filesystem):
        return 0
    selector = pafs.FileSelector(root, recursive=True, allow_not_found=True)
    deleted = 0
    for info in filesystem.get_file_info(selector):
        temp = _TEMP.match(info.base_name)
        if temp and temp[1].startswith(prefix) and info.type == pafs.FileType.File:
            filesystem.delete_file(info.path)
            deleted += 1
    return deleted


def fsync_dir(path: Path) -> None:
    """Make renames and deletions in directory ``path`` survive a power loss."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
