"""The dashboard's page: filters on top, summary cards, figures, tables, alerts.

Every component the callbacks or the tests touch has its id from ids.py. Graphs load
the world map from the app's own assets (``topojsonURL``): Plotly would fetch it from a
CDN otherwise, and draw a blank map offline.
"""

from __future__ import annotations

import math
from typing import Any

from dash import dcc, html
from dash.dash_table.DataTable import DataTable

from streams.flowlogs.dashboard import ids
from streams.flowlogs.dashboard.selection import WINDOWS

WINDOW_LABELS = {
    "all": "All data held",
    "1h": "Last hour of data",
    "6h": "Last 6 hours of data",
    "24h": "Last 24 hours of data",
    "7d": "Last 7 days of data",
    "range": "Range (start, end below)",
}
TABLE_COLUMNS: list[DataTable.Columns] = [
    {"name": "address", "id": "value", "type": "text"},
    *(
        DataTable.Columns(name=name, id=name, type="numeric", format={"specifier": ","})
        for name in ("bytes", "packets", "flows")
    ),
]
CARDS = (
    ("Flows", ids.CARD_FLOWS),
    ("Bytes", ids.CARD_BYTES),
    ("Accepted", ids.CARD_ACCEPTED),
    ("Rejected", ids.CARD_REJECTED),
    ("Rejected %", ids.CARD_REJECTED_SHARE),
)
#: The STATUS line's class; with UNREADABLE added while the lake could not be read,
#: which the refresh tick reads to draw again.
STATUS_CLASS = "status"
UNREADABLE = "unreadable"
#: The dropdowns' placeholders (what no value picked means).
PLACEHOLDERS = {
    ids.ACCOUNT: "all accounts",
    ids.VPC: "all VPCs",
    ids.SUBNET: "all subnets",
    ids.ENI: "all interfaces",
    ids.PROTOCOL: "all protocols",
}
#: The graphs, two to a row.
GRAPH_ROWS = (
    (ids.TOP_SOURCES, ids.TOP_DESTINATIONS),
    (ids.FLOWS_PER_HOUR, ids.DENIED_OVER_TIME),
    (ids.TOTAL_VS_DENIED, ids.HEATMAP),
    (ids.GEO_MAP, ids.SANKEY),
)


def page(*, lake: str, topojson_url: str, refresh_seconds: float) -> html.Div:
    config: dcc.Graph.Config = {"topojsonURL": topojson_url, "displaylogo": False}
    # The CLI refuses other values; a caller of create_app passing NaN or 10^9 gets no
    # refresh (NaN) or a day, never a browser timer overflowing to ~0 ms.
    live = math.isfinite(refresh_seconds) and refresh_seconds > 0
    interval = min(max(refresh_seconds, 1), 86_400) if live else 86_400
    return html.Div(
        className="page",
        children=[
            dcc.Location(id=ids.URL, refresh=False),
            dcc.Interval(
                id=ids.TICK,
                interval=interval * 1000,
                disabled=not live,
            ),
            dcc.Store(id=ids.LAKE_VERSION),
            html.Header(
                className="header",
                children=[
                    html.H1("VPC flow logs"),
                    html.Span(f"lake {lake}", className="lake"),
                    html.Span(id=ids.WINDOW_SHOWN, className="window"),
                    html.A("link to this view", id=ids.PERMALINK, href="?"),
                ],
            ),
            filters(),
            html.Div(id=ids.STATUS, className=STATUS_CLASS),
            html.Div(className="cards", children=[_card(label, i) for label, i in CARDS]),
            *(
                html.Div(
                    className="row",
                    children=[dcc.Graph(id=i, config=config, className="graph") for i in row],
                )
                for row in GRAPH_ROWS
            ),
            html.Div(
                className="row",
                children=[
                    _table("Top sources", ids.TALKERS_SOURCES),
                    _table("Top destinations", ids.TALKERS_DESTINATIONS),
                ],
            ),
            html.H2("Alerts"),
            html.Div(id=ids.ALERTS, className="alerts"),
        ],
    )


def filters() -> html.Div:
    def dropdown(label: str, i: str) -> html.Label:
        return html.Label(
            [label, dcc.Dropdown(id=i, multi=True, placeholder=PLACEHOLDERS[i], options=[])]
        )

    def text(label: str, i: str, placeholder: str) -> html.Label:
        return html.Label(
            [label, dcc.Input(id=i, type="text", placeholder=placeholder, debounce=True, value="")]
        )

    return html.Div(
        className="filters",
        children=[
            dropdown("Account", ids.ACCOUNT),
            dropdown("VPC", ids.VPC),
            dropdown("Subnet", ids.SUBNET),
            dropdown("ENI", ids.ENI),
            dropdown("Protocol", ids.PROTOCOL),
            html.Label(
                [
                    "Action",
                    dcc.Checklist(
                        id=ids.ACTION, options=["ACCEPT", "REJECT"], value=[], inline=True
                    ),
                ]
            ),
            html.Label(
                [
                    "Time window",
                    dcc.Dropdown(
                        id=ids.WINDOW,
                        options=[
                            {"label": WINDOW_LABELS[v], "value": v} for v in [*WINDOWS, "range"]
                        ],
                        value="all",
                        clearable=False,
                    ),
                ]
            ),
            text("Start (UTC)", ids.START, "2026-11-01T06:00:00Z"),
            text("End (UTC, excluded)", ids.END, "2026-11-01T12:00:00Z"),
            text("Address (either end)", ids.ADDRESS, "203.0.113.7, 10.0.0.5"),
            text("Port (either end)", ids.PORT, "22, 443"),
            html.Label(
                [
                    "Rank by",
                    dcc.RadioItems(
                        id=ids.RANK_BY,
                        options=["bytes", "packets", "flows"],
                        value="bytes",
                        inline=True,
                    ),
                ]
            ),
        ],
    )


def alerts_table(rows: list[dict[str, Any]], links: list[str]) -> html.Table:
    """One row per alert, newest first, each with its link to the flows behind it."""
    head = ("window start", "kind", "account", "VPC", "subject", "")
    return html.Table(
        className="alerts-table",
        children=[
            html.Thead(html.Tr([html.Th(name) for name in head])),
            html.Tbody(
                [
                    html.Tr(
                        [
                            html.Td(str(alert.get("window_start", ""))),
                            html.Td(str(alert.get("kind", ""))),
                            html.Td(str(alert.get("account_id", ""))),
                            html.Td(str(alert.get("vpc_id", ""))),
                            html.Td(str(alert.get("subject", ""))),
                            html.Td(html.A("flows", href=link, className="alert-flows")),
                        ]
                    )
                    for alert, link in zip(rows, links, strict=True)
                ]
            ),
        ],
    )


def _card(label: str, i: str) -> html.Div:
    return html.Div(
        className="card",
        children=[
            html.Div(label, className="card-label"),
            html.Span("-", id=i, className="card-value"),
        ],
    )


def _table(title: str, i: str) -> html.Div:
    return html.Div(
        className="table",
        children=[
            html.H3(title),
            DataTable(
                id=i,
                columns=TABLE_COLUMNS,
                data=[],
                sort_action="native",
                export_format="csv",
                export_headers="display",  # the names the table shows, not the ids
                page_size=15,
                style_cell={"fontFamily": "monospace", "padding": "2px 8px"},
                style_header={"fontWeight": "bold"},
            ),
        ],
    )
