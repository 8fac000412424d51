"""Settings of the launches ETL, read only in main.py.

The seed's names have no prefix (``SPACEX_API_URL``, ``S3_BUCKET``, ``S3_KEY``; the AWS
SDK's own ``AWS_ENDPOINT_URL``, ``AWS_REGION`` and credential chain); tuning has the
``LAUNCHES_`` prefix.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_API_URL = "https://api.spacexdata.com/v4/launches"


class LaunchesSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LAUNCHES_", frozen=True, populate_by_name=True)

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
    connect_timeout_seconds: float = Field(5.0, gt=0, description="to open a connection")
    read_timeout_seconds: float = Field(30.0, gt=0, description="longest silence of the API")
    attempt_timeout_seconds: float = Field(
        120.0, gt=0, description="longest whole request, however it trickles"
    )
    attempts: int = Field(5, ge=1, description="tries of a timed-out or failed request")
    backoff_seconds: float = Field(0.5, ge=0, description="wait after the first failure")
    backoff_max_seconds: float = Field(20.0, ge=0, description="longest wait between tries")
    retry_after_max_seconds: float = Field(
        120.0, ge=0, description="a longer Retry-After fails the run instead of waiting"
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
        2.0, gt=0, description="worker: rewrite once the table was quiet this long"
    )
    debounce_max_seconds: float = Field(
        30.0, gt=0, description="worker: rewrite at least this often while changes go on"
    )

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
