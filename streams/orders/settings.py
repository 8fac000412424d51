"""Settings of the orders pipeline (env prefix ``ORDERS_``), read only in main.py."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.orders.logic import DAY_MS, Rules


class OrdersSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERS_", frozen=True)

    partitions: int = Field(4, ge=1, description="partitions of orders.raw and its tables")
    batch_size: int = Field(2000, ge=1, description="records per processing batch")
    grace_seconds: int = Field(
        300, ge=0, description="event time past a day's end before it closes"
    )
    retention_days: int = Field(
        45, ge=1, description="event-time horizon: older orders are dead-lettered as late"
    )
    history_days: int = Field(
        60, ge=2, description="days of figures the tables and views keep (> retention_days)"
    )
    idle_close_seconds: int = Field(
        900, ge=1, description="wall-clock quiet after a day's end that also closes it"
    )
    max_future_seconds: int = Field(
        300, ge=0, description="orders stamped further ahead of the clock are dead-lettered"
    )
    channels: str = Field(
        "web,mobile,api",
        description="known channels (comma-separated): metric labels; others are 'other'",
    )
    price_tolerance_pct: Decimal = Field(
        Decimal(0), ge=0, le=100, description="allowed item price difference from the catalog"
    )
    revenue_statuses: str = Field("confirmed", description="comma-separated statuses")
    low_stock_threshold: int = Field(20, ge=0, description="available units below this alert")
    parquet_uri: str = Field(
        "var/lake/orders",
        description="enriched Parquet copy: a directory or s3://bucket/prefix; empty: none",
    )
    alerts_kept: int = Field(10_000, ge=1, description="newest alerts each worker serves")
    report_interval_seconds: float = Field(2.0, gt=0, description="how often days are closed")
    anomaly_z: float = Field(3.0, gt=0, description="|z| that makes an hourly spike or drop")
    anomaly_alpha: float = Field(0.3, gt=0, le=1, description="EWMA weight of the newest hour")
    anomaly_warmup_hours: int = Field(6, ge=2, description="closed hours before alerting")

    def rules(self) -> Rules:
        return Rules(
            grace_ms=self.grace_seconds * 1000,
            retention_ms=self.retention_days * DAY_MS,
            price_tolerance=self.price_tolerance_pct / 100,
            revenue_statuses=frozenset(s.strip() for s in self.revenue_statuses.split(",")),
            max_future_ms=self.max_future_seconds * 1000,
            history_ms=self.history_days * DAY_MS,
            partitions=self.partitions,
        )

    @model_validator(mode="after")
    def _history_covers_retention(self) -> OrdersSettings:
        # A late order within retention revises its day: the day's figures must exist.
        if self.history_days <= self.retention_days:
            raise ValueError("ORDERS_HISTORY_DAYS must be greater than ORDERS_RETENTION_DAYS")
        return self

    def known_channels(self) -> frozenset[str]:
        return frozenset(c.strip() for c in self.channels.split(",") if c.strip())
