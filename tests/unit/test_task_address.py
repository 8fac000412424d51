"""WEB_HOST=ecs-task: a worker advertises its ECS task's address, read from the task
metadata endpoint (here a local server answering as Fargate's does)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from streams.common.app import make_app
from streams.common.settings import KafkaSettings, WorkerSettings
from streams.common.task_address import TaskAddressError, advertised_host, task_address

TASK = {"Networks": [{"NetworkMode": "awsvpc", "IPv4Addresses": ["10.42.1.7"]}]}


def serving(body: bytes) -> type[BaseHTTPRequestHandler]:
    class Metadata(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Metadata


@pytest.fixture
def endpoint(request: pytest.FixtureRequest) -> Iterator[str]:
    body = getattr(request, "param", json.dumps(TASK).encode())
    server = HTTPServer(("127.0.0.1", 0), serving(body))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v4/container-id"
    finally:
        server.shutdown()
        server.server_close()


def test_the_task_address_is_read_from_the_metadata_endpoint(endpoint: str) -> None:
    assert task_address(endpoint) == "10.42.1.7"
    assert advertised_host("ecs-task", endpoint) == "10.42.1.7"


def test_any_other_web_host_is_advertised_as_given() -> None:
    assert advertised_host("orders-1", None) == "orders-1"


def test_the_worker_app_advertises_the_task_address(endpoint: str) -> None:
    worker = WorkerSettings(web_host="ecs-task", ecs_metadata_uri=endpoint)
    app = make_app("task-address", KafkaSettings(), worker, CollectorRegistry(), partitions=1)
    assert str(app.conf.canonical_url) == f"http://10.42.1.7:{worker.web_port}"


def test_outside_ecs_the_worker_says_why_it_cannot_start() -> None:
    with pytest.raises(TaskAddressError, match="ECS_CONTAINER_METADATA_URI_V4 is not set"):
        advertised_host("ecs-task", None)


@pytest.mark.parametrize(
    "endpoint", [b"<html>", b'{"Networks": []}', b'{"Networks": [{}]}', b"[]"], indirect=True
)
def test_an_answer_without_an_address_is_a_clear_error(endpoint: str) -> None:
    with pytest.raises(TaskAddressError, match="no task address from"):
        task_address(endpoint)


def test_an_endpoint_that_refuses_is_a_clear_error() -> None:
    with pytest.raises(TaskAddressError, match="no task address from"):
        task_address("http://127.0.0.1:9/v4/none", timeout=2)
