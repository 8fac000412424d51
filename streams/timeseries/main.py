"""The time-series workers: the only module that reads the environment.

python -m streams.timeseries worker -l info   # applies writes, serves the API on WEB_PORT
"""

from __future__ import annotations

import asyncio
import sys

import faust
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from streams.common.app import make_app
from streams.common.settings import KafkaSettings, WorkerSettings
from streams.timeseries.settings import TimeSeriesSettings

FETCH_MAX_WAIT_MS = 20


def build_worker_app(
    kafka: KafkaSettings | None = None,
    worker: WorkerSettings | None = None,
    settings: TimeSeriesSettings | None = None,
) -> faust.App:
    from streams.timeseries.metrics import Metrics
    from streams.timeseries.topology import APP_ID, register
    from streams.timeseries.views import register_views

    kafka = kafka or KafkaSettings()
    worker = worker or WorkerSettings()
    settings = settings or TimeSeriesSettings()
    registry = CollectorRegistry()
    app = make_app(
        APP_ID,
        kafka,
        worker,
        registry,
        partitions=settings.partitions,
        # A write waits for the agent to fetch its command: request latency over the
        # few idle fetches a short wait costs (fetch_wait.py; 750 ms a write at 1,500).
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        # Each write is four sends in a row (command, then three table phases).
        producer_linger_ms=1,
    )
    register_views(register(app, settings, Metrics.create(registry)))
    return app


def declare(kafka: KafkaSettings, settings: TimeSeriesSettings) -> None:
    """Create the pipeline's topics before any Kafka client can create them by default."""
    from streams.common.topics import declare
    from streams.timeseries.topology import topic_specs

    declare(kafka.bootstrap, topic_specs(settings.partitions), kafka.replication_factor)


def main() -> None:
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    if (sys.argv[1] if len(sys.argv) > 1 else "") != "worker":
        sys.exit(__doc__)
    try:
        settings = TimeSeriesSettings()
    except ValidationError as exc:  # refused at start, with the setting named
        sys.exit(f"timeseries: invalid settings: {exc}")
    declare(KafkaSettings(), settings)
    build_worker_app(settings=settings).main()
