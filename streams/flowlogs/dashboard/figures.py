"""The dashboard's figures from its answers (pure, deterministic: the same answers give
the same figure, byte for byte once serialised).

Each figure carries exactly the numbers it is given, in the order given, so a test (or
a reader of the page's JSON) finds the views' figures in it: ``x``, ``y`` or ``z`` as
each function's docstring says. Hours are ISO 8601 strings in UTC, as the views write
them. The lines break at an hour without flows selected (a null point after the last
hour before the gap): the hourly answer leaves such hours out, and a line drawn
straight across them would show flows no one logged. A figure with nothing to show says
so in an annotation rather than drawing an empty frame that looks broken.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import plotly.graph_objects as go

from streams.flowlogs.dashboard.geo import Countries

#: The Sankey's nodes at most: beyond that its labels overlap and nothing reads.
MAX_NODES = 20
TEMPLATE = "plotly_white"
REJECTED_COLOUR = "#d62728"
FLOWS_COLOUR = "#1f77b4"
_NAMES = {"bytes": "Bytes", "packets": "Packets", "flows": "Flows"}


def cards(summary: dict[str, int]) -> dict[str, str]:
    """The summary cards' texts: flows, bytes, accepted, rejected, rejected share."""
    flows, rejected = summary.get("flows", 0), summary.get("rejected", 0)
    share = f"{100 * rejected / flows:.2f} %" if flows else "-"
    return {
        "flows": f"{flows:,}",
        "bytes": f"{summary.get('bytes', 0):,}",
        "accepted": f"{summary.get('accepted', 0):,}",
        "rejected": f"{rejected:,}",
        "rejected_share": share,
    }


def top_bars(rows: Sequence[dict[str, Any]], title: str, by: str) -> go.Figure:
    """Horizontal bars, first row on top: ``y`` the addresses, ``x`` their ``by`` figure;
    ``customdata`` [bytes, packets, flows] of each."""
    figure = _figure(title, empty=not rows)
    figure.add_trace(
        go.Bar(
            orientation="h",
            x=[row[by] for row in rows],
            y=[row["value"] for row in rows],
            customdata=[[row["bytes"], row["packets"], row["flows"]] for row in rows],
            hovertemplate="%{y}<br>bytes %{customdata[0]:,}<br>packets %{customdata[1]:,}"
            "<br>flows %{customdata[2]:,}<extra></extra>",
            marker_color=FLOWS_COLOUR,
        )
    )
    figure.update_yaxes(autorange="reversed", type="category")
    figure.update_xaxes(title_text=_NAMES[by])
    return figure


def denied_over_time(hourly: Sequence[dict[str, Any]]) -> go.Figure:
    """Rejected flows per hour: ``x`` the hours, ``y`` their ``rejected`` (a null at the
    first hour of each gap)."""
    figure = _figure("Denied flows over time (per hour, UTC)", empty=not hourly)
    hours, rejected = _with_gaps(hourly, [row["rejected"] for row in hourly])
    figure.add_trace(
        go.Scatter(
            x=hours,
            y=rejected,
            mode="lines+markers",
            name="rejected",
            line_color=REJECTED_COLOUR,
        )
    )
    figure.update_yaxes(title_text="Rejected flows", rangemode="tozero")
    return _hours_axis(figure, hourly)


def flows_per_hour(hourly: Sequence[dict[str, Any]]) -> go.Figure:
    """Flows per hour: ``x`` the hours, ``y`` their ``flows``."""
    figure = _figure("Flows per hour (UTC)", empty=not hourly)
    figure.add_trace(
        go.Bar(
            x=[row["hour"] for row in hourly],
            y=[row["flows"] for row in hourly],
            name="flows",
            marker_color=FLOWS_COLOUR,
        )
    )
    figure.update_yaxes(title_text="Flows")
    return _hours_axis(figure, hourly)


def heatmap(hourly: Sequence[dict[str, Any]]) -> go.Figure:
    """Flows by hour of day and day: ``x`` 0-23, ``y`` the days (``YYYY-MM-DD``), ``z``
    one row per day; an hour with no flows selected is blank (null), as the hourly
    view leaves it out."""
    days = sorted({row["hour"][:10] for row in hourly})
    z: list[list[int | None]] = [[None] * 24 for _ in days]
    index = {day: i for i, day in enumerate(days)}
    for row in hourly:
        z[index[row["hour"][:10]]][int(row["hour"][11:13])] = row["flows"]
    figure = _figure("Flows by hour of day (UTC) and day", empty=not hourly)
    figure.add_trace(
        go.Heatmap(
            x=list(range(24)),
            y=days,
            z=z,
            colorscale="Blues",
            hovertemplate="%{y} %{x}:00<br>flows %{z:,}<extra></extra>",
        )
    )
    figure.update_xaxes(title_text="Hour of day", dtick=1)
    figure.update_yaxes(type="category", autorange="reversed")
    return figure


def total_vs_denied(hourly: Sequence[dict[str, Any]]) -> go.Figure:
    """Per hour: flows (first trace, bars), rejected (second, bars) and the rejected
    share in % (third, line on the right axis, rounded to 0.01, with gaps)."""
    hours = [row["hour"] for row in hourly]
    share = [
        round(100 * row["rejected"] / row["flows"], 2) if row["flows"] else 0 for row in hourly
    ]
    figure = _figure("Total vs denied flows per hour", empty=not hourly)
    figure.add_trace(
        go.Bar(x=hours, y=[row["flows"] for row in hourly], name="flows", marker_color=FLOWS_COLOUR)
    )
    figure.add_trace(
        go.Bar(
            x=hours,
            y=[row["rejected"] for row in hourly],
            name="rejected",
            marker_color=REJECTED_COLOUR,
        )
    )
    share_hours, share_gapped = _with_gaps(hourly, share)
    figure.add_trace(
        go.Scatter(
            x=share_hours,
            y=share_gapped,
            name="rejected %",
            yaxis="y2",
            mode="lines+markers",
            line_color="#444444",
        )
    )
    figure.update_layout(
        barmode="overlay",
        yaxis={"title": {"text": "Flows"}},
        yaxis2={
            "title": {"text": "Rejected %"},
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
            "showgrid": False,
        },
        legend={"orientation": "h", "y": -0.2},
    )
    return _hours_axis(figure, hourly)


def geo_map(countries: Countries) -> go.Figure:
    """External addresses by registered country: ``locations`` ISO-3 codes, ``z`` the
    flows with an external end registered there, ``customdata`` [name, addresses,
    bytes]. The world's outline is drawn even with no country (the map is never blank)."""
    rows = countries.rows
    title = "External addresses by registered country (flows)"
    if countries.unplaced_addresses:
        title += f"; {countries.unplaced_addresses:,} addresses with no country"
    figure = _figure(title, empty=False)
    figure.add_trace(
        go.Choropleth(
            locationmode="ISO-3",
            locations=[row.iso3 for row in rows],
            z=[row.flows for row in rows],
            customdata=[[row.name, row.addresses, row.bytes] for row in rows],
            hovertemplate="%{customdata[0]} (%{location})<br>flows %{z:,}<br>addresses "
            "%{customdata[1]:,}<br>bytes %{customdata[2]:,}<extra></extra>",
            colorscale="Blues",
            marker_line_color="#888888",
            colorbar={"title": {"text": "flows"}},
        )
    )
    figure.update_geos(
        scope="world",
        resolution=110,
        projection_type="natural earth",
        showcountries=True,
        countrycolor="#bbbbbb",
        showland=True,
        landcolor="#f2f2f2",
        showframe=False,
    )
    return figure


def sankey(
    conversations: Sequence[dict[str, Any]], by: str, max_nodes: int = MAX_NODES
) -> go.Figure:
    """The top conversations, sources on the left and destinations on the right (an
    address on both sides is two nodes, so no link loops back), each taken, in the given
    order, if its nodes still fit in ``max_nodes``: ``node.label`` the addresses,
    ``link.source``/``target`` node indexes, ``link.value`` the ``by`` figure."""
    sources: dict[str, int] = {}
    targets: dict[str, int] = {}
    links: list[tuple[str, str, int]] = []
    for row in conversations:
        new = (row["srcaddr"] not in sources) + (row["dstaddr"] not in targets)
        if len(sources) + len(targets) + new > max_nodes:
            continue
        sources.setdefault(row["srcaddr"], len(sources))
        targets.setdefault(row["dstaddr"], len(targets))
        links.append((row["srcaddr"], row["dstaddr"], row[by]))
    labels = [*sources, *targets]
    figure = _figure(f"Top conversations by {by} (source to destination)", empty=not links)
    figure.add_trace(
        go.Sankey(
            arrangement="fixed",
            node={
                "label": labels,
                "pad": 12,
                "thickness": 14,
                "color": [FLOWS_COLOUR] * len(sources) + ["#ff7f0e"] * len(targets),
            },
            link={
                "source": [sources[s] for s, _, _ in links],
                "target": [len(sources) + targets[t] for _, t, _ in links],
                "value": [value for _, _, value in links],
            },
        )
    )
    return figure


def _with_gaps(
    hourly: Sequence[dict[str, Any]], values: Sequence[float]
) -> tuple[list[str], list[float | None]]:
    """The hours and their values, with a null point at the hour after each one that the
    next row does not follow: Plotly breaks a line at a null (``connectgaps`` off)."""
    hours: list[str] = []
    out: list[float | None] = []
    previous: datetime | None = None
    for row, value in zip(hourly, values, strict=True):
        hour = _hour(row["hour"])
        if previous is not None and hour - previous > timedelta(hours=1):
            hours.append(_text(previous + timedelta(hours=1)))
            out.append(None)
        hours.append(row["hour"])
        out.append(value)
        previous = hour
    return hours, out


def _hour(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _text(hour: datetime) -> str:
    return hour.isoformat().replace("+00:00", "Z")


def _shifted(hour: datetime, hours: int) -> datetime:
    try:
        return hour + timedelta(hours=hours)
    except OverflowError:  # the first hour of year 1, the last of 9999
        return hour


def _hours_axis(figure: go.Figure, hourly: Sequence[dict[str, Any]]) -> go.Figure:
    """A time axis labelled in hours; with one hour only, an hour either side of it:
    left alone, Plotly zooms a single point to fractions of a millisecond."""
    figure.update_xaxes(type="date", tickformat="%b %d %H:%M")
    if len(hourly) == 1:
        hour = _hour(hourly[0]["hour"])
        span = [_shifted(hour, h).isoformat() for h in (-1, 1)]
        figure.update_xaxes(range=span)
    return figure


def _figure(title: str, *, empty: bool) -> go.Figure:
    figure = go.Figure(
        layout={
            "template": TEMPLATE,
            "title": {"text": title, "font": {"size": 14}},
            "margin": {"l": 60, "r": 30, "t": 50, "b": 40},
            "height": 360,
        }
    )
    if empty:
        figure.add_annotation(
            text="No flows for these filters",
            showarrow=False,
            xref="paper",
            yref="paper",
            x=0.5,
            y=0.5,
            font={"size": 14, "color": "#888888"},
        )
    return figure
