"""The rule that accepts or rejects a launch record (models.py), at every field's edges."""

from __future__ import annotations

from typing import Any

import pytest

from streams.launches.models import check_all

GOOD: dict[str, Any] = {
    "id": "5eb87cd9ffd86e000604b32a",
    "flight_number": 1,
    "name": "FalconSat",
    "date_utc": "2006-03-24T22:30:00.000Z",
    "success": False,
    "links": {"webcast": "https://www.youtube.com/watch?v=0a_00nJ_Y88"},
}


def verdict(**changes: Any) -> str | None:
    """None if the record with ``changes`` is accepted, else its rejection reason."""
    record = {k: v for k, v in {**GOOD, **changes}.items() if v is not ...}
    checked = check_all([record])
    return checked.rejected[0].reason if checked.rejected else None


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"id": ...}, "id: Field required"),
        ({"id": ""}, "id: String should have at least 1 character"),
        ({"id": "x" * 257}, "id: String should have at most 256 characters"),
        ({"id": 5}, "id: Input should be a valid string"),
        ({"flight_number": ...}, "flight_number: Field required"),
        ({"flight_number": "12"}, "flight_number: Input should be a valid integer"),
        ({"flight_number": 12.0}, "flight_number: Input should be a valid integer"),
        ({"flight_number": True}, "flight_number: Input should be a valid integer"),
        ({"flight_number": float("nan")}, "flight_number: Input should be a valid integer"),
        ({"flight_number": 2**63}, "flight_number: Input should be less than or equal to"),
        ({"name": None}, "name: Input should be a valid string"),
        ({"name": "n" * 1001}, "name: String should have at most 1000 characters"),
        ({"links": {"webcast": "w" * 4097}}, "links.webcast: String should have at most 4096"),
        (
            {"name": "\ud800"},
            "name: Input should be a valid string, unable to parse raw data as a unicode",
        ),
        ({"date_utc": ...}, "date_utc: Field required"),
        ({"date_utc": 1143239400}, "date_utc: Value error, must be an ISO 8601 text"),
        ({"date_utc": "2006-03-24"}, "date_utc: Value error, no UTC offset"),
        ({"date_utc": "2006-03-24T22:30:00"}, "date_utc: Value error, no UTC offset"),
        ({"date_utc": "yesterday"}, "date_utc: Value error, not an ISO 8601 time"),
        ({"date_utc": "2006-02-30T00:00:00Z"}, "date_utc: Value error, not an ISO 8601 time"),
        ({"success": 1}, "success: Input should be a valid boolean"),
        ({"success": "true"}, "success: Input should be a valid boolean"),
        ({"links": "https://x"}, "links: Input should be a valid dictionary"),
        ({"links": {"webcast": 7}}, "links.webcast: Input should be a valid string"),
    ],
)
def test_a_field_outside_its_type_rejects_the_record(changes: dict[str, Any], problem: str) -> None:
    """Nothing is coerced: the reason names the field and its problem."""
    found = verdict(**changes)
    assert found is not None and problem in found


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"success": None},
        {"success": ...},
        {"links": None},
        {"links": ...},
        {"links": {}},
        {"links": {"webcast": None}},
        {"flight_number": -(2**63)},
        {"flight_number": 2**63 - 1},
        {"date_utc": "0001-01-01T00:00:00Z"},
        {"date_utc": "9999-12-31T23:59:59.999999Z"},
        {"date_utc": "2006-03-24T22:30:00+14:00"},
        {"name": ""},
        {"name": "Ünïcødé 🚀"},
        {"unknown": {"deep": [1]}},
    ],
)
def test_a_field_within_its_type_is_accepted(changes: dict[str, Any]) -> None:
    """Nulls where the seed allows them, extremes of each type, and unknown fields."""
    assert verdict(**changes) is None


def test_a_record_that_is_no_object_is_rejected_without_an_id() -> None:
    """A number, a list or null in the array: rejected by index, with no id."""
    checked = check_all([5, [GOOD], None, GOOD])
    assert [(r.index, r.id) for r in checked.rejected] == [(0, None), (1, None), (2, None)]
    assert len(checked.launches) == 1


def test_rejections_keep_the_id_for_the_log() -> None:
    """A rejected record with a usable id is named by it."""
    checked = check_all([{**GOOD, "flight_number": None}])
    assert checked.rejected[0].id == GOOD["id"]


def test_duplicates_are_counted_apart_from_rejections() -> None:
    """Three versions of one id: one launch, two older versions, no rejection."""
    checked = check_all([GOOD, GOOD, {**GOOD, "name": "last"}])
    assert [launch.name for launch in checked.launches] == ["last"]
    assert checked.duplicates == 2 and checked.rejected == []


@pytest.mark.parametrize("date", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:30:00-01:00"])
def test_a_date_outside_years_1_to_9999_in_utc_is_rejected(date: str) -> None:
    """Valid with its offset, out of range in UTC: one rejection, not a failed run."""
    found = verdict(date_utc=date)
    assert found is not None and "outside years 1 to 9999 in UTC" in found


def test_rfc3339_lower_case_separators_are_accepted() -> None:
    """RFC 3339 allows 't' and 'z'."""
    assert verdict(date_utc="2006-03-24t22:30:00.000z") is None


def test_an_id_cannot_forge_a_log_line() -> None:
    """A rejected record's id is escaped for the log: no newline gets through."""
    checked = check_all([{**GOOD, "id": "x\nWARNING forged", "flight_number": None}])
    assert checked.rejected[0].id == "x\\nWARNING forged"
