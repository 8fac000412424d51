"""The flow-logs processes: the only module that reads the environment.

python -m streams.flowlogs worker -l info     # aggregates, detects, serves the views
python -m streams.flowlogs reader -l info     # lists FLOWLOGS_SOURCE, publishes chunks
"""

from __future__ import annotations

import asyncio
import sys

import faust
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from streams.common.app import make_app
from streams.common.settings import KafkaSettings, WorkerSettings
from streams.flowlogs.settings import FlowLogsSettings


def build_worker_app(
    kafka: KafkaSettings | None = None,
    worker: WorkerSettings | None = None,
    settings: FlowLogsSettings | None = None,
) -> faust.App:
    from streams.flowlogs.metrics import WorkerMetrics
    from streams.flowlogs.topology import APP_ID, register_worker
    from streams.flowlogs.views import register_views

    kafka = kafka or KafkaSettings()
    worker = worker or WorkerSettings()
    settings = settings or FlowLogsSettings()
    registry = CollectorRegistry()
    app = make_app(APP_ID, kafka, worker, registry, partitions=settings.partitions)
    pipeline = register_worker(app, settings, WorkerMetrics.create(registry), kafka.bootstrap)
    register_views(pipeline, registry)
    return app


def build_reader_app(
    kafka: KafkaSettings | None = None,
    worker: WorkerSettings | None = None,
    settings: FlowLogsSettings | None = None,
) -> faust.App:
    from streams.flowlogs.metrics import ReaderMetrics
    from streams.flowlogs.topology import READER_ID, register_reader

    kafka = kafka or KafkaSettings()
    worker = worker or WorkerSettings()
    settings = settings or FlowLogsSettings()
    registry = CollectorRegistry()
    app = make_app(READER_ID, kafka, worker, registry, partitions=settings.partitions)
    app.producer_only = True
    register_reader(app, settings, ReaderMetrics.create(registry), kafka.bootstrap)
    return app


def declare(kafka: KafkaSettings, settings: FlowLogsSettings) -> None:
    """Create the pipeline's topics before any Kafka client can create them by default."""
    from streams.common.topics import declare
    from streams.flowlogs.topology import topic_specs

    declare(kafka.bootstrap, topic_specs(settings.partitions), kafka.replication_factor)


def main() -> None:
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command not in ("worker", "reader"):
        sys.exit(__doc__)
    try:
        settings = FlowLogsSettings()
    except ValidationError as exc:  # refused at start: a setting's fault is no object's
        sys.exit(f"flowlogs: invalid settings: {exc}")
    declare(KafkaSettings(), settings)
    if command == "reader":
        sys.argv[1] = "worker"  # the reader is a Faust app too: run its worker
        build_reader_app(settings=settings).main()
        return
    build_worker_app(settings=settings).main()
