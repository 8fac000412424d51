"""``python -m tests.browser.screenshots [--out docs/images]`` (``make screenshots``):
the README's pictures of the flow-logs dashboard, taken from the demo data.

It runs what ``make run`` runs for flow logs, on the same demo day (24 generated hours
of four VPCs, one anomaly of each kind; a fixed date here, so the pictures change only
when the product does): the embedded broker, a reader, a worker writing the lake, and
``networkflow dashboard`` on that lake with the worker's alerts; then the browser
tests' headless chromium saves

- ``dashboard.png``: the whole page, nothing filtered;
- ``dashboard-alert.png``: the page a port-scan alert's "flows" link opens.

It lives beside the browser tests because it is their harness (processes, Debian's
chromium through Playwright, the page's readiness and its request log), needs what
only the ``dev`` and ``local`` extras install, and ships nowhere. Each picture is taken
only once the page drew every figure with no browser error and no request leaving
127.0.0.1, so a broken page fails the command instead of landing in the docs.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, sync_playwright

from producers.flowlogs import Options
from streams.common.broker import EmbeddedBroker
from streams.common.faust_fixes import end_offset_correction
from streams.flowlogs.dashboard import ids
from tests.support.browser import (
    Dashboard,
    Watched,
    launch,
    local_only,
    open_dashboard,
    pipeline_lake,
    settle,
)
from tests.support.ports import free_port
from tests.support.workers import Worker, wait_until

log = logging.getLogger("screenshots")

#: ``make run``'s demo day (streams/processes.py, DEMO_FLOWLOGS) on a fixed date.
DEMO = Options(
    start=datetime(2026, 11, 30, tzinfo=UTC),
    hours=24,
    seed=7,
    port_scans=1,
    exfiltration=1,
    long_lived=1,
    new_country=1,
)
KINDS = 4
VIEWPORT = {"width": 1440, "height": 1000}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.browser.screenshots", description=__doc__
    )
    parser.add_argument("--out", type=Path, default=Path("docs/images"), help="where to save")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="dashboard-screenshots-") as tmp,
        end_offset_correction(),
        EmbeddedBroker(port=free_port(), log_path=Path(tmp) / "broker.log") as broker,
    ):
        root = Path(tmp)
        log.info("ingesting the demo day (%s hours)", DEMO.hours)
        processes, lake = pipeline_lake(broker.bootstrap, root, DEMO, timeout=300)
        try:
            alerts = every_kind_alerted(lake.worker)
            log.info("%s log records in the lake, %s alerts", lake.records, len(alerts))
            app = Dashboard(lake.lake, root / "dashboard.log", alerts_url=lake.worker.url)
            app.start()
            try:
                with sync_playwright() as playwright:
                    browser = launch(playwright)
                    try:
                        shoot(browser, f"{app.url}/", args.out / "dashboard.png")
                        link = alert_link(browser, app.url, "port_scan")
                        shoot(browser, f"{app.url}/{link}", args.out / "dashboard-alert.png")
                    finally:
                        browser.close()
            finally:
                app.stop()
        finally:
            processes.stop_all()
    log.info("done in %.0f s", time.monotonic() - began)
    return 0


def every_kind_alerted(worker: Worker) -> list[dict[str, Any]]:
    """The worker's alerts once each injected kind was alerted."""

    def alerts() -> list[dict[str, Any]] | None:
        found: list[dict[str, Any]] = worker.get("/flowlogs/alerts?limit=100")
        return found if len({a["kind"] for a in found}) == KINDS else None

    return wait_until(alerts, timeout=120, what="an alert of each kind")


def alert_link(browser: Browser, url: str, kind: str) -> str:
    """The "flows" link of the page's first alert of ``kind`` (a query string)."""
    watched = Watched.open(browser, viewport=VIEWPORT)
    try:
        page = open_dashboard(watched, f"{url}/")
        row = page.locator(f"#{ids.ALERTS} tr:has(td:text-is('{kind}')) a.alert-flows").first
        href = row.get_attribute("href")
        assert href, f"no {kind} alert on the page"
        return href
    finally:
        watched.close()


def shoot(browser: Browser, url: str, path: Path) -> None:
    """A full-page picture of ``url`` once it is drawn, without error, from 127.0.0.1 alone."""
    watched = Watched.open(browser, viewport=VIEWPORT)
    try:
        page = open_dashboard(watched, url)
        settle(page)
        page.wait_for_selector(f"#{ids.ALERTS} table, #{ids.ALERTS} p")
        page.wait_for_timeout(1000)  # Plotly's transitions
        problems = watched.errors + sorted(local_only(watched.hosts))
        if problems:
            raise SystemExit(f"{url}: not taking a picture of a broken page: {problems}")
        page.screenshot(path=str(path), full_page=True)
        log.info("saved %s (%s bytes)", path, path.stat().st_size)
    finally:
        watched.close()


if __name__ == "__main__":
    sys.exit(main())
