"""Query-string parsers of the web views: values, defaults, and 400s that name the parameter."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest

from streams.common import query
from streams.common.errors import BadRequest


def test_absent_or_empty_parameters_take_their_default() -> None:
    """A parameter left out, or sent empty as forms do (``?from=``), gets its default."""
    for given in ({}, {"x": ""}):
        assert query.integer(given, "x", 10, 1, 100) == 10
        assert query.number(given, "x", 0.5, 0, 1) == 0.5
        assert query.boolean(given, "x", True) is True
        assert query.choice(given, "x", ("revenue", "units")) == "revenue"
        assert query.names(given, "x", {"a", "b"}) == ()
        assert query.text(given, "x", r"[a-z]+", 8) is None
        assert query.iso_date(given, "x") is None
        assert query.iso_datetime(given, "x") is None


def test_valid_values_are_parsed() -> None:
    """Each parser turns a valid string into the value a view uses."""
    q = {
        "n": "-3",
        "f": "2.5e1",
        "b": "No",
        "by": "units",
        "kinds": "b, a,b",
        "s": "sw-0001",
        "d": "2025-08-01",
        "t": "2025-08-01T14:00:00+02:00",
    }

    assert query.integer(q, "n", 0, -5, 5) == -3
    assert query.number(q, "f", 0, 0, 100) == 25.0
    assert query.boolean(q, "b", True) is False
    assert query.choice(q, "by", ("revenue", "units")) == "units"
    assert query.names(q, "kinds", {"a", "b", "c"}) == ("b", "a")
    assert query.text(q, "s", r"[a-z]+-[0-9]+", 16) == "sw-0001"
    assert query.iso_date(q, "d") == date(2025, 8, 1)
    assert query.iso_datetime(q, "t") == datetime(2025, 8, 1, 12, tzinfo=UTC)


def test_times_come_back_in_utc_even_with_an_unescaped_plus() -> None:
    """A time with an offset is converted to UTC, also when its "+" arrived as a space."""
    moment = query.iso_datetime({"t": "2025-08-01T14:00:00 02:00"}, "t")

    assert moment == datetime(2025, 8, 1, 12, tzinfo=UTC)
    assert moment is not None and moment.tzinfo == UTC
    assert query.iso_datetime({"t": "2025-08-01T12:00:00Z"}, "t") == moment


@pytest.mark.parametrize(
    ("parse", "raw"),
    [
        (lambda q: query.integer(q, "p", 10, 1, 100), "101"),
        (lambda q: query.integer(q, "p", 10, 1, 100), "²"),  # str.isdigit() says yes
        (lambda q: query.integer(q, "p", 10, 1, 100), "1.0"),
        (lambda q: query.number(q, "p", 0, -1e9, 1e9), "nan"),
        (lambda q: query.number(q, "p", 0, float("-inf"), float("inf")), "1e999"),
        (lambda q: query.boolean(q, "p", False), "maybe"),
        (lambda q: query.choice(q, "p", ("revenue", "units")), "profit"),
        (lambda q: query.names(q, "p", {"a", "b"}), "a,z"),
        (lambda q: query.names(q, "p", {"a", "b"}), ","),
        (lambda q: query.text(q, "p", r"[a-z]+", 4), "abcde"),
        (lambda q: query.text(q, "p", r"[a-z]+", 4), "ab1"),
        (lambda q: query.iso_date(q, "p"), "yesterday"),
        (lambda q: query.iso_date(q, "p"), "2025-02-30"),
        (lambda q: query.iso_datetime(q, "p"), "2025-08-01T12:00:00"),  # no time zone
        (lambda q: query.iso_datetime(q, "p"), "2025-08-01"),
    ],
)
def test_bad_values_are_a_400_naming_the_parameter(
    parse: Callable[[dict[str, str]], Any], raw: str
) -> None:
    """A value a parser refuses is a 400 whose message and details name the parameter."""
    with pytest.raises(BadRequest) as refused:
        parse({"p": raw})

    assert refused.value.status == 400
    assert refused.value.body()["parameter"] == "p"
    assert refused.value.body()["error"].startswith("p must be ")


def test_a_huge_bad_value_is_cut_in_the_error() -> None:
    """An error message quotes at most the start of a bad value, whatever was sent."""
    with pytest.raises(BadRequest) as refused:
        query.integer({"p": "x" * 100_000}, "p", 1, 1, 2)

    assert len(refused.value.message) < 200
