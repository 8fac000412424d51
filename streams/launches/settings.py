"""Settings of the launches ETL, read only in main.py.

The seed's names have no prefix (``SPACEX_API_URL``, ``S3_BUCKET``, ``S3_KEY``; the AWS
SDK's own ``AWS_ENDPOINT_URL``, ``AWS_REGION`` and credential chain); tuning has the
``LAUNCHES_`` prefix.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_API_URL = "https://api.spacexdata.com/v4/launches"


class LaunchesSettings(BaseSettings):
    # No infinite or NaN seconds: a timeout of inf never ends, a wait of 1e300 overflows.
    model_config = SettingsConfigDict(
        env_prefix="LAUNCHES_", frozen=True, populate_by_name=True, allow_inf_nan=False
    )

    api_url: str = Field(
        DEFAULT_API_URL,
        validation_alias="SPACEX_API_URL",
        description="the launches to extract: http(s):// (or file:// for a local copy)",
    )
    bucket: str | None = Field(
        None, validation_alias="S3_BUCKET", description="the bucket the object is written to"
    )
    key: str = Field(
        "launches.parquet",
        min_length=1,
        validation_alias="S3_KEY",
        description="the object's key in the bucket",
    )
    output_dir: Path | None = Field(
        None, description="write to this local directory instead of S3 (make run)"
    )
    connect_timeout_seconds: float = Field(5.0, gt=0, le=3600, description="to open a connection")
    read_timeout_seconds: float = Field(
        30.0, gt=0, le=3600, description="longest silence of the API"
    )
    attempt_timeout_seconds: float = Field(
        120.0, gt=0, le=86400, description="longest whole request, however it trickles"
    )
    attempts: int = Field(5, ge=1, le=100, description="tries of a timed-out or failed request")
    backoff_seconds: float = Field(0.5, ge=0, le=3600, description="wait after the first failure")
    backoff_max_seconds: float = Field(
        20.0, ge=0, le=3600, description="longest wait between tries"
    )
    retry_after_max_seconds: float = Field(
        120.0, ge=0, le=86400, description="a longer Retry-After fails the run instead of waiting"
    )
    max_response_bytes: int = Field(
        64 * 1024 * 1024, ge=1024, description="a larger answer fails the request"
    )
    max_rejected_fraction: float = Field(
        0.1,
        ge=0,
        le=1,
        description="more invalid records than this fails the run (nothing written)",
    )
    metrics_file: Path | None = Field(
        None, description="batch job: write its metrics here (node_exporter textfile)"
    )
    pushgateway_url: str | None = Field(
        None, description="batch job: push its metrics to this Prometheus Pushgateway"
    )
    debounce_seconds: float = Field(
        2.0, gt=0, le=3600, description="worker: rewrite once the table was quiet this long"
    )
    debounce_max_seconds: float = Field(
        30.0, gt=0, le=86400, description="worker: rewrite at least this often while changes go on"
    )

    @field_validator("bucket", "output_dir", "metrics_file", "pushgateway_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("api_url")
    @classmethod
    def _fetchable(cls, value: str) -> str:
        return _url(value, ("http", "https", "file"))

    @field_validator("pushgateway_url")
    @classmethod
    def _pushable(cls, value: str | None) -> str | None:
        return None if value is None else _url(value, ("http", "https"))

    @field_validator("bucket")
    @classmethod
    def _bucket_name(cls, value: str | None) -> str | None:
        if value is not None and not BUCKET.fullmatch(value):
            raise ValueError("not an S3 bucket name (3-63 of a-z, 0-9, '.', '-')")
        return value

    @field_validator("key")
    @classmethod
    def _object_key(cls, value: str) -> str:
        parts = value.split("/")
        if any(part in ("", ".", "..") for part in parts) or len(value.encode()) > 1024:
            raise ValueError("an object key: no empty, '.' or '..' part, no leading or trailing /")
        if any(ord(char) < 32 or ord(char) == 127 for char in value):
            raise ValueError("an object key without control characters")
        return value

    @field_validator("metrics_file")
    @classmethod
    def _a_file(cls, value: Path | None) -> Path | None:
        if value is not None and value.name in ("", ".", ".."):
            raise ValueError("must name a file")
        return value

    @model_validator(mode="after")
    def _one_destination(self) -> LaunchesSettings:
        if self.bucket is not None and self.output_dir is not None:
            raise ValueError("set S3_BUCKET or LAUNCHES_OUTPUT_DIR, not both")
        return self

    @property
    def destination(self) -> str | None:
        """Where the object goes, as a URI for streams.common.storage; None if unset."""
        if self.bucket:
            return f"s3://{self.bucket}"
        if self.output_dir is not None:
            return str(self.output_dir)
        return None


BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def _url(value: str, schemes: tuple[str, ...]) -> str:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises on a port that is no number)
    except ValueError as exc:
        raise ValueError(f"not a URL: {exc}") from exc
    if parts.scheme not in schemes or (parts.scheme != "file" and not parts.hostname):
        raise ValueError(f"a {' or '.join(s + '://' for s in schemes)} URL")
    return value
