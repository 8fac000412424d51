"""The process table of ``python -m streams run``: what runs, on which port, with what
environment, and the guide printed once it all answers. streams/launcher.py starts,
supervises and stops these processes.

Ports: the orders workers take ``--web-port`` and the ports after it, as they always
did. The telemetry ingest prefers ``--ingest-port`` (6070, the simulator's default URL)
and each telemetry worker ``--telemetry-port`` + i; the flow-logs dashboard prefers
``--dashboard-port`` (8050, the port ``networkflow dashboard`` takes by default); a
preferred port that is taken (by another program, or by an orders worker) is swapped
for a free one, and the guide prints the port actually used.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from streams.common.broker import free_port

log = logging.getLogger("streams")

DEMO_ORDERS = (
    "orders", "--rate", "20", "--duplicates", "0.01", "--malformed", "0.005",
    "--variants", "0.1", "--late", "0.01",
)  # fmt: skip
# 20 devices x 18 series every 5 s = 72 readings/s, with a few of every fault.
DEMO_TELEMETRY = (
    "telemetry", "--devices", "20", "--interfaces", "4", "--interval-seconds", "5",
    "--spikes", "0.002", "--flatlines", "0.002", "--silent", "0.05",
    "--duplicates", "0.005", "--malformed", "0.001",
)  # fmt: skip
EXAMPLE_DEVICE = "sw-0001"
# The SpaceX API's recorded answer, published again every 5 minutes as a poller would.
DEMO_LAUNCHES = ("-m", "producers", "launches", "--every-seconds", "300")
# A day of two accounts' VPC flow logs, with one of each anomaly the detectors look for.
DEMO_FLOWLOGS = (
    "flowlogs", "--hours", "24", "--seed", "7", "--port-scans", "1", "--exfiltration", "1",
    "--long-lived", "1", "--new-country", "1",
)  # fmt: skip  # the simulator's first device


@dataclass(frozen=True)
class Process:
    """One child process: ``python <args>``, logging to ``<state>/logs/<name>.log``."""

    name: str
    args: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    port: int | None = None  # web port whose /health must answer before producers start


@dataclass(frozen=True)
class Ports:
    orders: list[int]
    telemetry: list[int]
    ingest: int
    flowlogs: int
    flowlogs_reader: int
    timeseries: list[int] = field(default_factory=list)
    launches: int | None = None
    dashboard: int | None = None

    @property
    def ingest_url(self) -> str:
        return f"http://127.0.0.1:{self.ingest}/telemetry"


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def choose_ports(
    web_port: int,
    orders: int,
    telemetry_port: int,
    telemetry: int,
    ingest_port: int,
    flowlogs_port: int = 6080,
    timeseries_port: int = 6090,
    timeseries: int = 2,
    launches_port: int = 6095,
    dashboard_port: int = 8050,
) -> Ports:
    """Orders on fixed ports; the telemetry processes on their preferred ports when free."""
    orders_ports = [web_port + i for i in range(orders)]
    taken = set(orders_ports)

    def pick(preferred: int, what: str) -> int:
        port = preferred
        while port in taken or _listening(port):
            port = free_port()
        if port != preferred:
            log.warning("port %s is taken; the %s uses %s", preferred, what, port)
        taken.add(port)
        return port

    ingest = pick(ingest_port, "telemetry ingest")
    workers = [pick(telemetry_port + i, f"telemetry worker {i}") for i in range(telemetry)]
    flowlogs = pick(flowlogs_port, "flow-logs worker")
    reader = pick(flowlogs_port + 1, "flow-logs reader")
    series = [pick(timeseries_port + i, f"time-series worker {i}") for i in range(timeseries)]
    launches = pick(launches_port, "launches worker")
    dashboard = pick(dashboard_port, "flow-logs dashboard")
    return Ports(orders_ports, workers, ingest, flowlogs, reader, series, launches, dashboard)


def servers(
    state_dir: Path, ports: Ports, source: str | None = None, demo: bool = False
) -> list[Process]:
    """Every pipeline's servers, each with its web port; ``source``: the flow-logs
    reader's (none: no reader)."""
    procs = [
        Process(
            f"orders-worker{i}",
            ("-m", "streams.orders", "worker", "-l", "info"),
            {
                "WEB_PORT": str(port),
                "STREAMS_DATA_DIR": str(state_dir / f"worker{i}"),
                "ORDERS_PARQUET_URI": str(state_dir / "lake" / "orders"),
            },
            port,
        )
        for i, port in enumerate(ports.orders)
    ]
    procs += workers(state_dir, "telemetry", ports.telemetry)
    ingest_env = {"WEB_PORT": str(ports.ingest), "STREAMS_DATA_DIR": str(state_dir / "ingest")}
    ingest = ("-m", "streams.telemetry", "ingest", "-l", "info")
    procs.append(Process("telemetry-ingest", ingest, ingest_env, ports.ingest))
    procs += workers(state_dir, "timeseries", ports.timeseries)
    if ports.launches is not None:
        launches = workers(state_dir, "launches", [ports.launches])[0]
        launches.env["LAUNCHES_OUTPUT_DIR"] = str(launches_dir(state_dir))
        procs.append(launches)
    return procs + flowlogs_servers(state_dir, ports, source, settled=demo)


def workers(state_dir: Path, pipeline: str, ports: list[int]) -> list[Process]:
    """``python -m streams.<pipeline> worker`` on each port, each with its own state."""
    return [
        Process(
            f"{pipeline}-worker{i}",
            ("-m", f"streams.{pipeline}", "worker", "-l", "info"),
            {"WEB_PORT": str(port), "STREAMS_DATA_DIR": str(state_dir / f"{pipeline}-worker{i}")},
            port,
        )
        for i, port in enumerate(ports)
    ]


def flowlogs_servers(
    state_dir: Path, ports: Ports, source: str | None, settled: bool = False
) -> list[Process]:
    """The flow-logs worker, its dashboard, and the reader when there is a source to read."""
    lake = {"FLOWLOGS_LAKE": str(flowlogs_lake(state_dir))}
    worker_env = {"WEB_PORT": str(ports.flowlogs), "STREAMS_DATA_DIR": str(state_dir / "flowlogs")}
    procs = [
        Process(
            "flowlogs-worker",
            ("-m", "streams.flowlogs", "worker", "-l", "info"),
            {**worker_env, **lake},
            ports.flowlogs,
        )
    ]
    if ports.dashboard is not None:
        procs.append(dashboard(state_dir, ports))
    if source is None:
        log.warning("FLOWLOGS_SOURCE is not set: the flow-logs reader is not started")
        return procs
    reader_env = {
        "WEB_PORT": str(ports.flowlogs_reader),
        "STREAMS_DATA_DIR": str(state_dir / "flowlogs-reader"),
        "FLOWLOGS_SOURCE": source,
        # The demo day is written whole (renamed into place) before the reader starts.
        **({"FLOWLOGS_SETTLE_SECONDS": "0"} if settled else {}),
    }
    reader = ("-m", "streams.flowlogs", "reader", "-l", "info")
    procs.append(Process("flowlogs-reader", reader, reader_env, ports.flowlogs_reader))
    return procs


def dashboard(state_dir: Path, ports: Ports) -> Process:
    """``networkflow dashboard`` over the worker's lake, listing the worker's alerts."""
    command = (
        "-m", "streams.flowlogs.dashboard", "dashboard",
        "--source", str(flowlogs_lake(state_dir)), "--port", str(ports.dashboard),
        "--alerts-url", f"http://127.0.0.1:{ports.flowlogs}",
    )  # fmt: skip
    return Process("flowlogs-dashboard", command, {}, ports.dashboard)


def flowlogs_lake(state_dir: Path) -> Path:
    """The flow-logs workers' lake under ``make run`` (the launcher creates it before the
    dashboard starts: the dashboard refuses a directory that does not exist)."""
    return state_dir / "lake" / "flowlogs"


def demo_flowlogs(state_dir: Path) -> tuple[list[str], str]:
    """The generator's command for the demo day (run once, before the reader starts), and
    the directory it writes."""
    out = str(state_dir / "flowlogs-demo")
    return [*DEMO_FLOWLOGS, "--out", out], out


def launches_dir(state_dir: Path) -> Path:
    """Where the launches worker writes launches.parquet under ``make run`` (no S3)."""
    return state_dir / "lake" / "launches"


def demo_producers(ports: Ports) -> list[Process]:
    """The demo orders producer, the device simulator posting to the ingest, the
    time-series client, and the launches poller reading the bundled copy of the API."""
    return [
        Process("orders-producer", ("-m", "producers", *DEMO_ORDERS)),
        Process(
            "telemetry-simulator",
            ("-m", "producers", *DEMO_TELEMETRY, "--url", ports.ingest_url),
        ),
        *[
            Process(
                "timeseries-client",
                ("-m", "producers", "timeseries", "--url", f"http://127.0.0.1:{port}"),
            )
            for port in ports.timeseries[:1]
        ],
        *(
            [
                Process(
                    "launches-producer", (*DEMO_LAUNCHES, "--url", fixture_url("launches_v4.json"))
                )
            ]
            if ports.launches is not None
            else []
        ),
    ]


def fixture_url(name: str) -> str:
    """A file:// URL of a producers fixture (the API's answer, recorded)."""
    return Path(str(resources.files("producers") / "fixtures" / name)).resolve().as_uri()


def guide(bootstrap: str, ports: Ports, state_dir: Path, demo: bool) -> str:
    """What to open once everything answers."""
    base = f"http://127.0.0.1:{ports.orders[0]}"
    tele = f"http://127.0.0.1:{ports.telemetry[0]}" if ports.telemetry else "(no workers)"

    def metrics(port_list: list[int]) -> str:
        return "  ".join(f"http://127.0.0.1:{p}/metrics" for p in port_list)

    producers = (
        "demo orders at 20/s, 20 devices every 5 s, a temperature series every 5 s, "
        "the SpaceX launches every 5 min"
        if demo
        else "none (make produce)"
    )
    flows = f"http://127.0.0.1:{ports.flowlogs}"
    series = f"http://127.0.0.1:{ports.timeseries[0]}" if ports.timeseries else "(no workers)"
    return "\n".join(
        [
            "",
            f"Kafka bootstrap     {bootstrap}",
            f"Orders web views    {base}/orders/revenue/daily",
            f"                    {base}/orders/products/top?by=units",
            f"                    {base}/orders/customers   {base}/orders/inventory",
            f"                    {base}/orders/alerts      {base}/orders/reports/daily",
            f"Telemetry ingest    POST {ports.ingest_url}",
            f"Telemetry views     {tele}/telemetry/devices/{EXAMPLE_DEVICE}/windows",
            f"                    {tele}/telemetry/alerts   {tele}/telemetry/config",
            f"Flow-logs views     {flows}/flowlogs/summary   {flows}/flowlogs/hourly",
            f"                    {flows}/flowlogs/top?field=srcaddr&by=bytes",
            f"                    {flows}/flowlogs/alerts",
            *(
                [f"Flow-logs dashboard http://127.0.0.1:{ports.dashboard}"]
                if ports.dashboard is not None
                else []
            ),
            f"Time-series API     {series}/series   {series}/openapi.json (any worker answers)",
            f"Orders metrics      {metrics(ports.orders)}",
            f"Telemetry metrics   {metrics(ports.telemetry)}",
            f"Ingest metrics      {metrics([ports.ingest])}",
            f"Flow-logs metrics   {metrics([ports.flowlogs, ports.flowlogs_reader])}",
            f"Time-series metrics {metrics(ports.timeseries)}",
            *(
                [
                    f"Launches object     {launches_dir(state_dir) / 'launches.parquet'}",
                    f"Launches metrics    {metrics([ports.launches])}",
                ]
                if ports.launches is not None
                else []
            ),
            f"Logs and state      {state_dir}",
            f"Process ids         {state_dir / 'pids'}/<name>.pid",
            f"Producers           {producers}",
            "Press Ctrl-C to stop everything.",
            "",
        ]
    )
