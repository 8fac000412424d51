"""The views' answers over a lake written by the workers' own writer (filters.py, query.py),
against sums computed here in plain Python."""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from streams.common.errors import BadRequest
from streams.flowlogs.chunks import conform
from streams.flowlogs.filters import Filters, parse_filters, strict
from streams.flowlogs.lake import FlowLake
from streams.flowlogs.query import LakeQueries
from streams.flowlogs.rollups import OFFSET_COLUMN

DAY = 1_764_547_200  # 2025-12-01T00:00:00Z


def sample(n: int, seed: int = 3) -> list[dict[str, Any]]:
    draw = random.Random(seed)
    rows = []
    for i in range(n):
        status = draw.choices(["OK", "NODATA", "SKIPDATA"], [0.95, 0.03, 0.02])[0]
        flow = status == "OK"
        rows.append({
            "version": 5, "account_id": draw.choice(["111122223333", "444455556666"]),
            "vpc_id": draw.choice(["vpc-a", "vpc-b", None]),
            "subnet_id": draw.choice(["subnet-1", "subnet-2"]),
            "interface_id": f"eni-{draw.randrange(4)}",
            "srcaddr": f"10.0.0.{draw.randrange(20)}" if flow else None,
            "dstaddr": draw.choice(["8.8.8.8", "2001:db8::1", "10.0.1.5"]) if flow else None,
            "srcport": draw.randrange(30000, 30010) if flow else None,
            "dstport": draw.choice([22, 443, 53]) if flow else None,
            "protocol": draw.choice([6, 17, 1]) if flow else None,
            "packets": draw.randrange(1, 50) if flow else None,
            "bytes": draw.randrange(40, 100_000) if flow else None,
            "start": DAY + draw.randrange(0, 3 * 3600), "end": None,
            "action": draw.choice(["ACCEPT", "REJECT"]) if flow else None,
            "log_status": status, OFFSET_COLUMN: i,
        })  # fmt: skip
    return rows


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[LakeQueries, list[dict[str, Any]]]:
    root = tmp_path_factory.mktemp("lake")
    rows = sample(3000)
    writer = FlowLake.open(str(root))
    for partition in (0, 1):
        mine = [r for r in rows if r[OFFSET_COLUMN] % 2 == partition]
        table = conform(
            pa.Table.from_pylist([{k: v for k, v in r.items() if k != OFFSET_COLUMN} for r in mine])
        )
        table = table.append_column(
            OFFSET_COLUMN, pa.array([r[OFFSET_COLUMN] for r in mine], pa.int64())
        )
        # Two batches, as a worker writes them: offsets 0..k, then k+1..the end.
        split = mine[699][OFFSET_COLUMN]
        writer.write_batch(partition, 0, split, table.slice(0, 700))
        writer.write_batch(partition, split + 1, 3000, table.slice(700))
    return LakeQueries(str(root)), rows


def matches(row: dict[str, Any], filters: Filters) -> bool:
    for name in ("account_id", "vpc_id", "subnet_id", "interface_id", "protocol", "action"):
        wanted = getattr(filters, name)
        if wanted and row[name] not in wanted:
            return False
    if filters.start is not None and row["start"] < filters.start:
        return False
    return filters.end is None or row["start"] < filters.end


FILTERS = [
    Filters(),
    Filters(vpc_id=("vpc-a",), action=("REJECT",)),
    Filters(account_id=("444455556666",), protocol=(6, 17), start=DAY + 1800, end=DAY + 7200),
    Filters(interface_id=("eni-2",), start=DAY + 3599, end=DAY + 3601),
]


@pytest.mark.parametrize("filters", FILTERS)
def test_summary_equals_a_count_by_hand(lake: Any, filters: Filters) -> None:
    queries, rows = lake
    mine = [r for r in rows if matches(r, filters)]
    flows = [r for r in mine if r["log_status"] == "OK"]
    assert queries.summary(filters) == {
        "flows": len(flows),
        "bytes": sum(r["bytes"] for r in flows),
        "packets": sum(r["packets"] for r in flows),
        "accepted": sum(r["action"] == "ACCEPT" for r in flows),
        "rejected": sum(r["action"] == "REJECT" for r in flows),
        "nodata": sum(r["log_status"] == "NODATA" for r in mine),
        "skipdata": sum(r["log_status"] == "SKIPDATA" for r in mine),
    }


@pytest.mark.parametrize("filters", FILTERS)
@pytest.mark.parametrize(
    ("field", "by"),
    [("srcaddr", "bytes"), ("dstport", "flows"), ("vpc_id", "packets"), ("protocol", "flows")],
)
def test_top_equals_a_ranking_by_hand(lake: Any, filters: Filters, field: str, by: str) -> None:
    queries, rows = lake
    totals: dict[str, dict[str, int]] = defaultdict(lambda: {"bytes": 0, "packets": 0, "flows": 0})
    for r in rows:
        if r["log_status"] == "OK" and matches(r, filters) and r[field] is not None:
            total = totals[str(r[field])]
            total["bytes"] += r["bytes"]
            total["packets"] += r["packets"]
            total["flows"] += 1
    expected = [
        {"value": v, **t} for v, t in sorted(totals.items(), key=lambda i: (-i[1][by], i[0]))
    ]
    assert queries.top(filters, field, by, 5) == expected[:5]


def test_hourly_equals_a_count_by_hand(lake: Any) -> None:
    queries, rows = lake
    hours: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in rows:
        if r["log_status"] == "OK":
            h = hours[r["start"] - r["start"] % 3600]
            h[0] += 1
            h[1] += r["action"] == "REJECT"
            h[2] += r["bytes"]
    answer = queries.hourly(Filters())
    assert [a["hour"] for a in answer] == [
        "2025-12-01T00:00:00Z",
        "2025-12-01T01:00:00Z",
        "2025-12-01T02:00:00Z",
    ]
    assert [[a["flows"], a["rejected"], a["bytes"]] for a in answer] == [
        hours[h] for h in sorted(hours)
    ]


def test_an_empty_lake_answers_zeros(tmp_path: Path) -> None:
    queries = LakeQueries(str(tmp_path))
    assert queries.summary(Filters())["flows"] == 0
    assert queries.top(Filters(), "srcaddr", "bytes", 10) == []
    assert queries.hourly(Filters()) == []


def test_filters_parse_names_numbers_and_lists() -> None:
    query = {"protocol": "tcp,17", "action": "reject", "vpc_id": "vpc-a,vpc-b"}
    query.update(start="2025-12-01T00:00:00Z", end="2025-12-01T01:00:00.5Z")
    filters = parse_filters(query)
    assert filters.protocol == (6, 17)
    assert filters.action == ("REJECT",)
    assert filters.vpc_id == ("vpc-a", "vpc-b")
    assert (filters.start, filters.end) == (DAY, DAY + 3601)


@pytest.mark.parametrize("query", [
    {"protocol": "tcpx"}, {"protocol": "256"}, {"action": "DROP"}, {"vpc_id": "vpc a"},
    {"vpc_id": "x' OR 1=1 --"}, {"start": "2025-12-01"},
    {"start": "2025-12-02T00:00:00Z", "end": "2025-12-01T00:00:00Z"},
    {"account_id": ",".join(str(i) for i in range(101))},
])  # fmt: skip
def test_a_bad_filter_is_refused(query: dict[str, str]) -> None:
    with pytest.raises(BadRequest):
        parse_filters(query)


def test_an_unknown_or_repeated_parameter_is_refused() -> None:
    """A misspelt filter would otherwise be ignored and the answer cover everything."""
    from multidict import MultiDict

    with pytest.raises(BadRequest, match="unknown parameter 'acount_id'"):
        strict({"acount_id": "123"})
    with pytest.raises(BadRequest, match="given twice"):
        strict(MultiDict([("action", "ACCEPT"), ("action", "REJECT")]))
    with pytest.raises(BadRequest, match="names no value"):
        parse_filters({"account_id": ",,,"})
    strict({"field": "srcaddr", "vpc_id": "vpc-1"}, "field")
