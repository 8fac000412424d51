"""The HTTP ingest service: ``POST /telemetry`` -> ``telemetry.readings``.

A Faust app in producer_only mode: Faust starts its web server and producer, no
consumer, agents or tables; the producer first (``ProducerBeforeWeb``), so the port
answers nothing until readings can be published. The lag monitor is an app
dependency, so it runs in that mode too. The order of the checks puts the cheap
refusals first: 401 (key), 415 (content type), 413 (declared length), 429 (workers
behind) and 503 (in-flight gate full) are decided before the body is read; then 413
(body longer than allowed), 400 and 422 (ingest_parse.py), 503 (this request's
readings would not fit the gate), and 202 once Kafka acknowledged every record.
Every answer is counted in IngestMetrics.
"""

from __future__ import annotations

import asyncio
import gc
import hmac
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import faust
import orjson
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web import Request, Response
from aiohttp.web_protocol import RequestPayloadError
from faust.app.base import BootStrategy
from mode import ServiceT
from prometheus_client import CollectorRegistry

from streams.common.app import make_app
from streams.common.settings import KafkaSettings, WorkerSettings
from streams.common.web import JsonView
from streams.telemetry.backpressure import InflightGate, LagMonitor
from streams.telemetry.ingest_parse import (
    Accepted,
    Format,
    Refusal,
    body_format,
    error,
    parse_request,
)
from streams.telemetry.metrics import IngestMetrics
from streams.telemetry.settings import IngestSettings

log = logging.getLogger(__name__)

APP_ID = "telemetry-ingest"
READINGS = "telemetry.readings"
#: How long the producer waits for Kafka's acknowledgement before the request gets a
#: 503 (Faust's default is 20 minutes, which would hold clients and memory that long).
ACK_TIMEOUT_SECONDS = 30.0
RETRY_AFTER_UNAVAILABLE = "1"
#: Of a failure's message, in the 503's body.
FAILURE_CHARS = 200


class ProducerBeforeWeb(BootStrategy):
    """Faust's producer_only order, with the producer started before the web server.

    Faust starts the web server first: for as long as the producer takes to reach Kafka
    (seconds on a loaded machine), /health said ok and a POST got a 503, the topic's
    declaration failing with ``Exception('Controller node not found')`` (aiokafka's
    client knew no broker yet). A client has no way to tell that from an outage; an
    ingest that does not listen yet is one it retries, and /health means "can publish".
    """

    def producer_only(self) -> Iterable[ServiceT]:
        services: Iterable[ServiceT] = self._chain(self.kafka_producer(), self.web_server())
        return services


def build_ingest_app(
    kafka: KafkaSettings,
    worker: WorkerSettings,
    settings: IngestSettings,
    *,
    workers_group: str,
    partitions: int,
) -> faust.App:
    """The ingest app: ``POST /telemetry``, ``/health`` and ``/metrics``."""
    registry = CollectorRegistry()
    app = make_app(
        APP_ID,
        kafka,
        worker,
        registry,
        partitions=partitions,
        producer_request_timeout=ACK_TIMEOUT_SECONDS,
    )
    app.producer_only = True
    app.boot_strategy = ProducerBeforeWeb(app)
    metrics = IngestMetrics.create(registry)
    topic = app.topic(
        READINGS,
        partitions=partitions,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    monitor = LagMonitor(
        kafka.bootstrap,
        workers_group,
        READINGS,
        limit=settings.max_lag_records,
        interval=settings.lag_interval_seconds,
        gauge=metrics.lag,
        beacon=app.beacon,
    )
    app.add_dependency(monitor)
    gate = InflightGate(settings.max_inflight_readings, metrics.inflight)
    ingest = Ingest(app, topic, settings, metrics, gate, monitor, partitions)

    # JsonView: another method (GET) is a JSON 405 like every other refusal here.
    class TelemetryView(JsonView):
        async def post(self, request: Any, **kwargs: Any) -> Response:
            return await ingest.handle(request)

    app.page("/telemetry", name="telemetry_ingest")(TelemetryView)
    return app


@dataclass
class Ingest:
    """What one ``POST /telemetry`` does, with the app's producer, gate and monitor."""

    app: faust.App
    topic: Any
    settings: IngestSettings
    metrics: IngestMetrics
    gate: InflightGate
    monitor: LagMonitor
    #: Of telemetry.readings: the ingest sends each record to its devices' partition.
    partitions: int
    _declared: bool = field(default=False, init=False)
    _frozen: bool = field(default=False, init=False)

    async def handle(self, request: Request) -> Response:
        started = time.perf_counter()
        if not self._frozen:
            # Startup is over: move its ~80k objects out of the collector's reach.
            # Measured: each full collection took 50-120 ms, and each request's readings
            # (alive across gen0/gen1 collections while parsed) triggered one every few
            # seconds; they set the p99 latency. Frozen, none took over 5 ms.
            gc.freeze()
            self._frozen = True
        try:
            answer = await self.answer(request)
        except Exception:  # a bug, never a bad request: say so and keep serving
            log.exception("ingest request failed")
            answer = error(500, "internal error")
        if isinstance(answer, Accepted):
            status, body, headers = 202, {"accepted": answer.readings}, None
            self.metrics.readings.inc(answer.readings)
        else:
            status, body, headers = answer.status, answer.body, answer.headers
        self.metrics.requests.labels(str(status)).inc()
        self.metrics.latency.observe(time.perf_counter() - started)
        return Response(
            body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
        )

    async def answer(self, request: Request) -> Accepted | Refusal:
        fmt = self.check_headers(request)
        if isinstance(fmt, Refusal):
            return fmt
        refusal = self.check_load()
        if refusal is not None:
            return refusal
        try:
            body = await self.read_body(request)
        except (RequestPayloadError, HttpProcessingError) as exc:
            # A body its Content-Encoding cannot decode (or a broken transfer).
            reason = " ".join(str(exc).split())
            return error(400, f"body could not be read: {reason}")
        if body is None:
            return self.too_large()
        parsed = parse_request(
            body,
            fmt,
            now_ms=time.time_ns() // 1_000_000,
            max_future_seconds=self.settings.max_future_seconds,
            partitions=self.partitions,
        )
        if isinstance(parsed, Refusal):
            return parsed
        if not self.gate.reserve(parsed.readings):
            return self.overloaded()
        try:
            failure = await self.publish(parsed.records)
        finally:
            self.gate.release(parsed.readings)
        if failure is not None:
            why = describe(failure)
            log.warning("Kafka did not acknowledge a request's records: %s", why)
            return error(
                503,
                f"Kafka did not acknowledge the readings ({why})",
                headers={"Retry-After": RETRY_AFTER_UNAVAILABLE},
            )
        return parsed

    def check_headers(self, request: Request) -> Format | Refusal:
        """The body's format, or why the headers alone refuse the request."""
        key = self.settings.api_key
        if key is not None:
            given = request.headers.get("X-API-Key", "")
            if not hmac.compare_digest(given.encode(), key.get_secret_value().encode()):
                return error(401, "missing or wrong X-API-Key")
        fmt = body_format(request.headers.get("Content-Type"))
        if fmt is None:
            return error(415, "Content-Type must be application/json or application/x-ndjson")
        length = request.content_length
        if length is not None and length > self.settings.max_body_bytes:
            return self.too_large()
        return fmt

    def check_load(self) -> Refusal | None:
        retry = self.monitor.refusal()
        if retry is not None:
            return Refusal(
                429,
                {"error": "the workers are behind", "lag_records": self.monitor.lag,
                 "max_lag_records": self.monitor.limit},
                {"Retry-After": str(retry)},
            )  # fmt: skip
        if self.gate.full():
            return self.overloaded()
        return None

    async def read_body(self, request: Request) -> bytes | None:
        """The whole body, or None as soon as it is longer than max_body_bytes."""
        limit = self.settings.max_body_bytes
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_any():
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def publish(self, records: list[tuple[int, bytes]]) -> BaseException | None:
        """Send every record, wait for every acknowledgement; the first failure, if any."""
        pending: list[Any] = []
        failure: BaseException | None = None
        try:
            if not self._declared:
                await self.topic.maybe_declare()
                self._declared = True
            accepted_at = time.time()
            send = self.app.producer.send
            for partition, value in records:
                pending.append(await send(READINGS, None, value, partition, accepted_at, None))
        except Exception as exc:
            failure = exc
        # Wait for the records already handed to the producer even after a failure: the
        # in-flight gate must not be released while they still hold memory.
        results = await asyncio.gather(*pending, return_exceptions=True)
        return failure or next((r for r in results if isinstance(r, BaseException)), None)

    def too_large(self) -> Refusal:
        return error(413, f"body larger than {self.settings.max_body_bytes} bytes")

    def overloaded(self) -> Refusal:
        return error(
            503,
            "too many readings awaiting Kafka's acknowledgement",
            max_inflight_readings=self.gate.limit,
            headers={"Retry-After": RETRY_AFTER_UNAVAILABLE},
        )


def describe(failure: BaseException) -> str:
    """A failure's type and message, e.g. ``KafkaTimeoutError: ...``; a bare type name
    told neither a client nor an operator what went wrong."""
    message = " ".join(str(failure).split())[:FAILURE_CHARS]
    name = type(failure).__name__
    return f"{name}: {message}" if message else name
