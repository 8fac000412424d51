"""Atomic puts of streams.common.storage against a real S3 API (moto's server, in process)."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import pytest

from streams.common import storage
from tests.integration.s3_server import empty_bucket, keys, s3

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

BUCKET = "launches"


@pytest.fixture
def endpoint(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """An empty bucket, reached through AWS_ENDPOINT_URL as a deployment would set it."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    return empty_bucket(moto_endpoint, BUCKET, monkeypatch)


def body(endpoint: str, key: str) -> bytes:
    return bytes(s3(endpoint).get_object(Bucket=BUCKET, Key=key)["Body"].read())


def test_puts_land_as_whole_objects_on_the_endpoint_from_the_environment(
    endpoint: str, tmp_path: Path
) -> None:
    """Bytes, a writer's output and a local file each become one object with exactly
    their content, on the server AWS_ENDPOINT_URL names."""
    fs, root = storage.open_filesystem(f"s3://{BUCKET}/raw")
    source = tmp_path / "launches.json"
    source.write_bytes(b'[{"flight_number": 1}]' * 1000)

    storage.put_bytes(fs, f"{root}/a.bin", b"\x00\x01 exact bytes")
    storage.put(fs, f"{root}/b.csv", lambda out: out.write(b"id,name\n1,FalconSat\n"))
    storage.put_file(fs, f"{root}/c.json", source)

    assert keys(endpoint, BUCKET) == ["raw/a.bin", "raw/b.csv", "raw/c.json"]
    assert body(endpoint, "raw/a.bin") == b"\x00\x01 exact bytes"
    assert body(endpoint, "raw/b.csv") == b"id,name\n1,FalconSat\n"
    assert body(endpoint, "raw/c.json") == source.read_bytes()


def test_a_writer_that_fails_uploads_nothing(endpoint: str) -> None:
    """A writer raising mid-write creates no object, and an existing object keeps its
    content."""
    fs, root = storage.open_filesystem(f"s3://{BUCKET}/raw")
    storage.put_bytes(fs, f"{root}/kept.parquet", b"old content")

    def crashing(out: BinaryIO) -> None:
        out.write(b"half of the")
        raise OSError("source gone")

    for name in ("new.parquet", "kept.parquet"):
        with pytest.raises(OSError, match="source gone"):
            storage.put(fs, f"{root}/{name}", crashing)

    assert keys(endpoint, BUCKET) == ["raw/kept.parquet"]
    assert body(endpoint, "raw/kept.parquet") == b"old content"
