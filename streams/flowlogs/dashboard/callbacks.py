"""What the page does: the URL sets the filters, the lake's version drives the figures.

Live refresh, and why it re-queries only when needed: every ``refresh_seconds`` the
``TICK`` interval fires ``watch``, which lists the lake (names, sizes and times; no file
is read) and digests the listing. The digest changes only when a worker wrote a file,
which happens when new objects were ingested; only then does ``watch`` store a new
``LAKE_VERSION`` (with the filters' choices and the span of flows held), and storing it
is what makes ``render`` query the lake again. A tick with nothing new costs one
listing. The alerts are read at every tick (one small HTTP request): they live in Kafka,
not in the lake.

Every callback answers, whatever it is sent: a refused filter is left out and named in
``STATUS``; a lake or a worker that cannot be read leaves empty figures and a message.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dash
import duckdb
import pyarrow as pa
from dash import Input, Output, State, html

from streams.flowlogs.dashboard import alerts, figures, ids
from streams.flowlogs.dashboard.data import BARS, Answers, DashboardData
from streams.flowlogs.dashboard.geo import Countries
from streams.flowlogs.dashboard.layout import alerts_table
from streams.flowlogs.dashboard.selection import (
    Controls,
    Selection,
    controls_from_url,
    select,
    url_of,
)
from streams.flowlogs.detect_base import iso_time
from streams.flowlogs.filters import PROTOCOLS

log = logging.getLogger(__name__)

#: Each control's Controls field, in the order the callbacks receive their values.
CONTROLS = (
    ("account_id", ids.ACCOUNT),
    ("vpc_id", ids.VPC),
    ("subnet_id", ids.SUBNET),
    ("interface_id", ids.ENI),
    ("protocol", ids.PROTOCOL),
    ("action", ids.ACTION),
    ("window", ids.WINDOW),
    ("start", ids.START),
    ("end", ids.END),
    ("address", ids.ADDRESS),
    ("port", ids.PORT),
    ("by", ids.RANK_BY),
)
CARD_IDS = (
    ids.CARD_FLOWS,
    ids.CARD_BYTES,
    ids.CARD_ACCEPTED,
    ids.CARD_REJECTED,
    ids.CARD_REJECTED_SHARE,
)
GRAPH_IDS = (
    ids.TOP_SOURCES,
    ids.TOP_DESTINATIONS,
    ids.DENIED_OVER_TIME,
    ids.FLOWS_PER_HOUR,
    ids.HEATMAP,
    ids.TOTAL_VS_DENIED,
    ids.GEO_MAP,
    ids.SANKEY,
)
#: The dropdowns, whose choices are what the lake holds.
OPTION_IDS = CONTROLS[:5]
NO_ANSWERS = Answers(
    summary={}, sources=[], destinations=[], hourly=[], countries=Countries(()), conversations=[]
)
#: What reading the lake can raise when it is unreachable or holds a broken file.
LAKE_ERRORS = (OSError, duckdb.Error, pa.ArrowException)
_NAMES = {number: name for name, number in sorted(PROTOCOLS.items(), reverse=True)}


def controls_of(values: Sequence[Any]) -> Controls:
    """The controls' values as the page sends them (lists, None for an empty input)."""
    found: dict[str, Any] = {}
    for (name, _), value in zip(CONTROLS, values, strict=True):
        if value in (None, "", []):
            continue
        found[name] = tuple(str(v) for v in value) if isinstance(value, list) else str(value)
    return Controls(**found)


def values_of(controls: Controls) -> list[Any]:
    """The controls' values for the page (lists for the multi-value ones)."""
    return [
        list(value) if isinstance(value, tuple) else value
        for value in (getattr(controls, name) for name, _ in CONTROLS)
    ]


@dataclass
class Dashboard:
    data: DashboardData
    alerts_url: str | None = None

    def filters(self, search: str | None, lake: dict[str, Any] | None, *values: Any) -> list[Any]:
        """The controls' values and the dropdowns' choices, in one callback: a dropdown
        drops a value its choices lack, so a value the URL sets (an alert's link is
        opened before the lake's choices arrive) must come with its choice. The URL sets
        the values when the page loads (or its query string changes); a new lake version
        only adds choices, and the values picked stay."""
        if dash.ctx.triggered_id == ids.LAKE_VERSION:
            controls = controls_of(values)
            picked: list[Any] = [dash.no_update] * len(CONTROLS)
        else:
            controls = controls_from_url(search)
            picked = values_of(controls)
        return [*picked, *choices((lake or {}).get("options") or {}, controls)]

    def watch(self, _tick: int | None, current: dict[str, Any] | None) -> Any:
        """A new LAKE_VERSION when the lake's listing changed, else no update."""
        try:
            version = self.data.version()
        except LAKE_ERRORS as exc:
            error = f"the lake cannot be listed: {exc}"
            if current is not None and current.get("error") == error:
                return dash.no_update
            return {"version": None, "error": error, "latest": None, "options": {}}
        if current is not None and current.get("version") == version:
            return dash.no_update
        try:
            catalog = self.data.catalog()
        except LAKE_ERRORS as exc:
            return {
                "version": None,
                "error": f"the lake cannot be read: {exc}",
                "latest": None,
                "options": {},
            }
        return {
            "version": version,
            "error": None,
            "earliest": catalog.earliest,
            "latest": catalog.latest,
            "options": catalog.options,
        }

    def render(self, lake: dict[str, Any] | None, *values: Any) -> list[Any]:
        """Every card, figure and table for the filters' values (the bench times this)."""
        lake = lake or {}
        controls = controls_of(values)
        selection, messages = select(controls, lake.get("latest"))
        answers = NO_ANSWERS
        if lake.get("error"):
            messages.append(lake["error"])
        elif lake.get("version") is not None:
            try:
                answers = self.data.answers(selection)
            except LAKE_ERRORS as exc:
                log.warning("dashboard query failed: %s", exc)
                messages.append(f"the lake cannot be read: {exc}")
        return [
            *figures.cards(answers.summary).values(),
            *draw(answers, selection.by),
            answers.sources,
            answers.destinations,
            window_text(selection, lake),
            url_of(controls),
            [html.Div(message) for message in messages],
        ]

    def alerts(self, _tick: int | None, lake: dict[str, Any] | None, *values: Any) -> Any:
        """The alerts the filters' account, VPC and window cover, with their links."""
        if self.alerts_url is None:
            return html.P("No worker to ask: start the dashboard with --alerts-url.")
        selection, _ = select(controls_of(values), (lake or {}).get("latest"))
        try:
            found = alerts.fetch_alerts(self.alerts_url, selection)
        except (OSError, ValueError) as exc:
            return html.P(f"The alerts cannot be read from {self.alerts_url}: {exc}")
        if not found:
            return html.P("No alert for these filters.")
        return alerts_table(found, [alerts.flows_link(alert) for alert in found])


def choices(held: dict[str, list[str]], controls: Controls) -> list[list[dict[str, str]]]:
    """Each dropdown's choices: what the lake holds, and the values picked (an alert's
    VPC may not be in the lake yet); protocols by number, labelled with their names."""
    out = []
    for name, _ in OPTION_IDS:
        values = list(dict.fromkeys([*held.get(name, []), *getattr(controls, name)]))
        label = _protocol_label if name == "protocol" else str
        out.append([{"label": label(v), "value": v} for v in values])
    return out


def draw(answers: Answers, by: str) -> list[Any]:
    """The figures in GRAPH_IDS' order."""
    return [
        figures.top_bars(answers.sources[:BARS], "Top 10 source addresses", by),
        figures.top_bars(answers.destinations[:BARS], "Top 10 destination addresses", by),
        figures.denied_over_time(answers.hourly),
        figures.flows_per_hour(answers.hourly),
        figures.heatmap(answers.hourly),
        figures.total_vs_denied(answers.hourly),
        figures.geo_map(answers.countries),
        figures.sankey(answers.conversations, by),
    ]


def window_text(selection: Selection, lake: dict[str, Any]) -> str:
    filters = selection.filters
    if filters.start is None and filters.end is None:
        if lake.get("latest") is None:
            return "no flows held"
        return f"all data: {iso_time(lake['earliest'])} - {iso_time(lake['latest'])}"
    start = iso_time(filters.start) if filters.start is not None else "the first flow"
    end = iso_time(filters.end) if filters.end is not None else "the last flow"
    return f"{start} - {end}"


#: The render callback's outputs, in the order ``Dashboard.render`` returns them.
RENDER_OUTPUTS = (
    *((i, "children") for i in CARD_IDS),
    *((i, "figure") for i in GRAPH_IDS),
    (ids.TALKERS_SOURCES, "data"),
    (ids.TALKERS_DESTINATIONS, "data"),
    (ids.WINDOW_SHOWN, "children"),
    (ids.PERMALINK, "href"),
    (ids.STATUS, "children"),
)
#: Its inputs: the lake's version, then the controls in CONTROLS' order.
RENDER_INPUTS = ((ids.LAKE_VERSION, "data"), *((i, "value") for _, i in CONTROLS))


def register(app: dash.Dash, dashboard: Dashboard) -> None:
    controls = [Input(i, "value") for _, i in CONTROLS]
    app.callback(
        [
            *(Output(i, "value") for _, i in CONTROLS),
            *(Output(i, "options") for _, i in OPTION_IDS),
        ],
        Input(ids.URL, "search"),
        Input(ids.LAKE_VERSION, "data"),
        *(State(i, "value") for _, i in CONTROLS),
    )(dashboard.filters)
    app.callback(
        Output(ids.LAKE_VERSION, "data"),
        Input(ids.TICK, "n_intervals"),
        State(ids.LAKE_VERSION, "data"),
    )(dashboard.watch)
    app.callback(
        [Output(i, p) for i, p in RENDER_OUTPUTS], *(Input(i, p) for i, p in RENDER_INPUTS)
    )(dashboard.render)
    app.callback(
        Output(ids.ALERTS, "children"),
        Input(ids.TICK, "n_intervals"),
        Input(ids.LAKE_VERSION, "data"),
        *controls,
    )(dashboard.alerts)


def render_request(lake: dict[str, Any] | None, values: Sequence[Any]) -> dict[str, Any]:
    """The body the page POSTs to ``/_dash-update-component`` to run ``render`` with
    these inputs: how the bench and the tests drive the app as a browser does."""
    inputs = [
        {"id": i, "property": p, "value": v}
        for (i, p), v in zip(RENDER_INPUTS, [lake, *values], strict=True)
    ]
    return {
        "output": ".." + "...".join(f"{i}.{p}" for i, p in RENDER_OUTPUTS) + "..",
        "outputs": [{"id": i, "property": p} for i, p in RENDER_OUTPUTS],
        "inputs": inputs,
        "changedPropIds": [f"{ids.LAKE_VERSION}.data"],
        "state": [],
    }


def _protocol_label(value: str) -> str:
    name = _NAMES.get(int(value)) if value.isdigit() else None
    return f"{name} ({value})" if name else value
