"""Every component id of the dashboard's page, for the layout, the callbacks and the tests.

Browser tests find the page's parts by these ids (``#<id>`` in CSS); renaming one is a
change of the page's contract. Filters, when set, hold what the URL parameter of the
same name holds (docs/flowlogs.md#dashboard).
"""

from __future__ import annotations

# ---- filters (inputs) ------------------------------------------------------------------
#: dcc.Dropdown, multi: account ids (URL ``account_id``).
ACCOUNT = "filter-account"
#: dcc.Dropdown, multi: VPC ids (URL ``vpc_id``).
VPC = "filter-vpc"
#: dcc.Dropdown, multi: subnet ids (URL ``subnet_id``).
SUBNET = "filter-subnet"
#: dcc.Dropdown, multi: network interface ids (URL ``interface_id``).
ENI = "filter-eni"
#: dcc.Dropdown, multi: IANA protocol numbers as text, "6" (URL ``protocol``: numbers or names).
PROTOCOL = "filter-protocol"
#: dcc.Checklist: "ACCEPT", "REJECT"; none ticked is both (URL ``action``).
ACTION = "filter-action"
#: dcc.Dropdown, single: "all", "1h", "6h", "24h", "7d" (the last hours of data held) or
#: "range" (START and END apply) (URL ``window``; ``start`` or ``end`` alone imply "range").
WINDOW = "filter-window"
#: dcc.Input, text: the range's start, ISO 8601, UTC when no zone is given (URL ``start``).
START = "filter-start"
#: dcc.Input, text: the range's end, exclusive (URL ``end``).
END = "filter-end"
#: dcc.Input, text: addresses, comma-separated; a flow matches by source or destination
#: (URL ``address``; set by the alerts' links). Not a filter of the worker's views.
ADDRESS = "filter-address"
#: dcc.Input, text: ports, comma-separated; source or destination (URL ``port``).
PORT = "filter-port"
#: dcc.RadioItems: "bytes", "packets", "flows": what ranks the top-10 bars, the
#: top-talker tables and the Sankey (URL ``by``; the views' ``by``).
RANK_BY = "filter-rank-by"

# ---- what the page shows (outputs) -----------------------------------------------------
#: html.Span per card; its text is the summary's figure with thousands separators,
#: "1,234,567" (bytes too: the exact integer, never rounded to "1.2 GB").
CARD_FLOWS = "card-flows"
CARD_BYTES = "card-bytes"
CARD_ACCEPTED = "card-accepted"
CARD_REJECTED = "card-rejected"
#: The rejected share of flows, "12.34 %" ("-" with no flows).
CARD_REJECTED_SHARE = "card-rejected-share"

#: dcc.Graph, horizontal bars: the top 10 source addresses (/flowlogs/top?field=srcaddr).
TOP_SOURCES = "graph-top-sources"
#: dcc.Graph, horizontal bars: the top 10 destination addresses (field=dstaddr).
TOP_DESTINATIONS = "graph-top-destinations"
#: dcc.Graph, line: rejected flows per hour (/flowlogs/hourly's ``rejected``).
DENIED_OVER_TIME = "graph-denied-over-time"
#: dcc.Graph, bars: flows per hour (/flowlogs/hourly's ``flows``).
FLOWS_PER_HOUR = "graph-flows-per-hour"
#: dcc.Graph, heatmap: flows per hour of day (x, 0-23 UTC) and day (y).
HEATMAP = "graph-hour-day-heatmap"
#: dcc.Graph: flows and rejected flows per hour (bars), the rejected share (line, right axis).
TOTAL_VS_DENIED = "graph-total-vs-denied"
#: dcc.Graph, choropleth of ISO-3 countries: flows with an external endpoint registered
#: in each country (world map from the app's own assets, never a CDN).
GEO_MAP = "graph-geo-map"
#: dcc.Graph, Sankey: the top source-to-destination conversations (at most 20 nodes).
SANKEY = "graph-sankey"
#: dash_table.DataTable, sortable, CSV export: top 100 source addresses
#: (columns value, bytes, packets, flows).
TALKERS_SOURCES = "table-top-sources"
#: dash_table.DataTable: top 100 destination addresses (same columns).
TALKERS_DESTINATIONS = "table-top-destinations"
#: html.Div holding an html.Table of alerts; each row's ``a.alert-flows`` link opens the
#: dashboard filtered on the flows behind that alert.
ALERTS = "alerts"
#: html.Div: messages (a filter that was refused and why, an unreachable lake or worker).
STATUS = "status"
#: html.Span: the time window in force, "2026-11-01T06:00:00Z - 2026-11-01T12:00:00Z"
#: (end excluded); with no window "all data: <first flow start> - <last flow start>",
#: or "no flows held".
WINDOW_SHOWN = "window-shown"
#: html.A: a link to this view (the filters as URL parameters).
PERMALINK = "permalink"

# ---- plumbing --------------------------------------------------------------------------
#: dcc.Location: the URL, whose query string sets the filters when the page loads.
URL = "url"
#: dcc.Interval: the refresh tick (``refresh_seconds``).
TICK = "refresh-tick"
#: dcc.Store: the lake's version (a digest of its listing) and the span of its flows;
#: changes only when files were added or removed, which is what re-draws the figures.
LAKE_VERSION = "lake-version"
