"""The objects of a flow-log source: an S3 bucket and prefix, or a local directory.

Listing and reading go through pyarrow's filesystems (streams/common/storage.py), so the
endpoint, region and credentials are the AWS SDK's usual ones. Reads stream: an
object is never held whole in memory, whatever its size.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.fs as pafs

from streams.common.storage import open_filesystem

GZIP_MAGIC = b"\x1f\x8b"
PARQUET_SUFFIXES = (".parquet",)
# {account}_vpcflowlogs_{region}_{flow-log-id}_{YYYYMMDDTHHmmZ}_{hash}.log.gz: AWS's name.
_AWS_NAME = re.compile(
    r"(?:^|/)(?P<log>\d{12}_vpcflowlogs_[a-z0-9-]+_fl-[0-9A-Za-z]+)"
    r"_\d{8}T\d{4}Z_[0-9A-Za-z]+\.log(?:\.gz|\.parquet)?$"
)
# ..._{YYYYMMDDTHHmmZ}_{hash}.log.gz: the time AWS delivered the object.
_DELIVERED = re.compile(r"_(\d{8}T\d{4}Z)_[0-9A-Za-z]+\.log(?:\.gz|\.parquet)?$")


@dataclass(frozen=True)
class StoredObject:
    path: str  # the filesystem's path
    uri: str  # s3://bucket/key, or the local path: the object's identity everywhere
    size: int
    delivered: float | None  # epoch seconds from AWS's key layout, else None
    #: Last-modified time as listed (S3's LastModified, a file's mtime), epoch seconds.
    modified: float | None = None

    @property
    def is_parquet(self) -> bool:
        return self.path.endswith(PARQUET_SUFFIXES)

    @property
    def written(self) -> float | None:
        """When the object was written, as far as its listing tells: AWS's delivery time
        from its key, else its last-modified time. A property of the object, never of
        the reader's clock, so reading it again decides everything the same way."""
        return self.delivered if self.delivered is not None else self.modified

    @property
    def flow_log(self) -> str | None:
        """``{account}_vpcflowlogs_{region}_{flow-log-id}`` for a key in AWS's layout."""
        return flow_log_of(self.path)


def delivered_at(name: str) -> float | None:
    match = _DELIVERED.search(name)
    if match is None:
        return None
    return datetime.strptime(match[1], "%Y%m%dT%H%MZ").replace(tzinfo=UTC).timestamp()


def flow_log_of(name: str) -> str | None:
    match = _AWS_NAME.search(name)
    return match["log"] if match else None


def delivery_order(obj: StoredObject) -> tuple[float, str]:
    """Oldest first: AWS's delivery time, or for an object named otherwise its
    last-modified time among those (an undated object does not jump the queue)."""
    return (obj.written or 0.0, obj.path)


class ObjectSource:
    def __init__(
        self, uri: str, endpoint_url: str | None = None, *, settle_seconds: float = 0.0
    ) -> None:
        self.uri = uri
        self.s3 = uri.startswith("s3://")
        self.fs, self.root = open_filesystem(uri, endpoint_url)
        self.settle_seconds = settle_seconds

    def list(self, now: float | None = None) -> list[StoredObject]:
        """Every object under the source, in delivery order (see :func:`delivery_order`).

        Left out: hidden files (a name starting with "." or "_": temporary uploads,
        markers; AWS writes none), local files changed within ``settle_seconds`` (a
        writer may still be appending: they are listed at a later poll), and local
        symbolic links (followed, a link would list an object twice, a loop without end).
        """
        settled = (now if now is not None else time.time()) - self.settle_seconds
        found = []
        for path, size, modified in self._files():
            if path.rsplit("/", 1)[-1].startswith((".", "_")):
                continue
            if not self.s3 and modified is not None and modified > settled:
                continue
            uri = f"s3://{path}" if self.s3 else path
            found.append(StoredObject(path, uri, size, delivered_at(path), modified))
        found.sort(key=delivery_order)
        return found

    def _files(self) -> Iterator[tuple[str, int, float | None]]:
        """(path, size, last-modified) of each regular file under the root."""
        if not self.s3:
            yield from _local_files(self.root)
            return
        selector = pafs.FileSelector(self.root, recursive=True, allow_not_found=True)
        for info in self.fs.get_file_info(selector):
            if info.type == pafs.FileType.File:
                mtime = info.mtime.timestamp() if info.mtime is not None else None
                yield info.path, info.size or 0, mtime

    def unaddressable(self, obj: StoredObject) -> str | None:
        """Why pyarrow's S3 client cannot read a listed object, if it cannot: a key with
        an empty path segment (``a//b``) it refuses outright."""
        if self.s3 and "//" in obj.path:
            return "its S3 key has an empty path segment ('//'), which pyarrow cannot read"
        return None

    def ends_in_slash(self, obj: StoredObject) -> bool:
        """Whether a listed object that is not found is a key ``<path>/`` holding bytes:
        pyarrow lists it without its slash and cannot open it. (An empty one is a
        console's "folder" marker: pyarrow lists it as a directory, not an object.)"""
        return self.s3 and self.fs.get_file_info(obj.path).type == pafs.FileType.Directory

    @contextmanager
    def open_text(self, obj: StoredObject) -> Iterator[pa.NativeFile]:
        """The object's bytes, gunzipped when they are gzip (by content, not by name)."""
        # compression=None: the bytes as stored (pyarrow would gunzip by the name, and a
        # name does not say what the bytes are).
        with self.fs.open_input_stream(obj.path, compression=None) as raw:
            head = raw.read(2)
        with self.fs.open_input_stream(obj.path, compression=None) as raw:
            if head == GZIP_MAGIC:
                with pa.CompressedInputStream(raw, "gzip") as text:
                    yield text
            else:
                yield raw

    @contextmanager
    def open_file(self, obj: StoredObject) -> Iterator[pa.NativeFile]:
        """Random access to the object (Parquet reads its footer first)."""
        with self.fs.open_input_file(obj.path) as file:
            yield file


def _local_files(root: str) -> Iterator[tuple[str, int, float | None]]:
    """Regular files under ``root``, symbolic links neither followed nor listed: a link
    to a directory above would list its objects again, for ever (each under a new
    path, so under a new identity), and a link to a file would list it twice."""
    try:
        entries = list(os.scandir(root))
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        if entry.is_symlink():
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                yield from _local_files(entry.path)
            elif entry.is_file(follow_symlinks=False):
                stat = entry.stat(follow_symlinks=False)
                yield entry.path, stat.st_size, stat.st_mtime
        except FileNotFoundError:
            continue  # deleted while listed
