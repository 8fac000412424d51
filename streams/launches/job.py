"""One run of the ETL, and the publish step the batch job and the worker share.

The rejection rule (models.py) decides record by record; this decides the run. Invalid
records are rejected, each logged with its id and reason and counted, and the valid
ones written, as long as they are at most ``LAUNCHES_MAX_REJECTED_FRACTION`` of the
records (default 10 %). Beyond it, or with no valid launch at all (an empty array
included), the run fails and writes nothing: so many invalid records mean the API's
shape changed, and replacing a good object with the few that still pass would lose
data without anyone noticing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from streams.launches.extract import Policy, fetch_records
from streams.launches.load import Destination, load
from streams.launches.metrics import INVALID_JSON, INVALID_LAUNCH, UNCHANGED, WRITTEN, Metrics
from streams.launches.models import Checked, Launch, check_all
from streams.launches.transform import to_parquet, to_table

log = logging.getLogger(__name__)

#: Rejected records logged one by one, at most; the rest are counted in one line.
LOGGED_REJECTIONS = 100


class RunError(RuntimeError):
    """The run refused to write; the message is the one-line reason."""


@dataclass(frozen=True)
class Loaded:
    rows: int
    written: bool  # False: the object already held these bytes
    uri: str


@dataclass(frozen=True)
class Outcome:
    checked: Checked
    loaded: Loaded


def publish(launches: Iterable[Launch], destination: Destination, metrics: Metrics) -> Loaded:
    """Transform ``launches`` and load the object; counted once the load succeeded."""
    table = to_table(launches)
    written = load(to_parquet(table), destination)
    metrics.rows_written.set(table.num_rows)
    metrics.loads.labels(WRITTEN if written else UNCHANGED).inc()
    metrics.last_success.set(time.time())
    return Loaded(table.num_rows, written, destination.uri)


def run_once(
    url: str,
    policy: Policy,
    destination: Destination,
    metrics: Metrics,
    max_rejected_fraction: float,
) -> Outcome:
    """Extract from ``url``, check, and publish unless the run must fail (RunError,
    ExtractError, LoadError)."""
    checked = check_all(fetch_records(url, policy))
    _log_rejections(checked)
    undecoded = sum(not rejection.decoded for rejection in checked.rejected)
    metrics.rejected.labels(INVALID_JSON).inc(undecoded)
    metrics.rejected.labels(INVALID_LAUNCH).inc(len(checked.rejected) - undecoded)
    if checked.duplicates:
        log.warning(
            "%d records were older versions of a launch id given again (the last version kept)",
            checked.duplicates,
        )
    refusal = _refusal(checked, max_rejected_fraction)
    if refusal:
        raise RunError(refusal)
    return Outcome(checked, publish(checked.launches, destination, metrics))


def _log_rejections(checked: Checked) -> None:
    """One line per rejected record, up to ``LOGGED_REJECTIONS``: an answer of millions
    of invalid records must not become gigabytes of log."""
    for rejection in checked.rejected[:LOGGED_REJECTIONS]:
        log.warning(
            "rejected launch id=%s (record %d): %s",
            rejection.id or "<none>",
            rejection.index,
            rejection.reason,
        )
    if len(checked.rejected) > LOGGED_REJECTIONS:
        log.warning("%d more records rejected", len(checked.rejected) - LOGGED_REJECTIONS)


def _refusal(checked: Checked, max_rejected_fraction: float) -> str | None:
    rejected, records = len(checked.rejected), checked.records
    if not checked.launches:
        return f"no valid launch in the answer ({records} records, {rejected} rejected)"
    if rejected > max_rejected_fraction * records:
        return (
            f"{rejected} of {records} records rejected, over LAUNCHES_MAX_REJECTED_FRACTION="
            f"{max_rejected_fraction:g}; first: {checked.rejected[0].reason}"
        )
    return None
