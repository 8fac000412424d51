"""The dashboard's Dash app: ``create_app(lake_uri)``, nothing started at import.

The app reads the pipeline's results, never the raw logs: the lake the flow-logs workers
write (``FLOWLOGS_LAKE``: Parquet by hour under ``<lake>/flows/``), through the views' own
DuckDB code, and, given ``alerts_url``, a worker's ``/flowlogs/alerts`` view.
``/health`` answers 200 once the server runs (the launcher waits on it).
"""

from __future__ import annotations

from pathlib import Path

import dash

from streams.flowlogs.dashboard.callbacks import Dashboard, register
from streams.flowlogs.dashboard.data import DashboardData
from streams.flowlogs.dashboard.layout import page
from streams.flowlogs.query import LakeQueries

ASSETS = Path(__file__).with_name("assets")
#: Under ASSETS: Plotly asks for ``<topojsonURL>world_110m.json`` when it draws the map.
TOPOJSON = "topojson/"


def create_app(
    lake_uri: str,
    *,
    alerts_url: str | None = None,
    refresh_seconds: float = 30,
    region: str | None = None,
) -> dash.Dash:
    """The dashboard of the lake at ``lake_uri`` (a directory or ``s3://bucket/prefix``);
    ``refresh_seconds`` <= 0: no live refresh; ``region``: the bucket's AWS region."""
    data = DashboardData(LakeQueries(lake_uri, region=region))
    app = dash.Dash(
        __name__,
        assets_folder=str(ASSETS),
        serve_locally=True,  # every script from this server: the page works offline
        title="Flow logs",
        update_title="",  # the tab keeps its title while figures update
        health_endpoint="health",
        enable_mcp=False,
    )
    app.layout = page(
        lake=lake_uri, topojson_url=app.get_asset_url(TOPOJSON), refresh_seconds=refresh_seconds
    )
    register(app, Dashboard(data, alerts_url))
    return app
