"""The two reasons the ingest service refuses work: too much unacknowledged, workers behind.

``InflightGate`` bounds the ingest's memory: readings are reserved before they are
published and released once Kafka acknowledged (or failed) every record of their
request; a request that would take the total over ``max_inflight_readings`` gets 503.

``LagMonitor`` protects the workers (and the broker's memory, see
/work/shared/notes/embedded-broker.md): every ``lag_interval_seconds`` it measures how
many records of ``telemetry.readings`` the workers' consumer group has not committed
yet. End offsets come from ``AIOKafkaConsumer.end_offsets``, which ``make_app`` has
already made exact on the embedded broker (streams/common/end_offsets.py); committed
offsets from ``AIOKafkaAdminClient.list_consumer_group_offsets``. A partition the group
never committed counts from its first offset (0 on the embedded broker, which never
deletes records). Above ``max_lag_records`` the ingest answers 429.

When the lag cannot be measured (broker unreachable, group coordinator moving) the
last measurement holds for ``STALE_INTERVALS`` intervals; after that the lag gate opens
(fails open) and the gauge keeps the last measured value. Refusing forever because a
measurement failed would turn a monitoring hiccup into an outage, and failing open is
safe for memory: publishing needs the same broker, so while it is away requests pile
up in the in-flight gate, which answers 503.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping
from typing import Any

import mode
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import Gauge

log = logging.getLogger(__name__)

#: A lag measured longer ago than this many intervals no longer blocks ingest.
STALE_INTERVALS = 5
#: Bounds of the Retry-After of a 429, in seconds.
RETRY_MIN, RETRY_MAX = 1, 30


class InflightGate:
    """Readings sent to Kafka and not yet acknowledged, against a fixed limit."""

    def __init__(self, limit: int, gauge: Gauge) -> None:
        self.limit = limit
        self.inflight = 0
        self._gauge = gauge

    def full(self) -> bool:
        return self.inflight >= self.limit

    def reserve(self, readings: int) -> bool:
        """Take ``readings`` if they fit under the limit; False (nothing taken) if not."""
        if self.inflight + readings > self.limit:
            return False
        self.inflight += readings
        self._gauge.set(self.inflight)
        return True

    def release(self, readings: int) -> None:
        self.inflight -= readings
        self._gauge.set(self.inflight)


def group_lag(
    ends: Mapping[TopicPartition, int],
    starts: Mapping[TopicPartition, int],
    committed: Mapping[TopicPartition, int],
) -> int:
    """Records between each partition's committed offset and its end, summed; a
    partition without a commit (missing or negative) counts from its start."""
    total = 0
    for tp, end in ends.items():
        offset = committed.get(tp, -1)
        if offset < 0:
            offset = starts.get(tp, 0)
        total += max(end - offset, 0)
    return total


def retry_after(lag: int, limit: int, drain_per_s: float | None, interval: float) -> int:
    """Seconds a refused client should wait: the time the workers need to bring the lag
    back under the limit at their measured pace, or, while they make no progress, one
    measurement interval per limit's worth of excess; within RETRY_MIN..RETRY_MAX."""
    excess = max(lag - limit, 0)
    if drain_per_s and drain_per_s > 0:
        seconds = excess / drain_per_s
    else:
        seconds = interval * (1 + excess / limit)
    return min(max(math.ceil(seconds), RETRY_MIN), RETRY_MAX)


class LagMonitor(mode.Service):
    """Measures the workers' group lag on one topic every ``interval`` seconds."""

    def __init__(
        self,
        bootstrap: str,
        group: str,
        topic: str,
        *,
        limit: int,
        interval: float,
        gauge: Gauge,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bootstrap, self.group, self.topic = bootstrap, group, topic
        self.limit, self.interval, self._gauge = limit, interval, gauge
        self.lag: int | None = None
        self.drain_per_s: float | None = None
        self.measured_at = 0.0
        self._committed_total: int | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._admin: AIOKafkaAdminClient | None = None

    def refusal(self) -> int | None:
        """Retry-After seconds when the workers are too far behind, else None."""
        lag = self.lag
        if lag is None or lag <= self.limit:
            return None
        if time.monotonic() - self.measured_at > STALE_INTERVALS * self.interval:
            return None
        return retry_after(lag, self.limit, self.drain_per_s, self.interval)

    @mode.Service.task
    async def _measure_forever(self) -> None:
        timeout = max(2 * self.interval, 5.0)
        while not self.should_stop:
            try:
                async with asyncio.timeout(timeout):
                    await self.measure()
            except Exception as exc:  # any failure: keep the last figure, retry later
                log.warning("lag of group %r not measured: %r", self.group, exc)
                await self._close_clients()
            await self.sleep(self.interval)

    async def measure(self) -> int:
        consumer, admin = await self._clients()
        await consumer._client.force_metadata_update()
        partitions = [
            TopicPartition(self.topic, p)
            for p in sorted(consumer.partitions_for_topic(self.topic) or ())
        ]
        lag, committed_total = 0, 0
        if partitions:
            ends = await consumer.end_offsets(partitions)
            starts = await consumer.beginning_offsets(partitions)
            offsets = await admin.list_consumer_group_offsets(self.group, partitions=partitions)
            committed = {tp: meta.offset for tp, meta in offsets.items()}
            lag = group_lag(ends, starts, committed)
            committed_total = sum(max(offset, 0) for offset in committed.values())
        now = time.monotonic()
        if self._committed_total is not None and now > self.measured_at:
            self.drain_per_s = (committed_total - self._committed_total) / (now - self.measured_at)
        self._committed_total, self.lag, self.measured_at = committed_total, lag, now
        self._gauge.set(lag)
        return lag

    async def _clients(self) -> tuple[AIOKafkaConsumer, AIOKafkaAdminClient]:
        if self._consumer is None or self._admin is None:
            consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
            self._consumer, self._admin = consumer, admin
            await consumer.start()
            await admin.start()
        return self._consumer, self._admin

    async def _close_clients(self) -> None:
        consumer, admin = self._consumer, self._admin
        self._consumer = self._admin = None
        for client in (consumer, admin):
            try:
                if isinstance(client, AIOKafkaConsumer):
                    await client.stop()
                elif client is not None:
                    await client.close()
            except Exception as exc:  # closing a broken client must not stop the loop
                log.debug("closing a lag client failed: %r", exc)

    async def on_stop(self) -> None:
        await self._close_clients()
