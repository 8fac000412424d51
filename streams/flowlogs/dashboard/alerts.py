"""The alerts list: read from a worker's ``/flowlogs/alerts`` view, each with a link to
the dashboard filtered on the flows behind it.

Alerts live in Kafka (``flowlogs.alerts``), not in the lake; every worker mirrors the
recent ones and serves them, so the dashboard asks one worker over HTTP (``--alerts-url``).
A link selects the alert's account and VPC, its window (a long-lived connection's from
the window its streak began) and its subject: the scanning or sending address, the
connection's client and server port, the first peer of a new country.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from streams.flowlogs.dashboard.selection import RANGE, Controls, Selection, url_of
from streams.flowlogs.detect_base import iso_time

#: Alerts shown at most (the newest).
LIMIT = 100


def alerts_query(selection: Selection, limit: int = LIMIT) -> str:
    """The view's query string for the alerts the selection's account, VPC and window
    cover (the view filters on those alone)."""
    filters = selection.filters
    params: list[tuple[str, str]] = [("limit", str(limit))]
    for name in ("account_id", "vpc_id"):
        values = getattr(filters, name)
        if values:
            params.append((name, ",".join(values)))
    for name in ("start", "end"):
        value = getattr(filters, name)
        if value is not None:
            params.append((name, iso_time(value)))
    return urlencode(params, safe=",:")


def fetch_alerts(base_url: str, selection: Selection, timeout: float = 3.0) -> list[dict[str, Any]]:
    """The newest alerts the selection covers, from the worker at ``base_url`` (blocking;
    raises OSError or ValueError when it cannot be read)."""
    url = f"{base_url.rstrip('/')}/flowlogs/alerts?{alerts_query(selection)}"
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        body = json.loads(answer.read())
    if not isinstance(body, list):
        raise ValueError(f"{url} answered {type(body).__name__}, not a list")
    return [alert for alert in body if isinstance(alert, dict)]


def flows_link(alert: Mapping[str, Any]) -> str:
    """The dashboard's query string that selects the flows behind ``alert``."""
    kind = alert.get("kind")
    address, port = str(alert.get("subject", "")), ""
    protocol: tuple[str, ...] = ()
    start = str(alert.get("window_start", ""))
    if kind == "long_lived":
        address = str(alert.get("srcaddr", ""))
        port = str(alert.get("dstport", ""))
        protocol = (str(alert["protocol"]),) if alert.get("protocol") is not None else ()
        start = str(alert.get("since") or start)
    elif kind == "new_country":
        address = str(alert.get("peer", ""))
    vpc = str(alert.get("vpc_id") or "-")
    controls = Controls(
        account_id=(str(alert["account_id"]),) if alert.get("account_id") else (),
        # "-": a version-2 log names no VPC; its flows have none to filter on.
        vpc_id=(vpc,) if vpc != "-" else (),
        protocol=protocol,
        window=RANGE,
        start=start,
        end=str(alert.get("window_end", "")),
        address=address,
        port=port,
    )
    return url_of(controls)
