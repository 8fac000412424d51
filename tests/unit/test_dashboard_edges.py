"""The dashboard's filters at the edges: times at the ends of years 1-9999, protocol
digits that are not ASCII, URL parameters the page cannot use (selection.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from streams.flowlogs.dashboard.callbacks import window_text
from streams.flowlogs.dashboard.inputs import choices
from streams.flowlogs.dashboard.selection import (
    Controls,
    controls_from_url,
    read_url,
    select,
)

#: The first and last whole seconds a date can name.
FIRST = int(datetime(1, 1, 1, tzinfo=UTC).timestamp())
LAST = int(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp())
LAST_HOUR = LAST + 1 - 3600
DAY = 1_793_491_200  # 2026-11-01T00:00:00Z


@pytest.mark.parametrize(
    ("start", "end", "refused"),
    [
        ("9999-12-31T23:59:59.5Z", "", "start"),
        ("9999-12-31T23:59:59.9", "", "start"),
        ("", "0001-01-01T00:00:00Z", "end"),
        ("", "0001-01-01T00:00:00", "end"),
        ("", "9999-12-31T23:59:59.5Z", None),
        ("9999-12-31T23:59:59Z", "", None),
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:01Z", None),
    ],
)
def test_times_at_the_edges_of_years_1_to_9999_work_or_are_refused(
    start: str, end: str, refused: str | None
) -> None:
    """A time that names no second a flow can start in is refused with a message; the
    others select what they say, and the window shown is printable."""
    selection, errors = select(Controls(window="range", start=start, end=end), DAY)
    if refused is None:
        assert errors == []
    else:
        assert len(errors) == 1
        assert errors[0].startswith(refused)
        assert "year" in errors[0]
    filters = selection.filters
    for bound in (filters.start, filters.end):
        assert bound is None or FIRST <= bound <= LAST
    assert window_text(selection, {"earliest": DAY, "latest": DAY})


@pytest.mark.parametrize("window", ["1h", "6h", "24h", "7d", "all"])
def test_presets_work_when_the_newest_flow_is_in_year_9999s_last_hour(window: str) -> None:
    """The window ends with year 9999 (no end past it), and it prints."""
    selection, errors = select(Controls(window=window), LAST - 10)
    assert errors == []
    if window == "1h":
        assert (selection.filters.start, selection.filters.end) == (LAST_HOUR, None)
    lake = {"earliest": LAST - 20, "latest": LAST - 10}
    assert "9999-12-" in window_text(selection, lake)


def test_a_newest_flow_past_year_9999_is_taken_as_the_end_of_9999() -> None:
    """A bad row dated 10^12 cannot take the page down: the presets count back from the
    end of year 9999, and a message says why."""
    selection, errors = select(Controls(window="1h"), 10**12)
    assert (selection.filters.start, selection.filters.end) == (LAST_HOUR, None)
    assert len(errors) == 1
    assert "after year 9999" in errors[0]
    assert window_text(selection, {"earliest": DAY, "latest": 10**12})


@pytest.mark.parametrize("digit", ["²", "①", "٦", "\uff16"])  # the last: fullwidth 6
def test_a_protocol_in_other_digits_is_refused_and_labelled_as_typed(digit: str) -> None:
    """Only ASCII digits name a protocol: the choice shows the value as typed and the
    selection refuses it with a message."""
    controls = controls_from_url(f"?protocol=6,{digit}")
    (_, _, _, _, protocols) = choices({}, controls)
    assert {"label": digit, "value": digit} in protocols
    assert {"label": "tcp (6)", "value": "6"} in protocols
    selection, errors = select(controls, DAY)
    assert selection.filters.protocol == (6,)
    assert len(errors) == 1
    assert "protocol" in errors[0]


@pytest.mark.parametrize(
    ("search", "expected", "note"),
    [
        ("?acount_id=1&vpc_id=vpc-a", Controls(vpc_id=("vpc-a",)), "unknown parameter 'acount_id'"),
        ("?vpc_id=vpc-a&vpc_id=vpc-b", Controls(vpc_id=("vpc-b",)), "vpc_id given 2 times"),
        ("?window=bogus", Controls(), "window: 'bogus' is not a preset"),
        ("?window=6h&start=2026-11-01T00:00:00Z", Controls(window="6h"), "start"),
        ("?window=all&end=2026-11-01T00:00:00Z", Controls(), "end"),
    ],
)  # fmt: skip
def test_url_parameters_the_page_cannot_use_are_named(
    search: str, expected: Controls, note: str
) -> None:
    """Each is left out with a line saying what was ignored and why."""
    controls, notes = read_url(search)
    assert controls == expected
    assert len(notes) == 1
    assert note in notes[0]


def test_a_url_the_page_can_use_has_no_note() -> None:
    """Blank values, a range with its window, an alert's link: nothing to say."""
    search = "?account_id=&vpc_id=vpc-a&window=range&start=2026-11-01T00:00:00Z&by=flows"
    assert read_url(search)[1] == []
    assert read_url("?start=2026-11-01T00:00:00Z&end=2026-11-02T00:00:00Z")[1] == []
    assert read_url(None) == (Controls(), [])
