"""The transform on recorded real records (tests/fixtures/launches): the seed's five
columns, one row per launch id, in launch-date order, the same bytes every time."""

from __future__ import annotations

import copy
import io
import random
from datetime import UTC, datetime
from typing import Any

import pyarrow.parquet as pq
import pytest

from streams.launches.models import Launch, check, check_all
from streams.launches.transform import SCHEMA, to_parquet, to_table
from tests.support.launches import EXPECTED_SCHEMA, SAMPLE, expected_rows, object_rows, payload


@pytest.fixture
def records() -> list[dict[str, Any]]:
    return payload(SAMPLE)


def rows_of(records: list[Any]) -> list[tuple[Any, ...]]:
    return object_rows(to_parquet(to_table(check_all(records).launches)))[1]


def test_schema_is_the_five_seed_columns_in_order() -> None:
    """The explicit schema: names, order, types (a UTC timestamp, not a string), nulls."""
    assert SCHEMA == EXPECTED_SCHEMA
    table = pq.read_table(io.BytesIO(to_parquet(to_table([]))))
    assert table.schema.remove_metadata() == EXPECTED_SCHEMA
    assert table.num_rows == 0


def test_recorded_records_become_the_expected_rows(records: list[Any]) -> None:
    """Every recorded record gives the row an independent computation expects."""
    assert rows_of(records) == expected_rows(records)


def test_null_success_is_kept_as_a_null_not_false(records: list[Any]) -> None:
    """An unknown outcome (success null: a launch not flown or not reported) stays null."""
    unknown = {r["name"] for r in records if r["success"] is None}
    assert unknown
    rows = rows_of(records)
    assert {row[1] for row in rows if row[3] is None} == unknown
    assert all(row[3] in (True, False) for row in rows if row[1] not in unknown)


def test_null_webcast_is_kept_as_a_null(records: list[Any]) -> None:
    """A launch without a webcast has a null webcast_url, not an empty text."""
    silent = {r["name"] for r in records if r["links"]["webcast"] is None}
    assert silent
    assert {row[1] for row in rows_of(records) if row[4] is None} == silent


def test_repeated_flight_numbers_keep_one_row_per_launch_id(records: list[Any]) -> None:
    """Flight 188 is four launches and 198 two in the real data: all of them are rows."""
    flights = [row[0] for row in rows_of(records)]
    assert flights.count(188) == 4 and flights.count(198) == 2
    assert len(flights) == len({r["id"] for r in records})


def test_a_later_version_of_an_id_replaces_the_earlier(records: list[Any]) -> None:
    """The same id twice is one row, the last version's (as a compacted topic keeps)."""
    newer = copy.deepcopy(records[0])
    newer["success"] = True
    newer["name"] = "FalconSat (corrected)"
    rows = rows_of([*records, newer])
    assert len(rows) == len(records)
    assert [row[1:4:2] for row in rows if row[0] == records[0]["flight_number"]] == [
        ("FalconSat (corrected)", True)
    ]


def test_unknown_extra_fields_are_ignored(records: list[Any]) -> None:
    """Fields the API adds (at the top and inside links) change nothing."""
    extended = copy.deepcopy(records)
    for record in extended:
        record["new_field"] = {"nested": [1, 2, 3]}
        record["links"]["hologram"] = "https://example.com"
    assert rows_of(extended) == rows_of(records)


def test_missing_links_gives_a_null_webcast(records: list[Any]) -> None:
    """A record without links (or with links null) is valid: its webcast is null."""
    without = copy.deepcopy(records[:2])
    del without[0]["links"]
    without[1]["links"] = None
    assert [row[4] for row in rows_of(without)] == [None, None]


def test_rows_are_ordered_by_date_then_flight_then_name(records: list[Any]) -> None:
    """Same-instant launches order by flight number, then mission name."""
    base = records[0]
    same = [
        {**base, "id": "c", "flight_number": 7, "name": "B"},
        {**base, "id": "a", "flight_number": 7, "name": "A"},
        {**base, "id": "b", "flight_number": 3, "name": "Z"},
        {**base, "id": "d", "date_utc": "2006-03-24T22:29:59.999Z", "name": "Early"},
    ]
    assert [(row[0], row[1]) for row in rows_of(same)] == [
        (1, "Early"),
        (3, "Z"),
        (7, "A"),
        (7, "B"),
    ]


def test_the_same_launches_give_the_same_bytes_in_any_order(records: list[Any]) -> None:
    """Shuffled input, and two launches equal in every column, give identical bytes."""
    twin = {**records[0], "id": "another-id"}
    bodies = set()
    for seed in range(5):
        shuffled = [*records, twin]
        random.Random(seed).shuffle(shuffled)
        bodies.add(to_parquet(to_table(check_all(shuffled).launches)))
    assert len(bodies) == 1


def test_offsets_are_converted_to_utc() -> None:
    """A date with another offset is the same instant in UTC."""
    launch = check(
        {"id": "x", "flight_number": 1, "name": "n", "date_utc": "2020-01-01T02:00:00+02:00"}
    )
    assert isinstance(launch, Launch)
    assert to_table([launch]).column("launch_date").to_pylist() == [
        datetime(2020, 1, 1, tzinfo=UTC)
    ]
