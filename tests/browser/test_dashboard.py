"""The flow-logs dashboard in a real browser (Debian's chromium, headless) on a lake the
pipeline wrote: every figure shows what the worker's views answer for the same filters,
filters redraw every figure, the map draws from the app's own files, the tables sort
and export, and an alert's link opens the flows behind it."""

from __future__ import annotations

import csv
import io
import ipaddress
import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import iptocc
import pytest
from playwright.sync_api import Page

from streams.flowlogs.dashboard import ids
from tests.support import flowlogs_oracle as oracle
from tests.support.browser import (
    CARDS,
    Dashboard,
    FlowLogsLake,
    Watched,
    get_json,
    local_only,
    open_dashboard,
    plot_data,
    settled,
)

pytestmark = pytest.mark.integration

PAGE_ROWS = 15  # the tables' page size
COUNTRIES = Path(__file__).parents[2] / "streams/flowlogs/dashboard/countries.json"


@pytest.fixture(scope="module")
def rows(flows: FlowLogsLake) -> list[oracle.Row]:
    """Every record of the generated objects, read without the pipeline's code."""
    return oracle.rows_of(path.read_bytes() for path in sorted(flows.source.rglob("*.gz")))


# ---- what the page shows ---------------------------------------------------------------


def open_page(watched: Watched, dashboard: Dashboard, query: str = "") -> Page:
    return open_dashboard(watched, f"{dashboard.url}/{query}")


def trace(page: Page, graph: str, index: int = 0) -> dict[str, Any]:
    data = plot_data(page, graph) or []
    return data[index] if len(data) > index else {}


def bars(page: Page, graph: str) -> list[tuple[str, int, list[int]]]:
    """A top-10 graph's bars, first on top: address, length, [bytes, packets, flows]."""
    drawn = trace(page, graph)
    return list(
        zip(drawn.get("y", []), drawn.get("x", []), drawn.get("customdata", []), strict=True)
    )


def table_page(page: Page, table: str) -> list[tuple[str, int, int, int]]:
    """The rows of a talker table's page on screen, numbers without their separators."""
    cells = page.eval_on_selector_all(
        f"#{table} tr",
        """trs => trs.map(tr => ['value', 'bytes', 'packets', 'flows'].map(c => {
             const td = tr.querySelector(`td[data-dash-column="${c}"]`);
             return td ? td.innerText.trim() : null; }))
           .filter(row => row[0] !== null)""",
    )
    return [(v, _int(b), _int(p), _int(f)) for v, b, p, f in cells]


def _int(text: str) -> int:
    return int(text.replace(",", ""))


def shown(page: Page) -> dict[str, Any]:
    """Every figure the views also answer, as the page drew it."""
    per_hour = trace(page, ids.FLOWS_PER_HOUR)
    denied = trace(page, ids.DENIED_OVER_TIME)
    heat = trace(page, ids.HEATMAP)
    totals = [trace(page, ids.TOTAL_VS_DENIED, i) for i in range(3)]
    return {
        "cards": {name: page.inner_text(f"#{i}") for name, i in CARDS.items()},
        "top sources": bars(page, ids.TOP_SOURCES),
        "top destinations": bars(page, ids.TOP_DESTINATIONS),
        "flows per hour": list(zip(per_hour.get("x", []), per_hour.get("y", []), strict=True)),
        "denied over time": list(zip(denied.get("x", []), denied.get("y", []), strict=True)),
        "heatmap": {
            f"{day}T{hour:02d}": flows
            for day, row in zip(heat.get("y", []), heat.get("z", []), strict=True)
            for hour, flows in zip(heat.get("x", []), row, strict=True)
            if flows is not None
        },
        "total vs denied": [t.get("y") for t in totals],
        "table sources": table_page(page, ids.TALKERS_SOURCES),
        "table destinations": table_page(page, ids.TALKERS_DESTINATIONS),
    }


def answered(
    summary: dict[str, int],
    hourly: list[dict[str, Any]],
    top: Callable[[str, int], list[dict[str, Any]]],
) -> dict[str, Any]:
    """What ``shown`` must find, from the views' answers (or the oracle's, alike)."""
    flows, rejected = summary["flows"], summary["rejected"]
    return {
        "cards": {
            "flows": f"{flows:,}",
            "bytes": f"{summary['bytes']:,}",
            "accepted": f"{summary['accepted']:,}",
            "rejected": f"{rejected:,}",
            "rejected_share": f"{100 * rejected / flows:.2f} %" if flows else "-",
        },
        "top sources": [
            (r["value"], r["bytes"], [r["bytes"], r["packets"], r["flows"]])
            for r in top("srcaddr", 10)
        ],
        "top destinations": [
            (r["value"], r["bytes"], [r["bytes"], r["packets"], r["flows"]])
            for r in top("dstaddr", 10)
        ],
        "flows per hour": [(h["hour"], h["flows"]) for h in hourly],
        "denied over time": [(h["hour"], h["rejected"]) for h in hourly],
        "heatmap": {h["hour"][:13]: h["flows"] for h in hourly},
        "total vs denied": [
            [h["flows"] for h in hourly],
            [h["rejected"] for h in hourly],
            [round(100 * h["rejected"] / h["flows"], 2) for h in hourly],
        ],
        "table sources": [
            (r["value"], r["bytes"], r["packets"], r["flows"]) for r in top("srcaddr", PAGE_ROWS)
        ],
        "table destinations": [
            (r["value"], r["bytes"], r["packets"], r["flows"]) for r in top("dstaddr", PAGE_ROWS)
        ],
    }


def views_answer(flows: FlowLogsLake, query: dict[str, str]) -> dict[str, Any]:
    """What the worker's views answer for ``query``: /summary, /top, /hourly."""
    base = flows.worker.url + "/flowlogs/"
    qs = urlencode(query)

    def top(field: str, limit: int) -> list[dict[str, Any]]:
        return list(get_json(f"{base}top?field={field}&limit={limit}&{qs}"))

    return answered(get_json(f"{base}summary?{qs}"), get_json(f"{base}hourly?{qs}"), top)


# ---- the oracle, for the figures no view answers (and the alerts' address filter) ------


def keep(row: oracle.Row, filters: dict[str, Any], address: str | None = None) -> bool:
    if row.get("log_status") != "OK" or not oracle.keep(row, filters):
        return False
    return address is None or address in (row.get("srcaddr"), row.get("dstaddr"))


def oracle_answer(
    rows: list[oracle.Row], filters: dict[str, Any], address: str | None
) -> dict[str, Any]:
    """``views_answer`` computed from the objects, with the dashboard's own address filter
    (either end of a flow), which no view has."""
    mine = [r for r in rows if keep(r, filters, address)]
    hourly = [
        {"hour": _utc(h), "flows": f, "rejected": r, "bytes": b}
        for h, f, r, b in oracle.hourly(mine, {})
    ]
    return answered(
        oracle.summary(mine, {}), hourly, lambda field, n: oracle.top(mine, {}, field, "bytes", n)
    )


def _utc(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def countries(rows: Iterable[oracle.Row], filters: dict[str, Any]) -> dict[str, int]:
    """Flows per ISO-3 country of their external ends (a flow counted once in each
    country it touches), from the objects and iptocc's registry data."""
    kept = [row for row in rows if keep(row, filters)]
    external = sorted(
        {
            row.get(end)
            for row in kept
            for end in ("srcaddr", "dstaddr")
            if ipaddress.ip_address(row.get(end)).is_global
        }
    )
    iso3 = {iso2: names[0] for iso2, names in json.loads(COUNTRIES.read_text()).items()}
    code = dict(zip(external, iptocc.country_code(external), strict=True))
    out: dict[str, int] = defaultdict(int)
    for row in kept:
        touched = {code.get(row.get(end)) for end in ("srcaddr", "dstaddr")}
        for iso2 in touched:
            if iso2 in iso3:
                out[iso3[iso2]] += 1
    return dict(out)


def conversations(
    rows: Iterable[oracle.Row], filters: dict[str, Any]
) -> dict[tuple[str, str], int]:
    """Bytes per (source, destination), from the objects."""
    out: dict[tuple[str, str], int] = defaultdict(int)
    for row in rows:
        if keep(row, filters):
            out[row.get("srcaddr"), row.get("dstaddr")] += row.get("bytes")
    return dict(out)


def drawn_map(page: Page) -> dict[str, int]:
    geo = trace(page, ids.GEO_MAP)
    return dict(zip(geo.get("locations", []), geo.get("z", []), strict=True))


def drawn_links(page: Page) -> list[tuple[str, str, int]]:
    sankey = trace(page, ids.SANKEY)
    labels, link = sankey.get("node", {}).get("label", []), sankey.get("link", {})
    return [
        (labels[s], labels[t], v)
        for s, t, v in zip(
            link.get("source", []), link.get("target", []), link.get("value", []), strict=True
        )
    ]


def check_map_and_sankey(page: Page, rows: list[oracle.Row], filters: dict[str, Any]) -> None:
    expected = countries(rows, filters)
    assert expected, "the generated flows have external peers"
    assert settled(page, lambda: drawn_map(page), expected) == expected
    pairs = conversations(rows, filters)
    top = sorted(pairs.values(), reverse=True)
    links = drawn_links(page)
    assert links, "the Sankey draws conversations"
    assert [v for _, _, v in links] == sorted((v for _, _, v in links), reverse=True)
    assert links[0][2] == top[0]
    assert all(pairs[src, dst] == value for src, dst, value in links), links


# ---- tests -----------------------------------------------------------------------------


def test_the_page_loads_with_every_figure_and_no_browser_error(
    watched: Watched, dashboard: Dashboard
) -> None:
    """Opening the dashboard draws every card, graph and table with no console or page error."""
    page = open_page(watched, dashboard)
    assert page.title() == "Flow logs"
    assert len(table_page(page, ids.TALKERS_SOURCES)) == PAGE_ROWS
    assert page.inner_text(f"#{ids.STATUS}").strip() == ""
    page.wait_for_timeout(500)  # late errors (a figure failing after its first draw)
    assert watched.errors == []
    assert local_only(watched.hosts) == set()


def test_every_figure_equals_the_worker_views(
    watched: Watched, dashboard: Dashboard, flows: FlowLogsLake, rows: list[oracle.Row]
) -> None:
    """The cards, top-10 bars, hourly charts, heatmap and tables show exactly what the
    worker's /summary, /top and /hourly answer, and the map and Sankey what the objects
    hold."""
    page = open_page(watched, dashboard)
    expected = views_answer(flows, {})
    assert expected["cards"]["flows"] != "0"
    assert settled(page, lambda: shown(page), expected) == expected
    check_map_and_sankey(page, rows, {})
    assert watched.errors == []


def test_a_filter_change_redraws_every_figure(
    watched: Watched, dashboard: Dashboard, flows: FlowLogsLake, rows: list[oracle.Row]
) -> None:
    """Ticking REJECT, then picking one VPC, redraws every figure to what the views answer
    for those filters."""
    page = open_page(watched, dashboard)
    before = shown(page)
    page.check(f"#{ids.ACTION} input[value='REJECT']")
    rejected = views_answer(flows, {"action": "REJECT"})
    assert rejected != before
    assert settled(page, lambda: shown(page), rejected) == rejected
    check_map_and_sankey(page, rows, {"action": ["REJECT"]})

    vpc = next(r.get("vpc_id") for r in rows if r.get("vpc_id"))
    page.click(f"#{ids.VPC}")
    page.click(f"[role=listbox] [role=option]:has-text('{vpc}')")
    page.keyboard.press("Escape")
    one_vpc = views_answer(flows, {"action": "REJECT", "vpc_id": vpc})
    assert one_vpc != rejected
    assert settled(page, lambda: shown(page), one_vpc) == one_vpc
    check_map_and_sankey(page, rows, {"action": ["REJECT"], "vpc_id": [vpc]})
    link = dict(parse_qsl(urlsplit(page.get_attribute(f"#{ids.PERMALINK}", "href") or "").query))
    assert link == {"action": "REJECT", "vpc_id": vpc}
    assert watched.errors == []


def test_the_map_draws_countries_from_the_app_itself(
    watched: Watched, dashboard: Dashboard
) -> None:
    """The world map shades the countries of external peers, its shapes served by the
    dashboard itself with no request leaving 127.0.0.1."""
    page = open_page(watched, dashboard)
    geo = trace(page, ids.GEO_MAP)
    assert geo["locations"] and all(z > 0 for z in geo["z"])
    shaded = settled(
        page,
        lambda: (
            page.eval_on_selector_all(
                f"#{ids.GEO_MAP} path.choroplethlocation",
                "paths => paths.filter(p => (p.getAttribute('d') || '').length > 20).length",
            )
            >= len(geo["locations"]) // 2
        ),
        True,
    )
    assert shaded, "the choropleth drew its countries' shapes"
    outlines = page.eval_on_selector_all(
        f"#{ids.GEO_MAP} .countries path, #{ids.GEO_MAP} .land path", "paths => paths.length"
    )
    assert outlines > 0, "the world's land and borders are drawn"
    topojson = [u for u in watched.requests if u.endswith("world_110m.json")]
    assert topojson and all(urlsplit(u).hostname == "127.0.0.1" for u in topojson), topojson
    assert local_only(watched.hosts) == set() and watched.blocked == []
    assert watched.errors == []


def test_the_talker_table_sorts_and_exports_what_it_shows(
    watched: Watched, dashboard: Dashboard, flows: FlowLogsLake
) -> None:
    """Sorting the top-sources table by flows reorders its rows, and Export downloads a CSV
    holding exactly the table's rows, headers included, in that order."""
    page = open_page(watched, dashboard)
    views = get_json(f"{flows.worker.url}/flowlogs/top?field=srcaddr&limit=100")
    every = [(r["value"], r["bytes"], r["packets"], r["flows"]) for r in views]
    table = f"#{ids.TALKERS_SOURCES}"
    assert table_page(page, ids.TALKERS_SOURCES) == every[:PAGE_ROWS]

    # The first click on a column's sort arrow sorts it ascending (ties keep their order).
    page.click(f"{table} th[data-dash-column='flows'] .column-header--sort")
    by_flows = sorted(every, key=lambda r: r[3])
    fewest = [r[3] for r in by_flows[:PAGE_ROWS]]
    assert settled(page, lambda: _flows(page), fewest) == fewest
    on_screen = table_page(page, ids.TALKERS_SOURCES)
    assert set(on_screen) <= set(every)

    with page.expect_download() as download:
        page.click(f"{table} button.export")
    path = download.value.path()
    exported = list(csv.reader(io.StringIO(Path(path).read_text(encoding="utf-8-sig"))))
    headers = page.eval_on_selector_all(
        f"{table} th .column-header-name", "names => names.map(n => n.innerText.trim())"
    )
    assert headers == ["address", "bytes", "packets", "flows"]
    assert exported[0] == headers
    rows = [(v, int(b), int(p), int(f)) for v, b, p, f in exported[1:]]
    assert rows == every_page(page, ids.TALKERS_SOURCES)
    assert sorted(rows) == sorted(every)
    assert [r[3] for r in rows] == [r[3] for r in by_flows]
    assert watched.errors == []


def every_page(page: Page, table: str) -> list[tuple[str, int, int, int]]:
    """The table's rows, page after page (its next-page button, until it is disabled)."""
    seen = table_page(page, table)
    following = page.locator(f"#{table} button.next-page")
    while following.is_enabled():
        turned = page_turned(page, table, table_page(page, table))
        following.click()
        settled(page, turned, True)
        seen += table_page(page, table)
    return seen


def page_turned(page: Page, table: str, before: list[Any]) -> Callable[[], bool]:
    return lambda: table_page(page, table) != before


def _flows(page: Page) -> list[int]:
    return [r[3] for r in table_page(page, ids.TALKERS_SOURCES)]


def test_an_alert_link_opens_the_flows_behind_the_alert(
    watched: Watched, dashboard: Dashboard, flows: FlowLogsLake, rows: list[oracle.Row]
) -> None:
    """Following an alert's "flows" link reloads the dashboard filtered on the alert's
    account, VPC, window and address, and every figure counts exactly those flows."""
    page = open_page(watched, dashboard)
    alerts = get_json(f"{flows.worker.url}/flowlogs/alerts?limit=100")
    alert = next(a for a in alerts if a["vpc_id"] != "-")
    link = page.locator(f"#{ids.ALERTS} tr:has(td:text-is('{alert['subject']}')) a.alert-flows")
    link.click()
    page.wait_for_url("**/?*address=*")
    params = dict(parse_qsl(urlsplit(page.url).query))
    assert params["address"] == alert["subject"]
    assert (params["account_id"], params["vpc_id"]) == (alert["account_id"], alert["vpc_id"])
    assert (params["start"], params["end"]) == (alert["window_start"], alert["window_end"])
    subject = alert["subject"]
    assert settled(page, lambda: page.input_value(f"#{ids.ADDRESS}"), subject) == subject

    start, end = (
        int(datetime.fromisoformat(alert[k]).timestamp()) for k in ("window_start", "window_end")
    )
    filters = {
        "account_id": [alert["account_id"]],
        "vpc_id": [alert["vpc_id"]],
        "start": start,
        "end": end,
    }
    expected = oracle_answer(rows, filters, alert["subject"])
    assert expected["cards"]["flows"] != "0"
    assert settled(page, lambda: shown(page), expected) == expected
    assert watched.errors == []
