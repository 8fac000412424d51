"""The README documents what a user can set."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from streams.common.settings import KafkaSettings, WorkerSettings
from streams.orders.settings import OrdersSettings
from streams.telemetry.settings import IngestSettings, TelemetrySettings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def env_names(settings: type[BaseSettings]) -> list[str]:
    prefix = settings.model_config.get("env_prefix", "")
    names = []
    for name, field in settings.model_fields.items():
        alias = field.validation_alias
        names.append(alias if isinstance(alias, str) else f"{prefix}{name}".upper())
    return names


@pytest.mark.parametrize(
    "settings", [KafkaSettings, WorkerSettings, OrdersSettings, TelemetrySettings, IngestSettings]
)
def test_every_setting_is_in_the_readme(settings: type[BaseSettings]) -> None:
    """Each environment variable a worker reads appears in the README's settings table."""
    missing = [name for name in env_names(settings) if f"`{name}`" not in README]
    assert not missing
