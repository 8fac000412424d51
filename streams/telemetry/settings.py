"""Settings of the telemetry pipeline, read only in main.py.

``TelemetrySettings`` (env prefix ``TELEMETRY_``) configures the workers;
``IngestSettings`` (env prefix ``TELEMETRY_INGEST_``) the HTTP ingest service. The
window, grace and detector settings that change at run time live in the config topic
(streams/telemetry/config.py); the two here only seed it while it is empty.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.telemetry.config import TelemetryConfig


class TelemetrySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TELEMETRY_", frozen=True)

    partitions: int = Field(6, ge=1, description="partitions of telemetry.readings and its table")
    batch_size: int = Field(5000, ge=1, description="records per batch taken from Kafka")
    batch_bytes: int = Field(
        4_000_000, ge=1, description="record bytes handled per step (a batch is split)"
    )
    batch_seconds: float = Field(0.2, gt=0, description="longest wait to fill a batch")
    window_seconds: int = Field(
        60, ge=1, description="window size until the config topic holds a version"
    )
    grace_seconds: int = Field(
        5, ge=0, description="event time past a window's end before it closes (seed)"
    )
    close_interval_seconds: float = Field(
        0.5, gt=0, description="how often quiet devices' windows are checked on wall clock"
    )
    max_future_seconds: int = Field(
        300, ge=0, description="readings stamped further ahead of the clock are dead-lettered"
    )
    recent_windows: int = Field(5, ge=1, description="closed windows kept per key for views")
    alerts_kept: int = Field(1000, ge=1, description="recent alerts each worker serves")
    top_devices: int = Field(10, ge=0, description="busiest devices exported as metrics")
    device_expiry_seconds: int = Field(
        7 * 86_400,
        ge=1,
        description=(
            "a device that sent nothing for this long (wall-clock time since its last "
            "reading was processed, or since its partition was loaded), with every window "
            "closed and its silent alert raised, is forgotten: its state is deleted from "
            "memory and the table (and changelog), its view answers 404, and if it sends "
            "again it starts afresh, its detector warming up again"
        ),
    )

    def initial_config(self) -> TelemetryConfig:
        return TelemetryConfig(window_seconds=self.window_seconds, grace_seconds=self.grace_seconds)


class IngestSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TELEMETRY_INGEST_", frozen=True)

    api_key: SecretStr | None = Field(
        None, description="when set, requests need it in the X-API-Key header"
    )
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024, description="larger bodies get 413")
    max_inflight_readings: int = Field(
        200_000, ge=1, description="readings awaiting Kafka's acknowledgement before 503"
    )
    max_lag_records: int = Field(
        20_000, ge=1, description="records the workers are behind before 429"
    )
    lag_interval_seconds: float = Field(1.0, gt=0, description="how often lag is measured")
    max_future_seconds: int = Field(
        300, ge=0, description="readings stamped further ahead of the clock get 422"
    )

    @field_validator("api_key")
    @classmethod
    def _not_a_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        secret = value.get_secret_value()
        if secret.lower() in {"changeme", "change-me", "secret", "password"} or len(secret) < 16:
            raise ValueError(
                "TELEMETRY_INGEST_API_KEY must be at least 16 characters, not a placeholder"
            )
        return value
