"""What the reader decides about an object before and while reading it (pure).

- :func:`cutoff`: the latest flow start an object may hold;
- :func:`check_gzip`: whether gzip bytes are whole members, nothing after them;
- :func:`surroundings`: whether a failure is the surroundings' (retried for as long as
  it lasts) or the object's (read again, then dead-lettered).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

from aiokafka.errors import KafkaError

from streams.common.sends import SendFailed
from streams.flowlogs.fields import INT64_MAX
from streams.flowlogs.source import GZIP_MAGIC, StoredObject

READ_BYTES = 1 << 20


def check_gzip(head: bytes, read: Callable[[int], bytes]) -> None:
    """Raise CorruptObject unless ``head`` and what ``read`` returns are whole gzip members
    (one or more, as ``cat a.gz b.gz`` makes), nothing after them. Memory: one block."""
    inflate = zlib.decompressobj(wbits=31)
    data = head
    while True:
        if not data:
            data = read(READ_BYTES)
            if not data:
                break
        try:
            inflate.decompress(data, READ_BYTES)
            while inflate.unconsumed_tail and not inflate.eof:
                inflate.decompress(inflate.unconsumed_tail, READ_BYTES)
        except zlib.error as exc:
            raise CorruptObject(f"gzip: {exc}") from exc
        data = b""
        if inflate.eof:
            rest = inflate.unused_data + inflate.unconsumed_tail
            if rest and not GZIP_MAGIC.startswith(rest[:2]):
                raise CorruptObject("gzip: bytes after the end of the compressed stream")
            if rest:  # the next member
                inflate, data = zlib.decompressobj(wbits=31), rest
            elif not (data := read(READ_BYTES)):
                return
            else:
                if not data.startswith(GZIP_MAGIC[: len(data)]):
                    raise CorruptObject("gzip: bytes after the end of the compressed stream")
                inflate = zlib.decompressobj(wbits=31)
    if not inflate.eof:
        raise CorruptObject("gzip: truncated (the stream ends before its trailer)")


def cutoff(obj: StoredObject, max_future_seconds: int) -> int:
    """The latest flow start ``obj`` may hold: when it was written plus the allowance.

    A function of the object as listed, never of the reader's clock: an object read
    again after a crash must split into the same chunks (chunks.py), and a row that was
    a future_timestamp at the first read and valid at the second would shift them.
    Without any time in its listing (an S3 server that gives none), no cutoff.
    """
    written = obj.written
    return INT64_MAX if written is None else int(written) + max_future_seconds


def surroundings(exc: BaseException) -> bool:
    """Whether a failure reading an object is the surroundings' (retried for as long as
    it lasts), not the object's: Kafka, the network, or S3 answering with an error.

    pyarrow raises OSError for both a dropped connection and a corrupt Parquet page; its
    S3 errors name themselves ("AWS Error ..."), and a local disk's are OS errors with an
    errno. Decoding errors (ArrowInvalid, a truncated stream) are the object's.
    """
    if isinstance(exc, SendFailed | KafkaError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, OSError):
        text = str(exc)
        return exc.errno is not None or "AWS Error" in text or "curl" in text.lower()
    return False


class CorruptObject(Exception):
    """The object's bytes cannot be decompressed or decoded: retried, then dead-lettered."""

    def __init__(self, detail: str, reason: str = "corrupt_object") -> None:
        super().__init__(detail)
        self.reason = reason
