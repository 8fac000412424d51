"""Load: the Parquet bytes to their object, whole or not at all, and only when changed.

S3 makes an object visible only once its upload completes, so a reader sees the old
object or the new one, never a part (a local directory gets the same by a rename,
streams.common.storage). The bytes are compared with the object already there first:
an unchanged object is not uploaded again, so its ETag, its time and every reader's
cache stay as they were.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow.fs as pafs

from streams.common.storage import open_filesystem, put_bytes


class LoadError(RuntimeError):
    """The object could not be read or written; the message is the one-line reason."""


@dataclass(frozen=True)
class Destination:
    filesystem: pafs.FileSystem
    path: str

    @classmethod
    def at(cls, uri: str, key: str, endpoint_url: str | None = None) -> Destination:
        """``key`` under ``uri`` (``s3://bucket`` or a local directory)."""
        filesystem, root = open_filesystem(uri, endpoint_url)
        return cls(filesystem, f"{root}/{key.lstrip('/')}")

    @property
    def uri(self) -> str:
        scheme = "" if isinstance(self.filesystem, pafs.LocalFileSystem) else "s3://"
        return f"{scheme}{self.path}"


def load(body: bytes, destination: Destination) -> bool:
    """Write ``body`` at ``destination`` unless it holds these bytes; True if written."""
    try:
        if _current(destination, len(body)) == body:
            return False
        put_bytes(destination.filesystem, destination.path, body)
    except OSError as exc:  # pyarrow's S3 errors are OSErrors spanning several lines
        raise LoadError(f"{destination.uri}: {_first_line(exc)}") from exc
    return True


def _current(destination: Destination, size: int) -> bytes | None:
    """The object's bytes, if it is a file of ``size`` bytes (else it differs anyway)."""
    info = destination.filesystem.get_file_info(destination.path)
    if info.type != pafs.FileType.File or info.size != size:
        return None
    with destination.filesystem.open_input_stream(destination.path) as stream:
        data: bytes = stream.read()
    return data


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split("\n")[:2]).strip()
    return text[:300] or type(exc).__name__
