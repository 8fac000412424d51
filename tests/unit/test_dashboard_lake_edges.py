"""The lake's odd shapes, read by the dashboard and the views alike (query.py, data.py):
null filter columns, flows at the ends of the dates a lake can hold, unreadable or
vanished files, glob characters in the lake's path, files outside hour directories."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from streams.flowlogs.chunks import conform
from streams.flowlogs.dashboard.data import DashboardData
from streams.flowlogs.dashboard.selection import Selection
from streams.flowlogs.filters import Filters
from streams.flowlogs.lake import FlowLake
from streams.flowlogs.lake_paths import EARLIEST_START, LATEST_START, hour_dir
from streams.flowlogs.query import LakeQueries
from streams.flowlogs.rollups import OFFSET_COLUMN
from tests.support.dashboard import DAY, rows, write_lake

Row = dict[str, Any]


def flow(start: int = DAY, **changes: Any) -> Row:
    """One accepted TCP flow of 100 bytes from a private address to 8.8.8.8."""
    return {
        "version": 5, "account_id": "111122223333", "vpc_id": "vpc-a",
        "subnet_id": "subnet-1", "interface_id": "eni-0", "srcaddr": "10.0.0.1",
        "dstaddr": "8.8.8.8", "srcport": 40000, "dstport": 443, "protocol": 6,
        "packets": 1, "bytes": 100, "start": start, "end": start, "action": "ACCEPT",
        "log_status": "OK", OFFSET_COLUMN: 0, **changes,
    }  # fmt: skip


def without_offset(row: Row) -> Row:
    return {k: v for k, v in row.items() if k != OFFSET_COLUMN}


def put_file(path: Path, flows: list[Row]) -> Path:
    """``flows`` as one Parquet file at ``path``, whatever its directory (no writer)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(
        [{k: v for k, v in r.items() if k != OFFSET_COLUMN} for r in flows]
    )
    pq.write_table(conform(table), path)
    return path


def data_of(root: Path) -> DashboardData:
    return DashboardData(LakeQueries(str(root)))


def test_a_lake_of_version_2_logs_shows_its_flows(tmp_path: Path) -> None:
    """Version-2 logs have no VPC, subnet...: their lists are empty, the flows count."""
    held = [flow(vpc_id=None, subnet_id=None, version=2, **{OFFSET_COLUMN: i}) for i in range(3)]
    held[2]["account_id"] = held[2]["interface_id"] = held[2]["protocol"] = None
    write_lake(tmp_path, held)
    data = data_of(tmp_path)
    catalog = data.catalog()
    assert catalog.options["vpc_id"] == catalog.options["subnet_id"] == []
    assert catalog.options["account_id"] == ["111122223333"]
    assert (catalog.earliest, catalog.latest) == (DAY, DAY)
    assert data.answers(Selection()).summary["flows"] == 3


def test_a_flow_counts_once_per_country_it_touches(tmp_path: Path) -> None:
    """Both ends in one country (or one address): once there; across two: once in each."""
    write_lake(
        tmp_path,
        [
            flow(srcaddr="8.8.8.8", dstaddr="8.8.4.4", bytes=1000, **{OFFSET_COLUMN: 0}),
            flow(srcaddr="8.8.8.8", dstaddr="10.0.0.1", bytes=10, **{OFFSET_COLUMN: 1}),
            flow(srcaddr="9.9.9.9", dstaddr="9.9.9.9", bytes=5, **{OFFSET_COLUMN: 2}),
            flow(srcaddr="8.8.8.8", dstaddr="2003::1", bytes=7, **{OFFSET_COLUMN: 3}),  # DE
        ],
    )
    countries = data_of(tmp_path).answers(Selection()).countries
    assert {c.iso2: (c.addresses, c.flows, c.bytes) for c in countries.rows} == {
        "US": (3, 4, 1022),
        "DE": (1, 1, 7),
    }


def test_flows_at_the_ends_of_the_dates_a_lake_holds_count(tmp_path: Path) -> None:
    """Starts in 1969 and in year 9999's last second are counted and drawn; a start past
    year 9999 (put in a file by another hand) is left out; nothing raises."""
    write_lake(tmp_path, [flow(-1800), flow(LATEST_START, **{OFFSET_COLUMN: 1})])
    put_file(tmp_path / "flows" / hour_dir(DAY) / "part-p009-1-1.parquet", [flow(10**12)])
    data = data_of(tmp_path)
    catalog = data.catalog()
    assert (catalog.earliest, catalog.latest) == (-1800, LATEST_START)
    answers = data.answers(Selection())
    assert answers.summary["flows"] == 2
    assert [h["hour"] for h in answers.hourly] == ["1969-12-31T23:00:00Z", "9999-12-31T23:00:00Z"]
    last_hour = Filters(start=LATEST_START + 1 - 3600, end=LATEST_START + 1)
    assert data.answers(Selection(last_hour)).summary["flows"] == 1
    assert data.lake.summary(Filters(end=EARLIEST_START))["flows"] == 0
    assert data.lake.summary(Filters(start=LATEST_START + 1))["flows"] == 0


def test_the_writer_refuses_a_start_past_year_9999(tmp_path: Path) -> None:
    """No hour directory can name such a start: the batch fails before any file lands."""
    table = conform(pa.Table.from_pylist([{"start": 10**12, "log_status": "OK"}]))
    table = table.append_column(OFFSET_COLUMN, pa.array([0], pa.int64()))
    with pytest.raises(ValueError, match="year"):
        FlowLake.open(str(tmp_path)).write_batch(0, 0, 0, table)
    assert not list(tmp_path.rglob("*.parquet"))


def bad_files(hour: Path) -> list[Path]:
    """One of each file a lake should never hold, in ``hour``."""
    good = put_file(hour / "good.parquet", [flow()]).read_bytes()
    older = pa.table({"srcaddr": ["10.0.0.1"], "bytes": [1], "start": [DAY]})
    typed = conform(pa.Table.from_pylist([flow()])).set_column(
        SCHEMA_INDEX["bytes"], "bytes", pa.array(["100"])
    )
    files = [hour / f"part-p00{i}-0-0.parquet" for i in range(5)]
    files[0].write_bytes(b"")
    files[1].write_bytes(good[: len(good) // 2])
    files[2].write_text("not,parquet\n")
    pq.write_table(older, files[3])
    pq.write_table(typed, files[4])
    (hour / "good.parquet").unlink()
    return files


SCHEMA_INDEX = {name: i for i, name in enumerate(conform(pa.table({"start": [0]})).column_names)}


def test_unreadable_files_are_skipped_and_named(tmp_path: Path) -> None:
    """Zero bytes, truncated, not Parquet, an older schema, a column of another type:
    the answers come from the other files, and say which files were left out."""
    held = rows(200, hours=3)
    write_lake(tmp_path, held)
    bad = bad_files(tmp_path / "flows" / hour_dir(DAY + 3600))
    data = data_of(tmp_path)
    expected = sum(r["log_status"] == "OK" for r in held)
    for _ in range(2):  # the second read leaves them out before reading
        answers = data.answers(Selection())
        assert answers.summary["flows"] == expected
        assert answers.skipped == tuple(str(path) for path in bad)
    catalog = data.catalog()
    assert (catalog.latest, catalog.skipped) == (max(r["start"] for r in held), answers.skipped)
    assert data.lake.summary(Filters())["flows"] == expected  # the views too
    other_hour = Filters(start=DAY, end=DAY + 3600)
    assert data.answers(Selection(other_hour)).skipped == ()  # only files in range
    assert data.unreadable(answers.skipped) == (
        "5 files of the lake could not be read and are left out: "
        f"{hour_dir(DAY + 3600)}/part-p000-0-0.parquet, {hour_dir(DAY + 3600)}/part-p001-0-0"
        f".parquet, {hour_dir(DAY + 3600)}/part-p002-0-0.parquet and 2 more"
    )
    assert data.unreadable(()) is None


class FailingStore:
    """The lake's filesystem, whose opens fail as an S3 outage or a denied access does."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def get_file_info(self, selector: Any) -> Any:
        return self.real.get_file_info(selector)

    def open_input_file(self, path: str) -> Any:
        raise OSError(f"When reading information for key '{path}': connection reset")


def test_a_store_failing_while_files_are_checked_is_an_error_not_a_verdict(
    tmp_path: Path,
) -> None:
    """The store failing while a footer is checked says nothing of the file: the read
    fails (the page retries at its next tick), and no good file is left out for good."""
    held = rows(200, hours=3)
    write_lake(tmp_path, held)
    bad = bad_files(tmp_path / "flows" / hour_dir(DAY + 3600))
    data = data_of(tmp_path)
    real = data.lake.fs
    data.lake.fs = FailingStore(real)
    with pytest.raises(OSError, match="connection reset"):
        data.answers(Selection())
    data.lake.fs = real
    answers = data.answers(Selection())
    assert answers.summary["flows"] == sum(r["log_status"] == "OK" for r in held)
    assert answers.skipped == tuple(str(path) for path in bad)


def test_a_healthy_lake_reads_no_footer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files are checked one by one only after a read failed."""
    write_lake(tmp_path, rows(50))
    data = data_of(tmp_path)

    def refuse(*_: Any) -> None:
        raise AssertionError("a footer was read")

    monkeypatch.setattr(LakeQueries, "_problem", refuse)
    assert data.answers(Selection()).summary["flows"] > 0


def test_a_file_gone_since_the_listing_is_left_out(tmp_path: Path) -> None:
    """A compaction or a retention delete between the listing and the read: the render
    lists again and answers from what is there."""
    held = rows(100, hours=2)
    write_lake(tmp_path, held[:50])
    write_lake(tmp_path, held[50:], partition=1)
    data = data_of(tmp_path)
    listing = data.lake.files()
    calls = 0

    def stale() -> Any:
        nonlocal calls
        calls += 1
        return listing if calls == 1 else LakeQueries.files(data.lake)

    gone = [Path(info.path) for info in listing if "part-p001-" in info.base_name]
    for path in gone:
        path.unlink()
    data.lake.files = stale  # type: ignore[method-assign]
    answers = data.answers(Selection())
    assert answers.summary["flows"] == sum(r["log_status"] == "OK" for r in held[:50])
    assert answers.skipped == ()


@pytest.mark.parametrize("name", ["lake*", "lake?", "lake[AB]"])
def test_a_lake_path_with_glob_characters_reads_its_own_files(tmp_path: Path, name: str) -> None:
    """DuckDB reads a path as a pattern: its siblings' files must not count."""
    write_lake(tmp_path / name, [flow()])
    for path in (tmp_path / name).rglob("*.parquet"):  # a sibling's file of the same name
        put_file(tmp_path / "lakeB" / path.relative_to(tmp_path / name), [flow(), flow()])
    data = data_of(tmp_path / name)
    assert data.answers(Selection()).summary["flows"] == 1
    assert data.answers(Selection(address=("10.0.0.1",))).summary["flows"] == 1  # the copy


def test_files_outside_hour_directories_count_under_no_window(tmp_path: Path) -> None:
    """Only ``flows/hour=<a real hour>/*.parquet`` is the writer's: the others are left
    out of every answer, with or without a window, and of the lake's version."""
    write_lake(tmp_path, [flow()])
    data = data_of(tmp_path)
    version = data.version()
    flows = tmp_path / "flows"
    for odd in ("hour=garbage", "notanhour", f"{hour_dir(DAY)}/nested", "hour=2026-02-30T00", "."):
        put_file(flows / odd / "part-p005-0-0.parquet", [flow()])
    assert data.version() == version
    for filters in (Filters(), Filters(start=DAY, end=DAY + 3600), Filters(start=DAY - 86400)):
        assert data.answers(Selection(filters)).summary["flows"] == 1
