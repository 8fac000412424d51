"""The launches ETL's entry points: the only module that reads the environment.

python -m streams.launches                  # the batch job: one run, then exit
python -m streams.launches worker -l info   # the streaming way's worker

The batch job (the container's entry point, an ECS task) exits 0 when the object holds
the API's launches (written, or found unchanged), 1 with a one-line reason on stderr
when the run failed and wrote nothing, 2 when a setting is invalid or missing.
"""

from __future__ import annotations

import logging
import sys
import time

from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from streams.launches.extract import Policy
from streams.launches.settings import LaunchesSettings

log = logging.getLogger("streams.launches")

FAILED, INVALID_SETTINGS = 1, 2


def main() -> None:
    if sys.argv[1:2] == ["worker"]:
        from streams.launches.worker import run_worker

        run_worker(_settings())
        return
    if sys.argv[1:]:
        sys.exit(__doc__)
    sys.exit(run_batch())


def run_batch() -> int:
    started = time.monotonic()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = _settings()
    if settings.destination is None:
        return _fail(
            "S3_BUCKET is not set (or LAUNCHES_OUTPUT_DIR, for a local copy)", INVALID_SETTINGS
        )
    from streams.launches.extract import ExtractError
    from streams.launches.job import RunError, run_once
    from streams.launches.load import Destination, LoadError
    from streams.launches.metrics import Metrics
    from streams.launches.report import report

    registry = CollectorRegistry()
    metrics = Metrics.create(registry)
    try:
        destination = Destination.at(settings.destination, settings.key)
    except (OSError, ValueError) as exc:  # an output dir that is a file, unwritable...
        return _fail(f"invalid destination: {exc}", INVALID_SETTINGS)
    failure: str | None = None
    try:
        outcome = run_once(
            settings.api_url, policy(settings), destination, metrics, settings.max_rejected_fraction
        )
    except (ExtractError, LoadError, RunError) as exc:
        failure = str(exc)
    except Exception as exc:  # a bug: still one line, and the traceback in the log
        log.exception("unexpected failure")
        failure = f"unexpected {type(exc).__name__}: {exc}"
    metrics.run_seconds.set(time.monotonic() - started)
    metrics.ran(succeeded=failure is None)
    report(
        settings.metrics_file,
        settings.pushgateway_url,
        registry,
        metrics,
        succeeded=failure is None,
    )
    if failure is not None:
        return _fail(failure, FAILED)
    loaded = outcome.loaded
    sys.stdout.write(
        f"launches: {loaded.rows} rows {'written to' if loaded.written else 'unchanged at'} "
        f"{loaded.uri} ({len(outcome.checked.rejected)} records rejected) "
        f"in {time.monotonic() - started:.2f} s\n"
    )
    return 0


def policy(settings: LaunchesSettings) -> Policy:
    return Policy(
        connect_timeout=settings.connect_timeout_seconds,
        read_timeout=settings.read_timeout_seconds,
        attempt_timeout=settings.attempt_timeout_seconds,
        attempts=settings.attempts,
        backoff=settings.backoff_seconds,
        backoff_max=settings.backoff_max_seconds,
        retry_after_max=settings.retry_after_max_seconds,
        max_bytes=settings.max_response_bytes,
    )


def _settings() -> LaunchesSettings:
    try:
        return LaunchesSettings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        sys.stderr.write(f"launches: invalid settings: {problems}\n")
        sys.exit(INVALID_SETTINGS)


def _fail(reason: str, code: int) -> int:
    sys.stderr.write(f"launches: failed: {' '.join(reason.split())}\n")
    return code
