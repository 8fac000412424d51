"""The dashboard's filters from its controls and its URL, and the alerts' links
(selection.py, alerts.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from streams.flowlogs.dashboard.alerts import alerts_query, flows_link
from streams.flowlogs.dashboard.selection import (
    Controls,
    Selection,
    controls_from_url,
    select,
    url_of,
    window_bounds,
)
from streams.flowlogs.filters import Filters

DAY = 1_793_491_200  # 2026-11-01T00:00:00Z
LATEST = DAY + 23 * 3600 + 1234  # a flow at 23:20:34


def test_a_views_query_string_selects_what_the_view_selects() -> None:
    """The views' parameters mean the same here: names, numbers, lists, any case."""
    controls = controls_from_url(
        "?account_id=111122223333&vpc_id=vpc-a,vpc-b&protocol=tcp,17&action=reject"
        "&start=2026-11-01T06:00:00Z&end=2026-11-01T09:30:00%2B00:00&by=flows"
    )
    assert controls.window == "range"
    selection, errors = select(controls, LATEST)
    assert errors == []
    assert selection == Selection(
        Filters(
            account_id=("111122223333",), vpc_id=("vpc-a", "vpc-b"), protocol=(6, 17),
            action=("REJECT",), start=DAY + 6 * 3600, end=DAY + 9 * 3600 + 1800,
        ),
        by="flows",
    )  # fmt: skip


def test_presets_are_whole_hours_ending_with_the_newest_flows_hour() -> None:
    """The last N hours of data held, not of the wall clock: a lake of yesterday's logs
    still shows its last hours."""
    end = DAY + 24 * 3600
    assert window_bounds("6h", LATEST) == (end - 6 * 3600, end)
    assert window_bounds("1h", DAY) == (DAY, DAY + 3600)
    assert window_bounds("all", LATEST) is None
    assert window_bounds("24h", None) is None  # an empty lake: no window
    selection, _ = select(Controls(window="6h", start="2000-01-01T00:00:00Z"), LATEST)
    assert (selection.filters.start, selection.filters.end) == (end - 6 * 3600, end)


def test_a_range_without_a_zone_is_utc() -> None:
    """The page labels its times UTC; the views would refuse a time without a zone."""
    selection, errors = select(Controls(window="range", start="2026-11-01T06:00"), LATEST)
    assert errors == []
    assert (selection.filters.start, selection.filters.end) == (DAY + 6 * 3600, None)


@pytest.mark.parametrize(
    ("controls", "refused"),
    [
        (Controls(protocol=("tcpx",)), "protocol"),
        (Controls(vpc_id=("vpc a",)), "vpc_id"),
        (Controls(account_id=("x' OR 1=1 --",)), "account_id"),
        (Controls(action=("DROP",)), "action"),
        (Controls(window="range", start="yesterday"), "start"),
        (Controls(window="range", start="2026-11-02T00:00:00Z", end="2026-11-01T00:00:00Z"),
         "end is before start"),
        (Controls(window="fortnight"), "window"),
        (Controls(address="10.0.0.300"), "address"),
        (Controls(port="70000"), "port"),
        (Controls(port="٢٢"), "port"),
        (Controls(by="cost"), "by"),
    ],
)  # fmt: skip
def test_a_bad_value_is_left_out_with_a_message(controls: Controls, refused: str) -> None:
    """The other filters still apply; the message names what was refused."""
    mixed = replace(controls, subnet_id=("subnet-1",))
    selection, errors = select(mixed, LATEST)
    assert len(errors) == 1
    assert refused in errors[0]
    assert selection.filters.subnet_id == ("subnet-1",)
    assert selection.filters.protocol == ()
    assert selection.filters.action == ()


def test_address_and_port_match_either_end() -> None:
    """An alert's subject selects the flows it sent and received."""
    selection, errors = select(Controls(address="2001:DB8::1, 10.0.0.5", port="22,443"), None)
    assert errors == []
    assert selection.address == ("2001:db8::1", "10.0.0.5")
    assert selection.port == (22, 443)
    sql, params = selection.also() or ("", [])
    assert sql == (
        "(srcaddr IN (?, ?) OR dstaddr IN (?, ?)) AND (srcport IN (?, ?) OR dstport IN (?, ?))"
    )
    assert params == ["2001:db8::1", "10.0.0.5"] * 2 + [22, 443] * 2
    assert Selection().also() is None


def test_the_permalink_sets_the_same_controls() -> None:
    """url_of and controls_from_url round-trip; a preset's range is not written."""
    controls = Controls(
        vpc_id=("vpc-a",), protocol=("6",), action=("REJECT",), window="range",
        start="2026-11-01T06:00:00+00:00", end="2026-11-01T07:00:00Z", address="8.8.8.8",
        port="53", by="packets",
    )  # fmt: skip
    assert controls_from_url(url_of(controls)) == controls
    assert url_of(Controls()) == "?"
    assert url_of(Controls(window="6h", start="ignored")) == "?window=6h"


ALERTS: list[tuple[dict[str, Any], dict[str, Any]]] = [
    (
        {"kind": "port_scan", "subject": "10.0.1.7", "account_id": "111122223333",
         "vpc_id": "vpc-a", "window_start": "2026-11-01T10:05:00Z",
         "window_end": "2026-11-01T10:10:00Z"},
        {"address": ("10.0.1.7",), "port": (), "protocol": ()},
    ),
    (
        {"kind": "long_lived", "subject": "10.0.0.4:40000>10.0.0.9:5432/6",
         "account_id": "111122223333", "vpc_id": "vpc-a", "srcaddr": "10.0.0.4",
         "srcport": 40000, "dstaddr": "10.0.0.9", "dstport": 5432, "protocol": 6,
         "since": "2026-11-01T09:10:00Z", "window_start": "2026-11-01T10:05:00Z",
         "window_end": "2026-11-01T10:10:00Z"},
        {"address": ("10.0.0.4",), "port": (5432,), "protocol": (6,)},
    ),
    (
        {"kind": "new_country", "subject": "BR", "peer": "179.208.1.1",
         "account_id": "111122223333", "vpc_id": "-", "window_start": "2026-11-01T10:05:00Z",
         "window_end": "2026-11-01T10:10:00Z"},
        {"address": ("179.208.1.1",), "port": (), "protocol": ()},
    ),
]  # fmt: skip


@pytest.mark.parametrize(("alert", "expected"), ALERTS, ids=lambda a: a.get("kind", ""))
def test_an_alerts_link_selects_the_flows_behind_it(
    alert: dict[str, Any], expected: dict[str, Any]
) -> None:
    """Its account, VPC (none for a version-2 log's "-"), window and subject."""
    selection, errors = select(controls_from_url(flows_link(alert)), LATEST)
    assert errors == []
    filters = selection.filters
    assert filters.account_id == ("111122223333",)
    assert filters.vpc_id == (() if alert["vpc_id"] == "-" else ("vpc-a",))
    start = DAY + (9 * 3600 + 600 if alert["kind"] == "long_lived" else 10 * 3600 + 300)
    assert (filters.start, filters.end) == (start, DAY + 10 * 3600 + 600)
    assert (selection.address, selection.port, filters.protocol) == (
        expected["address"], expected["port"], expected["protocol"],
    )  # fmt: skip


def test_the_alerts_are_asked_for_the_selections_account_vpc_and_window() -> None:
    """The view filters alerts on those; the others would be refused or ignored."""
    selection = Selection(
        Filters(vpc_id=("vpc-a", "vpc-b"), protocol=(6,), start=DAY, end=DAY + 3600)
    )
    assert alerts_query(selection) == (
        "limit=100&vpc_id=vpc-a,vpc-b&start=2026-11-01T00:00:00Z&end=2026-11-01T01:00:00Z"
    )
