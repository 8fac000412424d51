"""Settings of the flow-logs pipeline (env prefix ``FLOWLOGS_``), read only in main.py.

The S3 endpoint, region and credentials are the AWS SDK's own variables
(``AWS_ENDPOINT_URL``, ``AWS_REGION``, ``AWS_ACCESS_KEY_ID``...), see docs/flowlogs.md.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class FlowLogsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLOWLOGS_", frozen=True)

    source: str | None = Field(
        None, description="s3://bucket/prefix or a local directory the reader ingests"
    )
    format: str | None = Field(
        None,
        description=(
            "fields of header-less objects (CloudWatch delivery), e.g. '${version} "
            "${account-id} ...'; objects with a header line ignore it"
        ),
    )
    poll_seconds: float = Field(30.0, gt=0, description="how often the reader lists the source")
    object_attempts: int = Field(
        3, ge=1, description="reads of a corrupt object before it is dead-lettered"
    )
    max_future_seconds: int = Field(
        300,
        ge=0,
        description="flows starting later than the object's delivery (or the clock) plus this "
        "are dead-lettered as future_timestamp",
    )
    read_concurrency: int = Field(
        8, ge=1, description="objects a reader reads at once (their Kafka round trips overlap)"
    )
    chunk_rows: int = Field(5000, ge=1, description="flow rows per Kafka record at most")
    partitions: int = Field(6, ge=1, description="partitions of flowlogs.records")
    lake: str = Field(
        "var/flowlogs-lake", description="s3://bucket/prefix or directory of the Parquet copy"
    )
    batch_size: int = Field(200, ge=1, description="chunks per worker batch")
    batch_seconds: float = Field(0.5, gt=0, description="longest wait to fill a batch")
    lateness_seconds: int = Field(
        900, ge=0, description="event time a VPC's window stays open for the detectors"
    )
    dedupe_days: float = Field(
        7.0, gt=0, description="how long a worker remembers the chunks of an object"
    )
    alerts_kept: int = Field(1000, ge=1, description="recent alerts the views serve")
