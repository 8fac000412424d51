"""The dashboard's questions over a small lake written by the workers' writer, against
figures computed here in plain Python from the same rows (data.py, geo.py)."""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from pathlib import Path
from typing import Any

import iptocc
import pytest

from streams.flowlogs.dashboard import data as dashboard_data
from streams.flowlogs.dashboard.data import NARROW_COPY, TABLE_ROWS, DashboardData
from streams.flowlogs.dashboard.selection import Selection
from streams.flowlogs.filters import Filters
from streams.flowlogs.query import Copy, LakeQueries
from tests.support.dashboard import DAY, rows, write_lake

Row = dict[str, Any]


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[DashboardData, list[Row]]:
    root = tmp_path_factory.mktemp("lake")
    flows = rows()
    write_lake(root, flows[:800], partition=0)
    write_lake(root, flows[800:], partition=1)
    return DashboardData(LakeQueries(str(root))), flows


def selected(row: Row, selection: Selection) -> bool:
    filters = selection.filters
    for name in ("account_id", "vpc_id", "subnet_id", "interface_id", "protocol", "action"):
        wanted = getattr(filters, name)
        if wanted and row[name] not in wanted:
            return False
    if filters.start is not None and row["start"] < filters.start:
        return False
    if filters.end is not None and row["start"] >= filters.end:
        return False
    if selection.address and not {row["srcaddr"], row["dstaddr"]} & set(selection.address):
        return False
    return not selection.port or bool({row["srcport"], row["dstport"]} & set(selection.port))


def ranking(flows: list[Row], key: Any, by: str) -> list[tuple[Any, dict[str, int]]]:
    totals: dict[Any, dict[str, int]] = defaultdict(lambda: {"bytes": 0, "packets": 0, "flows": 0})
    for row in flows:
        total = totals[key(row)]
        total["bytes"] += row["bytes"]
        total["packets"] += row["packets"]
        total["flows"] += 1
    return sorted(totals.items(), key=lambda item: (-item[1][by], item[0]))


def external(address: str) -> bool:
    parsed = ipaddress.ip_address(address)
    return parsed.is_global and not parsed.is_multicast


SELECTIONS = [
    Selection(),
    Selection(Filters(vpc_id=("vpc-a",), action=("REJECT",)), by="flows"),
    Selection(
        Filters(
            account_id=("444455556666",), protocol=(6, 17), start=DAY + 3600, end=DAY + 7 * 3600
        ),
        by="packets",
    ),
    Selection(Filters(start=DAY + 20 * 3600), address=("8.8.8.8", "10.0.0.1"), port=(22,)),
    Selection(Filters(interface_id=("eni-9",))),  # selects nothing
]


@pytest.mark.parametrize("selection", SELECTIONS)
def test_every_answer_equals_a_computation_by_hand(lake: Any, selection: Selection) -> None:
    """Summary, top talkers, hours, countries and conversations are exactly the sums of
    the rows the selection keeps."""
    data, all_rows = lake
    mine = [r for r in all_rows if selected(r, selection)]
    flows = [r for r in mine if r["log_status"] == "OK"]
    answers = data.answers(selection)
    assert answers.summary == {
        "flows": len(flows),
        "bytes": sum(r["bytes"] for r in flows),
        "packets": sum(r["packets"] for r in flows),
        "accepted": sum(r["action"] == "ACCEPT" for r in flows),
        "rejected": sum(r["action"] == "REJECT" for r in flows),
        "nodata": sum(r["log_status"] == "NODATA" for r in mine),
        "skipdata": sum(r["log_status"] == "SKIPDATA" for r in mine),
    }
    by = selection.by
    for answer, field in ((answers.sources, "srcaddr"), (answers.destinations, "dstaddr")):
        expected = [{"value": v, **t} for v, t in ranking(flows, lambda r, f=field: r[f], by)]
        assert answer == expected[:TABLE_ROWS]
    hours: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in flows:
        hour = hours[r["start"] - r["start"] % 3600]
        hour[0] += 1
        hour[1] += r["action"] == "REJECT"
        hour[2] += r["bytes"]
    assert [(h["flows"], h["rejected"], h["bytes"]) for h in answers.hourly] == [
        tuple(hours[h]) for h in sorted(hours)
    ]
    conversations = ranking(flows, lambda r: (r["srcaddr"], r["dstaddr"]), by)
    assert [
        ((c["srcaddr"], c["dstaddr"]), {k: c[k] for k in ("bytes", "packets", "flows")})
        for c in answers.conversations
    ] == conversations[: len(answers.conversations)]
    assert len(answers.conversations) == min(len(conversations), 60)
    countries: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    addresses: dict[str, set[str]] = defaultdict(set)
    for r in flows:  # once per country a flow touches
        touched = {
            str(iptocc.country_code([end])[0]): end
            for end in (r["srcaddr"], r["dstaddr"])
            if external(end)
        }
        for code in touched:
            countries[code][0] += 1
            countries[code][1] += r["bytes"]
        for end in (r["srcaddr"], r["dstaddr"]):
            if external(end):
                addresses[str(iptocc.country_code([end])[0])].add(end)
    assert {c.iso2: [c.flows, c.bytes] for c in answers.countries.rows} == countries
    assert {c.iso2: c.addresses for c in answers.countries.rows} == {
        code: len(found) for code, found in addresses.items()
    }
    assert answers.countries.unplaced_addresses == 0


@pytest.mark.parametrize("selection", SELECTIONS[:3])
def test_summary_top_and_hourly_are_the_views_answers(lake: Any, selection: Selection) -> None:
    """What the worker's views answer for the same filters, to the last figure."""
    data, _ = lake
    views = data.lake
    answers = data.answers(selection)
    assert answers.summary == views.summary(selection.filters)
    assert answers.hourly == views.hourly(selection.filters)
    assert answers.sources[:10] == views.top(selection.filters, "srcaddr", selection.by, 10)
    assert answers.destinations[:10] == views.top(selection.filters, "dstaddr", selection.by, 10)


@pytest.mark.parametrize("most_rows", [0, 5, 100_000])
@pytest.mark.parametrize("selection", SELECTIONS)
def test_answers_are_the_same_from_a_copy_or_its_fallback(
    lake: Any, selection: Selection, most_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A narrowed selection is answered from an in-memory copy when it holds few flows
    and from the files when it holds more than the copy's limit: the same figures."""
    data, _ = lake
    as_drawn = data.answers(selection)
    monkeypatch.setattr(
        dashboard_data, "NARROW_COPY", Copy(NARROW_COPY.columns, most_rows), raising=True
    )
    assert data.answers(selection) == as_drawn
    assert data.lake.connection.execute(  # the copy never outlives its render
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'copied_flows'"
    ).fetchone() == (0,)


def test_the_catalog_lists_what_the_lake_holds(lake: Any) -> None:
    """The filters offer every account, VPC, subnet, ENI and protocol held, sorted."""
    data, all_rows = lake
    catalog = data.catalog()

    def held(name: str) -> list[str]:
        return [str(v) for v in sorted({r[name] for r in all_rows if r[name] is not None})]

    assert catalog.options == {
        name: held(name)
        for name in ("account_id", "vpc_id", "subnet_id", "interface_id", "protocol")
    }
    assert catalog.earliest == min(r["start"] for r in all_rows)
    assert catalog.latest == max(r["start"] for r in all_rows)


def test_the_version_changes_when_a_file_is_written_and_only_then(tmp_path: Path) -> None:
    """Live refresh re-queries when workers wrote files, not at every tick."""
    data = DashboardData(LakeQueries(str(tmp_path)))
    empty = data.version()
    assert data.version() == empty
    flows = rows(50)
    write_lake(tmp_path, flows[:20])
    first = data.version()
    assert first != empty
    assert data.version() == first
    write_lake(tmp_path, flows[20:])
    assert data.version() != first


def test_an_empty_lake_answers_zeros_and_nothing(tmp_path: Path) -> None:
    """No file yet (a worker that has not written): empty answers, no error."""
    data = DashboardData(LakeQueries(str(tmp_path)))
    answers = data.answers(Selection(address=("8.8.8.8",)))
    assert answers.summary["flows"] == 0
    assert (answers.sources, answers.hourly, answers.conversations) == ([], [], [])
    assert answers.countries.rows == ()
    catalog = data.catalog()
    assert (catalog.latest, catalog.options["vpc_id"]) == (None, [])
