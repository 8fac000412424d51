"""Browser-test fixtures: one small lake written by the pipeline, its worker (the
views, the reference), the dashboard on that lake, and one headless chromium per
module; each test gets a fresh browser context that records what its page did."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

from streams.common.broker import EmbeddedBroker
from streams.common.faust_fixes import end_offset_correction
from tests.support.browser import Dashboard, FlowLogsLake, Watched, launch, pipeline_lake
from tests.support.ports import free_port
from tests.support.workers import wait_until


@pytest.fixture(scope="module")
def flows(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlowLogsLake]:
    """Two generated hours read by a reader and written to the lake by a worker, which
    keeps running: its views answer what the dashboard must show."""
    root = tmp_path_factory.mktemp("flowlogs")
    with (
        end_offset_correction(),
        EmbeddedBroker(port=free_port(), log_path=root / "broker.log") as broker,
    ):
        processes, lake = pipeline_lake(broker.bootstrap, root)
        try:
            # The injected port scans, alerted once their windows closed: the alerts
            # the dashboard links to.
            scans = len(lake.simulation.truth)
            wait_until(
                lambda: len(lake.worker.get("/flowlogs/alerts?limit=100")) >= scans,
                timeout=60,
                what=f"{scans} alerts",
            )
            yield lake
        finally:
            processes.stop_all()


@pytest.fixture(scope="module")
def dashboard(flows: FlowLogsLake, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """The dashboard on the worker's lake, its alerts from the worker's view."""
    root = tmp_path_factory.mktemp("dashboard")
    app = Dashboard(flows.lake, root / "dashboard.log", alerts_url=flows.worker.url).start()
    try:
        yield app
    finally:
        app.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    """A fresh context and page; its console errors, page errors and request hosts."""
    opened = Watched.open(browser, viewport={"width": 1440, "height": 1800})
    try:
        yield opened
    finally:
        opened.close()
