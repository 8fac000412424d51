"""Browser tests' harness: Debian's chromium through Playwright, the dashboard as a
process, a small lake written by the pipeline itself, and what a page did.

Playwright never downloads a browser here: it drives ``/usr/bin/chromium`` (``make
browser`` installs it), headless, with a fresh profile per launch (Playwright's own
temporary ``--user-data-dir``, removed when the browser closes), and nothing that
phones home. Every request a page makes goes through ``context.route``: the hosts are
recorded, and anything not for 127.0.0.1 is aborted, so a test can assert that the
page needed nothing from outside (the map's topojson included).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Playwright, Route

from producers.flowlogs import Options, Simulation, write
from streams.common.broker import stop_process
from streams.flowlogs.dashboard import ids
from tests.support.flowlogs import FlowLogsProcesses, ingested
from tests.support.ports import free_port
from tests.support.workers import PortTaken, Worker, wait_until

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
LOCAL = "127.0.0.1"
T = TypeVar("T")

#: Two generated hours of four VPCs (both log formats) with two port scans: a few
#: thousand flows the reader and worker take in seconds, and alerts to link to.
DAY = datetime(2026, 11, 30, tzinfo=UTC)
OPTIONS = Options(start=DAY, hours=2, flows_per_hour=2500, seed=11, port_scans=2)


def launch(playwright: Playwright) -> Browser:
    """Headless Debian chromium; Playwright must not fetch a browser of its own."""
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    if not Path(CHROMIUM).exists():
        raise AssertionError(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium")
    return playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=list(CHROMIUM_ARGS)
    )


@dataclass
class Watched:
    """One browser context's page and what it did: console errors, uncaught page
    errors, the host of every request, and the requests aborted for leaving 127.0.0.1."""

    context: BrowserContext
    page: Page
    errors: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, browser: Browser, **context_options: Any) -> Watched:
        context = browser.new_context(accept_downloads=True, **context_options)
        watched = cls(context, context.new_page())
        context.route("**/*", watched._route)
        watched.page.on("console", watched._console)
        watched.page.on("pageerror", lambda error: watched.errors.append(f"page: {error}"))
        return watched

    def _route(self, route: Route) -> None:
        url = route.request.url
        host = urlsplit(url).hostname or ""
        self.hosts.append(host)
        self.requests.append(url)
        if host == LOCAL:
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort("blockedbyclient")

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text} ({message.location})")

    def close(self) -> None:
        self.context.close()


@contextmanager
def watched_page(browser: Browser, **context_options: Any) -> Iterator[Watched]:
    watched = Watched.open(browser, **context_options)
    try:
        yield watched
    finally:
        watched.close()


# ---- reading Plotly graphs from the DOM ---------------------------------------------

#: The traces Plotly drew in the graph whose Dash id is ``id`` (dcc.Graph puts the id on
#: its outer div; Plotly keeps ``data`` on the inner ``.js-plotly-plot``). Columns plotly.py
#: sent numpy-encoded (``{dtype, bdata}``) are read from the typed array Plotly decoded
#: them into (``_inputArray``); typed arrays become plain arrays.
_PLOT_DATA = """(id) => {
  const outer = document.getElementById(id);
  if (!outer) return null;
  const plot = outer.classList.contains('js-plotly-plot') ? outer
    : outer.querySelector('.js-plotly-plot');
  if (!plot || !plot.data) return null;
  const plain = (v) => {
    if (ArrayBuffer.isView(v)) return Array.from(v);
    if (Array.isArray(v)) return v.map(plain);
    if (v && typeof v === 'object' && 'bdata' in v && v._inputArray) return plain(v._inputArray);
    if (v && typeof v === 'object') {
      const out = {};
      for (const [k, x] of Object.entries(v)) out[k] = plain(x);
      return out;
    }
    return v;
  };
  return plot.data.map(plain);
}"""


def plot_data(page: Page, component_id: str) -> list[dict[str, Any]] | None:
    """The traces of the Plotly graph ``component_id`` as drawn (None: not drawn yet)."""
    data = page.evaluate(_PLOT_DATA, component_id)
    return data if data is None else list(data)


GRAPHS = (
    ids.TOP_SOURCES,
    ids.TOP_DESTINATIONS,
    ids.DENIED_OVER_TIME,
    ids.FLOWS_PER_HOUR,
    ids.HEATMAP,
    ids.TOTAL_VS_DENIED,
    ids.GEO_MAP,
    ids.SANKEY,
)
CARDS = {
    "flows": ids.CARD_FLOWS,
    "bytes": ids.CARD_BYTES,
    "accepted": ids.CARD_ACCEPTED,
    "rejected": ids.CARD_REJECTED,
    "rejected_share": ids.CARD_REJECTED_SHARE,
}


def not_drawn(page: Page) -> list[str]:
    """The graphs Plotly has not drawn yet and the cards still without a figure."""
    missing = [i for i in GRAPHS if not plot_data(page, i)]
    return missing + [i for i in CARDS.values() if page.inner_text(f"#{i}") == "-"]


def open_dashboard(watched: Watched, url: str, timeout: float = 30.0) -> Page:
    """The dashboard at ``url``, once every card and graph holds something."""
    page = watched.page
    page.goto(url)
    nothing: list[str] = []
    missing = settled(page, lambda: not_drawn(page), nothing, timeout=timeout)
    assert missing == [], f"not drawn after {timeout} s: {missing}; {watched.errors}"
    return page


def settle(page: Page, timeout: float = 15.0) -> None:
    """Wait until Dash has no callback in flight (it marks components being updated)."""
    page.wait_for_function(
        "() => !document.querySelector('[data-dash-is-loading=\"true\"]')",
        timeout=timeout * 1000,
    )


def settled(page: Page, probe: Callable[[], T], expected: T, *, timeout: float = 20.0) -> T:
    """``probe``'s answer once it equals ``expected``, or its last one after ``timeout``
    (for the caller to assert, with pytest's diff). Waits with the page's clock: the
    sync API runs the route and console handlers only while a Playwright call is in
    progress (a ``time.sleep`` would stall every request)."""
    deadline = time.monotonic() + timeout
    while True:
        last = probe()
        if last == expected or time.monotonic() > deadline:
            return last
        page.wait_for_timeout(200)


# ---- processes ----------------------------------------------------------------------


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@dataclass
class Dashboard:
    """``python -m streams.flowlogs.dashboard dashboard --source LAKE`` (the
    ``networkflow`` command) on its own 127.0.0.1 port; stopped by pid."""

    lake: Path
    log_path: Path
    alerts_url: str | None = None
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOCAL}:{self.port}"

    def command(self) -> list[str]:
        command = [sys.executable, "-m", "streams.flowlogs.dashboard", "dashboard"]
        command += ["--source", str(self.lake), "--host", LOCAL, "--port", str(self.port)]
        if self.alerts_url:
            command += ["--alerts-url", self.alerts_url]
        return command

    def start(self, timeout: float = 60.0) -> Dashboard:
        for attempt in range(1, 4):
            try:
                return self._start(timeout)
            except PortTaken:
                if attempt == 3:
                    raise
                self.port = free_port()
        raise AssertionError("unreachable")

    def _start(self, timeout: float) -> Dashboard:
        logged = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, env={**os.environ}
            )
        wait_until(lambda: self._answers(logged), timeout=timeout, what="the dashboard's page")
        return self

    def _answers(self, logged: int) -> bool:
        assert self.proc is not None
        code = self.proc.poll()
        if code is not None:
            self.proc = None
            with self.log_path.open("rb") as log:
                log.seek(logged)
                said = log.read().decode(errors="replace")
            if "address already in use" in said.lower():
                raise PortTaken(f"port {self.port} taken: {said[-2000:]}")
            raise AssertionError(f"the dashboard exited ({code}) before answering:\n{said[-4000:]}")
        with urllib.request.urlopen(self.url + "/", timeout=5) as response:
            return bool(response.status == 200)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass
class FlowLogsLake:
    """Generated flow-log objects read by the pipeline's reader into the lake its worker
    writes; the worker keeps running, its views being the dashboard's reference."""

    worker: Worker
    lake: Path
    source: Path  # the generated objects the reader read
    records: int  # log records written (flows, NODATA and SKIPDATA rows)
    simulation: Simulation


def pipeline_lake(
    bootstrap: str, root: Path, options: Options = OPTIONS, *, timeout: float = 120.0
) -> tuple[FlowLogsProcesses, FlowLogsLake]:
    """Write ``options``' objects to a directory, start one worker and one reader on it,
    and wait until the worker's summary counts every flow; the caller stops the
    processes (``stop_all``)."""
    simulation = Simulation(options)
    source = root / "flowlogs-source"
    written = write(options, str(source), simulation=simulation)
    processes = FlowLogsProcesses(bootstrap, root)
    try:
        worker = processes.worker()
        reader = processes.reader(str(source))
        wait_until(lambda: ingested(reader) == written.objects, timeout=timeout, what="objects")
        # ``written.flows`` counts log records: NODATA and SKIPDATA ones too.
        wait_until(
            lambda: sum(_records(worker.get("/flowlogs/summary"))) == written.flows,
            timeout=timeout,
            what=f"{written.flows} log records in /flowlogs/summary",
        )
    except BaseException:
        processes.stop_all()
        raise
    return processes, FlowLogsLake(worker, processes.lake, source, written.flows, simulation)


def _records(summary: dict[str, int]) -> tuple[int, int, int]:
    return summary["flows"], summary["nodata"], summary["skipdata"]


def local_only(hosts: list[str]) -> set[str]:
    """Hosts other than 127.0.0.1 among ``hosts`` (data: and blob: URLs have none)."""
    return {host for host in hosts if host and host != LOCAL}


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False
