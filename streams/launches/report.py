"""The batch job's metrics, for a process that exits: a textfile and/or a Pushgateway.

A failed run reports its failure without erasing the last success: the gauges of the
last successful load (``..._last_success_timestamp_seconds``, ``..._rows_written``)
are left out of what it reports, and kept from the previous textfile or left as they
are on the Pushgateway (a POST replaces only the metrics it carries), so an alert on
the age of the last success keeps counting from the real one.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest, pushadd_to_gateway

from streams.launches.metrics import Metrics

log = logging.getLogger(__name__)

JOB = "streams_launches"


def report(
    metrics_file: Path | None,
    pushgateway_url: str | None,
    registry: CollectorRegistry,
    metrics: Metrics,
    *,
    succeeded: bool,
) -> None:
    """Write and/or push ``registry``; a failure to report is logged, never fatal."""
    keep: set[str] = set()
    if not succeeded:
        for gauge in (metrics.last_success, metrics.rows_written):
            registry.unregister(gauge)
            keep.add(gauge._name)
    # Any failure, not only OSError: a textfile that is no UTF-8 text, a URL the
    # client refuses... Reporting is never worth failing a run that loaded its object.
    if metrics_file is not None:
        try:
            _write(metrics_file, registry, keep)
        except Exception as exc:
            log.warning("metrics not written to %s: %s", metrics_file, exc)
    if pushgateway_url:
        try:
            pushadd_to_gateway(pushgateway_url, job=JOB, registry=registry, timeout=5)
        except Exception as exc:
            log.warning("metrics not pushed to %s: %s", pushgateway_url, exc)


def _write(path: Path, registry: CollectorRegistry, keep: set[str]) -> None:
    """The textfile, replaced whole (node_exporter never reads half of one), with the
    lines of the metrics named in ``keep`` carried over from the file it replaces."""
    text = generate_latest(registry).decode()
    if keep and path.exists():
        old = path.read_text(errors="replace").splitlines()
        text += "".join(line + "\n" for line in old if _metric(line) in keep)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temp.write_text(text)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def _metric(line: str) -> str:
    """The metric a line of the text format is about (``# HELP name ...``, ``name{...} 1``)."""
    parts = line.split()
    if not parts:
        return ""
    if parts[0] == "#":
        return parts[2] if len(parts) > 2 else ""
    return parts[0].split("{")[0]
