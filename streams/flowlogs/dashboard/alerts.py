"""The alerts list: read from a worker's ``/flowlogs/alerts`` view, each with a link to
the dashboard filtered on the flows behind it.

Alerts live in Kafka (``flowlogs.alerts``), not in the lake; every worker mirrors the
recent ones and serves them, so the dashboard asks one worker over HTTP (``--alerts-url``).
A link selects the alert's account and VPC, its window (a long-lived connection's from
the window its streak began) and its subject: the scanning or sending address, the
connection's client and server port, the first peer of a new country.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from streams.flowlogs.dashboard.selection import RANGE, Controls, Selection, url_of
from streams.flowlogs.detect_base import iso_time

#: Alerts shown at most (the newest).
LIMIT = 100
#: An answer's bytes at most: 100 alerts are about 40 KB.
MAX_BYTES = 2_000_000


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
    """The newest alerts the selection covers, LIMIT at most, from the worker at
    ``base_url`` (blocking; raises OSError or ValueError when it cannot be read).

    Bounded whatever the worker does: ``timeout`` is the whole answer's deadline, not
    each read's (a worker trickling a byte a second would hold the page for minutes),
    MAX_BYTES its size, and JSON that is not a list of alerts is a ValueError."""
    url = f"{base_url.rstrip('/')}/flowlogs/alerts?{alerts_query(selection)}"
    deadline = time.monotonic() + timeout
    parts = urlsplit(url)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(parts.hostname or "", parts.port, timeout=timeout)
    try:
        connection.request("GET", f"{parts.path}?{parts.query}")
        if connection.sock is not None:  # the headers, too, within the time left
            connection.sock.settimeout(max(deadline - time.monotonic(), 0.001))
        answer = connection.getresponse()
        if answer.status != 200:
            raise ValueError(f"{url} answered HTTP {answer.status} {answer.reason}")
        body = _read(answer, connection, deadline, timeout)
    except http.client.HTTPException as exc:
        raise ValueError(f"{url} answered no HTTP: {exc!r}") from None
    except TimeoutError:
        raise ValueError(f"{url} did not answer within {timeout:g} s") from None
    finally:
        connection.close()
    try:
        found = json.loads(body)
    except RecursionError:
        raise ValueError(f"{url} answered JSON nested too deep") from None
    except ValueError as exc:  # bad JSON, bad UTF-8
        raise ValueError(f"{url} answered no JSON: {exc}") from None
    if not isinstance(found, list):
        raise ValueError(f"{url} answered {type(found).__name__}, not a list")
    alerts = [alert for alert in found if isinstance(alert, dict)]
    if len(alerts) < len(found):
        raise ValueError(f"{url} answered {len(found) - len(alerts)} items that are not an alert")
    return alerts[:LIMIT]


def _read(
    answer: http.client.HTTPResponse,
    connection: http.client.HTTPConnection,
    deadline: float,
    timeout: float,
) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        if connection.sock is not None:
            connection.sock.settimeout(left)  # each read waits the time left, no more
        chunk = answer.read1(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_BYTES:
            raise ValueError(f"the worker's alerts are over {MAX_BYTES:,} bytes")
        chunks.append(chunk)


def flows_link(alert: Mapping[str, Any]) -> str:
    """The dashboard's query string that selects the flows behind ``alert``."""
    kind = alert.get("kind")
    address, port = _text(alert, "subject"), ""
    protocol: tuple[str, ...] = ()
    start = _text(alert, "window_start")
    if kind == "long_lived":
        address = _text(alert, "srcaddr")
        port = _text(alert, "dstport")
        protocol = (str(alert["protocol"]),) if alert.get("protocol") is not None else ()
        start = _text(alert, "since") or start
    elif kind == "new_country":
        address = _text(alert, "peer")
    vpc = str(alert.get("vpc_id") or "-")
    controls = Controls(
        account_id=(str(alert["account_id"]),) if alert.get("account_id") else (),
        # "-": a version-2 log names no VPC; its flows have none to filter on.
        vpc_id=(vpc,) if vpc != "-" else (),
        protocol=protocol,
        window=RANGE,
        start=start,
        end=_text(alert, "window_end"),
        address=address,
        port=port,
    )
    return url_of(controls)


def _text(alert: Mapping[str, Any], key: str) -> str:
    # A field missing or null is no value, not the text "None".
    value = alert.get(key)
    return "" if value is None else str(value)
