"""The figures carry exactly the answers they are given, and nothing else (figures.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio

from streams.flowlogs.dashboard import figures
from streams.flowlogs.dashboard.geo import Countries, Country

TOP = [
    {"value": "10.0.0.1", "bytes": 900, "packets": 9, "flows": 3},
    {"value": "8.8.8.8", "bytes": 500, "packets": 20, "flows": 7},
]
HOURLY = [
    {"hour": "2026-11-01T22:00:00Z", "flows": 10, "rejected": 2, "bytes": 1000},
    {"hour": "2026-11-01T23:00:00Z", "flows": 4, "rejected": 0, "bytes": 10},
    {"hour": "2026-11-02T01:00:00Z", "flows": 3, "rejected": 3, "bytes": 7},
]
COUNTRIES = Countries(
    (
        Country("US", "USA", "United States", addresses=2, flows=9, bytes=90),
        Country("DE", "DEU", "Germany", addresses=1, flows=1, bytes=5),
    ),
    unplaced_addresses=3,
    unplaced_flows=4,
)


def plain(figure: Any) -> dict[str, Any]:
    return figure.to_plotly_json()  # type: ignore[no-any-return]


def test_cards_show_the_summary_and_the_rejected_share() -> None:
    """Thousands separators, the share to two decimals, a dash with no flows."""
    summary = {"flows": 12345, "bytes": 9876543210, "accepted": 12000, "rejected": 345}
    assert figures.cards(summary) == {
        "flows": "12,345", "bytes": "9,876,543,210", "accepted": "12,000",
        "rejected": "345", "rejected_share": "2.79 %",
    }  # fmt: skip
    assert figures.cards({})["rejected_share"] == "-"


def test_top_bars_hold_the_rows_in_order_by_the_chosen_figure() -> None:
    """y the addresses top first, x the ranked figure, all three figures in customdata."""
    for by in ("bytes", "packets", "flows"):
        (trace,) = plain(figures.top_bars(TOP, "Top sources", by))["data"]
        assert list(trace["y"]) == ["10.0.0.1", "8.8.8.8"]
        assert list(trace["x"]) == [row[by] for row in TOP]
        assert [list(c) for c in trace["customdata"]] == [[900, 9, 3], [500, 20, 7]]


def test_hourly_figures_hold_the_hours_and_their_figures() -> None:
    """Flows per hour, denied per hour and total vs denied read the hourly answer as is
    (the lines with a gap, a null, at hours without flows)."""
    hours = [row["hour"] for row in HOURLY]
    (bars,) = plain(figures.flows_per_hour(HOURLY))["data"]
    assert (list(bars["x"]), list(bars["y"])) == (hours, [10, 4, 3])
    (line,) = plain(figures.denied_over_time(HOURLY))["data"]
    assert [(x, y) for x, y in zip(line["x"], line["y"], strict=True) if y is not None] == list(
        zip(hours, [2, 0, 3], strict=True)
    )
    flows, rejected, share = plain(figures.total_vs_denied(HOURLY))["data"]
    assert list(flows["y"]) == [10, 4, 3]
    assert list(rejected["y"]) == [2, 0, 3]
    assert list(share["y"]) == [20.0, 0.0, None, 100.0]
    assert share["yaxis"] == "y2"


def test_the_heatmap_places_each_hour_in_its_day_and_hour_of_day() -> None:
    """A cell per day and hour of day; hours without flows stay blank."""
    (trace,) = plain(figures.heatmap(HOURLY))["data"]
    assert list(trace["y"]) == ["2026-11-01", "2026-11-02"]
    assert list(trace["x"]) == list(range(24))
    first, second = (list(row) for row in trace["z"])
    assert (first[22], first[23], second[1]) == (10, 4, 3)
    assert sum(v is not None for v in first + second) == 3


def test_the_map_holds_iso3_countries_and_their_flows() -> None:
    """ISO-3 locations (what the shipped world map names), flows as the colour, and the
    addresses no country holds said in the title."""
    figure = plain(figures.geo_map(COUNTRIES))
    (trace,) = figure["data"]
    assert trace["locationmode"] == "ISO-3"
    assert (list(trace["locations"]), list(trace["z"])) == (["USA", "DEU"], [9, 1])
    assert [list(c) for c in trace["customdata"]] == [["United States", 2, 90], ["Germany", 1, 5]]
    assert "3 addresses with no country" in figure["layout"]["title"]["text"]
    assert figure["layout"]["geo"]["resolution"] == 110


def test_the_sankey_keeps_conversations_in_order_within_its_node_cap() -> None:
    """Sources left, destinations right, each address once per side; a conversation
    that would exceed the cap is left out and later ones that fit are kept."""
    conversations = [
        {"srcaddr": "a", "dstaddr": "b", "bytes": 50, "packets": 1, "flows": 1},
        {"srcaddr": "a", "dstaddr": "c", "bytes": 40, "packets": 1, "flows": 1},
        {"srcaddr": "d", "dstaddr": "e", "bytes": 30, "packets": 1, "flows": 1},
        {"srcaddr": "b", "dstaddr": "a", "bytes": 20, "packets": 1, "flows": 1},
    ]
    (trace,) = plain(figures.sankey(conversations, "bytes", max_nodes=4))["data"]
    labels = list(trace["node"]["label"])
    # a->b, a->c fit (a | b, c: 3 nodes); d->e needs 2 more; b->a needs b (source) + a
    # (destination): 5 > 4, left out too.
    assert labels == ["a", "b", "c"]
    assert list(trace["link"]["source"]) == [0, 0]
    assert list(trace["link"]["target"]) == [1, 2]
    assert list(trace["link"]["value"]) == [50, 40]
    (trace,) = plain(figures.sankey(conversations, "bytes"))["data"]
    assert list(trace["node"]["label"]) == ["a", "d", "b", "b", "c", "e", "a"]
    assert list(trace["link"]["value"]) == [50, 40, 30, 20]


def test_an_empty_answer_says_so_and_the_map_still_draws() -> None:
    """No flows: an annotation instead of an empty frame; the map keeps its geography."""
    for figure in (figures.top_bars([], "t", "bytes"), figures.flows_per_hour([]),
                   figures.heatmap([]), figures.sankey([], "flows")):  # fmt: skip
        annotations = plain(figure)["layout"]["annotations"]
        assert [a["text"] for a in annotations] == ["No flows for these filters"]
    geo = plain(figures.geo_map(Countries(())))
    assert geo["layout"]["geo"]["showcountries"] is True
    assert "annotations" not in geo["layout"]


def test_figures_are_deterministic() -> None:
    """The same answers give the same JSON, byte for byte."""
    builds: list[Callable[[], go.Figure]] = [
        lambda: figures.heatmap(HOURLY),
        lambda: figures.geo_map(COUNTRIES),
        lambda: figures.top_bars(TOP, "t", "flows"),
    ]
    for build in builds:
        assert pio.to_json(build()) == pio.to_json(build())


def test_denied_over_time_breaks_its_line_at_hours_without_flows() -> None:
    """An hour with no flow selected is a gap (a null point), not a straight line drawn
    from the hour before to the hour after; consecutive hours join."""
    (line,) = plain(figures.denied_over_time(HOURLY))["data"]
    assert list(line["x"]) == [
        "2026-11-01T22:00:00Z", "2026-11-01T23:00:00Z", "2026-11-02T00:00:00Z",
        "2026-11-02T01:00:00Z",
    ]  # fmt: skip
    assert list(line["y"]) == [2, 0, None, 3]
    assert not line.get("connectgaps")


def test_hours_at_the_ends_of_years_1_and_9999_draw() -> None:
    """A lone hour at either end of the calendar still gets its axis (no overflow)."""
    for hour in ("9999-12-31T23:00:00Z", "0001-01-01T00:00:00Z"):
        row = [{"hour": hour, "flows": 1, "rejected": 1, "bytes": 1}]
        for draw in (figures.denied_over_time, figures.flows_per_hour, figures.total_vs_denied):
            assert plain(draw(row))["layout"]["xaxis"]["range"]
