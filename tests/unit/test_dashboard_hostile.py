"""The dashboard app against what a careless or hostile page, lake or worker sends: every
callback answers, with a message, never an HTTP 500 (callbacks.py, alerts.py)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dash
import duckdb
import pytest

from streams.flowlogs.dashboard import alerts, ids
from streams.flowlogs.dashboard.app import create_app
from streams.flowlogs.dashboard.callbacks import Dashboard
from streams.flowlogs.dashboard.data import OPTIONS, DashboardData
from streams.flowlogs.dashboard.inputs import CONTROLS, OPTION_IDS, values_of
from streams.flowlogs.dashboard.requests import render_request
from streams.flowlogs.dashboard.selection import Controls, Selection, controls_from_url
from streams.flowlogs.query import LakeQueries
from tests.support.dashboard import rows, write_lake


@pytest.fixture
def app(tmp_path: Path) -> dash.Dash:
    write_lake(tmp_path, rows(200))
    return create_app(str(tmp_path))


def post_raw(app: dash.Dash, body: Any) -> Any:
    return app.server.test_client().post("/_dash-update-component", json=body)


def statuses(app: dash.Dash, lake: Any, values: list[Any], search: str = "") -> list[str]:
    answer = post_raw(app, render_request(lake, values, search))
    assert answer.status_code == 200, answer.data[:2000]
    status = answer.get_json()["response"][ids.STATUS]["children"]
    return [div["props"]["children"] for div in status]


def good_lake(app: dash.Dash) -> dict[str, Any]:
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
    answer = post_raw(app, body)
    assert answer.status_code == 200, answer.data[:2000]
    return answer.get_json()["response"][ids.LAKE_VERSION]["data"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "search",
    ["?start=9999-12-31T23:59:59.9Z", "?end=0001-01-01T00:00:00Z", "?protocol=%C2%B2",
     "?protocol=6,%E2%91%A0", "?window=bogus", "?acount_id=1"],
)  # fmt: skip
def test_a_url_the_page_cannot_use_renders_with_a_message(app: dash.Dash, search: str) -> None:
    """A shared link with an edge time, a superscript digit or a typo opens a page whose
    figures load, with a line naming what was left out."""
    lake = good_lake(app)
    values = values_of(controls_from_url(search))
    assert statuses(app, lake, values, search)
    filters = {
        "output": ".." + "...".join(f"{i}.value" for _, i in CONTROLS) + "..",
        "outputs": [{"id": i, "property": "value"} for _, i in CONTROLS],
        "inputs": [
            {"id": ids.URL, "property": "search", "value": search},
            {"id": ids.LAKE_VERSION, "property": "data", "value": lake},
        ],
        "state": [{"id": i, "property": "value", "value": None} for _, i in CONTROLS],
        "changedPropIds": [f"{ids.URL}.search"],
    }
    assert post_raw(app, full_filters_request(filters)).status_code == 200


def full_filters_request(body: dict[str, Any]) -> dict[str, Any]:
    outputs = [
        *((i, "value") for _, i in CONTROLS),
        *((i, "options") for _, i in OPTION_IDS),
        *((i, "placeholder") for _, i in OPTION_IDS),
    ]
    return {
        **body,
        "output": ".." + "...".join(f"{i}.{p}" for i, p in outputs) + "..",
        "outputs": [{"id": i, "property": p} for i, p in outputs],
    }


def test_url_notes_show_while_the_controls_are_the_urls(app: dash.Dash) -> None:
    """Once the user picks other filters, the URL's notes go."""
    lake = good_lake(app)
    search = "?acount_id=1&vpc_id=vpc-a"
    notes = statuses(app, lake, values_of(Controls(vpc_id=("vpc-a",))), search)
    assert any("acount_id" in note for note in notes)
    assert statuses(app, lake, values_of(Controls(vpc_id=("vpc-b",))), search) == []


CRAFTED_STORES: list[Any] = [
    [1, 2], "abc", 5, {"version": "v", "latest": "x"}, {"version": "v", "latest": 1.5e300},
    {"version": "v", "latest": 10**20, "earliest": 0}, {"version": "v", "latest": True},
    {"version": "v", "latest": 1_793_491_200}, {"error": 5}, {"options": [1]},
    {"options": {"protocol": ["²", 6, None, {"a": 1}], "vpc_id": "vpc-a"}},
]  # fmt: skip


@pytest.mark.parametrize("store", CRAFTED_STORES, ids=str)
@pytest.mark.parametrize("window", ["all", "6h"])
def test_a_crafted_lake_store_is_answered(app: dash.Dash, store: Any, window: str) -> None:
    """The Store comes back from the browser: whatever it holds, render answers."""
    statuses(app, store, values_of(Controls(window=window)))
    dashboard = Dashboard(DashboardData(LakeQueries("/nonexistent")))
    dashboard.alerts(0, store, *values_of(Controls(window=window)))


def test_crafted_control_values_are_read_as_one_value_each(app: dash.Dash) -> None:
    """A scalar where a list is expected is one value (not its characters); address and
    port sent as lists are their items; anything else is refused with a message."""
    lake = good_lake(app)
    values = values_of(Controls())
    names = [name for name, _ in CONTROLS]
    values[names.index("protocol")] = -1
    values[names.index("account_id")] = {"a": 1}
    values[names.index("address")] = ["10.0.0.1", "10.0.0.2"]
    values[names.index("port")] = [22, "443"]
    values[names.index("window")] = ["6h"]
    notes = statuses(app, lake, values)
    assert any("protocol: '-1'" in note for note in notes)
    assert any("account_id" in note for note in notes)
    assert any("window" in note for note in notes)
    assert not any("address" in note or "port" in note for note in notes)


@pytest.mark.parametrize(
    "body",
    [{}, [], "x", {"output": "x.y", "inputs": []}, {"output": f"{ids.ALERTS}.children"}],
    ids=str,
)
def test_a_malformed_callback_request_is_a_400(app: dash.Dash, body: Any) -> None:
    """Not the server's fault, so not a 500."""
    assert post_raw(app, body).status_code == 400
    short = render_request(None, values_of(Controls()))
    short["inputs"] = short["inputs"][:3]
    assert post_raw(app, short).status_code == 400


@dataclass
class Flaky:
    """A lake whose reads fail ``failures`` times (an NFS hiccup, an S3 503), listing
    unchanged."""

    real: DashboardData
    failures: int = 1
    asked: list[Selection] = field(default_factory=list)

    def answers(self, selection: Selection) -> Any:
        self.asked.append(selection)
        if self.failures:
            self.failures -= 1
            raise duckdb.IOException(
                'IO Error: Cannot open file "/very/long/absolute/path/to/the/lake/flows/'
                'hour=2026-11-01T00/part-p000-0-199.parquet": Input/output error\n'
                "LINE 8: FROM read_parquet([...])"
            )
        return self.real.answers(selection)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_a_failed_render_is_retried_at_the_next_tick(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The listing is unchanged, yet the next tick re-signals so the figures come back;
    the user reads a short message, the log the full one."""
    write_lake(tmp_path, rows(50))
    flaky = Flaky(DashboardData(LakeQueries(str(tmp_path))))
    dashboard = Dashboard(flaky)  # type: ignore[arg-type]
    lake = dashboard.watch(0, None, "status")
    with caplog.at_level(logging.WARNING):
        out = dashboard.render(lake, *values_of(Controls()), "")
    (message,) = [div.children for div in out[-2]]
    assert "cannot be read" in message
    assert "/very/long" not in message and "LINE 8" not in message
    assert "part-p000-0-199.parquet" in message
    assert "/very/long/absolute/path" in caplog.text
    status_class = out[-1]
    again = dashboard.watch(1, lake, status_class)
    assert again is not dash.no_update
    out = dashboard.render(again, *values_of(Controls()), "")
    assert out[-2] == [] and out[-1] == "status"
    assert out[0] != "0"
    assert dashboard.watch(2, again, out[-1]) is dash.no_update


def test_a_cut_list_says_so_and_a_typed_id_is_offered(tmp_path: Path) -> None:
    """The lake holds more ENIs than the list offers: the placeholder says the list is
    cut, and an id typed in the dropdown is offered even if not listed."""
    dashboard = Dashboard(DashboardData(LakeQueries(str(tmp_path))))
    enis = [f"eni-{i:05}" for i in range(OPTIONS)]
    lake = {"version": "v", "latest": 1, "earliest": 1, "options": {"interface_id": enis}}
    with dash_context(ids.LAKE_VERSION):
        out = dashboard.filters("", lake, *values_of(Controls()))
    placeholders = out[-len(OPTION_IDS) :]
    names = [name for name, _ in OPTION_IDS]
    assert "first 1,000" in placeholders[names.index("interface_id")]
    assert "first" not in placeholders[names.index("vpc_id")]
    options = [{"label": v, "value": v} for v in enis]
    offered = dashboard.offer_typed("eni-01234", options)
    assert offered[-1]["value"] == "eni-01234"
    assert dashboard.offer_typed("eni-012345", offered)[-1]["value"] == "eni-012345"
    assert len(dashboard.offer_typed("eni-012345", offered)) == OPTIONS + 1
    kept = dashboard.offer_typed("eni-0123456", offered, ["eni-01234"])
    assert [o["value"] for o in kept[OPTIONS:]] == ["eni-01234", "eni-0123456"]
    assert dashboard.offer_typed("eni 1", options) is dash.no_update
    assert dashboard.offer_typed("eni-00007", options) is dash.no_update


class dash_context:
    """dash.ctx for a callback called directly: what triggered it."""

    def __init__(self, trigger: str) -> None:
        self.trigger = trigger

    def __enter__(self) -> None:
        from dash._callback_context import context_value

        self.token = context_value.set(
            {"triggered_inputs": [{"prop_id": f"{self.trigger}.data", "value": 1}]}
        )

    def __exit__(self, *exc: object) -> None:
        from dash._callback_context import context_value

        context_value.reset(self.token)


def test_an_alert_without_a_window_end_links_without_one() -> None:
    """No ``end=None`` (which the page would refuse): the link's range is open-ended."""
    link = alerts.flows_link({"kind": "port_scan", "subject": "10.0.0.7", "account_id": "1",
                              "window_start": "2026-11-01T10:05:00Z", "window_end": None,
                              "vpc_id": None})  # fmt: skip
    assert "None" not in link
    assert link == "?account_id=1&window=range&start=2026-11-01T10:05:00Z&address=10.0.0.7"


ALERT = {"id": "a", "kind": "port_scan", "subject": "10.0.0.7", "account_id": "1",
         "vpc_id": "vpc-a", "window_start": "2026-11-01T10:05:00Z",
         "window_end": "2026-11-01T10:10:00Z"}  # fmt: skip


@pytest.fixture
def worker() -> Iterator[str]:
    """A worker's /flowlogs/alerts that misbehaves in the way the path's first part names."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            mode = self.path.split("/")[1]
            self.send_response(200)
            self.end_headers()
            if mode == "trickle":
                for _ in range(40):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.1)
                self.wfile.write(b"[]")
                return
            body = {
                "many": json.dumps([dict(ALERT, id=str(i)) for i in range(500)]),
                "huge": json.dumps([dict(ALERT, subject="x" * 100_000)] * 30),
                "deep": "[" * 100_000 + "]" * 100_000,
                "scalars": json.dumps([1, "x", None]),
                "empty": "[]",
            }[mode]
            self.wfile.write(body.encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("mode", "refused"),
    [("trickle", "within 1 s"), ("huge", "over 2,000,000 bytes"), ("deep", "nested"),
     ("scalars", "not an alert")],
)  # fmt: skip
def test_a_misbehaving_worker_is_a_message(worker: str, mode: str, refused: str) -> None:
    """A total deadline (not per read), a size cap, and any JSON that is not a list of
    alerts are each a sentence, never a hang or an HTTP 500."""
    with pytest.raises(ValueError, match=refused):
        alerts.fetch_alerts(f"{worker}/{mode}", Selection(), timeout=1.0)


def test_a_worker_that_ignores_the_limit_is_cut_to_it(worker: str) -> None:
    """The newest LIMIT alerts, whatever the worker sends."""
    found = alerts.fetch_alerts(f"{worker}/many", Selection())
    assert [a["id"] for a in found] == [str(i) for i in range(alerts.LIMIT)]
    assert alerts.fetch_alerts(f"{worker}/empty", Selection()) == []
