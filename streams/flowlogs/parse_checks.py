"""Raw flow log columns to SCHEMA rows and bad lines, a whole block at a time (pure).

Every check is one Arrow compute call over a column, so a block of a million lines costs
a few dozen vectorized passes; Python touches a row only when a check flagged it, to say
which fields failed and why.

What a row must satisfy (AWS writes ``-`` where a field does not apply; it is null here):

- every row: ``log-status`` is OK, NODATA or SKIPDATA; ``start`` and ``end`` are present;
- an OK row also has ``srcaddr``, ``dstaddr``, ``protocol``, ``packets``, ``bytes`` and
  ``action`` (ACCEPT or REJECT). Its ports may be ``-``: they mean nothing for protocols
  without ports. NODATA and SKIPDATA rows may have ``-`` anywhere else (AWS's own
  examples do);
- any value present is well formed: integers are plain decimal digits (no sign, exponent
  or fraction) within the field's bounds (fields.py), addresses have the shape of an IPv4
  or IPv6 address;
- ``2000-01-01 <= start <= latest_start`` and ``end >= start``. A start beyond
  ``latest_start`` (when the object was written, plus the allowance) is
  ``future_timestamp``, every other failure ``invalid_field``; the detail names each
  failed field.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from streams.flowlogs.fields import EXTRA, INT64_MAX, SCHEMA, Field

INVALID_FIELD = "invalid_field"
FUTURE_TIMESTAMP = "future_timestamp"

#: Every object must name these: the flow's key, its measure and its time.
REQUIRED_FIELDS = (
    "srcaddr", "dstaddr", "srcport", "dstport", "protocol", "packets", "bytes",
    "start", "end", "action", "log-status",
)  # fmt: skip
#: An OK row without one of these is not a flow the analytics can count.
FLOW_FIELDS = ("srcaddr", "dstaddr", "protocol", "packets", "bytes", "action")
ACTIONS = ("ACCEPT", "REJECT")
STATUSES = ("OK", "NODATA", "SKIPDATA")
EARLIEST_START = 946_684_800  # 2000-01-01T00:00:00Z: older flow records are corrupt

_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = rf"{_OCTET}(\.{_OCTET}){{3}}"
_HEX = "[0-9A-Fa-f]{1,4}"


def _ipv6_pattern() -> str:
    """RFC 4291 text forms: eight groups, or fewer around one ``::``, maybe ending in IPv4."""
    forms = [rf"({_HEX}:){{7}}{_HEX}", rf"({_HEX}:){{6}}{_IPV4}"]
    for left in range(8):  # groups before the "::", which stands for at least one
        head = "" if left == 0 else rf"({_HEX}:){{{left - 1}}}{_HEX}"
        tail = 7 - left
        forms.append(rf"{head}::" + (rf"({_HEX}(:{_HEX}){{0,{tail - 1}}})?" if tail else ""))
        if left <= 5:
            forms.append(rf"{head}::({_HEX}:){{0,{5 - left}}}{_IPV4}")
    return "^(" + "|".join(forms) + ")$"


IPV4_PATTERN = f"^{_IPV4}$"
IPV6_PATTERN = _ipv6_pattern()
_MAX_DIGITS = str(INT64_MAX)
_MAP_TYPE = SCHEMA.field(EXTRA).type


@dataclass(frozen=True)
class BadLine:
    line: int  # 1-based within the decompressed object; the header is line 1
    reason: str
    detail: str
    text: str


@dataclass(frozen=True)
class _Failure:
    """One check that failed on some rows of a block."""

    reason: str
    rows: pa.Array  # boolean, no nulls
    explain: Callable[[int], str]


class _Checks:
    def __init__(self) -> None:
        self.failures: list[_Failure] = []

    def add(
        self, rows: pa.Array, explain: Callable[[int], str], reason: str = INVALID_FIELD
    ) -> bool:
        """Record the check's failure if ``rows`` flags any row (a null flags none)."""
        rows = pc.fill_null(rows, False)
        if not pc.any(rows).as_py():
            return False
        self.failures.append(_Failure(reason, rows, explain))
        return True


def _null_where(rows: pa.Array, column: pa.Array) -> pa.Array:
    return pc.if_else(pc.fill_null(rows, False), pa.scalar(None, column.type), column)


def _within(numbers: pa.Array, low: int, high: int) -> bool:
    """Whether every value present lies in low..high: one pass spares the row checks."""
    extremes = pc.min_max(numbers)
    smallest, largest = extremes["min"].as_py(), extremes["max"].as_py()
    return smallest is None or (low <= smallest and largest <= high)


def _not_in(column: pa.Array, allowed: tuple[str, ...]) -> pa.Array:
    return pc.and_(pc.is_valid(column), pc.invert(pc.is_in(column, pa.array(allowed))))


def normalize(
    raw: pa.Table,
    fields: Sequence[Field | None],
    lines: np.ndarray,
    *,
    delimiter: str,
    latest_start: int,
) -> tuple[pa.Table, list[BadLine]]:
    """SCHEMA rows for the rows of ``raw`` that pass every check, bad lines for the rest.

    ``raw``'s columns are named as the object names them, ``fields[i]`` is the catalogue
    entry of column ``i`` (None for a field this catalogue does not know), ``lines[i]``
    the line number of row ``i``. Values are strings (text) or typed (Parquet); ``-``
    must already be null.
    """
    checks = _Checks()
    values: dict[str, pa.Array] = {}
    given: dict[str, pa.Array] = {}
    extras: list[tuple[str, pa.Array]] = []
    for name, field, chunked in zip(raw.column_names, fields, raw.columns, strict=True):
        column = chunked.combine_chunks()
        if field is None:
            extras.append((name, _as_strings(column)))
            continue
        given[field.name] = column
        if field.kind == "int":
            values[field.column] = _integers(field, column, checks)
        else:
            values[field.column] = _as_strings(column)
    _check_addresses(
        {f.name: values[f.column] for f in fields if f and f.kind == "address"}, checks
    )
    _check_ids({f.name: values[f.column] for f in fields if f and f.column in ID_COLUMNS}, checks)
    _check_rows(given, values, checks, latest_start)

    count = raw.num_rows
    absent = {kind: pa.nulls(count, kind) for kind in (pa.int64(), pa.string())}
    columns = [values[f.name] if f.name in values else absent.get(f.type) for f in SCHEMA]
    columns[-1] = _extra_map(extras, count)  # SCHEMA's last column is EXTRA
    table = pa.Table.from_arrays(columns, schema=SCHEMA)
    if not checks.failures:
        return table, []
    failed = checks.failures[0].rows
    for failure in checks.failures[1:]:
        failed = pc.or_(failed, failure.rows)
    return table.filter(pc.invert(failed)), _bad_lines(raw, lines, failed, checks, delimiter)


def _as_strings(column: pa.Array) -> pa.Array:
    if pa.types.is_string(column.type):
        return column
    try:
        return column.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.array([None if v is None else str(v) for v in column.to_pylist()], pa.string())


def _integers(field: Field, given: pa.Array, checks: _Checks) -> pa.Array:
    """int64 values, null where absent or rejected (the rejection recorded in ``checks``)."""
    name = field.name
    digits = given
    if not pa.types.is_integer(given.type):
        text = given if pa.types.is_string(given.type) else _as_strings(given)
        not_digits = pc.invert(pc.ascii_is_decimal(text))
        digits = text
        if checks.add(not_digits, lambda i: f"{name}: {text[i].as_py()!r} is not an integer"):
            digits = _null_where(not_digits, text)
        # Digits only from here on: 19 of them may exceed int64, 20 or more always do.
        if pc.any(pc.greater(pc.binary_length(digits), 18)).as_py():
            significant = pc.utf8_ltrim(digits, characters="0")
            length = pc.binary_length(significant)
            too_large = pc.or_(
                pc.greater(length, 19),
                pc.and_(pc.equal(length, 19), pc.greater(significant, _MAX_DIGITS)),
            )
            if checks.add(too_large, lambda i: f"{name}: {text[i].as_py()} is too large"):
                digits = _null_where(too_large, digits)
    elif given.type == pa.uint64():
        too_large = pc.greater(given, pa.scalar(INT64_MAX, pa.uint64()))
        if checks.add(too_large, lambda i: f"{name}: {given[i].as_py()} is too large"):
            digits = _null_where(too_large, given)
    numbers = digits.cast(pa.int64())
    assert field.bounds is not None  # every integer field of the catalogue has bounds
    low, high = field.bounds
    if _within(numbers, low, high):
        return numbers
    outside = pc.or_(pc.less(numbers, low), pc.greater(numbers, high))
    checks.add(outside, lambda i: f"{name}: {numbers[i].as_py()} is outside {low}..{high}")
    return _null_where(outside, numbers)


def _check_addresses(columns: dict[str, pa.Array], checks: _Checks) -> None:
    """IPv4 shape on each column; the IPv6 pattern, whose compilation alone costs more
    than matching a small block, once for the non-IPv4 values of all columns together."""
    others: list[tuple[str, pa.Array, np.ndarray]] = []  # name, column, non-IPv4 rows
    for name, column in columns.items():
        ipv4 = pc.fill_null(pc.match_substring_regex(column, IPV4_PATTERN), True)
        if not pc.all(ipv4).as_py():
            others.append((name, column, np.flatnonzero(~ipv4.to_numpy(zero_copy_only=False))))
    if not others:
        return
    candidates = pa.concat_arrays([column.take(rows) for _, column, rows in others])
    ipv6 = pc.match_substring_regex(candidates, IPV6_PATTERN).to_numpy(zero_copy_only=False)
    offset = 0
    for name, column, rows in others:
        unshaped = np.zeros(len(column), dtype=bool)
        unshaped[rows[~ipv6[offset : offset + len(rows)]]] = True
        offset += len(rows)
        checks.add(pa.array(unshaped), _not_an_address(name, column))


#: Fields that become keys (a chunk's account and VPC) and filters: AWS ids are letters,
#: digits and hyphens, so "|", spaces, control bytes or a megabyte of text are no id.
ID_COLUMNS = ("account_id", "vpc_id", "subnet_id", "interface_id", "instance_id")
ID_PATTERN = r"^[A-Za-z0-9-]{1,64}$"


def _check_ids(columns: dict[str, pa.Array], checks: _Checks) -> None:
    for name, column in columns.items():
        shaped = pc.fill_null(pc.match_substring_regex(column, ID_PATTERN), True)
        if not pc.all(shaped).as_py():
            checks.add(pc.invert(shaped), _not_an_id(name, column))


def _not_an_id(name: str, column: pa.Array) -> Callable[[int], str]:
    return lambda i: f"{name}: {str(column[i].as_py())[:80]!r} is not an AWS id"


def _not_an_address(name: str, column: pa.Array) -> Callable[[int], str]:
    return lambda i: f"{name}: {column[i].as_py()!r} is not an IP address"


def _check_rows(
    given: dict[str, pa.Array], values: dict[str, pa.Array], checks: _Checks, latest_start: int
) -> None:
    """The checks that need more than one value of a row."""
    status = given["log-status"]
    checks.add(pc.is_null(status), _missing("log-status", "a record"))
    checks.add(
        _not_in(status, STATUSES),
        lambda i: f"log-status: {status[i].as_py()!r} is not one of {', '.join(STATUSES)}",
    )
    action = given["action"]
    checks.add(
        _not_in(action, ACTIONS),
        lambda i: f"action: {action[i].as_py()!r} is not one of {', '.join(ACTIONS)}",
    )
    is_ok = pc.equal(status, "OK")
    for name in FLOW_FIELDS:
        checks.add(pc.and_(is_ok, pc.is_null(given[name])), _missing(name, "an OK record"))
    for name in ("start", "end"):
        checks.add(pc.is_null(given[name]), _missing(name, "a record"))
    start, end = values["start"], values["end"]
    checks.add(
        pc.less(start, EARLIEST_START),
        lambda i: f"start: {start[i].as_py()} is before 2000-01-01 ({EARLIEST_START})",
    )
    checks.add(
        pc.less(end, start), lambda i: f"end: {end[i].as_py()} is before start {start[i].as_py()}"
    )
    checks.add(
        pc.greater(start, latest_start),
        lambda i: f"start: {start[i].as_py()} is after the latest accepted {latest_start}",
        FUTURE_TIMESTAMP,
    )


def _missing(name: str, where: str) -> Callable[[int], str]:
    return lambda i: f"{name}: missing ('-') in {where}"


def _extra_map(extras: list[tuple[str, pa.Array]], count: int) -> pa.Array:
    """The unknown fields of each row as a map, by their header name (row-major order)."""
    if not extras:
        return pa.nulls(count, _MAP_TYPE)
    width = len(extras)
    slots = np.arange(count * width)
    rows, fields = slots // width, slots % width
    keys = pc.take(pa.array([name for name, _ in extras], pa.string()), pa.array(fields))
    items = pc.take(pa.concat_arrays([v for _, v in extras]), pa.array(fields * count + rows))
    offsets = pa.array(np.arange(0, count * width + 1, width, dtype=np.int32))
    return pa.MapArray.from_arrays(offsets, keys, items, type=_MAP_TYPE)


def _bad_lines(
    raw: pa.Table, lines: np.ndarray, failed: pa.Array, checks: _Checks, delimiter: str
) -> list[BadLine]:
    where = np.flatnonzero(failed.to_numpy(zero_copy_only=False))
    taken = pa.array(where)
    flags = [f.rows.take(taken).to_numpy(zero_copy_only=False) for f in checks.failures]
    texts = raw.take(taken).to_pylist()
    bad = []
    for j, row in enumerate(where):
        hits = [f for f, flag in zip(checks.failures, flags, strict=True) if flag[j]]
        reasons = {f.reason for f in hits}
        reason = INVALID_FIELD if INVALID_FIELD in reasons else FUTURE_TIMESTAMP
        detail = "; ".join(f.explain(int(row)) for f in hits)
        text = delimiter.join("-" if v is None else str(v) for v in texts[j].values())
        bad.append(BadLine(int(lines[row]), reason, detail, text))
    return bad
