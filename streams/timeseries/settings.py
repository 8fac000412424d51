"""Settings of the time-series API (env prefix ``TIMESERIES_``), read only in main.py."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class TimeSeriesSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TIMESERIES_", frozen=True)

    partitions: int = Field(8, ge=1, description="partitions of timeseries.writes and the table")
    api_key: str | None = Field(
        None,
        min_length=16,
        description="when set, every request but /health and /metrics needs X-API-Key",
    )
    max_body_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="larger request bodies are refused with 413"
    )
    max_points_per_request: int = Field(
        100_000, ge=1, description="points one create or append may carry (413 beyond)"
    )
    page_limit: int = Field(10_000, ge=1, description="points or series one page holds at most")
    write_timeout_seconds: float = Field(
        10.0, gt=0, description="a write not answered within this is a 503 (it may still apply)"
    )
    # At most store.COUNTED_BY: the count remembers one batch's changes for its replay.
    batch_size: int = Field(500, ge=1, le=1024, description="write commands per agent batch")
    batch_seconds: float = Field(0.005, gt=0, description="longest wait to fill a batch")
    answers_days: int = Field(
        1, ge=1, description="how long a request's answer is kept for its Idempotency-Key"
    )
