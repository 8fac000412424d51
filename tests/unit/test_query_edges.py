"""Edges of the kit's query-string parsers: what a refused value's 400 says."""

from __future__ import annotations

import pytest

from streams.common import query
from streams.common.errors import BadRequest


@pytest.mark.parametrize(
    "raw",
    [
        "9999-12-31T23:59:59-01:00",  # 10000-01-01 in UTC
        "0001-01-01T00:30:00+01:00",  # year 0 in UTC
        "0001-01-01T00:00:00 14:00",  # the same with its "+" sent as a space
    ],
)
def test_a_valid_time_beyond_the_years_once_in_utc_is_a_400_saying_out_of_range(
    raw: str,
) -> None:
    """The value is a well-formed ISO time: the 400 says it is out of range, not that its
    format is wrong."""
    with pytest.raises(BadRequest) as refused:
        query.iso_datetime({"t": raw}, "t")

    assert refused.value.status == 400
    body = refused.value.body()
    assert body["parameter"] == "t"
    assert "out of range" in body["error"]
    assert "like 2025-08-01" not in body["error"]


@pytest.mark.parametrize("raw", ["2025-08-01T12:00:00", "yesterday", "2025-13-01T00:00:00Z"])
def test_a_time_without_zone_or_malformed_still_says_what_format_is_wanted(raw: str) -> None:
    with pytest.raises(BadRequest) as refused:
        query.iso_datetime({"t": raw}, "t")

    assert "an ISO 8601 time with a time zone" in refused.value.body()["error"]


def test_the_first_and_last_instants_in_utc_are_accepted() -> None:
    first = query.iso_datetime({"t": "0001-01-01T01:00:00+01:00"}, "t")
    last = query.iso_datetime({"t": "9999-12-31T22:59:59.999999-01:00"}, "t")

    assert first is not None and (first.year, first.hour) == (1, 0)
    assert last is not None and (last.year, last.hour) == (9999, 23)
