"""The telemetry processes: the only module that reads the environment.

python -m streams.telemetry worker -l info        # a window/anomaly worker (Faust CLI)
python -m streams.telemetry ingest -l info        # the HTTP ingest service (Faust CLI)
python -m streams.telemetry config show           # the live configuration
python -m streams.telemetry config set window_seconds=30 thresholds.cpu.above=80
"""

from __future__ import annotations

import asyncio
import sys

import faust
from prometheus_client import CollectorRegistry

from streams.common.app import make_app
from streams.common.settings import KafkaSettings, WorkerSettings
from streams.telemetry.settings import IngestSettings, TelemetrySettings
from streams.telemetry.topology import APP_ID


def build_worker_app(
    kafka: KafkaSettings | None = None,
    worker: WorkerSettings | None = None,
    settings: TelemetrySettings | None = None,
) -> faust.App:
    from streams.telemetry.metrics import WorkerMetrics
    from streams.telemetry.topology import register
    from streams.telemetry.views import register_views

    kafka = kafka or KafkaSettings()
    worker = worker or WorkerSettings()
    settings = settings or TelemetrySettings()
    registry = CollectorRegistry()
    app = make_app(APP_ID, kafka, worker, registry, partitions=settings.partitions)
    pipeline = register(app, settings, WorkerMetrics.create(registry), kafka.bootstrap)
    register_views(pipeline, registry)
    return app


def build_ingest(
    kafka: KafkaSettings | None = None,
    worker: WorkerSettings | None = None,
    settings: IngestSettings | None = None,
) -> faust.App:
    from streams.telemetry.ingest import build_ingest_app

    return build_ingest_app(
        kafka or KafkaSettings(),
        worker or WorkerSettings(),
        settings or IngestSettings(),
        workers_group=APP_ID,
        partitions=TelemetrySettings().partitions,
    )


def declare(kafka: KafkaSettings, settings: TelemetrySettings) -> None:
    """Create the pipeline's topics before any Kafka client can create them by default."""
    from streams.common.topics import declare
    from streams.telemetry.topology import topic_specs

    declare(kafka.bootstrap, topic_specs(settings.partitions), kafka.replication_factor)


def main() -> None:
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "config":
        from streams.common.faust_fixes import install_end_offset_correction
        from streams.telemetry.config_cli import run_config_command

        kafka = KafkaSettings()
        if kafka.correct_end_offsets:
            install_end_offset_correction()
        sys.exit(
            run_config_command(
                kafka.bootstrap,
                sys.argv[2:],
                defaults=TelemetrySettings().initial_config(),
                replication_factor=kafka.replication_factor,
            )
        )
    if command in ("worker", "ingest"):
        declare(KafkaSettings(), TelemetrySettings())
    if command == "ingest":
        # The ingest service is a Faust app too (web views and a producer): run its worker.
        sys.argv[1] = "worker"
        build_ingest().main()
        return
    build_worker_app().main()
