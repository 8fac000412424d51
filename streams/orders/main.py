"""The orders worker: the only module that reads the environment.

python -m streams.orders worker -l info      # a worker (Faust's CLI)
python -m streams.orders dlq-replay          # re-send dead letters after a fix
"""

from __future__ import annotations

import asyncio
import os

import faust
from faust.cli import AppCommand, option
from prometheus_client import CollectorRegistry

from streams.common.app import make_app
from streams.common.settings import KafkaSettings, WorkerSettings
from streams.orders.lake import build_lake
from streams.orders.metrics import OrdersMetrics
from streams.orders.pipeline import APP_ID, DLQ, RAW, topic_specs
from streams.orders.reporter import register_reporter
from streams.orders.settings import OrdersSettings
from streams.orders.topology import register
from streams.orders.views import register_views

#: The longest the broker may hold the worker's fetch (ms).
FETCH_MAX_WAIT_MS = 100


def build_app(
    kafka: KafkaSettings | None = None,
    worker: WorkerSettings | None = None,
    settings: OrdersSettings | None = None,
) -> faust.App:
    kafka = kafka or KafkaSettings()
    worker = worker or WorkerSettings()
    settings = settings or OrdersSettings()
    registry = CollectorRegistry()
    app = make_app(
        APP_ID,
        kafka,
        worker,
        registry,
        partitions=settings.partitions,
        # An order waits for the worker's fetch: Faust's 1,500 ms wait held every fetch
        # ~750 ms on the embedded broker (fetch_wait.py), most of the produce -> figure
        # latency; a short wait costs a few empty fetches while idle.
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
    )
    pipeline = register(app, settings, OrdersMetrics.create(registry), kafka.bootstrap)
    register_views(pipeline, registry)
    register_reporter(pipeline)
    if settings.parquet_uri:
        endpoint = os.environ.get("AWS_ENDPOINT_URL") or None
        pipeline.lake = build_lake(app, RAW, settings.parquet_uri, endpoint, registry)

    @app.command(option("--reason", multiple=True, help="only these reasons (repeatable)"))
    async def dlq_replay(self: AppCommand, reason: tuple[str, ...]) -> None:
        """Re-send dead letters to their source topic (after fixing the cause)."""
        from streams.common.deadletter import replay_dead_letters

        count = await replay_dead_letters(kafka.bootstrap, DLQ, reasons=set(reason) or None)
        self.say(f"replayed {count} dead letters")

    return app


def main() -> None:
    import sys

    import uvloop

    from streams.common.topics import declare

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        # Every topic exists with its partition count before any client can create it
        # with the broker's default; a topic that disagrees stops the worker here.
        kafka, settings = KafkaSettings(), OrdersSettings()
        declare(kafka.bootstrap, topic_specs(settings.partitions), kafka.replication_factor)
    build_app().main()
