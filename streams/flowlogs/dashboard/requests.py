"""The render callback's request as the page sends it, and the check that refuses any
other: how the bench and the tests drive the app as a browser does, and why a request
no page could send is a 400, not a 500 from Dash's dispatch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import dash
from flask import request

from streams.flowlogs.dashboard import ids
from streams.flowlogs.dashboard.inputs import CONTROLS

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
