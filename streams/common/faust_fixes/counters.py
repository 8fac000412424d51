"""What the corrections changed, counted: ``streams_faust_fix_<what>_total``.

The patches are process-wide and Prometheus registries belong to one app, so the patches
add to plain integers here, and ``register_fix_metrics`` puts a collector that reads them
on an app's registry (``make_app`` does, for every app). A counter that moves shows a
defect that the correction just stopped; one that moves a lot is worth a look.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector


class Fix(enum.Enum):
    """Each thing a correction does, as ``(metric name part, help)``."""

    RECORDS_DROPPED = (
        "records_dropped",
        "Records fetched but kept from the agents to keep each partition in offset order "
        "(fetched before a seek, of an earlier generation, or delivered already); "
        "the consumer reads them again",
    )
    PARTITIONS_SOUGHT_BACK = (
        "partitions_sought_back",
        "Partitions sought back to the next offset due after records were missing",
    )
    LOG_HOLES_JUMPED = (
        "log_holes_jumped",
        "Offsets missing from a partition's log (retention, transaction markers) jumped over",
    )
    PARTITIONS_SOUGHT_TO_START = (
        "partitions_sought_to_start",
        "Partitions without a committed offset sought to the start of their log at a rebalance",
    )
    ACKS_IGNORED = (
        "acks_ignored",
        "Acknowledgements ignored: of records the stream skipped, of an earlier "
        "consumer generation, or of a batch given up at a rebalance",
    )
    COMMITS_HELD_BACK = (
        "commits_held_back",
        "Commits held back because the committed offset's own record was not acknowledged yet",
    )
    END_OFFSETS_CORRECTED = (
        "end_offsets_corrected",
        "Partition end offsets raised to the high watermark a Fetch reported "
        "(the embedded broker's ListOffsets defect)",
    )
    CHANGELOG_RECORDS_RESTORED = (
        "changelog_records_restored",
        "Changelog records written to a table's RocksDB in runs by the recovery intake, "
        "instead of one by one through Faust's recovery",
    )
    STALE_CHANGELOG_FETCHES_DROPPED = (
        "stale_changelog_fetches_dropped",
        "Fetches of changelogs being restored dropped and read again because a rebalance "
        "or a recovery restart came while they were in flight",
    )
    END_OFFSET_CHECKS_FAILED = (
        "end_offset_checks_failed",
        "end_offsets calls whose Fetch check failed, so the listed offsets were kept",
    )

    @property
    def metric(self) -> str:
        return f"streams_faust_fix_{self.value[0]}"

    @property
    def help(self) -> str:
        return str(self.value[1])


_lock = threading.Lock()  # the consumer thread and the event loop's thread both count
_counts: dict[Fix, int] = dict.fromkeys(Fix, 0)


def count(fix: Fix, n: int = 1) -> None:
    """Add ``n`` to what the correction ``fix`` did."""
    with _lock:
        _counts[fix] += n


def counts() -> dict[Fix, int]:
    """A snapshot of every counter (process-wide, since the first install)."""
    with _lock:
        return dict(_counts)


class FixCollector(Collector):
    """Exposes the process-wide counters on one registry."""

    def collect(self) -> Iterator[Metric]:
        for fix, value in counts().items():
            # CounterMetricFamily adds the ``_total`` suffix.
            yield CounterMetricFamily(fix.metric, fix.help, value=value)

    def describe(self) -> Iterator[Metric]:
        for fix in Fix:
            yield CounterMetricFamily(fix.metric, fix.help)


def register_fix_metrics(registry: CollectorRegistry) -> FixCollector:
    """Register ``streams_faust_fix_*_total`` on ``registry`` (once per registry)."""
    collector = FixCollector()
    registry.register(collector)
    return collector
