"""Settings of the flow-logs pipeline (env prefix ``FLOWLOGS_``), read only in main.py.

The S3 endpoint, region and credentials are the AWS SDK's own variables
(``AWS_ENDPOINT_URL``, ``AWS_REGION``, ``AWS_ACCESS_KEY_ID``...), see docs/flowlogs.md.
"""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.flowlogs.detect_base import DetectorSettings
from streams.flowlogs.parse import check_format


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
        5, ge=1, description="reads of an unreadable object before it is dead-lettered"
    )
    settle_seconds: float = Field(
        10.0,
        ge=0,
        description="a local file changed more recently than this is read at a later poll "
        "(a writer may still be appending to it; S3 objects appear whole)",
    )
    max_future_seconds: int = Field(
        300,
        ge=0,
        description="flows starting later than the object's delivery time (else its "
        "last-modified time) plus this are dead-lettered as future_timestamp",
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
    detection_window_rows: int = Field(
        2_000_000,
        ge=1,
        description="rows of one VPC's 5-minute window the detectors hold at most (memory); "
        "more are counted and left unscanned",
    )
    dedupe_days: float = Field(
        7.0, gt=0, description="how long a worker remembers the chunks of an object"
    )
    five_minute_days: float = Field(
        7.0, gt=0, description="days of 5-minute rollups a worker keeps (the lake keeps all)"
    )
    hourly_days: float = Field(90.0, gt=0, description="days of hourly rollups a worker keeps")
    sweep_seconds: float = Field(
        600.0, gt=0, description="how often a worker deletes what it no longer keeps"
    )
    alerts_kept: int = Field(1000, ge=1, description="recent alerts the views serve")
    scan_port_score: float = Field(
        100.0, gt=0, description="weighted distinct ports of one source in a window: a scan"
    )
    scan_host_score: float = Field(
        50.0, gt=0, description="weighted distinct hosts of one source in a window: a scan"
    )
    exfil_min_bytes: float = Field(
        1_000_000.0, ge=0, description="egress to public addresses in a window below which no alert"
    )
    exfil_z: float = Field(4.0, gt=0, description="deviations above a source's baseline")
    exfil_min_history: int = Field(
        12, ge=1, description="windows with traffic a source's baseline needs first"
    )
    long_lived_windows: int = Field(
        12, ge=2, description="consecutive 5-minute windows that make a connection long-lived"
    )
    country_learning_windows: int = Field(
        12, ge=0, description="windows from a VPC's first in which its countries are learned"
    )

    @field_validator("format")
    @classmethod
    def _usable_format(cls, value: str | None) -> str | None:
        # Checked at start-up: an unusable format would otherwise dead-letter every
        # header-less object, and record it as done, for a fault of the setting.
        if value is not None:
            check_format(value)  # ValueError: pydantic names the setting and the fault
        return value

    def detectors(self) -> DetectorSettings:
        return DetectorSettings(
            scan_port_score=self.scan_port_score,
            scan_host_score=self.scan_host_score,
            exfil_min_bytes=self.exfil_min_bytes,
            exfil_z=self.exfil_z,
            exfil_min_history=self.exfil_min_history,
            long_lived_windows=self.long_lived_windows,
            country_learning_windows=self.country_learning_windows,
        )
