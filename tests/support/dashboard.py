"""A small flow-logs lake for the dashboard's unit tests, written by the workers' own
lake writer, and the rows it holds (for computations independent of the dashboard)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pyarrow as pa

from streams.flowlogs.chunks import conform
from streams.flowlogs.lake import FlowLake
from streams.flowlogs.rollups import OFFSET_COLUMN

DAY = 1_793_491_200  # 2026-11-01T00:00:00Z
ACCOUNTS = ("111122223333", "444455556666")
VPCS = ("vpc-a", "vpc-b")
#: Public addresses registered in known countries (as iptocc has them), private ones,
#: CGNAT, IPv6 unique local and documentation space (neither private nor external).
PUBLIC = ("8.8.8.8", "8.8.4.4", "81.2.69.160", "2003::1", "1.120.0.9", "133.1.2.3")
INTERNAL = ("10.0.0.1", "10.0.0.2", "172.16.5.4", "192.168.1.1", "100.64.0.9", "fd00::5")
RESERVED = ("192.0.2.10", "127.0.0.1")


def rows(n: int = 1500, seed: int = 5, hours: int = 30) -> list[dict[str, Any]]:
    """Flows over ``hours`` hours from DAY (two days' worth of hour-of-day cells), of two
    accounts and VPCs, ACCEPT and REJECT, TCP, UDP and ICMP, and a few NODATA rows."""
    draw = random.Random(seed)
    out = []
    for i in range(n):
        status = draw.choices(["OK", "NODATA", "SKIPDATA"], [0.96, 0.03, 0.01])[0]
        flow = status == "OK"
        src = draw.choice(INTERNAL + PUBLIC + RESERVED[:1])
        dst = draw.choice(INTERNAL[:3] + PUBLIC)
        out.append({
            "version": 5, "account_id": draw.choice(ACCOUNTS), "vpc_id": draw.choice(VPCS),
            "subnet_id": draw.choice(["subnet-1", "subnet-2"]),
            "interface_id": f"eni-{draw.randrange(4)}",
            "srcaddr": src if flow else None, "dstaddr": dst if flow else None,
            "srcport": draw.choice([443, 22, 40000, 40001]) if flow else None,
            "dstport": draw.choice([22, 443, 53, 50000]) if flow else None,
            "protocol": draw.choice([6, 17, 1]) if flow else None,
            "packets": draw.randrange(1, 50) if flow else None,
            "bytes": draw.randrange(40, 100_000) if flow else None,
            "start": DAY + draw.randrange(0, hours * 3600), "end": None,
            "action": draw.choice(["ACCEPT", "REJECT"]) if flow else None,
            "log_status": status, OFFSET_COLUMN: i,
        })  # fmt: skip
    return out


def write_lake(root: Path, flows: list[dict[str, Any]], partition: int = 0) -> None:
    """``flows`` into the lake at ``root``, as one worker batch of ``partition``."""
    table = conform(
        pa.Table.from_pylist([{k: v for k, v in r.items() if k != OFFSET_COLUMN} for r in flows])
    )
    table = table.append_column(
        OFFSET_COLUMN, pa.array([r[OFFSET_COLUMN] for r in flows], pa.int64())
    )
    first, last = flows[0][OFFSET_COLUMN], flows[-1][OFFSET_COLUMN]
    FlowLake.open(str(root)).write_batch(partition, first, last, table)
