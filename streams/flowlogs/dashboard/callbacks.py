"""What the page does: the URL sets the filters, the lake's version drives the figures.

Live refresh, and why it re-queries only when needed: every ``refresh_seconds`` the
``TICK`` interval fires ``watch``, which lists the lake (names, sizes and times; no file
is read) and digests the listing. The digest changes only when a worker wrote a file,
which happens when new objects were ingested; only then does ``watch`` store a new
``LAKE_VERSION`` (with the filters' choices and the span of flows held), and storing it
is what makes ``render`` query the lake again. A tick with nothing new costs one
listing, except after a render that could not read the lake: it marks ``STATUS``'s
class, and the next tick stores the version again, so a transient error heals itself.
The alerts are read at every tick (one small HTTP request): they live in Kafka, not in
the lake.

Every callback answers, whatever it is sent: a refused filter is left out and named in
``STATUS``; a lake or a worker that cannot be read leaves empty figures and a short
message (the whole error is logged); the Store and the controls come back from the
browser and are checked like the URL (inputs.py); a request no page could send is a
400 (requests.py).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import dash
import duckdb
import pyarrow as pa
from dash import Input, Output, State, html

from streams.flowlogs.dashboard import alerts, figures, ids
from streams.flowlogs.dashboard.data import BARS, OPTIONS, Answers, DashboardData
from streams.flowlogs.dashboard.geo import Countries
from streams.flowlogs.dashboard.inputs import (
    CONTROLS,
    OPTION_IDS,
    TYPED,
    choices,
    controls_of,
    is_id,
    lake_of,
    placeholders,
    values_of,
)
from streams.flowlogs.dashboard.layout import STATUS_CLASS, UNREADABLE, alerts_table
from streams.flowlogs.dashboard.requests import RENDER_INPUTS, RENDER_OUTPUTS, refuse_malformed
from streams.flowlogs.dashboard.selection import (
    Selection,
    controls_from_url,
    moment,
    read_url,
    select,
    url_of,
)

log = logging.getLogger(__name__)

NO_ANSWERS = Answers(
    summary={}, sources=[], destinations=[], hourly=[], countries=Countries(()), conversations=[]
)
#: What reading the lake can raise when it is unreachable or holds a broken file.
LAKE_ERRORS = (OSError, duckdb.Error, pa.ArrowException)


def problem(what: str, exc: BaseException) -> str:
    """A short message for the page (the error's first line, paths cut to their last two
    parts); the log has the whole error."""
    log.warning("%s: %s", what, exc)
    lines = str(exc).strip().splitlines() or [type(exc).__name__]
    first = _ERROR_KIND.sub("", lines[0])
    first = _PATH.sub(lambda m: _short_path(m.group(0)), first)
    if len(first) > MESSAGE_CHARS:
        first = first[:MESSAGE_CHARS] + "..."
    return f"{what}: {first}"


@dataclass
class Dashboard:
    data: DashboardData
    alerts_url: str | None = None

    def filters(self, search: Any, store: Any, *values: Any) -> list[Any]:
        """The controls' values, the dropdowns' choices and placeholders, in one
        callback: a dropdown drops a value its choices lack, so a value the URL sets (an
        alert's link is opened before the lake's choices arrive) must come with its
        choice. The URL sets the values when the page loads (or its query string
        changes); a new lake version only adds choices, and the values picked stay."""
        held = lake_of(store)["options"]
        if dash.ctx.triggered_id == ids.LAKE_VERSION:
            controls = controls_of(values)
            picked: list[Any] = [dash.no_update] * len(CONTROLS)
        else:
            controls = controls_from_url(search if isinstance(search, str) else None)
            picked = values_of(controls)
        return [*picked, *choices(held, controls), *placeholders(held)]

    def offer_typed(self, typed: Any, options: Any, picked: Any = None) -> Any:
        """A dropdown whose list is cut at OPTIONS values also offers the id typed in it
        (the lake may hold it beyond the cut); the offer goes when another is typed,
        unless it was picked."""
        options = [o for o in options if isinstance(o, dict)] if isinstance(options, list) else []
        picked = picked if isinstance(picked, list) else []
        listed = [o for o in options if o.get("title") != TYPED]
        kept = listed + [o for o in options if o.get("title") == TYPED and o.get("value") in picked]
        value = typed.strip() if isinstance(typed, str) else ""
        fits = len(listed) >= OPTIONS and value and is_id(value)
        if fits and all(o.get("value") != value for o in kept):
            kept.append({"label": value, "value": value, "title": TYPED})
        return dash.no_update if kept == options else kept

    def watch(self, _tick: Any, current: Any, status_class: Any) -> Any:
        """A new LAKE_VERSION when the lake's listing changed, or when the last render
        could not read the lake (``status_class`` says so): a transient error (an NFS
        hiccup, an S3 SlowDown) is over by the next tick; else no update."""
        current = lake_of(current) if isinstance(current, dict) else None
        try:
            version = self.data.version()
        except LAKE_ERRORS as exc:
            error = problem("the lake cannot be listed", exc)
            if current is not None and current.get("error") == error:
                return dash.no_update
            return {"version": None, "error": error, "latest": None, "options": {}}
        if current is not None and current.get("version") == version:
            if UNREADABLE in str(status_class or "").split():
                return {**current, "attempt": current["attempt"] + 1}
            return dash.no_update
        try:
            catalog = self.data.catalog()
        except LAKE_ERRORS as exc:
            return {
                "version": None,
                "error": problem("the lake cannot be read", exc),
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

    def render(self, store: Any, *inputs: Any) -> list[Any]:
        """Every card, figure and table for the filters' values (the bench times this);
        ``inputs``: the controls' values, then the URL's query string, whose notes show
        while the controls hold what it set."""
        *values, search = inputs
        lake = lake_of(store)
        controls = controls_of(values)
        selection, messages = select(controls, lake["latest"])
        url_controls, notes = read_url(search if isinstance(search, str) else None)
        if notes and url_controls == controls:
            messages = [*notes, *messages]
        answers = NO_ANSWERS
        unreadable = False
        if lake["error"]:
            messages.append(lake["error"])
        elif lake["version"] is not None:
            try:
                answers = self.data.answers(selection)
            except LAKE_ERRORS as exc:
                messages.append(problem("the lake cannot be read", exc))
                unreadable = True
            left_out = self.data.unreadable(answers.skipped)
            if left_out is not None:
                messages.append(left_out)
        return [
            *figures.cards(answers.summary).values(),
            *draw(answers, selection.by),
            answers.sources,
            answers.destinations,
            window_text(selection, lake),
            url_of(controls),
            [html.Div(message) for message in messages],
            f"{STATUS_CLASS} {UNREADABLE}" if unreadable else STATUS_CLASS,
        ]

    def alerts(self, _tick: Any, store: Any, *values: Any) -> Any:
        """The alerts the filters' account, VPC and window cover, with their links."""
        if self.alerts_url is None:
            return html.P("No worker to ask: start the dashboard with --alerts-url.")
        selection, _ = select(controls_of(values), lake_of(store)["latest"])
        try:
            found = alerts.fetch_alerts(self.alerts_url, selection)
        except (OSError, ValueError) as exc:
            return html.P(f"The alerts cannot be read from {self.alerts_url}: {exc}")
        if not found:
            return html.P("No alert for these filters.")
        return alerts_table(found, [alerts.flows_link(alert) for alert in found])


def draw(answers: Answers, by: str) -> list[Any]:
    """The figures in GRAPH_IDS' order (requests.py)."""
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
        return f"all data: {moment(lake.get('earliest'))} - {moment(lake['latest'])}"
    return f"{moment(filters.start, 'the first flow')} - {moment(filters.end, 'the last flow')}"


def register(app: dash.Dash, dashboard: Dashboard) -> None:
    app.server.before_request(refuse_malformed(app))
    controls = [Input(i, "value") for _, i in CONTROLS]
    app.callback(
        [
            *(Output(i, "value") for _, i in CONTROLS),
            *(Output(i, "options") for _, i in OPTION_IDS),
            *(Output(i, "placeholder") for _, i in OPTION_IDS),
        ],
        Input(ids.URL, "search"),
        Input(ids.LAKE_VERSION, "data"),
        *(State(i, "value") for _, i in CONTROLS),
    )(dashboard.filters)
    for _, i in OPTION_IDS[:4]:  # the ids' lists (protocols are never cut)
        app.callback(
            Output(i, "options", allow_duplicate=True),
            Input(i, "search_value"),
            State(i, "options"),
            State(i, "value"),
            prevent_initial_call=True,
        )(dashboard.offer_typed)
    app.callback(
        Output(ids.LAKE_VERSION, "data"),
        Input(ids.TICK, "n_intervals"),
        State(ids.LAKE_VERSION, "data"),
        State(ids.STATUS, "className"),
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


def _short_path(path: str) -> str:
    parts = [part for part in path.split("/") if part]
    return path if len(parts) <= 2 else ".../" + "/".join(parts[-2:])


_ERROR_KIND = re.compile(r"^[A-Za-z ]{0,40}Error: ")
_PATH = re.compile(r"(?:[a-z0-9]+://)?(?:/[^/\s\"']+){3,}")
#: A message's characters at most, before "...".
MESSAGE_CHARS = 200
