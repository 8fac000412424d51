"""The leader's periodic work: close days into reports, detect spikes and drops.

It runs on the leader only (one worker of the group), from the mirror, which holds
every partition. Reports and alerts carry deterministic ids, and the reporter
remembers what it sent until the mirror shows it, so a tick never sends one twice;
after a leader change, the new leader reads them back from the mirror first.

A tick is incremental (reports.py says why it issues the same reports and alerts):
it looks only at the dates still open or changed since its last look, the index
hands it the changed ones, and scores a bounded window of hours only of the channels
whose scores can have moved. Dates and channels are let go only once their reports
and alerts are sent: after a failed send they are looked at again on the next tick.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import orjson

from streams.common.background import guarded_timer
from streams.common.sends import Confirmed
from streams.orders.logic import HOUR_MS, Rules
from streams.orders.pipeline import ALERTS, REPORTS, OrdersPipeline
from streams.orders.reports import (
    Closing,
    Detector,
    Rescoring,
    anomalies,
    due_reports,
    is_closed,
    last_arrival,
    newest_report,
    stream_time,
)

log = logging.getLogger(__name__)


def register_reporter(pipeline: OrdersPipeline) -> None:
    app, settings = pipeline.app, pipeline.settings
    closing = Closing(settings.grace_seconds * 1000, settings.idle_close_seconds * 1000)
    # Alerts span the retention horizon: every hour that still accepts orders.
    detector = Detector(
        settings.anomaly_z,
        settings.anomaly_alpha,
        settings.anomaly_warmup_hours,
        alert_hours=settings.retention_days * 24,
    )
    sent: dict[str, dict[str, dict[str, Any]]] = {REPORTS: {}, ALERTS: {}}
    pending: set[str] = set()
    rescoring = Rescoring()
    started_ms = int(time.time() * 1000)

    failures = pipeline.metrics.task_failures

    @guarded_timer(app, settings.report_interval_seconds, failures, on_leader=True)
    async def close_and_detect() -> None:
        if pipeline.ready.is_set():
            await _tick(pipeline, closing, detector, sent, pending, rescoring, started_ms)

    @guarded_timer(app, 1.0, failures)
    async def refresh_gauges() -> None:
        threshold = settings.low_stock_threshold
        low = sum(
            1
            for row in pipeline.inventory().values()
            if int(row.get("available_quantity", threshold)) < threshold
        )
        pipeline.metrics.low_stock.set(low)
        pipeline.metrics.view_records.set(pipeline.view_records())


async def _tick(
    pipeline: OrdersPipeline,
    closing: Closing,
    detector: Detector,
    sent: dict[str, dict[str, dict[str, Any]]],
    pending: set[str],
    rescoring: Rescoring,
    since_ms: int,
) -> None:
    await pipeline.mirror.caught_up()
    now_ms = int(time.time() * 1000)
    clocks = {int(k.rsplit("|", 1)[1]): v for k, v in pipeline.index.by_kind["clock"].items()}
    stream_ms = stream_time(clocks, pipeline.settings.partitions, now_ms, since_ms)
    arrived_ms = last_arrival(clocks)
    held = {REPORTS: pipeline.reports.by_id, ALERTS: pipeline.mirror.data[ALERTS]}
    for topic, records in sent.items():  # the worker holds them from now on
        shown = held[topic]
        for record_id in [i for i in records if i in shown]:
            del records[record_id]
    pending |= pipeline.index.take_touched_dates()
    reports, settled = due_reports(
        pending,
        pipeline.index.daily_by_date,
        lambda date: newest_report(date, pipeline.reports.by_id, sent[REPORTS]),
        pipeline.rules,
        closing,
        stream_ms,
        now_ms,
        arrived_ms,
        _forgotten_before(clocks, pipeline.rules),
    )
    await _send(pipeline, REPORTS, reports, sent[REPORTS])
    for report in reports:
        pipeline.metrics.reports.labels(report["kind"]).inc()
    pending -= settled
    if stream_ms is None:
        return
    closed_before = _hours_closed_before(stream_ms, now_ms, arrived_ms, closing)
    index = pipeline.index
    channels = rescoring.channels(
        index.take_touched_hours(), closed_before, index.hourly_by_channel
    )
    scores = anomalies(index, pipeline.rules, closed_before, detector, channels)
    for (channel, measure), z in scores.latest.items():
        if channel in pipeline.channels:  # other channels' scores are in the alerts only
            pipeline.metrics.zscore.labels(channel, measure).set(z)
    known = pipeline.mirror.data[ALERTS]
    alerts = [a for a in scores.alerts if a["id"] not in known and a["id"] not in sent[ALERTS]]
    await _send(pipeline, ALERTS, alerts, sent[ALERTS])
    for alert in alerts:
        pipeline.metrics.alerts.labels(alert["kind"]).inc()
        log.warning("orders anomaly: %s", alert["id"])
    rescoring.done(closed_before)


def _forgotten_before(clocks: Mapping[int, Mapping[str, Any]], rules: Rules) -> str | None:
    """The first day every partition still keeps figures of (the most advanced
    partition deletes first: batch.forget_expired)."""
    marks = [int(c["max_ms"]) for c in clocks.values() if c.get("max_ms") is not None]
    return rules.forgotten_before(max(marks)) if marks else None


def _hours_closed_before(
    stream_ms: int, now_ms: int, arrived_ms: int | None, closing: Closing
) -> int:
    """Start of the first hour still open."""
    current_hour = stream_ms // HOUR_MS * HOUR_MS
    if is_closed(current_hour + HOUR_MS, stream_ms, now_ms, arrived_ms, closing) == "idle":
        return current_hour + HOUR_MS
    return (stream_ms - closing.grace_ms) // HOUR_MS * HOUR_MS


async def _send(
    pipeline: OrdersPipeline,
    topic: str,
    records: list[dict[str, Any]],
    sent: dict[str, Any],
) -> None:
    """Send ``records`` and wait for Kafka's acknowledgement of each; only then are they
    remembered as sent (a failure raises: the next tick sends them again, same ids)."""
    sends = Confirmed(pipeline.app.producer)
    for record in records:
        await sends.send(topic, record["id"].encode(), orjson.dumps(record))
    await sends.confirm()
    for record in records:
        sent[record["id"]] = record
