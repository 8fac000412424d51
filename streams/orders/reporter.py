"""The leader's periodic work: close days into reports, detect spikes and drops.

It runs on the leader only (one worker of the group), from the mirror, which holds
every partition. Reports and alerts carry deterministic ids, and the reporter
remembers what it sent until the mirror shows it, so a tick never sends one twice;
after a leader change, the new leader reads them back from the mirror first.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson

from streams.common.background import guarded_timer
from streams.orders.logic import HOUR_MS
from streams.orders.reports import (
    Closing,
    Detector,
    anomalies,
    due_reports,
    hourly_series,
    is_closed,
    last_arrival,
    newest_reports,
    stream_time,
)
from streams.orders.topology import ALERTS, REPORTS, OrdersPipeline

log = logging.getLogger(__name__)


def register_reporter(pipeline: OrdersPipeline) -> None:
    app, settings = pipeline.app, pipeline.settings
    closing = Closing(settings.grace_seconds * 1000, settings.idle_close_seconds * 1000)
    detector = Detector(settings.anomaly_z, settings.anomaly_alpha, settings.anomaly_warmup_hours)
    sent: dict[str, dict[str, dict[str, Any]]] = {REPORTS: {}, ALERTS: {}}
    started_ms = int(time.time() * 1000)

    failures = pipeline.metrics.task_failures

    @guarded_timer(app, settings.report_interval_seconds, failures, on_leader=True)
    async def close_and_detect() -> None:
        if pipeline.ready.is_set():
            await _tick(pipeline, closing, detector, sent, started_ms)

    @guarded_timer(app, 5.0, failures)
    async def refresh_gauges() -> None:
        threshold = settings.low_stock_threshold
        low = sum(
            1
            for row in pipeline.inventory().values()
            if int(row.get("available_quantity", threshold)) < threshold
        )
        pipeline.metrics.low_stock.set(low)


async def _tick(
    pipeline: OrdersPipeline,
    closing: Closing,
    detector: Detector,
    sent: dict[str, dict[str, dict[str, Any]]],
    since_ms: int,
) -> None:
    await pipeline.mirror.caught_up()
    now_ms = int(time.time() * 1000)
    clocks = {int(k.rsplit("|", 1)[1]): v for k, v in pipeline.index.by_kind["clock"].items()}
    stream_ms = stream_time(clocks, pipeline.settings.partitions, now_ms, since_ms)
    arrived_ms = last_arrival(clocks)
    reported = {**pipeline.mirror.data[REPORTS], **sent[REPORTS]}
    for report in due_reports(
        pipeline.index.by_kind["daily"],
        newest_reports(reported.values()),
        pipeline.rules,
        closing,
        stream_ms,
        now_ms,
        arrived_ms,
    ):
        await _send(pipeline, REPORTS, report, sent[REPORTS])
        pipeline.metrics.reports.labels(report["kind"]).inc()
    if stream_ms is None:
        return
    closed_before = _hours_closed_before(stream_ms, now_ms, arrived_ms, closing)
    alerts, zscores = anomalies(
        hourly_series(pipeline.index.by_kind["hourly"], pipeline.rules),
        closed_before,
        detector,
    )
    for (channel, measure), z in zscores.items():
        if channel in pipeline.channels:  # other channels' scores are in the alerts only
            pipeline.metrics.zscore.labels(channel, measure).set(z)
    known = pipeline.mirror.data[ALERTS]
    for alert in alerts:
        if alert["id"] not in known and alert["id"] not in sent[ALERTS]:
            await _send(pipeline, ALERTS, alert, sent[ALERTS])
            pipeline.metrics.alerts.labels(alert["kind"]).inc()
            log.warning("orders anomaly: %s", alert["id"])


def _hours_closed_before(
    stream_ms: int, now_ms: int, arrived_ms: int | None, closing: Closing
) -> int:
    """Start of the first hour still open."""
    current_hour = stream_ms // HOUR_MS * HOUR_MS
    if is_closed(current_hour + HOUR_MS, stream_ms, now_ms, arrived_ms, closing) == "idle":
        return current_hour + HOUR_MS
    return (stream_ms - closing.grace_ms) // HOUR_MS * HOUR_MS


async def _send(
    pipeline: OrdersPipeline, topic: str, record: dict[str, Any], sent: dict[str, Any]
) -> None:
    await pipeline.topics[topic].send(key=record["id"].encode(), value=orjson.dumps(record))
    sent[record["id"]] = record
