"""The streaming way's worker: the Faust app, built and run (settings come from main.py)."""

from __future__ import annotations

import asyncio
import sys

import faust
from prometheus_client import CollectorRegistry

from streams.common.app import make_app
from streams.common.settings import KafkaSettings, WorkerSettings
from streams.launches.settings import LaunchesSettings


def build_worker_app(
    settings: LaunchesSettings,
    kafka: KafkaSettings | None = None,
    worker: WorkerSettings | None = None,
) -> faust.App:
    from streams.launches.load import Destination
    from streams.launches.metrics import Metrics
    from streams.launches.rewrite import Rewriter, start_rewrites
    from streams.launches.topology import APP_ID, RAW, register

    if settings.destination is None:
        raise ValueError("S3_BUCKET is not set (or LAUNCHES_OUTPUT_DIR, for a local copy)")
    kafka = kafka or KafkaSettings()
    worker = worker or WorkerSettings()
    registry = CollectorRegistry()
    metrics = Metrics.create(registry)
    app = make_app(APP_ID, kafka, worker, registry, partitions=1)
    rewriter = Rewriter(settings.debounce_seconds, settings.debounce_max_seconds)
    table = register(app, metrics, rewriter.changed)
    destination = Destination.at(settings.destination, settings.key)
    start_rewrites(app, table, RAW, rewriter, destination, metrics)
    return app


def run_worker(settings: LaunchesSettings) -> None:
    import uvloop

    from streams.common.topics import declare
    from streams.launches.topology import topic_specs

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    kafka = KafkaSettings()
    declare(kafka.bootstrap, topic_specs(), kafka.replication_factor)
    try:
        app = build_worker_app(settings, kafka)
    except (ValueError, OSError) as exc:  # no destination, an output dir that is a file...
        sys.exit(f"launches: {exc}")
    app.main()
