"""The flow-log parser against hostile input: every numeric field at its edges, bad
addresses, ids and enums, wrong field counts, garbage bytes, odd line endings, over-long
lines. Each bad line is reported with its reason; its neighbours still parse."""

from __future__ import annotations

import gzip

import pyarrow as pa
import pytest

from streams.flowlogs import parse
from streams.flowlogs.fields import DEFAULT_FORMAT, SCHEMA
from streams.flowlogs.parse import (
    BadLine,
    Block,
    parse_lines,
    parse_text,
)
from tests.support.flowlogs_parsing import (
    GOOD,
    HEADER,
    LATEST,
    one_bad,
    parse_bytes,
    rows,
    text_blocks,
)

# --- hostile values --------------------------------------------------------------------

NUMERIC = ("version", "srcport", "dstport", "protocol", "packets", "bytes", "start", "end")
GARBAGE = ("9223372036854775808", "1" + "0" * 30, "-1", "NaN", "1e5", "abc", "0x10", "+5", "4.0")


@pytest.mark.parametrize("field", NUMERIC)
@pytest.mark.parametrize("value", GARBAGE)
def test_a_bad_number_in_any_numeric_field_is_a_bad_line(field: str, value: str) -> None:
    """Huge, negative, NaN, exponent, hex, signed, fractional or alphabetic: invalid_field."""
    values = GOOD.split(" ")
    values[DEFAULT_FORMAT.index(field)] = value
    bad = one_bad(" ".join(values))
    assert (bad.line, bad.reason) == (2, "invalid_field")
    assert bad.detail.startswith(f"{field}: ")
    assert bad.text == " ".join(values)


@pytest.mark.parametrize("field", NUMERIC)
def test_an_empty_numeric_field_is_a_bad_line(field: str) -> None:
    """In a comma-separated object an empty value is present, and not a number."""
    header = ",".join(DEFAULT_FORMAT)
    values = GOOD.split(" ")
    values[DEFAULT_FORMAT.index(field)] = ""
    bad = one_bad(",".join(values), header)
    assert (bad.reason, bad.detail) == ("invalid_field", f"{field}: '' is not an integer")


@pytest.mark.parametrize(
    ("field", "value", "detail"),
    [
        ("srcport", "65536", "srcport: 65536 is outside 0..65535"),
        ("dstport", "99999", "dstport: 99999 is outside 0..65535"),
        ("protocol", "256", "protocol: 256 is outside 0..255"),
        ("version", "1", "version: 1 is outside 2..255"),
        ("bytes", "9223372036854775808", "bytes: 9223372036854775808 is too large"),
        ("packets", "18446744073709551616", "packets: 18446744073709551616 is too large"),
    ],
)
def test_out_of_range_numbers_say_which_bound(field: str, value: str, detail: str) -> None:
    """The detail names the field, the value and the range it left."""
    values = GOOD.split(" ")
    values[DEFAULT_FORMAT.index(field)] = value
    assert one_bad(" ".join(values)).detail == detail


def test_the_largest_plausible_counts_and_zero_are_accepted() -> None:
    """10**15 bytes and zero packets are values, not errors; one more byte is not: a
    record covers one interface for at most 10 minutes (3e13 bytes at 400 Gbit/s), and
    three records of 2**63-1 bytes once made every view's sums overflow."""
    line = GOOD.replace(" 10 840 ", " 0 1000000000000000 ")
    block = parse_lines([HEADER, line], latest_start=LATEST)
    assert rows(block, "packets", "bytes") == [(0, 10**15)]
    over = one_bad(GOOD.replace(" 10 840 ", " 1 1000000000000001 "))
    assert over.reason == "invalid_field" and over.detail.startswith("bytes:")


def test_an_ok_record_may_omit_its_ports_but_not_its_measure() -> None:
    """'-' ports are allowed (protocols without ports); '-' bytes in an OK row is not."""
    block = parse_lines(
        [
            HEADER,
            "2 1 eni-1 10.0.0.1 10.0.0.2 - - 47 3 300 1418530010 1418530070 ACCEPT OK",
            "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 3 - 1418530010 1418530070 ACCEPT OK",
        ],
        latest_start=LATEST,
    )
    assert rows(block, "protocol", "srcport", "dstport") == [(47, None, None)]
    assert [(b.line, b.detail) for b in block.bad] == [(3, "bytes: missing ('-') in an OK record")]


@pytest.mark.parametrize(
    ("address", "valid"),
    [
        ("10.0.0.1", True),
        ("255.255.255.255", True),
        ("::1", True),
        ("fe80::1", True),
        ("2001:db8::", True),
        ("::ffff:10.0.0.1", True),
        ("2001:0db8:0000:0000:0000:ff00:0042:8329", True),
        ("999.1.1.1", False),
        ("hello", False),
        ("1.2.3", False),
        ("01.2.3.4", False),
        ("2001:db8::1::2", False),
        ("2001:db8:1:2:3:4:5:6:7", False),
        ("12345::1", False),
        ("1.2.3.4 ", False),
    ],
)
def test_addresses_must_have_the_shape_of_ipv4_or_ipv6(address: str, valid: bool) -> None:
    """A clearly invalid address makes the line bad; IPv4 and IPv6 forms pass."""
    values = GOOD.split(" ")
    values[DEFAULT_FORMAT.index("srcaddr")] = address
    block = parse_lines([",".join(DEFAULT_FORMAT), ",".join(values)], latest_start=LATEST)
    if valid:
        assert rows(block, "srcaddr") == [(address,)]
    else:
        [bad] = block.bad
        assert bad.detail == f"srcaddr: {address!r} is not an IP address"


@pytest.mark.parametrize(
    ("replace", "by", "detail"),
    [
        ("ACCEPT OK", "MAYBE OK", "action: 'MAYBE' is not one of ACCEPT, REJECT"),
        ("ACCEPT OK", "ACCEPT FINE", "log-status: 'FINE' is not one of OK, NODATA, SKIPDATA"),
        ("ACCEPT OK", "ACCEPT -", "log-status: missing ('-') in a record"),
        ("ACCEPT OK", "- OK", "action: missing ('-') in an OK record"),
        (" 1418530010 ", " - ", "start: missing ('-') in a record"),
    ],
)
def test_action_and_status_must_be_aws_values(replace: str, by: str, detail: str) -> None:
    """Unknown or missing action and log-status values are invalid fields."""
    assert one_bad(GOOD.replace(replace, by)).detail == detail


def test_a_start_beyond_latest_start_is_a_future_timestamp() -> None:
    """A start after the caller's clock plus allowance is future_timestamp; at it, fine."""
    at_limit = GOOD.replace("1418530010 1418530070", f"{LATEST} {LATEST + 60}")
    beyond = GOOD.replace("1418530010 1418530070", f"{LATEST + 1} {LATEST + 60}")
    block = parse_lines([HEADER, at_limit, beyond], latest_start=LATEST)
    assert rows(block, "start") == [(LATEST,)]
    [bad] = block.bad
    assert (bad.line, bad.reason) == (3, "future_timestamp")
    assert bad.detail == "start: 2000000001 is after the latest accepted 2000000000"


def test_a_start_before_2000_and_an_end_before_start_are_invalid() -> None:
    """Far-past starts and inverted intervals cannot be windowed: invalid_field."""
    past = one_bad(GOOD.replace("1418530010 1418530070", "1 60"))
    assert (past.reason, past.detail) == (
        "invalid_field",
        "start: 1 is before 2000-01-01 (946684800)",
    )
    inverted = one_bad(GOOD.replace("1418530010 1418530070", "1418530070 1418530010"))
    assert inverted.detail == "end: 1418530010 is before start 1418530070"


def test_every_failed_field_is_named_and_any_invalid_field_outranks_the_future() -> None:
    """One bad line per line, its detail listing every failure, field checks first."""
    line = GOOD.replace("443", "x").replace("1418530010 1418530070", "3000000000 3000000060")
    bad = one_bad(line)
    assert bad.reason == "invalid_field"
    assert bad.detail == (
        "srcport: 'x' is not an integer; start: 3000000000 is after the latest accepted 2000000000"
    )


# --- hostile lines and objects ---------------------------------------------------------


def test_wrong_field_counts_are_malformed_lines() -> None:
    """Too few or too many fields: malformed_line, the text kept as it was."""
    block = parse_lines(
        [HEADER, GOOD, GOOD + " extra", GOOD.rsplit(" ", 1)[0]], latest_start=LATEST
    )
    assert block.flows.num_rows == 1
    assert block.bad == [
        BadLine(3, "malformed_line", "expected 14 fields, found 15", GOOD + " extra"),
        BadLine(4, "malformed_line", "expected 14 fields, found 13", GOOD.rsplit(" ", 1)[0]),
    ]
    assert block.lines == 3


def test_a_lone_header_or_an_empty_object_yields_nothing() -> None:
    """No data line, no block; blank lines alone are no data either."""
    assert text_blocks(b"") == []
    assert text_blocks(HEADER.encode() + b"\n") == []
    assert text_blocks(HEADER.encode()) == []
    assert text_blocks(b"\n\n  \n") == []
    assert parse_lines([HEADER], latest_start=LATEST) == Block(SCHEMA.empty_table(), [], 0)


def test_garbage_bytes_and_invalid_utf8_are_bad_lines_not_crashes() -> None:
    """A line that is not UTF-8 is malformed; the lines around it still parse."""
    data = b"\n".join(
        [HEADER.encode(), GOOD.encode(), b"\xff\xfe\x00garbage \x80", GOOD.encode(), b"\x00" * 20]
    )
    block = parse_bytes(data)
    assert block.flows.num_rows == 2
    assert [(b.line, b.reason, b.detail) for b in block.bad] == [
        (3, "malformed_line", "the line is not UTF-8"),
        (5, "malformed_line", "expected 14 fields, found 1"),
    ]
    assert block.bad[0].text == "\ufffd\ufffd\x00garbage \ufffd"


def test_crlf_line_endings_are_line_endings() -> None:
    """Windows line ends parse like AWS's; a bad line's text carries no CR."""
    data = (HEADER + "\r\n" + GOOD + "\r\n" + GOOD + " x\r\n" + GOOD + "\r\n").encode()
    block = parse_bytes(data)
    assert rows(block, "log_status") == [("OK",), ("OK",)]
    assert block.bad == [BadLine(3, "malformed_line", "expected 14 fields, found 15", GOOD + " x")]


def test_a_carriage_return_inside_a_line_is_malformed_and_numbers_hold() -> None:
    """A lone CR would split a line for the CSV reader: the line is reported instead."""
    data = "\n".join([HEADER, GOOD.replace("eni-1", "eni\r-1"), GOOD, "nonsense"]).encode()
    block = parse_bytes(data)
    assert [(b.line, b.detail) for b in block.bad] == [
        (2, "a carriage return inside"),
        (4, "expected 14 fields, found 1"),
    ]
    assert block.lines == 3


def test_tabs_are_not_separators() -> None:
    """AWS writes single spaces: the header of a tab-separated object is still read as
    one (whatever its spacing), and each of its data lines is malformed."""
    data = "\n".join(["\t".join(DEFAULT_FORMAT), GOOD.replace(" ", "\t")]).encode()
    block = parse_bytes(data)
    assert block.flows.num_rows == 0
    assert [(b.line, b.reason) for b in block.bad] == [(2, "malformed_line")]


def test_a_tab_inside_a_value_fails_that_value() -> None:
    """A tab glued to a number keeps the field count and fails the number."""
    bad = one_bad(GOOD.replace(" 443 ", " 443\t "))
    assert bad.detail == "srcport: '443\\t' is not an integer"


def test_an_over_long_line_is_reported_and_skipped_while_streaming() -> None:
    """A line beyond MAX_LINE_BYTES is never held whole: malformed, and the next parses."""
    long_line = b"9" * (parse.MAX_LINE_BYTES + 10)
    data = b"\n".join([HEADER.encode(), GOOD.encode(), long_line, GOOD.encode()]) + b"\n"
    blocks = text_blocks(data, block_bytes=4096)
    bad = [b for block in blocks for b in block.bad]
    assert [(b.line, b.reason, b.detail) for b in bad] == [
        (3, "malformed_line", f"line longer than {parse.MAX_LINE_BYTES} bytes")
    ]
    assert len(bad[0].text) == 1000
    assert sum(block.flows.num_rows for block in blocks) == 2
    assert sum(block.lines for block in blocks) == 3


def test_line_numbers_are_exact_across_blank_lines_and_block_boundaries() -> None:
    """Blank lines count as lines but not as data; every block knows its line numbers."""
    lines = [
        "",  # 1: blank lines before the header are skipped
        HEADER,  # 2
        GOOD,  # 3
        "",  # 4
        "   ",  # 5
        GOOD.replace("ACCEPT", "NOPE"),  # 6
        GOOD,  # 7
        "short line",  # 8
        "",  # 9
        GOOD.replace(" 6 ", " 300 "),  # 10
        GOOD,  # 11
    ]
    data = "\n".join(lines).encode()
    expected = [(6, "invalid_field"), (8, "malformed_line"), (10, "invalid_field")]
    for block_bytes in (1, 64, 200, 1 << 20):
        blocks = text_blocks(data, block_bytes=block_bytes)
        assert [(b.line, b.reason) for block in blocks for b in block.bad] == expected
        assert sum(block.flows.num_rows for block in blocks) == 3
        assert sum(block.lines for block in blocks) == 6
    assert len(text_blocks(data, block_bytes=64)) > 1


def test_blocks_stream_a_gzip_object_and_keep_the_schema() -> None:
    """A pyarrow gzip stream is read block by block, each block's table of SCHEMA."""
    lines = [HEADER] + [GOOD.replace(" 840 ", f" {n} ") for n in range(1, 501)]
    compressed = gzip.compress(("\n".join(lines) + "\n").encode())
    stream = pa.CompressedInputStream(pa.BufferReader(compressed), "gzip")
    blocks = list(parse_text(stream, latest_start=LATEST, block_bytes=8192))
    assert len(blocks) > 1
    assert all(block.flows.schema == SCHEMA for block in blocks)
    sizes = [n for block in blocks for n in block.flows.column("bytes").to_pylist()]
    assert sizes == list(range(1, 501))


@pytest.mark.parametrize("account", ["12|34", "a b", "x" * 65, "\x00"])
def test_an_id_that_is_no_aws_id_fails_its_line(account: str) -> None:
    """Ids become Kafka keys, table keys and filters: only letters, digits and hyphens."""
    values = GOOD.split(" ")
    values[DEFAULT_FORMAT.index("account-id")] = account
    bad = one_bad(" ".join(values))
    assert bad.reason in ("invalid_field", "malformed_line")
