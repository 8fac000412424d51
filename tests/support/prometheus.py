"""A real Prometheus server for tests, plus readers for dashboards and rule files.

`running_prometheus` starts Debian's `prometheus` binary on 127.0.0.1 with a generated
config (one static job per key of `targets`), waits until it is ready and stops it by
pid afterwards. The job names must be those the rules and dashboard select. A typical
live test (`TELEMETRY` from tests/dashboards/contract.py names the pipeline's files)::

    targets = {"telemetry": ["127.0.0.1:6101", "127.0.0.1:6102"],
               "telemetry-ingest": ["127.0.0.1:6103"]}
    with running_prometheus(targets, [TELEMETRY.rules], tmp_path) as prom:
        prom.wait_for('min(count_over_time(up[1m])) >= 3')
        for title, expr in dashboard_queries(TELEMETRY.dashboard):
            assert prom.wait_for(expr), title

The first scrape lands a few seconds after start (target discovery is throttled to
5 s), so `wait_for` polls for up to 20 s by default.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support import ports

READY_TIMEOUT = 15.0
FIRST_SCRAPE_TIMEOUT = 20.0

# Grafana's built-in interval variables, replaced so a panel query can be sent to
# Prometheus as is. Values suit a 1-5 s scrape interval.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval_ms": "15000",
    "$__interval": "15s",
    "$__range_s": "3600",
    "$__range_ms": "3600000",
    "$__range": "1h",
}


class PrometheusError(RuntimeError):
    """Prometheus answered a query with an error (bad PromQL, execution failure)."""

    def __init__(self, expr: str, http_status: int, error_type: str, error: str) -> None:
        super().__init__(f"{error_type} (HTTP {http_status}) for {expr!r}: {error}")
        self.expr = expr
        self.http_status = http_status
        self.error_type = error_type
        self.error = error


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago (and that no other
    test process was handed: see tests.support.ports)."""
    return ports.free_port()


def prometheus_binary() -> str:
    """Path of the `prometheus` server binary, or a failure explaining how to get it."""
    path = shutil.which("prometheus")
    if path is None:
        raise RuntimeError(
            "the `prometheus` binary is not on PATH: run `make prometheus` "
            "(apt-get install prometheus) or `make test`, which does it for you"
        )
    return path


@dataclass
class Prometheus:
    """A running Prometheus server and a small client for its HTTP API."""

    url: str
    process: subprocess.Popen[bytes]
    config_path: Path
    log_path: Path

    def _get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        expr = (params or {}).get("query", path)
        try:
            with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=10) as response:
                body = json.load(response)
                status = response.status
        except urllib.error.HTTPError as exc:
            # Prometheus answers bad PromQL with 400 and failed evaluation with 422,
            # both with a JSON body naming the error.
            try:
                body = json.loads(exc.read())
            except ValueError:
                body = {"errorType": "http", "error": str(exc)}
            status = exc.code
        if body.get("status") != "success":
            raise PrometheusError(
                expr, status, body.get("errorType", "unknown"), body.get("error", "")
            )
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """Evaluate an instant query; return its samples (empty when there is no data).

        A scalar or string result is returned as a one-element list of the same shape.
        Raises PrometheusError when Prometheus rejects or fails the query.
        """
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._get("/api/v1/query", params)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    def wait_for(
        self, expr: str, timeout: float = FIRST_SCRAPE_TIMEOUT, interval: float = 0.25
    ) -> list[dict[str, Any]]:
        """Poll `expr` until it returns samples; return them, or fail after `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if result:
                return result
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no data for {expr!r} after {timeout:.0f} s")
            time.sleep(interval)

    def value(self, expr: str) -> float:
        """The value of a query that must return exactly one sample."""
        result = self.query(expr)
        if len(result) != 1:
            raise AssertionError(f"{expr!r} returned {len(result)} samples: {result}")
        return float(result[0]["value"][1])

    def targets(self) -> list[dict[str, Any]]:
        """Active scrape targets with their health and last error."""
        data = self._get("/api/v1/targets", {"state": "active"})
        targets: list[dict[str, Any]] = data["activeTargets"]
        return targets

    def rule_groups(self) -> list[dict[str, Any]]:
        """Loaded rule groups with each rule's health and last evaluation error."""
        groups: list[dict[str, Any]] = self._get("/api/v1/rules")["groups"]
        return groups

    def alerts(self) -> list[dict[str, Any]]:
        """Pending and firing alerts."""
        alerts: list[dict[str, Any]] = self._get("/api/v1/alerts")["alerts"]
        return alerts

    def reload(self) -> None:
        """Re-read the config and rule files (the server runs with --web.enable-lifecycle)."""
        request = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def log(self) -> str:
        """The server's log so far, for failure messages."""
        return self.log_path.read_text(errors="replace")


def write_config(
    path: Path,
    targets: Mapping[str, Sequence[str]],
    rule_files: Sequence[Path] = (),
    scrape_interval: str = "1s",
    honor_labels: Collection[str] = (),
) -> Path:
    """Write a Prometheus config with one static job per key of `targets`; the jobs named
    in `honor_labels` keep the job and instance labels their targets export (a
    Pushgateway's pushed series)."""
    config = {
        "global": {
            "scrape_interval": scrape_interval,
            "scrape_timeout": scrape_interval,
            # Rules evaluate at the scrape cadence so recording rules fill in quickly.
            "evaluation_interval": scrape_interval,
        },
        "rule_files": [str(Path(rule).resolve()) for rule in rule_files],
        "scrape_configs": [
            {
                "job_name": job,
                **({"honor_labels": True} if job in honor_labels else {}),
                "static_configs": [{"targets": list(addresses)}],
            }
            for job, addresses in targets.items()
        ],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _wait_ready(prom: Prometheus, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if prom.process.poll() is not None:
            raise RuntimeError(
                f"prometheus exited with {prom.process.returncode}:\n{prom.log()[-3000:]}"
            )
        try:
            with urllib.request.urlopen(f"{prom.url}/-/ready", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.05)
    raise TimeoutError(f"prometheus not ready after {timeout:.0f} s:\n{prom.log()[-3000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextlib.contextmanager
def running_prometheus(
    targets: Mapping[str, Sequence[str]],
    rule_files: Sequence[Path] | None,
    tmp_path: Path,
    scrape_interval: str = "1s",
    *,
    port: int | None = None,
    honor_labels: Collection[str] = (),
) -> Iterator[Prometheus]:
    """Run a real Prometheus scraping `targets` ({job: ["host:port", ...]}) and yield it.

    Storage, config and log live in `tmp_path`. Pass `port` (see `free_port`) when the
    config must know the server's own address, e.g. to scrape Prometheus itself; name
    in `honor_labels` the jobs whose targets' own job labels are kept (a Pushgateway).
    """
    binary = prometheus_binary()
    tmp_path.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="prometheus-", dir=tmp_path))
    config = write_config(
        home / "prometheus.yml", targets, rule_files or (), scrape_interval, honor_labels
    )
    # A port picked by free_port() can be taken before Prometheus binds it: retry then,
    # but never when the caller chose the port (its config may point at it).
    attempts = 1 if port else 3
    for attempt in range(1, attempts + 1):
        prom = _start(binary, home, config, port or free_port(), attempt)
        try:
            _wait_ready(prom, READY_TIMEOUT)
        except RuntimeError:
            _stop(prom.process)
            if attempt == attempts or "address already in use" not in prom.log():
                raise
            continue
        except BaseException:
            _stop(prom.process)
            raise
        break
    try:
        yield prom
    finally:
        _stop(prom.process)


def _start(binary: str, home: Path, config: Path, port: int, attempt: int) -> Prometheus:
    log_path = home / f"prometheus-{attempt}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={home / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--web.enable-lifecycle",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=home,
        )
    return Prometheus(f"http://127.0.0.1:{port}", process, config, log_path)


@contextlib.contextmanager
def running_pushgateway(tmp_path: Path) -> Iterator[str]:
    """Run Debian's Pushgateway on 127.0.0.1 (nothing persisted); yield its "host:port".

    Scrape it with `honor_labels` (see `running_prometheus`) so the pushed series keep the
    job they were pushed with.
    """
    binary = shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")
    if binary is None:
        raise RuntimeError(
            "the Pushgateway is not on PATH: run `make prometheus` "
            "(apt-get install prometheus-pushgateway) or `make test`, which does it for you"
        )
    tmp_path.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, 4):
        address = f"127.0.0.1:{free_port()}"
        log_path = tmp_path / f"pushgateway-{attempt}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [binary, f"--web.listen-address={address}", "--log.level=warn"],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=tmp_path,
            )
        try:
            _wait_pushgateway(process, address, log_path)
        except RuntimeError:
            _stop(process)
            if attempt == 3 or "address already in use" not in log_path.read_text():
                raise
            continue
        except BaseException:
            _stop(process)
            raise
        break
    try:
        yield address
    finally:
        _stop(process)


def _wait_pushgateway(process: subprocess.Popen[bytes], address: str, log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"pushgateway exited with {process.returncode}:\n"
                f"{log_path.read_text(errors='replace')[-3000:]}"
            )
        try:
            with urllib.request.urlopen(f"http://{address}/-/ready", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.05)
    raise TimeoutError(f"pushgateway not ready after {READY_TIMEOUT:.0f} s")


def dashboard_queries(
    path: Path, variables: Mapping[str, str] | None = None
) -> list[tuple[str, str]]:
    """(panel title, PromQL) for every target of a Grafana dashboard, rows included.

    Grafana's interval variables ($__rate_interval, ...) are replaced by fixed values
    so that each expression can be sent to Prometheus directly.
    """
    replacements = {**GRAFANA_VARIABLES, **(variables or {})}
    dashboard = json.loads(Path(path).read_text())
    queries = []
    for panel in iter_panels(dashboard):
        for target in panel.get("targets", []):
            expr = target.get("expr", "")
            if not expr:
                continue
            # Longest names first: "$__interval" is a prefix of "$__interval_ms".
            for name in sorted(replacements, key=len, reverse=True):
                expr = expr.replace(name, replacements[name])
            queries.append((panel.get("title", ""), expr))
    return queries


def iter_panels(node: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel of a dashboard, depth first, including rows and panels in rows."""
    for panel in node.get("panels", []):
        yield panel
        yield from iter_panels(panel)


def _rules(rules_path: Path) -> Iterator[dict[str, Any]]:
    document = yaml.safe_load(Path(rules_path).read_text())
    for group in document.get("groups", []):
        yield from group.get("rules", [])


def alert_expressions(rules_path: Path) -> list[tuple[str, str]]:
    """(alert name, PromQL) for every alerting rule of a Prometheus rule file."""
    return [(rule["alert"], rule["expr"].strip()) for rule in _rules(rules_path) if "alert" in rule]


def recording_expressions(rules_path: Path) -> list[tuple[str, str]]:
    """(recorded series name, PromQL) for every recording rule of a Prometheus rule file."""
    return [
        (rule["record"], rule["expr"].strip()) for rule in _rules(rules_path) if "record" in rule
    ]


_COMPARISON = re.compile(r"\s*(==|!=|>=|<=|>|<)\s*-?[\d.]+\s*$")


def operands(expr: str) -> list[str]:
    """The parts of an alert expression that must have data on a healthy system:
    each side of a top-level ``and on (...)``, without its threshold comparison, and
    ``absent(x)`` as ``x``."""
    parts = re.split(r"\)?\s*\band on \([^)]*\)\s*", " ".join(expr.split()))
    found = []
    for part in parts:
        part = _COMPARISON.sub("", part.strip())
        absent = re.fullmatch(r"absent\((.*)\)", part)
        found.append(absent.group(1) if absent else part)
    return found


@contextlib.contextmanager
def serving_registry(registry: Any) -> Iterator[str]:
    """Serve a prometheus_client registry on 127.0.0.1; yield its "host:port" target."""
    from prometheus_client import start_http_server

    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        yield f"127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def panel_and_alert_queries(dashboard: Path, rules: Path) -> list[tuple[str, str]]:
    """Every panel query of ``dashboard`` and every operand of each alert in ``rules``,
    each with where it comes from: what a live test expects data for."""
    queries = [(f"panel {title!r}", expr) for title, expr in dashboard_queries(dashboard)]
    queries += [
        (f"alert {name}", operand)
        for name, expr in alert_expressions(rules)
        for operand in operands(expr)
    ]
    return queries


def unhealthy_rules(prom: Prometheus) -> list[tuple[str, Any]]:
    """The rules Prometheus failed to evaluate, with their last error."""
    return [
        (rule["name"], rule.get("lastError"))
        for group in prom.rule_groups()
        for rule in group["rules"]
        if rule["health"] != "ok"
    ]
