"""An S3 API for tests: moto's server in this process, on 127.0.0.1, emptied per test."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer


@contextmanager
def moto_server() -> Iterator[str]:
    """A running moto server; yields its endpoint URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def empty_bucket(endpoint: str, bucket: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Reset the server to one empty ``bucket``, with dummy credentials in the environment."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    reset = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(reset, timeout=10).close()
    s3(endpoint).create_bucket(Bucket=bucket)
    return endpoint


def s3(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


def keys(endpoint: str, bucket: str) -> list[str]:
    listed = s3(endpoint).list_objects_v2(Bucket=bucket).get("Contents", [])
    return sorted(obj["Key"] for obj in listed)
