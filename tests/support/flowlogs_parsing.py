"""Helpers of the flow-log parser's unit tests: AWS's example fixtures and one-call parses."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pyarrow as pa

from streams.flowlogs.fields import DEFAULT_FORMAT
from streams.flowlogs.parse import BadLine, Block, parse_lines, parse_text

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
