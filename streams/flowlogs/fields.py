"""Every field of an AWS VPC flow log record, as AWS documents it today (versions 2 to 11).

Source: AWS, "Flow log records", Amazon VPC User Guide, table "Available fields"
(https://docs.aws.amazon.com/vpc/latest/userguide/flow-log-records.html): 54 fields, each
with the version that introduced it and its Parquet data type. Version 6 introduced transit
gateway flow logs, whose fields belong to another record type, so no field here has it.

Text objects carry every value as a string; this catalogue says what each becomes in the
normalized table: the fields AWS types INT_32/INT_64 in Parquet (plus ``encryption-status``,
documented as the numeric codes 0 to 3) are int64 columns, everything else is a string.
Integer fields carry the inclusive range a value must lie in; AWS's documented codes
(``traffic-path`` 1-8, ``encryption-status`` 0-3) get a wider 0..255 so that a code AWS adds
later is kept rather than rejected.

Two more names come from the original challenge and are not AWS's (``packet-dstaddr``,
``tcp-connection-status``): they are accepted as plain string columns and nothing relies on
them.

Column names are the AWS names with hyphens turned into underscores, which is also how
AWS names the columns of its Parquet delivery.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

import pyarrow as pa

Kind = Literal["int", "address", "string"]

INT64_MAX = 2**63 - 1
PORT = (0, 65535)
BYTE_CODE = (0, 255)
COUNT = (0, INT64_MAX)
# One record covers at most AWS's 10-minute aggregation interval of one interface: even
# at 400 Gbit/s that is 3e13 bytes. The bounds leave room and keep a query's sums of
# millions of records within 64 bits.
BYTES = (0, 10**15)
PACKETS = (0, 10**13)
EPOCH_SECONDS = (0, INT64_MAX)  # the window checks (2000-01-01, latest_start) live in the parser


@dataclass(frozen=True)
class Field:
    name: str  # as AWS writes it in formats and headers: ``account-id``
    version: int  # the flow log version that introduced it; 0 for the challenge's own names
    kind: Kind
    bounds: tuple[int, int] | None = None  # inclusive, integer fields only

    @property
    def column(self) -> str:
        return self.name.replace("-", "_")

    @property
    def arrow_type(self) -> pa.DataType:
        return pa.int64() if self.kind == "int" else pa.string()


def _strings(version: int, *names: str) -> list[Field]:
    return [Field(name, version, "string") for name in names]


FIELDS: tuple[Field, ...] = (
    # version 2: the default format, in AWS's order
    Field("version", 2, "int", (2, 255)),
    *_strings(2, "account-id", "interface-id"),
    Field("srcaddr", 2, "address"),
    Field("dstaddr", 2, "address"),
    Field("srcport", 2, "int", PORT),
    Field("dstport", 2, "int", PORT),
    Field("protocol", 2, "int", BYTE_CODE),
    Field("packets", 2, "int", PACKETS),
    Field("bytes", 2, "int", BYTES),
    Field("start", 2, "int", EPOCH_SECONDS),
    Field("end", 2, "int", EPOCH_SECONDS),
    *_strings(2, "action", "log-status"),
    # version 3
    *_strings(3, "vpc-id", "subnet-id", "instance-id"),
    # TCP flags are a 9-bit field on the wire; AWS ORs them over the interval, 16 bits is ample
    Field("tcp-flags", 3, "int", PORT),
    *_strings(3, "type"),
    Field("pkt-srcaddr", 3, "address"),
    Field("pkt-dstaddr", 3, "address"),
    # version 4
    *_strings(4, "region", "az-id", "sublocation-type", "sublocation-id"),
    # version 5
    *_strings(5, "pkt-src-aws-service", "pkt-dst-aws-service", "flow-direction"),
    Field("traffic-path", 5, "int", BYTE_CODE),
    # version 7: Amazon ECS
    *_strings(
        7,
        "ecs-cluster-arn",
        "ecs-cluster-name",
        "ecs-container-instance-arn",
        "ecs-container-instance-id",
        "ecs-container-id",
        "ecs-second-container-id",
        "ecs-service-name",
        "ecs-task-definition-arn",
        "ecs-task-arn",
        "ecs-task-id",
    ),
    # versions 8 to 10
    *_strings(8, "reject-reason"),
    *_strings(9, "resource-id"),
    Field("encryption-status", 10, "int", BYTE_CODE),
    # version 11: resource tags, interface type, next hop
    *_strings(
        11,
        "instance-tag",
        "instance-tag-2",
        "interface-tag",
        "interface-tag-2",
        "asg-tag",
        "asg-tag-2",
        "interface-type",
        "next-hop-interface-id",
        "next-hop-subnet-id",
        "next-hop-az-id",
        "next-hop-vpc-id",
        "next-hop-interface-type",
    ),
    # the original challenge's names, not AWS's
    *_strings(0, "packet-dstaddr", "tcp-connection-status"),
)

BY_NAME: Mapping[str, Field] = MappingProxyType({field.name: field for field in FIELDS})
BY_COLUMN: Mapping[str, Field] = MappingProxyType({field.column: field for field in FIELDS})

DEFAULT_FORMAT: tuple[str, ...] = tuple(field.name for field in FIELDS if field.version == 2)

#: Unknown fields of an object (future AWS fields), by their header name; null when none.
EXTRA = "extra"

SCHEMA = pa.schema(
    [pa.field(field.column, field.arrow_type) for field in FIELDS]
    + [pa.field(EXTRA, pa.map_(pa.string(), pa.string()))]
)
