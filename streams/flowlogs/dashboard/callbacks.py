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
browser and are checked like the URL; a request no page could send is a 400.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import dash
import duckdb
import pyarrow as pa
from dash import Input, Output, State, html
from flask import request

from streams.common.errors import BadRequest
from streams.flowlogs.dashboard import alerts, figures, ids
from streams.flowlogs.dashboard.data import BARS, OPTIONS, Answers, DashboardData
from streams.flowlogs.dashboard.geo import Countries
from streams.flowlogs.dashboard.layout import (
    PLACEHOLDERS,
    STATUS_CLASS,
    UNREADABLE,
    alerts_table,
)
from streams.flowlogs.dashboard.selection import (
    LISTS,
    Controls,
    Selection,
    controls_from_url,
    moment,
    read_url,
    select,
    url_of,
)
from streams.flowlogs.filters import PROTOCOLS, parse_filters, protocol_number

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
    """The controls' values as the page sends them (lists, None for an empty input). A
    crafted request may send anything: a single value where a list is expected is one
    value, not its characters; address and port sent as lists are their items."""
    found: dict[str, Any] = {}
    for (name, _), value in zip(CONTROLS, values, strict=True):
        if value in (None, "", []):
            continue
        items = value if isinstance(value, list) else [value]
        if name in LISTS:
            found[name] = tuple(str(v) for v in items)
        elif name in ("address", "port"):
            found[name] = ",".join(str(v) for v in items)
        else:
            found[name] = str(value)
    return Controls(**found)


def values_of(controls: Controls) -> list[Any]:
    """The controls' values for the page (lists for the multi-value ones)."""
    return [
        list(value) if isinstance(value, tuple) else value
        for value in (getattr(controls, name) for name, _ in CONTROLS)
    ]


def lake_of(store: Any) -> dict[str, Any]:
    """The lake's version as the browser sends it back, keeping only usable values: the
    Store is the client's to send, so a stale or crafted one may hold anything."""
    if not isinstance(store, dict):
        return {"version": None, "error": None, "earliest": None, "latest": None, "options": {}}
    options = store.get("options")
    held: dict[str, list[str]] = {}
    for name, _ in OPTION_IDS:
        values = options.get(name) if isinstance(options, dict) else None
        if isinstance(values, list):
            held[name] = [str(v) for v in values if isinstance(v, str | int)]
    version, error, attempt = store.get("version"), store.get("error"), store.get("attempt")
    return {
        "version": version if isinstance(version, str) else None,
        "error": str(error) if error else None,
        "earliest": _epoch(store.get("earliest")),
        "latest": _epoch(store.get("latest")),
        "options": held,
        "attempt": attempt if isinstance(attempt, int) else 0,
    }


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
        fits = len(listed) >= OPTIONS and value and _is_id(value)
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


def placeholders(held: dict[str, list[str]]) -> list[str]:
    """Each dropdown's placeholder, saying so when its list is cut at OPTIONS values."""
    out = []
    for name, i in OPTION_IDS:
        text = PLACEHOLDERS[i]
        if len(held.get(name, [])) >= OPTIONS:
            text += f" (the first {OPTIONS:,} listed: type an id to pick another)"
        out.append(text)
    return out


def window_text(selection: Selection, lake: dict[str, Any]) -> str:
    filters = selection.filters
    if filters.start is None and filters.end is None:
        if lake.get("latest") is None:
            return "no flows held"
        return f"all data: {moment(lake.get('earliest'))} - {moment(lake['latest'])}"
    return f"{moment(filters.start, 'the first flow')} - {moment(filters.end, 'the last flow')}"


#: The render callback's outputs, in the order ``Dashboard.render`` returns them.
RENDER_OUTPUTS = (
    *((i, "children") for i in CARD_IDS),
    *((i, "figure") for i in GRAPH_IDS),
    (ids.TALKERS_SOURCES, "data"),
    (ids.TALKERS_DESTINATIONS, "data"),
    (ids.WINDOW_SHOWN, "children"),
    (ids.PERMALINK, "href"),
    (ids.STATUS, "children"),
    (ids.STATUS, "className"),
)
#: Its inputs: the lake's version, the controls in CONTROLS' order, the URL's query.
RENDER_INPUTS = (
    (ids.LAKE_VERSION, "data"),
    *((i, "value") for _, i in CONTROLS),
    (ids.URL, "search"),
)


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


def render_request(lake: Any, values: Sequence[Any], search: str = "") -> dict[str, Any]:
    """The body the page POSTs to ``/_dash-update-component`` to run ``render`` with
    these inputs: how the bench and the tests drive the app as a browser does."""
    inputs = [
        {"id": i, "property": p, "value": v}
        for (i, p), v in zip(RENDER_INPUTS, [lake, *values, search], strict=True)
    ]
    return {
        "output": ".." + "...".join(f"{i}.{p}" for i, p in RENDER_OUTPUTS) + "..",
        "outputs": [{"id": i, "property": p} for i, p in RENDER_OUTPUTS],
        "inputs": inputs,
        "changedPropIds": [f"{ids.LAKE_VERSION}.data"],
        "state": [],
    }


def refuse_malformed(app: dash.Dash) -> Callable[[], Any]:
    """A 400 for a callback request that is not one the page can send (no known output,
    inputs or state of the wrong count): Dash's own dispatch would fail with a 500."""

    def check() -> Any:
        if request.method != "POST" or not request.path.endswith("/_dash-update-component"):
            return None
        body = request.get_json(silent=True)
        if not _well_formed(body, app.callback_map):
            return "not a callback request of this page", 400
        return None

    return check


def _well_formed(body: Any, callbacks: dict[str, Any]) -> bool:
    if not isinstance(body, dict) or not isinstance(body.get("output"), str):
        return False
    callback = callbacks.get(body["output"])
    if callback is None or not isinstance(body.get("outputs"), dict | list):
        return False
    inputs, state = body.get("inputs"), body.get("state", [])
    if not isinstance(inputs, list) or not isinstance(state, list):
        return False
    if len(inputs) != len(callback["inputs"]) or len(state) != len(callback["state"]):
        return False
    return all(isinstance(item, dict) and "id" in item for item in [*inputs, *state])


def _protocol_label(value: str) -> str:
    # protocol_number, not str.isdigit: "²" is a digit that int() refuses.
    number = protocol_number(value)
    name = _NAMES.get(number) if number is not None and value.strip() == str(number) else None
    return f"{name} ({value})" if name else value


def _epoch(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _is_id(value: str) -> bool:
    try:
        parse_filters({"vpc_id": value})  # every id column has the same rule
    except BadRequest:
        return False
    return True


def _short_path(path: str) -> str:
    parts = [part for part in path.split("/") if part]
    return path if len(parts) <= 2 else ".../" + "/".join(parts[-2:])


_ERROR_KIND = re.compile(r"^[A-Za-z ]{0,40}Error: ")
_PATH = re.compile(r"(?:[a-z0-9]+://)?(?:/[^/\s\"']+){3,}")
#: A message's characters at most, before "...".
MESSAGE_CHARS = 200
#: The ``title`` of a dropdown's option that was typed, not listed.
TYPED = "typed: not among the values listed"
