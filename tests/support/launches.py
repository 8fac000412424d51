"""The launches ETL under test from outside: a scripted API server, the job as a process,
and the expected object computed independently (plain json and datetime, nothing from
streams.launches), so a test compares the code against a second computation."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

FIXTURES = Path(__file__).parents[1] / "fixtures" / "launches"
SAMPLE = FIXTURES / "launches_v4_sample.json"
#: The API's whole answer (205 launches), as shipped with the producers for `make run`.
FULL = Path(__file__).parents[2] / "producers" / "fixtures" / "launches_v4.json"

COLUMNS = ["flight_number", "mission_name", "launch_date", "mission_successful", "webcast_url"]
EXPECTED_SCHEMA = pa.schema(
    [
        pa.field("flight_number", pa.int64(), nullable=False),
        pa.field("mission_name", pa.string(), nullable=False),
        pa.field("launch_date", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("mission_successful", pa.bool_()),
        pa.field("webcast_url", pa.string()),
    ]
)


@dataclass(frozen=True)
class Reply:
    """One scripted answer: a status, a body, headers, a delay before it is sent, and a
    pause after each of its bytes (status line and headers included) to trickle it."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    trickle: float = 0.0
    head_at_once: bool = False  # with trickle: the status line and headers at once


#: Where the local API answers; any other path is a 404.
PATH = "/v4/launches"


class Api:
    """A local HTTP server answering each request for ``PATH`` with the next scripted
    reply (the last one forever); it counts them."""

    def __init__(self, replies: Sequence[Reply]) -> None:
        self.replies = list(replies)
        self.requests = 0
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != PATH:
                    self.send_error(404)
                    return
                with api.lock:
                    reply = api.replies[min(api.requests, len(api.replies) - 1)]
                    api.requests += 1
                time.sleep(reply.delay)
                try:
                    if reply.trickle:
                        self.trickle(reply)
                        return
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def trickle(self, reply: Reply) -> None:
                head = f"HTTP/1.1 {reply.status} OK\r\nContent-Length: {len(reply.body)}\r\n\r\n"
                if reply.head_at_once:
                    self.wfile.write(head.encode())
                    head = ""
                for byte in head.encode() + reply.body:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(reply.trickle)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{PATH}"


@contextmanager
def api(*replies: Reply) -> Iterator[Api]:
    server = Api(replies)
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()


def ok(records: Any) -> Reply:
    return Reply(200, json.dumps(records).encode(), {"Content-Type": "application/json"})


def payload(path: Path = FULL) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = json.loads(path.read_text())
    return records


def run_job(env: Mapping[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m streams.launches`` with ``env`` over a clean AWS environment."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_", "LAUNCHES_"))}
    return subprocess.run(
        [sys.executable, "-m", "streams.launches"],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def expected_rows(records: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """The rows the seed's transform gives: one per id (its last record), ordered by
    launch date, flight number and mission name (then id)."""
    latest: dict[str, Mapping[str, Any]] = {}
    for record in records:
        latest.pop(record["id"], None)
        latest[record["id"]] = record
    rows = []
    for launch_id, record in latest.items():
        when = datetime.strptime(record["date_utc"], "%Y-%m-%dT%H:%M:%S.%f%z")
        links = record.get("links") or {}
        row = (
            record["flight_number"],
            record["name"],
            when,
            record.get("success"),
            links.get("webcast"),
        )
        rows.append((row, launch_id))
    rows.sort(key=lambda pair: (pair[0][2], pair[0][0], pair[0][1], pair[1]))
    return [row for row, _ in rows]


def object_rows(body: bytes) -> tuple[pa.Schema, list[tuple[Any, ...]]]:
    """The schema and the rows (in file order) of a Parquet object."""
    table = pq.read_table(io.BytesIO(body))
    rows = list(zip(*(table.column(name).to_pylist() for name in COLUMNS), strict=True))
    return table.schema, rows


def s3_env(endpoint: str, bucket: str) -> dict[str, str]:
    """The job's or the worker's environment for ``bucket`` on the S3 API at ``endpoint``
    (moto's server: any credentials do)."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "S3_BUCKET": bucket,
    }
