"""The objects of a flow-log source: an S3 bucket and prefix, or a local directory.

Listing and reading go through pyarrow's filesystems (streams/common/storage.py), so the
endpoint, region and credentials are the AWS SDK's usual ones. Reads stream: an
object is never held whole in memory, whatever its size.
"""

from __future__ import annotations

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
# ..._{flow-log-id}_{YYYYMMDDTHHmmZ}_{hash}.log.gz: the time AWS delivered the object.
_DELIVERED = re.compile(r"_(\d{8}T\d{4}Z)_[0-9A-Za-z]+\.log(?:\.gz|\.parquet)?$")


@dataclass(frozen=True)
class StoredObject:
    path: str  # the filesystem's path
    uri: str  # s3://bucket/key, or the local path: the object's identity everywhere
    size: int
    delivered: float | None  # epoch seconds from AWS's key layout, else None

    @property
    def is_parquet(self) -> bool:
        return self.path.endswith(PARQUET_SUFFIXES)


def delivered_at(name: str) -> float | None:
    match = _DELIVERED.search(name)
    if match is None:
        return None
    return datetime.strptime(match[1], "%Y%m%dT%H%MZ").replace(tzinfo=UTC).timestamp()


class ObjectSource:
    def __init__(
        self, uri: str, endpoint_url: str | None = None, *, settle_seconds: float = 0.0
    ) -> None:
        self.uri = uri
        self.s3 = uri.startswith("s3://")
        self.fs, self.root = open_filesystem(uri, endpoint_url)
        self.settle_seconds = settle_seconds

    def list(self, now: float | None = None) -> list[StoredObject]:
        """Every object under the source, oldest delivery first (then by key).

        Left out: hidden files (a name starting with "." or "_": temporary uploads,
        markers; AWS writes none), and local files changed within ``settle_seconds``
        (a writer may still be appending: they are listed at a later poll).
        """
        selector = pafs.FileSelector(self.root, recursive=True, allow_not_found=True)
        settled = (now if now is not None else time.time()) - self.settle_seconds
        found = []
        for info in self.fs.get_file_info(selector):
            if info.type != pafs.FileType.File or info.base_name.startswith((".", "_")):
                continue
            if not self.s3 and info.mtime is not None and info.mtime.timestamp() > settled:
                continue
            uri = f"s3://{info.path}" if self.s3 else info.path
            found.append(StoredObject(info.path, uri, info.size or 0, delivered_at(info.path)))
        found.sort(key=lambda o: (o.delivered or 0.0, o.path))
        return found

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
