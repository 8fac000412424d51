"""The dashboard app, driven in process as the page drives it: the callbacks' requests
through Flask's test client (app.py, layout.py, callbacks.py)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dash
import pytest

from streams.flowlogs.dashboard import ids
from streams.flowlogs.dashboard.app import create_app
from streams.flowlogs.dashboard.callbacks import Dashboard
from streams.flowlogs.dashboard.data import DashboardData
from streams.flowlogs.dashboard.inputs import CONTROLS, OPTION_IDS, values_of
from streams.flowlogs.dashboard.requests import render_request
from streams.flowlogs.dashboard.selection import Controls, select
from streams.flowlogs.query import LakeQueries
from tests.support.dashboard import rows, write_lake

ALL_IDS = {value for name, value in vars(ids).items() if name.isupper()}


def component_ids(component: Any) -> set[str]:
    found = {component.id} if isinstance(getattr(component, "id", None), str) else set()
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and not isinstance(child, str | int | float):
            found |= component_ids(child)
    return found


def post(app: dash.Dash, body: dict[str, Any]) -> Any:
    answer = app.server.test_client().post("/_dash-update-component", json=body)
    assert answer.status_code == 200, answer.data[:2000]
    return answer.get_json()["response"]


def lake_version(app: dash.Dash) -> dict[str, Any]:
    """What the page's first tick stores: the lake's version and what it holds."""
    body = {
        "output": f"{ids.LAKE_VERSION}.data",
        "outputs": {"id": ids.LAKE_VERSION, "property": "data"},
        "inputs": [{"id": ids.TICK, "property": "n_intervals", "value": 0}],
        "state": [
            {"id": ids.LAKE_VERSION, "property": "data", "value": None},
            {"id": ids.STATUS, "property": "className", "value": "status"},
        ],
        "changedPropIds": [f"{ids.TICK}.n_intervals"],
    }
    return post(app, body)[ids.LAKE_VERSION]["data"]  # type: ignore[no-any-return]


def render(app: dash.Dash, lake: dict[str, Any] | None, controls: Controls) -> dict[str, Any]:
    response = post(app, render_request(lake, values_of(controls)))
    return {key: next(iter(value.values())) for key, value in response.items()}


@pytest.fixture
def lake_dir(tmp_path: Path) -> Path:
    write_lake(tmp_path, rows(400))
    return tmp_path


def test_the_page_has_every_published_id_and_serves_its_map_locally(tmp_path: Path) -> None:
    """ids.py is the page's contract; the graphs ask the app, not a CDN, for the world."""
    app = create_app(str(tmp_path))
    assert component_ids(app.layout) == ALL_IDS
    client = app.server.test_client()
    assert client.get("/health").status_code == 200
    graph = next(c for c in app.layout.children if getattr(c, "className", "") == "row")
    url = graph.children[0].config["topojsonURL"]
    world = client.get(f"{url}world_110m.json")
    assert world.status_code == 200
    assert "countries" in json.loads(world.data)["objects"]
    index = client.get("/").data.decode()
    assert "https://" not in index.replace("https://dash-version.plotly.com", "")


def test_an_empty_lake_renders_zeros_and_empty_figures(tmp_path: Path) -> None:
    """No file yet: every output is there, nothing raises."""
    app = create_app(str(tmp_path))
    lake = lake_version(app)
    assert lake["latest"] is None
    out = render(app, lake, Controls(window="6h", vpc_id=("vpc-a",)))
    assert out[ids.CARD_FLOWS] == "0"
    assert out[ids.CARD_REJECTED_SHARE] == "-"
    assert out[ids.TALKERS_SOURCES] == []
    assert out[ids.WINDOW_SHOWN] == "no flows held"
    for graph in (ids.TOP_SOURCES, ids.HEATMAP, ids.GEO_MAP, ids.SANKEY):
        assert out[graph]["data"], graph
    assert out[ids.STATUS] == []


def test_bad_filters_leave_messages_and_the_rest_applies(lake_dir: Path) -> None:
    """Refused values are named in STATUS; the figures show the other filters' flows."""
    app = create_app(str(lake_dir))
    lake = lake_version(app)
    controls = Controls(vpc_id=("vpc-a", "no way"), protocol=("tcpx",), window="range",
                        start="soon", address="1.2.3.999", port="-1", by="cost")  # fmt: skip
    out = render(app, lake, controls)
    messages = [div["props"]["children"] for div in out[ids.STATUS]]
    assert len(messages) == 6
    flows = sum(1 for r in rows(400) if r["log_status"] == "OK")
    assert 0 < int(out[ids.CARD_FLOWS].replace(",", "")) < flows
    render(app, None, Controls())  # before the first tick: no lake yet


def test_the_render_callback_shows_the_lakes_answers(lake_dir: Path) -> None:
    """Cards, tables and figures hold what the lake answers for the same selection."""
    app = create_app(str(lake_dir))
    lake = lake_version(app)
    controls = Controls(vpc_id=("vpc-a",), action=("REJECT",), window="24h", by="flows")
    out = render(app, lake, controls)
    selection, _ = select(controls, lake["latest"])
    answers = DashboardData(LakeQueries(str(lake_dir))).answers(selection)
    assert out[ids.CARD_FLOWS] == f"{answers.summary['flows']:,}"
    assert out[ids.TALKERS_SOURCES] == answers.sources
    assert out[ids.TALKERS_DESTINATIONS] == answers.destinations
    (bars,) = out[ids.TOP_SOURCES]["data"]
    assert bars["y"] == [row["value"] for row in answers.sources[:10]]
    assert bars["x"] == [row["flows"] for row in answers.sources[:10]]
    (hourly,) = out[ids.FLOWS_PER_HOUR]["data"]
    assert hourly["y"] == [row["flows"] for row in answers.hourly]
    assert out[ids.PERMALINK] == "?vpc_id=vpc-a&action=REJECT&window=24h&by=flows"


def filters_request(search: str, lake: Any, values: list[Any], changed: str) -> dict[str, Any]:
    outputs = [
        *((i, "value") for _, i in CONTROLS),
        *((i, "options") for _, i in OPTION_IDS),
        *((i, "placeholder") for _, i in OPTION_IDS),
    ]
    return {
        "output": ".." + "...".join(f"{i}.{p}" for i, p in outputs) + "..",
        "outputs": [{"id": i, "property": p} for i, p in outputs],
        "inputs": [
            {"id": ids.URL, "property": "search", "value": search},
            {"id": ids.LAKE_VERSION, "property": "data", "value": lake},
        ],
        "state": [{"id": i, "property": "value", "value": v}
                  for (_, i), v in zip(CONTROLS, values, strict=True)],
        "changedPropIds": [changed],
    }  # fmt: skip


def test_the_url_sets_the_filters_and_their_choices(lake_dir: Path) -> None:
    """An alert's link (a query string) sets the controls when the page loads, each
    value among its dropdown's choices (a dropdown drops a value it does not offer)."""
    app = create_app(str(lake_dir))
    lake = lake_version(app)
    search = "?vpc_id=vpc-z&protocol=tcp&action=reject&address=10.0.0.1&start=2026-11-01T10:00Z"
    body = filters_request(search, lake, values_of(Controls()), f"{ids.URL}.search")
    out = post(app, body)
    assert out[ids.VPC]["value"] == ["vpc-z"]
    assert out[ids.PROTOCOL]["value"] == ["6"]
    assert out[ids.ACTION]["value"] == ["REJECT"]
    assert out[ids.ADDRESS]["value"] == "10.0.0.1"
    assert out[ids.WINDOW]["value"] == "range"
    assert out[ids.START]["value"] == "2026-11-01T10:00Z"
    assert [o["value"] for o in out[ids.VPC]["options"]] == ["vpc-a", "vpc-b", "vpc-z"]
    assert {"label": "tcp (6)", "value": "6"} in out[ids.PROTOCOL]["options"]
    # A new lake version later: new choices, the values picked since stay as they are.
    picked = values_of(Controls(vpc_id=("vpc-b",), window="6h"))
    out = post(app, filters_request(search, lake, picked, f"{ids.LAKE_VERSION}.data"))
    assert ids.VPC not in out or "value" not in out[ids.VPC]
    assert ids.WINDOW not in out


def test_watch_stores_a_new_version_only_when_the_lake_changed(tmp_path: Path) -> None:
    """A tick with no new file changes nothing, so nothing is queried again."""
    dashboard = Dashboard(DashboardData(LakeQueries(str(tmp_path))))
    first = dashboard.watch(1, None, "status")
    assert dashboard.watch(2, first, "status") is dash.no_update
    write_lake(tmp_path, rows(10))
    second = dashboard.watch(3, first, "status")
    assert second["version"] != first["version"]
    assert second["options"]["vpc_id"]


def test_a_broken_lake_file_is_named_and_the_rest_is_drawn(lake_dir: Path) -> None:
    """A file that is not Parquet: the page draws the other files' flows and names the
    one it left out."""
    healthy = render(create_app(str(lake_dir)), lake_version(create_app(str(lake_dir))), Controls())
    hour = next((lake_dir / "flows").iterdir())
    (hour / "part-p009-0-0.parquet").write_bytes(b"not parquet")
    app = create_app(str(lake_dir))
    lake = lake_version(app)
    out = render(app, lake, Controls())
    statuses = [div["props"]["children"] for div in out[ids.STATUS]]
    assert (
        f"1 file of the lake could not be read and is left out: {hour.name}/part-p009-0-0.parquet"
        in statuses
    )
    assert out[ids.CARD_FLOWS] == healthy[ids.CARD_FLOWS] != "0"


@pytest.fixture
def worker() -> Iterator[tuple[str, list[str]]]:
    """A stand-in for a worker's /flowlogs/alerts: one alert; records the queries."""
    asked: list[str] = []
    alert = {"id": "a1", "kind": "port_scan", "subject": "10.0.0.7", "account_id": "1",
             "vpc_id": "vpc-a", "window_start": "2026-11-01T10:05:00Z",
             "window_end": "2026-11-01T10:10:00Z"}  # fmt: skip

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            body = json.dumps([alert]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()


def test_alerts_come_from_the_worker_with_links_to_their_flows(
    tmp_path: Path, worker: tuple[str, list[str]]
) -> None:
    """One row per alert, its link selecting the alert's flows; failures are sentences."""
    url, asked = worker
    dashboard = Dashboard(DashboardData(LakeQueries(str(tmp_path))), alerts_url=url)
    table = dashboard.alerts(0, None, *values_of(Controls(vpc_id=("vpc-a",))))
    assert asked == ["/flowlogs/alerts?limit=100&vpc_id=vpc-a"]
    links = [a for a in _walk(table) if getattr(a, "className", "") == "alert-flows"]
    assert [a.href for a in links] == [
        "?account_id=1&vpc_id=vpc-a&window=range&start=2026-11-01T10:05:00Z"
        "&end=2026-11-01T10:10:00Z&address=10.0.0.7"
    ]
    gone = Dashboard(dashboard.data, alerts_url="http://127.0.0.1:9")
    assert "cannot be read" in gone.alerts(0, None, *values_of(Controls())).children
    none = Dashboard(dashboard.data)
    assert "--alerts-url" in none.alerts(0, None, *values_of(Controls())).children


def _walk(component: Any) -> Iterator[Any]:
    yield component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and not isinstance(child, str):
            yield from _walk(child)
