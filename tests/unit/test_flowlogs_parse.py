"""What the flow-log parser makes of an object: rows, bad lines, object errors.

Fixtures under tests/fixtures/flowlogs: AWS's documented example records (the default
format's accept, reject, NODATA, SKIPDATA, ICMP and IPv6 lines, and the version-3
custom-format line, from the "Flow log record examples" page), and a header naming all
54 fields of version 11 with hand-made values.
"""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from streams.flowlogs import fields
from streams.flowlogs.fields import DEFAULT_FORMAT, SCHEMA
from streams.flowlogs.parse import (
    ObjectError,
    field_names,
    parse_lines,
    parse_parquet,
)
from tests.support.flowlogs_parsing import (
    FIVE_TUPLE,
    GOOD,
    HEADER,
    LATEST,
    fixture_lines,
    rows,
)

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
