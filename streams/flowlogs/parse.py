"""Flow log objects (text or Parquet) to blocks of SCHEMA rows and bad lines (pure).

Text objects are read block by block, never whole: a block is the complete lines of about
``block_bytes`` of decompressed text, split into columns by pyarrow's CSV parser (no
quoting, no escapes: AWS writes neither) and checked column-wise by parse_checks.py.

The layout of a text object:

- The first non-blank line is a header when every token is a field name (a letter, then
  letters, digits, ``-`` or ``_``). No data line can pass for one: every accepted object
  has ``start``, whose values are digits (or ``-``). Header names are matched to the
  catalogue case-insensitively, ``_`` read as ``-``; unknown names go to ``extra``.
- Without a header, the caller's configured format (CloudWatch delivery) applies, else
  AWS's default format; the first line is then data.
- The delimiter is one comma when the header (or, without one, the first line) has a
  comma and, without a header, no space; otherwise one space, as AWS writes. A tab is
  data, not a separator: a tab-separated line fails its field count.

Object errors (:class:`ObjectError`, the whole object is dead-lettered), by reason:

- ``unreadable_header``: the header names no known field, or names one field twice
  (which value counts would be a guess);
- ``missing_fields``: the layout lacks one of parse_checks.REQUIRED_FIELDS;
- ``unreadable_object``: a Parquet object whose footer or schema cannot be read.

Line errors (:class:`BadLine`; the line is reported once and never in the table):
``malformed_line`` (field count, invalid UTF-8, a carriage return inside the line, or a
line longer than ``max(block_bytes, MAX_LINE_BYTES)``) and parse_checks's
``invalid_field`` and ``future_timestamp``. Blank and whitespace-only lines are skipped
and not counted, but keep their numbers: ``BadLine.line`` is the line's number in the
decompressed object, the header being line 1.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as csv
import pyarrow.parquet as pq

from streams.flowlogs.fields import BY_NAME, DEFAULT_FORMAT, SCHEMA, Field
from streams.flowlogs.parse_checks import REQUIRED_FIELDS, BadLine, normalize

__all__ = [
    "BadLine",
    "Block",
    "ObjectError",
    "check_format",
    "field_names",
    "parse_lines",
    "parse_parquet",
    "parse_text",
]

MALFORMED_LINE = "malformed_line"
UNREADABLE_HEADER = "unreadable_header"
MISSING_FIELDS = "missing_fields"
UNREADABLE_OBJECT = "unreadable_object"
#: A longer line is reported, not held: real records are a few hundred bytes.
MAX_LINE_BYTES = 1 << 20
_SHOWN_CHARS = 1000  # of an over-long line, in its BadLine
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*\Z")


@dataclass(frozen=True)
class Block:
    flows: pa.Table  # SCHEMA exactly, rows in object order: OK, NODATA and SKIPDATA rows
    bad: list[BadLine]  # in line order
    lines: int  # data lines consumed (good and bad; not the header, not blank lines)


class ObjectError(Exception):
    """The whole object is unusable, for ``reason`` (one of the module's object reasons)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class _Layout:
    names: tuple[str, ...]  # as the object names them
    fields: tuple[Field | None, ...]
    delimiter: str


def field_names(format: str) -> list[str]:
    """The field names of a configured format: ``${version} ${account-id} ...``, or the
    names bare, separated by spaces and/or commas. ValueError if empty or garbled."""
    tokens = [token for token in re.split(r"[\s,]+", format) if token]
    if not tokens:
        raise ValueError("the flow log format names no field")
    names = []
    for token in tokens:
        name = token[2:-1] if token.startswith("${") and token.endswith("}") else token
        if not _NAME.match(name):
            raise ValueError(f"not a flow log field in the format: {token!r}")
        names.append(name)
    if len(set(names)) < len(names):
        raise ValueError(f"the flow log format repeats a field: {format!r}")
    return names


def check_format(format: str) -> list[str]:
    """The field names of a configured format, which must be usable for header-less
    objects: named as :func:`field_names` wants, at least one known field, every one
    of parse_checks.REQUIRED_FIELDS. ValueError otherwise."""
    names = field_names(format)
    try:
        _layout(names, " ", "the flow log format")
    except ObjectError as exc:
        raise ValueError(exc.detail) from exc
    return names


def _known(name: str) -> Field | None:
    return BY_NAME.get(name.lower().replace("_", "-"))


def _layout(names: Sequence[str], delimiter: str, source: str) -> _Layout:
    fields = tuple(_known(name) for name in names)
    shown = " ".join(names)[:_SHOWN_CHARS]
    if not any(fields):
        raise ObjectError(UNREADABLE_HEADER, f"{source} names no flow log field: {shown}")
    keys = [f.name if f else name for f, name in zip(fields, names, strict=True)]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ObjectError(UNREADABLE_HEADER, f"{source} repeats {', '.join(repeated)}: {shown}")
    missing = [name for name in REQUIRED_FIELDS if name not in keys]
    if missing:
        raise ObjectError(MISSING_FIELDS, f"{source} lacks {', '.join(missing)}: {shown}")
    return _Layout(tuple(names), fields, delimiter)


def _header(line: bytes, default_format: Sequence[str]) -> tuple[_Layout, bool]:
    """The layout an object's first line implies, and whether that line is a header."""
    try:
        text = line.decode().rstrip("\r").removeprefix("\ufeff")  # a BOM is no name
    except UnicodeDecodeError:
        text = ""
    comma = "," in text
    # A header is recognised whatever its spacing (a trailing or doubled space): taken
    # for data, it would apply the default format by position to lines of another
    # order, silently. Its data lines then parse by the single delimiter, or are
    # dead-lettered as malformed.
    tokens = [t.strip() for t in text.split(",")] if comma else text.split()
    if tokens and all(_NAME.match(token) for token in tokens):
        return _layout(tokens, "," if comma else " ", "the header"), True
    delimiter = "," if comma and " " not in text else " "
    return _layout(default_format, delimiter, "the configured format"), False


def parse_text(
    stream: BinaryIO | Any,
    *,
    latest_start: int,
    default_format: Sequence[str] | None = None,
    block_bytes: int = 1 << 20,
) -> Iterator[Block]:
    """Blocks of a text object, read from ``stream`` (decompressed bytes: a binary file
    or a ``pyarrow.NativeFile``). Raises ObjectError, at the first block, if the layout
    is unusable. An object without data lines yields no block."""
    layout: _Layout | None = None
    line = 1  # the number of the next line
    pending: list[BadLine] = []  # over-long lines, reported with the next block
    for piece in _pieces(stream, block_bytes):
        if isinstance(piece, _LongLine):
            if layout is None:  # a first line of this length is no header
                layout = _header(b"", default_format or DEFAULT_FORMAT)[0]
            pending.append(BadLine(line, MALFORMED_LINE, piece.detail, piece.shown))
            line += 1
            continue
        if layout is None:
            layout, before, piece = _opening(piece, default_format or DEFAULT_FORMAT)
            line += before
        if layout is None or not piece:  # blank lines so far, or only the header
            continue
        block, count = _parse_chunk(piece, line, layout, latest_start)
        line += count
        if block.lines or pending:
            yield _with(block, pending)
            pending = []
    if pending:
        yield Block(SCHEMA.empty_table(), pending, len(pending))


@dataclass(frozen=True)
class _LongLine:
    detail: str
    shown: str


def _pieces(stream: Any, block_bytes: int) -> Iterator[bytes | _LongLine]:
    """Runs of complete lines, ``block_bytes`` at a time. A line longer than the limit,
    ``max(block_bytes, MAX_LINE_BYTES)``, cannot fit in one read, so it is always seen
    whole: skipped as it streams past, never held, it stands as a _LongLine."""
    limit = max(block_bytes, MAX_LINE_BYTES)
    open_parts: list[bytes] = []  # the start of a line whose end is not read yet
    open_bytes = 0
    skipping = False  # through the rest of an over-long line
    while data := stream.read(block_bytes):
        if open_parts:
            end = data.find(b"\n")
            if end < 0:
                if not skipping:
                    open_parts.append(data)
                    open_bytes += len(data)
                    skipping = open_bytes > limit
                continue
            if skipping or open_bytes + end > limit:
                yield _long_line(open_parts, limit)
                data = data[end + 1 :]
            else:
                data = b"".join([*open_parts, data])
            open_parts, open_bytes, skipping = [], 0, False
        cut = data.rfind(b"\n") + 1
        if cut:
            yield data[:cut]
        if cut < len(data):
            open_parts, open_bytes = [data[cut:]], len(data) - cut
    if skipping:
        yield _long_line(open_parts, limit)
    elif open_parts:
        yield b"".join(open_parts)


def _long_line(parts: list[bytes], limit: int) -> _LongLine:
    shown = b"".join(parts)[:_SHOWN_CHARS].decode(errors="replace")[:_SHOWN_CHARS]
    return _LongLine(f"line longer than {limit} bytes", shown)


def _opening(piece: bytes, default_format: Sequence[str]) -> tuple[_Layout | None, int, bytes]:
    """The layout the first non-blank line of ``piece`` implies (None if all are blank),
    how many lines come before the data (blank lines, the header), and the data."""
    before = 0
    while piece:
        end = piece.find(b"\n")
        first = piece if end < 0 else piece[:end]
        rest = b"" if end < 0 else piece[end + 1 :]
        if first.strip():
            layout, is_header = _header(first, default_format)
            return (layout, before + 1, rest) if is_header else (layout, before, piece)
        before, piece = before + 1, rest
    return None, before, b""


def _with(block: Block, earlier: list[BadLine]) -> Block:
    if not earlier:
        return block
    bad = sorted([*earlier, *block.bad], key=lambda b: b.line)
    return Block(block.flows, bad, block.lines + len(earlier))


def _sanitize(piece: bytes, first: int) -> tuple[bytes, list[BadLine]]:
    """``piece`` with each line pyarrow could not count or decode blanked out, and those
    lines as bad lines. pyarrow also ends a line at a lone CR, which would shift every
    line number after it; invalid UTF-8 would make it raise."""
    ascii_text = piece.isascii()
    if ascii_text and b"\r" not in piece:
        return piece, []
    if (ascii_text or _is_utf8(piece)) and piece.count(b"\r") == piece.count(b"\r\n"):
        return piece, []
    lines = piece.split(b"\n")
    bad = []
    for i, line in enumerate(lines):
        line = line.removesuffix(b"\r")
        shown = line.decode(errors="replace")
        if not _is_utf8(line):
            bad.append(BadLine(first + i, MALFORMED_LINE, "the line is not UTF-8", shown))
        elif b"\r" in line:
            bad.append(BadLine(first + i, MALFORMED_LINE, "a carriage return inside", shown))
        else:
            lines[i] = line
            continue
        # A lone tab: pyarrow hands it to the row handler, which skips it as blank; the
        # line still counts, even as the last line of the object.
        lines[i] = b"\t"
    return b"\n".join(lines), bad


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


def _parse_chunk(piece: bytes, first: int, layout: _Layout, latest_start: int) -> tuple[Block, int]:
    """The block of ``piece``, complete lines whose first is line ``first``, and the
    number of lines it held."""
    piece, bad = _sanitize(piece, first)
    skipped: list[int] = []

    def on_invalid_row(row: Any) -> str:
        skipped.append(row.number)
        if row.text.strip():  # a whitespace-only line is blank, whatever its field count
            detail = f"expected {row.expected_columns} fields, found {row.actual_columns}"
            bad.append(BadLine(first + row.number - 1, MALFORMED_LINE, detail, row.text))
        return "skip"

    raw = csv.read_csv(
        pa.py_buffer(piece),
        read_options=csv.ReadOptions(
            column_names=list(layout.names), use_threads=False, block_size=len(piece) + 1
        ),
        parse_options=csv.ParseOptions(
            delimiter=layout.delimiter,
            quote_char=False,
            escape_char=False,
            ignore_empty_lines=False,  # keeps every line a row: line numbers stay exact
            invalid_row_handler=on_invalid_row,
        ),
        convert_options=csv.ConvertOptions(
            column_types=dict.fromkeys(layout.names, pa.string()),
            null_values=["-"],
            strings_can_be_null=True,
            check_utf8=False,  # _sanitize did
        ),
    )
    # Every line is a row or was skipped by the handler (_sanitize left no lone CR, the
    # one other line end pyarrow knows): rows are the lines not skipped, in order.
    count = raw.num_rows + len(skipped)
    lines = np.delete(np.arange(first, first + count), np.asarray(skipped, dtype=np.int64) - 1)
    blank = _blank_rows(raw)
    if blank is not None:
        raw, lines = raw.filter(pc.invert(blank)), lines[~blank.to_numpy(zero_copy_only=False)]
    flows, invalid = normalize(
        raw, layout.fields, lines, delimiter=layout.delimiter, latest_start=latest_start
    )
    lines_read = raw.num_rows + len(bad)  # the rows checked, and the lines never rows
    return Block(flows, sorted([*bad, *invalid], key=lambda b: b.line), lines_read), count


def _blank_rows(raw: pa.Table) -> pa.Array | None:
    """Rows of empty or whitespace values only: pyarrow's reading of an empty line, or of
    a whitespace line whose delimiters happen to match the field count."""
    blank = _blank(raw.column(0))
    if not pc.any(blank).as_py():
        return None
    for column in raw.columns[1:]:
        blank = pc.and_(blank, _blank(column))
    return blank.combine_chunks() if isinstance(blank, pa.ChunkedArray) else blank


def _blank(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.fill_null(pc.or_(pc.equal(column, ""), pc.ascii_is_space(column)), False)


def parse_lines(
    lines: Sequence[str], *, latest_start: int, default_format: Sequence[str] | None = None
) -> Block:
    """One block of ``lines`` (a header, if any, then data lines): for tests and small inputs."""
    data = "\n".join(lines).encode(errors="surrogateescape")
    blocks = list(
        parse_text(io.BytesIO(data), latest_start=latest_start, default_format=default_format)
    )
    if not blocks:
        return Block(SCHEMA.empty_table(), [], 0)
    flows = pa.concat_tables([b.flows for b in blocks])
    return Block(flows, [bad for b in blocks for bad in b.bad], sum(b.lines for b in blocks))


def parse_parquet(
    stream: bytes | BinaryIO | Any, *, latest_start: int, block_rows: int = 65536
) -> Iterator[Block]:
    """Blocks of a Parquet object (AWS's ``*.log.parquet``: columns named with ``_``).
    A bad line's ``line`` is its 1-based row number; its text, the row's values."""
    source = pa.BufferReader(stream) if isinstance(stream, bytes | bytearray) else stream
    try:
        file = pq.ParquetFile(source)
        names = file.schema_arrow.names
    except pa.ArrowInvalid as exc:
        raise ObjectError(UNREADABLE_OBJECT, f"not a readable Parquet file: {exc}") from exc
    layout = _layout(names, " ", "the Parquet schema")
    first = 1
    for batch in file.iter_batches(batch_size=block_rows, use_threads=False):
        raw = pa.Table.from_arrays([_dash_is_null(c) for c in batch.columns], names=names)
        lines = np.arange(first, first + raw.num_rows)
        flows, bad = normalize(raw, layout.fields, lines, delimiter=" ", latest_start=latest_start)
        first += raw.num_rows
        yield Block(flows, bad, raw.num_rows)


def _dash_is_null(column: pa.Array) -> pa.Array:
    """``-`` is no value, whatever the string column's physical type: Polars writes
    large_string, pandas categoricals dictionary-encoded strings, and some writers
    string_view, which pyarrow's compute functions do not all take. Each becomes a
    plain string column first."""
    kind = column.type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if not (
        pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)
    ):
        return column
    column = column.cast(pa.string())
    return pc.if_else(pc.equal(column, "-"), pa.scalar(None, pa.string()), column)
