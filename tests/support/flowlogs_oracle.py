"""The flow-logs figures computed independently of the pipeline: gunzip, split, sum.

Written from AWS's documentation of the format, sharing no code with streams/flowlogs:
a header line names the fields, values are separated by single spaces, ``-`` is no
value, NODATA and SKIPDATA rows are not flows. Used by the end-to-end tests to check
the views' answers.
"""

from __future__ import annotations

import gzip
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

INTEGERS = ("srcport", "dstport", "protocol", "packets", "bytes", "start", "end")
COLUMNS = {  # AWS's field names -> the views' names
    "account-id": "account_id", "vpc-id": "vpc_id", "subnet-id": "subnet_id",
    "interface-id": "interface_id", "log-status": "log_status",
}  # fmt: skip


@dataclass(frozen=True)
class Row:
    fields: Mapping[str, Any]

    def get(self, name: str) -> Any:
        return self.fields.get(name)


def rows_of(objects: Iterable[bytes]) -> list[Row]:
    """Every record of ``objects`` (gzipped or plain text with a header line)."""
    rows = []
    for data in objects:
        text = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
        lines = text.decode().splitlines()
        if not lines:
            continue
        names = [COLUMNS.get(name, name) for name in lines[0].split(" ")]
        for line in lines[1:]:
            if not line.strip():
                continue
            values = line.split(" ")
            assert len(values) == len(names), line
            record: dict[str, Any] = {}
            for name, value in zip(names, values, strict=True):
                if value == "-":
                    record[name] = None
                elif name in INTEGERS:
                    record[name] = int(value)
                else:
                    record[name] = value
            rows.append(Row(record))
    return rows


def keep(row: Row, filters: Mapping[str, Any]) -> bool:
    for name, wanted in filters.items():
        if name == "start":
            if row.get("start") < wanted:
                return False
        elif name == "end":
            if row.get("start") >= wanted:
                return False
        elif row.get(name) not in wanted:
            return False
    return True


def summary(rows: Iterable[Row], filters: Mapping[str, Any]) -> dict[str, int]:
    mine = [r for r in rows if keep(r, filters)]
    flows = [r for r in mine if r.get("log_status") == "OK"]
    return {
        "flows": len(flows),
        "bytes": sum(r.get("bytes") for r in flows),
        "packets": sum(r.get("packets") for r in flows),
        "accepted": sum(r.get("action") == "ACCEPT" for r in flows),
        "rejected": sum(r.get("action") == "REJECT" for r in flows),
        "nodata": sum(r.get("log_status") == "NODATA" for r in mine),
        "skipdata": sum(r.get("log_status") == "SKIPDATA" for r in mine),
    }


def top(
    rows: Iterable[Row], filters: Mapping[str, Any], field: str, by: str, limit: int
) -> list[dict[str, Any]]:
    totals: dict[str, dict[str, int]] = defaultdict(lambda: {"bytes": 0, "packets": 0, "flows": 0})
    for r in rows:
        if r.get("log_status") != "OK" or not keep(r, filters) or r.get(field) is None:
            continue
        total = totals[str(r.get(field))]
        total["bytes"] += r.get("bytes")
        total["packets"] += r.get("packets")
        total["flows"] += 1
    ranked = [{"value": v, **t} for v, t in sorted(totals.items(), key=lambda i: (-i[1][by], i[0]))]
    return ranked[:limit]


def hourly(rows: Iterable[Row], filters: Mapping[str, Any]) -> list[tuple[int, int, int, int]]:
    """``(hour start, flows, rejected, bytes)`` per hour with flows, in order."""
    hours: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in rows:
        if r.get("log_status") != "OK" or not keep(r, filters):
            continue
        h = hours[r.get("start") - r.get("start") % 3600]
        h[0] += 1
        h[1] += r.get("action") == "REJECT"
        h[2] += r.get("bytes")
    return [(hour, *hours[hour]) for hour in sorted(hours)]  # type: ignore[misc]
