"""The launches batch job's speed (``python -m bench --only launches``): the whole job,
``python -m streams.launches`` from process start to exit, extracting the 205 recorded
launches from a local HTTP server and loading to a local S3 API (moto's server, in this
process), ``RUNS`` times each way:

- ``first``: a new key each run, so every run transforms and uploads;
- ``unchanged``: the same key again, so every run reads the object back and skips the
  upload (the rerun of a scheduled job when the API did not change).

Then the stages in this process, without the interpreter's start and imports: extract
(HTTP + JSON), check (the pydantic rule), transform (Arrow table + Parquet bytes), load.
"""

from __future__ import annotations

import functools
import logging
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from producers.orders import fixture

RUNS = 10
BUCKET = "bench-launches"


@contextmanager
def _api() -> Iterator[str]:
    """The recorded answer on a local HTTP server; yields its URL."""
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(fixture("").parent))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/fixtures/launches_v4.json"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def _s3() -> Iterator[str]:
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )
        client.create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        server.stop()


def _job(env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "streams.launches"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"the job failed: {done.stderr.strip()}")
    return seconds


def _summary(seconds: list[float]) -> dict[str, Any]:
    return {
        "runs": len(seconds),
        "median_s": round(statistics.median(seconds), 3),
        "max_s": round(max(seconds), 3),
        "min_s": round(min(seconds), 3),
    }


def _stages(url: str, endpoint: str) -> dict[str, float]:
    """Milliseconds of each stage in this process (imports and start excluded)."""
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    from streams.launches.extract import Policy, fetch_records
    from streams.launches.load import Destination, load
    from streams.launches.models import check_all
    from streams.launches.transform import to_parquet, to_table

    def timed(call: Callable[[], Any]) -> tuple[Any, float]:
        started = time.perf_counter()
        value = call()
        return value, round((time.perf_counter() - started) * 1000, 1)

    records, extract_ms = timed(lambda: fetch_records(url, Policy()))
    checked, check_ms = timed(lambda: check_all(records))
    body, transform_ms = timed(lambda: to_parquet(to_table(checked.launches)))
    destination = Destination.at(f"s3://{BUCKET}", "stages.parquet")
    _, load_ms = timed(lambda: load(body, destination))
    _, unchanged_ms = timed(lambda: load(body, destination))
    return {
        "extract_ms": extract_ms,
        "check_ms": check_ms,
        "transform_ms": transform_ms,
        "load_ms": load_ms,
        "load_unchanged_ms": unchanged_ms,
        "object_bytes": len(body),
    }


def run(runs: int = RUNS) -> dict[str, Any]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs each request
    with _api() as url, _s3() as endpoint:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_"))},
            "SPACEX_API_URL": url,
            "S3_BUCKET": BUCKET,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
        }
        first = [_job({**env, "S3_KEY": f"first-{i}.parquet"}) for i in range(runs)]
        unchanged = [_job({**env, "S3_KEY": "first-0.parquet"}) for _ in range(runs)]
        os.environ.update({k: env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")})
        stages = _stages(url, endpoint)
    return {
        "records": 205,
        "target_s": 2.0,
        "first": _summary(first),
        "unchanged": _summary(unchanged),
        "stages": stages,
        "load_1m": round(os.getloadavg()[0], 2),
    }


def markdown(figures: dict[str, Any]) -> str:
    s = figures["stages"]
    lines = [
        "| launches batch job, 205 records, process start to exit | median | max |",
        "|---|--:|--:|",
    ]
    for name, label in (("first", "object written"), ("unchanged", "object unchanged")):
        f = figures[name]
        lines.append(f"| {label} ({f['runs']} runs) | {f['median_s']:.2f} s | {f['max_s']:.2f} s |")
    lines.append(
        f"\nStages in process: extract {s['extract_ms']} ms, check {s['check_ms']} ms, "
        f"transform {s['transform_ms']} ms, load {s['load_ms']} ms (unchanged "
        f"{s['load_unchanged_ms']} ms); object {s['object_bytes']:,} bytes."
    )
    return "\n".join([*lines, ""])
