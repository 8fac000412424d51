"""What the flow-log parser makes of an object: rows, bad lines, object errors.

Fixtures under tests/fixtures/flowlogs: AWS's documented example records (the default
format's accept, reject, NODATA, SKIPDATA, ICMP and IPv6 lines, and the version-3
custom-format line, from the "Flow log record examples" page), and a header naming all
54 fields of version 11 with hand-made values.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from streams.flowlogs import fields, parse
from streams.flowlogs.fields import DEFAULT_FORMAT, SCHEMA
from streams.flowlogs.parse import (
    BadLine,
    Block,
    ObjectError,
    field_names,
    parse_lines,
    parse_parquet,
    parse_text,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "flowlogs"
LATEST = 2_000_000_000  # 2033-05-18: the caller's clock plus allowance
HEADER = " ".join(DEFAULT_FORMAT)
GOOD = "2 123456789010 eni-1 10.0.0.1 10.0.0.2 443 49152 6 10 840 1418530010 1418530070 ACCEPT OK"
FIVE_TUPLE = ("srcaddr", "dstaddr", "srcport", "dstport", "protocol")


def fixture_lines(name: str) -> list[str]:
    return (FIXTURES / name).read_text().splitlines()


def rows(block: Block, *columns: str) -> list[tuple[Any, ...]]:
    table = block.flows
    return list(zip(*(table.column(c).to_pylist() for c in columns), strict=True))


def text_blocks(data: bytes, **options: Any) -> list[Block]:
    return list(parse_text(io.BytesIO(data), latest_start=LATEST, **options))


def parse_bytes(data: bytes) -> Block:
    """Every block of ``data``, as one."""
    blocks = text_blocks(data)
    flows = pa.concat_tables([block.flows for block in blocks])
    bad = [b for block in blocks for b in block.bad]
    return Block(flows, bad, sum(block.lines for block in blocks))


def one_bad(line: str, header: str = HEADER) -> BadLine:
    block = parse_lines([header, line], latest_start=LATEST)
    assert block.flows.num_rows == 0
    assert len(block.bad) == 1
    return block.bad[0]


# --- the catalogue ---------------------------------------------------------------------


def test_catalogue_holds_every_aws_field_and_the_two_challenge_names() -> None:
    """54 AWS fields of versions 2-11 (none of version 6), plus packet-dstaddr and
    tcp-connection-status, each with the version AWS introduced it in."""
    aws = [f for f in fields.FIELDS if f.version]
    assert len(aws) == 54
    assert sorted({f.version for f in aws}) == [2, 3, 4, 5, 7, 8, 9, 10, 11]
    assert [f.name for f in fields.FIELDS if not f.version] == [
        "packet-dstaddr",
        "tcp-connection-status",
    ]
    versions = {f.name: f.version for f in fields.FIELDS}
    assert versions["tcp-flags"] == 3
    assert versions["az-id"] == 4
    assert versions["traffic-path"] == 5
    assert versions["ecs-task-id"] == 7
    assert versions["reject-reason"] == 8
    assert versions["resource-id"] == 9
    assert versions["encryption-status"] == 10
    assert versions["next-hop-interface-type"] == 11


def test_schema_is_the_catalogue_in_order_then_extra() -> None:
    """Columns are the AWS names with underscores, integers int64, the rest strings."""
    assert DEFAULT_FORMAT == (
        "version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport",
        "protocol", "packets", "bytes", "start", "end", "action", "log-status",
    )  # fmt: skip
    assert SCHEMA.names[:4] == ["version", "account_id", "interface_id", "srcaddr"]
    assert SCHEMA.names[-3:] == ["packet_dstaddr", "tcp_connection_status", "extra"]
    assert len(SCHEMA) == 57
    integers = [f.name for f in SCHEMA if f.type == pa.int64()]
    assert integers == [
        "version", "srcport", "dstport", "protocol", "packets", "bytes", "start", "end",
        "tcp_flags", "traffic_path", "encryption_status",
    ]  # fmt: skip
    assert SCHEMA.field("extra").type == pa.map_(pa.string(), pa.string())
    assert SCHEMA.field("next_hop_az_id").type == pa.string()


# --- field_names -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "configured",
    [
        "${version} ${account-id} ${start} ${end}",
        "version account-id start end",
        "version,account-id,start,end",
        "  ${version},  ${account-id}\n${start} end ",
    ],
)
def test_field_names_reads_aws_format_strings_and_bare_names(configured: str) -> None:
    """A configured format may be AWS's ${...} string or bare names, by spaces or commas."""
    assert field_names(configured) == ["version", "account-id", "start", "end"]


@pytest.mark.parametrize(
    "configured", ["", "   ", "${version", "${version}${start}", "version 2x", "$version", "a a"]
)
def test_field_names_refuses_an_empty_or_garbled_format(configured: str) -> None:
    """An empty, unbalanced, run-together, non-name or repeating format is refused."""
    with pytest.raises(ValueError):
        field_names(configured)


# --- AWS's examples --------------------------------------------------------------------


def test_aws_default_format_examples_parse_to_their_fields() -> None:
    """AWS's default-format lines: accept, reject, ICMP ping both ways, IPv6."""
    block = parse_lines(fixture_lines("aws_default_format.log"), latest_start=LATEST)
    assert block.bad == []
    assert block.lines == 7
    flows = [r for r in rows(block, "log_status", *FIVE_TUPLE) if r[0] == "OK"]
    assert flows == [
        ("OK", "172.31.16.139", "172.31.16.21", 20641, 22, 6),
        ("OK", "172.31.9.69", "172.31.9.12", 49761, 3389, 6),
        ("OK", "203.0.113.12", "172.31.16.139", 0, 0, 1),
        (
            "OK",
            "2001:db8:1234:a100:8d6e:3477:df66:f105",
            "2001:db8:1234:a102:3304:8879:34cf:4071",
            34892,
            22,
            6,
        ),
        ("OK", "172.31.16.139", "203.0.113.12", 0, 0, 1),
    ]
    measures = rows(block, "version", "account_id", "packets", "bytes", "start", "end", "action")
    assert measures[0] == (2, "123456789010", 20, 4249, 1418530010, 1418530070, "ACCEPT")
    assert measures[1][-1] == "REJECT"
    assert measures[6] == (2, "123456789010", 4, 336, 1432917094, 1432917142, "REJECT")


def test_nodata_and_skipdata_rows_are_kept_with_nulls() -> None:
    """NODATA and SKIPDATA rows stay rows: interface and times set, every '-' null."""
    block = parse_lines(fixture_lines("aws_default_format.log"), latest_start=LATEST)
    quiet = [r for r in rows(block, "log_status", "interface_id", "start", "end") if r[0] != "OK"]
    assert quiet == [
        ("NODATA", "eni-1235b8ca123456789", 1431280876, 1431280934),
        ("SKIPDATA", "eni-11111111aaaaaaaaa", 1431280876, 1431280934),
    ]
    nodata = block.flows.slice(2, 1).to_pylist()[0]
    for column in ("srcaddr", "dstaddr", "srcport", "dstport", "protocol", "packets", "bytes"):
        assert nodata[column] is None
    assert nodata["action"] is None
    assert nodata["extra"] is None


def test_aws_version3_custom_format_example() -> None:
    """The v3 example's own field order lands in the right columns."""
    block = parse_lines(fixture_lines("aws_v3_custom.log"), latest_start=LATEST)
    assert block.bad == []
    [row] = block.flows.to_pylist()
    assert row["version"] == 3
    assert row["vpc_id"] == "vpc-abcdefab012345678"
    assert row["subnet_id"] == "subnet-aaaaaaaa012345678"
    assert row["instance_id"] == "i-01234567890123456"
    assert row["interface_id"] == "eni-1235b8ca123456789"
    assert row["account_id"] == "123456789010"
    assert row["type"] == "IPv4"
    assert (row["srcaddr"], row["dstaddr"], row["srcport"], row["dstport"]) == (
        "52.213.180.42", "10.0.0.62", 43416, 5001,
    )  # fmt: skip
    assert (row["pkt_srcaddr"], row["pkt_dstaddr"]) == ("52.213.180.42", "10.0.0.62")
    assert (row["protocol"], row["bytes"], row["packets"]) == (6, 568, 8)
    assert (row["start"], row["end"], row["action"]) == (1566848875, 1566848933, "ACCEPT")
    assert (row["tcp_flags"], row["log_status"]) == (2, "OK")
    assert row["region"] is None  # a version-4 field the object does not name


def test_version5_custom_order_with_direction_path_and_service() -> None:
    """Fields of versions 3-5 in an order of the operator's choosing."""
    header = (
        "log-status action flow-direction traffic-path pkt-src-aws-service pkt-dst-aws-service "
        "srcaddr dstaddr srcport dstport protocol packets bytes start end tcp-flags version"
    )
    block = parse_lines(
        [
            header,
            "OK ACCEPT egress 2 - S3 10.0.1.5 52.216.8.1 40000 443 6 30 52000 1700000000 "
            "1700000060 3 5",
            "OK ACCEPT ingress - AMAZON - 3.5.140.2 10.0.1.5 443 40000 6 20 9000 1700000000 "
            "1700000060 19 5",
        ],
        latest_start=LATEST,
    )
    assert block.bad == []
    assert rows(
        block,
        "flow_direction",
        "traffic_path",
        "pkt_src_aws_service",
        "pkt_dst_aws_service",
        "tcp_flags",
        "bytes",
        "version",
    ) == [
        ("egress", 2, None, "S3", 3, 52000, 5),
        ("ingress", None, "AMAZON", None, 19, 9000, 5),
    ]


def test_header_with_every_version11_field() -> None:
    """ECS, reject-reason, resource-id, encryption-status, tags and next hop all land."""
    block = parse_lines(fixture_lines("aws_v11_all_fields.log"), latest_start=LATEST)
    assert block.bad == []
    first, rejected, regional_nat = block.flows.to_pylist()
    assert first["version"] == 11
    assert first["ecs_cluster_name"] == "prod"
    assert first["ecs_task_id"] == "0f1e"
    assert first["ecs_container_id"] == "3b9f0e"
    assert first["ecs_second_container_id"] is None
    assert first["ecs_task_definition_arn"] == (
        "arn:aws:ecs:us-east-1:123456789012:task-definition/api:7"
    )
    assert first["encryption_status"] == 1
    assert (first["instance_tag"], first["interface_tag"], first["asg_tag"]) == (
        "web", "blue", "web-asg",
    )  # fmt: skip
    assert first["next_hop_interface_id"] == "eni-0f0e0d0c0b0a09080"
    assert first["next_hop_az_id"] == "use1-az2"
    assert first["next_hop_interface_type"] == "nat_gateway"
    assert (first["pkt_dst_aws_service"], first["traffic_path"]) == ("S3", 1)
    assert (rejected["action"], rejected["reject_reason"]) == ("REJECT", "BPA")
    assert rejected["encryption_status"] is None
    assert regional_nat["interface_id"] is None
    assert regional_nat["resource_id"] == "nat-0123456789abcdef0"
    assert regional_nat["interface_type"] == "regional_nat_gateway"
    assert (regional_nat["encryption_status"], regional_nat["traffic_path"]) == (0, 8)


def test_comma_separated_object_with_the_challenge_names() -> None:
    """Header and lines by commas; packet-dstaddr and tcp-connection-status are strings."""
    header = "version,account-id,interface-id,srcaddr,dstaddr,srcport,dstport,protocol,"
    header += "packets,bytes,start,end,action,log-status,packet-dstaddr,tcp-connection-status"
    line = "2,123456789010,eni-1,10.0.0.1,10.0.0.2,443,49152,6,10,840,1418530010,1418530070,"
    line += "ACCEPT,OK,10.0.0.2,established"
    block = parse_lines([header, line], latest_start=LATEST)
    assert block.bad == []
    assert rows(block, "srcport", "bytes", "packet_dstaddr", "tcp_connection_status") == [
        (443, 840, "10.0.0.2", "established"),
    ]


def test_headerless_lines_follow_the_configured_format() -> None:
    """CloudWatch delivery: no header, the caller's ${...} format names the fields."""
    configured = field_names(
        "${start} ${end} ${log-status} ${action} ${srcaddr} ${dstaddr} ${srcport} ${dstport} "
        "${protocol} ${packets} ${bytes} ${interface-id}"
    )
    lines = [
        "1700000000 1700000060 OK REJECT 192.0.2.1 10.0.0.5 51000 22 6 1 60 eni-9",
        "1700000000 1700000060 NODATA - - - - - - - - eni-9",
    ]
    block = parse_lines(lines, latest_start=LATEST, default_format=configured)
    assert block.bad == []
    assert block.lines == 2
    assert rows(block, "interface_id", "action", "dstport", "bytes", "log_status") == [
        ("eni-9", "REJECT", 22, 60, "OK"),
        ("eni-9", None, None, None, "NODATA"),
    ]


def test_headerless_lines_without_a_format_are_the_default_format() -> None:
    """No header, nothing configured: AWS's default format, the first line is data."""
    block = parse_lines([GOOD, GOOD.replace("ACCEPT", "REJECT")], latest_start=LATEST)
    assert block.lines == 2
    assert rows(block, "srcport", "action") == [(443, "ACCEPT"), (443, "REJECT")]


def test_a_header_wins_over_the_configured_format() -> None:
    """An object that names its fields is read by its header, whatever is configured."""
    configured = ["start", "end"]
    block = parse_lines([HEADER, GOOD], latest_start=LATEST, default_format=configured)
    assert rows(block, "srcaddr", "bytes") == [("10.0.0.1", 840)]


def test_unknown_header_fields_land_in_extra() -> None:
    """Future AWS fields are kept, by their header name; '-' is a null value."""
    header = HEADER + " future-field flow-score"
    block = parse_lines([header, GOOD + " blue -", GOOD + " - 7"], latest_start=LATEST)
    assert block.bad == []
    assert block.flows.column("extra").to_pylist() == [
        [("future-field", "blue"), ("flow-score", None)],
        [("future-field", None), ("flow-score", "7")],
    ]


def test_header_names_match_regardless_of_case_and_underscores() -> None:
    """``Account_Id`` in a header is account-id, not an unknown field."""
    block = parse_lines([HEADER.replace("account-id", "Account_Id"), GOOD], latest_start=LATEST)
    assert rows(block, "account_id", "extra") == [("123456789010", None)]


# --- object errors ---------------------------------------------------------------------


def test_a_header_of_no_known_field_is_an_unreadable_object() -> None:
    """A first line of names none of which AWS knows makes the object unreadable."""
    with pytest.raises(ObjectError) as caught:
        parse_lines(["hello world of logs", GOOD], latest_start=LATEST)
    assert caught.value.reason == "unreadable_header"


def test_a_header_without_the_required_fields_is_refused() -> None:
    """Without a time and a flow key the object cannot be counted: missing_fields."""
    with pytest.raises(ObjectError) as caught:
        parse_lines(
            ["version srcaddr dstaddr action log-status", "2 a b ACCEPT OK"], latest_start=1
        )
    assert caught.value.reason == "missing_fields"
    assert caught.value.detail.startswith(
        "the header lacks srcport, dstport, protocol, packets, bytes, start, end:"
    )


def test_a_configured_format_without_the_required_fields_is_refused() -> None:
    """The same rule holds for the format of header-less objects."""
    with pytest.raises(ObjectError) as caught:
        parse_lines([GOOD], latest_start=LATEST, default_format=field_names("${start} ${end}"))
    assert caught.value.reason == "missing_fields"


def test_duplicate_header_names_make_the_header_unreadable() -> None:
    """Which of two srcport values counts would be a guess: the object is refused."""
    with pytest.raises(ObjectError) as caught:
        parse_lines([HEADER + " srcport", GOOD + " 80"], latest_start=LATEST)
    assert caught.value.reason == "unreadable_header"
    assert "repeats srcport" in caught.value.detail


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


# --- Parquet ---------------------------------------------------------------------------


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def aws_parquet(**overrides: Any) -> pa.Table:
    """Three records as AWS delivers Parquet: underscores, INT_32 / INT_64 / STRING."""
    columns: dict[str, Any] = {
        "version": pa.array([5, 5, 5], pa.int32()),
        "account_id": ["123456789010"] * 3,
        "interface_id": ["eni-1", "eni-1", "eni-2"],
        "srcaddr": ["10.0.0.1", None, "2001:db8::5"],
        "dstaddr": ["10.0.0.2", None, "2001:db8::6"],
        "srcport": pa.array([443, None, 22], pa.int32()),
        "dstport": pa.array([49152, None, 51000], pa.int32()),
        "protocol": pa.array([6, None, 6], pa.int32()),
        "packets": pa.array([10, None, 3], pa.int64()),
        "bytes": pa.array([840, None, 180], pa.int64()),
        "start": pa.array([1700000000, 1700000000, 1700000000], pa.int64()),
        "end": pa.array([1700000060, 1700000060, 1700000060], pa.int64()),
        "action": ["ACCEPT", None, "REJECT"],
        "log_status": ["OK", "NODATA", "OK"],
        "flow_direction": ["ingress", None, "ingress"],
        "traffic_path": pa.array([None, None, None], pa.int32()),
        "brand_new_field": pa.array([7, None, 9], pa.int32()),
    }
    columns.update(overrides)
    return pa.table(columns)


def test_parquet_delivery_reads_into_the_same_schema() -> None:
    """Typed AWS columns become SCHEMA's; an unknown column goes to extra as text."""
    blocks = list(parse_parquet(parquet_bytes(aws_parquet()), latest_start=LATEST))
    [block] = blocks
    assert block.flows.schema == SCHEMA
    assert (block.bad, block.lines) == ([], 3)
    assert rows(block, "log_status", "srcaddr", "srcport", "bytes", "action", "flow_direction") == [
        ("OK", "10.0.0.1", 443, 840, "ACCEPT", "ingress"),
        ("NODATA", None, None, None, None, None),
        ("OK", "2001:db8::5", 22, 180, "REJECT", "ingress"),
    ]
    assert block.flows.column("extra").to_pylist() == [
        [("brand_new_field", "7")],
        [("brand_new_field", None)],
        [("brand_new_field", "9")],
    ]


def test_parquet_rows_are_checked_and_blocks_follow_row_groups() -> None:
    """A bad Parquet row is a bad line numbered by its row; file objects work too."""
    table = aws_parquet(srcport=pa.array([443, None, 70000], pa.int32()))
    blocks = list(
        parse_parquet(io.BytesIO(parquet_bytes(table)), latest_start=LATEST, block_rows=2)
    )
    assert [block.lines for block in blocks] == [2, 1]
    [bad] = [b for block in blocks for b in block.bad]
    assert (bad.line, bad.reason, bad.detail) == (
        3,
        "invalid_field",
        "srcport: 70000 is outside 0..65535",
    )
    assert bad.text.startswith("5 123456789010 eni-2 2001:db8::5 2001:db8::6 70000 ")


def test_unreadable_or_incomplete_parquet_is_an_object_error() -> None:
    """Bytes that are not Parquet, or Parquet without start, dead-letter the object."""
    with pytest.raises(ObjectError) as caught:
        list(parse_parquet(b"PAR1 certainly not", latest_start=LATEST))
    assert caught.value.reason == "unreadable_object"
    with pytest.raises(ObjectError) as caught:
        list(parse_parquet(parquet_bytes(aws_parquet().drop(["start"])), latest_start=LATEST))
    assert caught.value.reason == "missing_fields"


def test_a_header_with_a_trailing_or_doubled_space_is_still_the_header() -> None:
    """Taken for data, it would apply the default order by position: bytes and packets
    swapped here, silently."""
    header = "version account-id interface-id srcaddr dstaddr srcport dstport protocol " + (
        "bytes  packets start end action log-status "
    )
    line = "2 123456789010 eni-1 10.0.0.1 10.0.0.2 1 2 6 1000 20 1418530010 1418530070 ACCEPT OK"
    block = parse_lines([header, line], latest_start=2_000_000_000)
    assert not block.bad
    assert block.flows.column("bytes").to_pylist() == [1000]
    assert block.flows.column("packets").to_pylist() == [20]


@pytest.mark.parametrize("account", ["12|34", "a b", "x" * 65, "\x00"])
def test_an_id_that_is_no_aws_id_fails_its_line(account: str) -> None:
    """Ids become Kafka keys, table keys and filters: only letters, digits and hyphens."""
    values = GOOD.split(" ")
    values[DEFAULT_FORMAT.index("account-id")] = account
    bad = one_bad(" ".join(values))
    assert bad.reason in ("invalid_field", "malformed_line")
