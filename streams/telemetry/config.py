"""The live configuration: window sizes, thresholds and detector settings.

It lives in the compacted topic ``telemetry.config`` under one key: each record is a
whole document with a version one above the last. Every worker mirrors the topic and
applies the newest version within about a second, without a restart; the command
``python -m streams.telemetry config set ...`` writes a new version. A window's size
is fixed when the window opens, so a resize applies to windows that open after it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

CONFIG_TOPIC = "telemetry.config"
CONFIG_KEY = "telemetry"


class Threshold(BaseModel):
    """A fixed limit on one figure of every window of a metric."""

    # No NaN or infinity in any model here: JSON writes them as null, so such a version
    # would read back as a different (or invalid) document.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    figure: Literal["min", "max", "mean", "p95"] = "mean"
    above: float | None = None
    below: float | None = None

    @model_validator(mode="after")
    def _has_a_limit(self) -> Threshold:
        if self.above is None and self.below is None:
            raise ValueError("a threshold needs 'above', 'below' or both")
        return self


class Detector(BaseModel):
    """The statistical detector: how far a window's mean may stray from its history.

    ``zscore`` compares the window's mean with the mean and standard deviation of the
    last ``history`` windows of the same key; ``ewma`` with an exponentially weighted
    mean and variance (weight ``alpha`` for the newest window). Either flags the window
    when the distance is above ``z`` standard deviations, once ``min_windows`` windows
    of history exist. The deviation has two floors, ``min_std`` and ``min_relative_std``
    times the expected level: a nearly constant series, or a slowly wandering one (link
    utilization), would otherwise flag every wobble.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    kind: Literal["zscore", "ewma", "off"] = "ewma"
    z: float = Field(4.0, gt=0)
    alpha: float = Field(0.2, gt=0, le=1)
    history: int = Field(20, ge=2, le=500)
    min_windows: int = Field(5, ge=2)
    min_std: float = Field(1.0, ge=0)
    min_relative_std: float = Field(0.1, ge=0)

    @model_validator(mode="after")
    def _history_covers_warm_up(self) -> Detector:
        if self.min_windows > self.history:
            raise ValueError("min_windows cannot exceed history: the z-score would never start")
        return self


class Flatline(BaseModel):
    """A stuck sensor: every value of a full window is the same."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    enabled: bool = True
    min_count: int = Field(5, ge=2)
    metrics: list[str] = Field(default_factory=lambda: ["utilization", "latency_ms", "cpu"])


def _default_thresholds() -> dict[str, Threshold]:
    # Saturation shows in a window's peak: one poll at 98 % is a full link, even when
    # the window's mean is 60 %. Latency judges the p95, so one slow probe is not enough.
    return {
        "utilization": Threshold(figure="max", above=95.0),
        "errors": Threshold(figure="max", above=50.0),
        "drops": Threshold(figure="max", above=100.0),
        "latency_ms": Threshold(figure="p95", above=200.0),
        "cpu": Threshold(figure="max", above=95.0),
        "memory": Threshold(figure="max", above=95.0),
    }


class TelemetryConfig(BaseModel):
    """One version of the live configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    version: int = Field(0, ge=0)
    window_seconds: int = Field(60, ge=1, le=86_400)
    grace_seconds: int = Field(5, ge=0, le=3_600)
    silent_after_seconds: int = Field(300, ge=1)
    thresholds: dict[str, Threshold] = Field(default_factory=_default_thresholds)
    detector: Detector = Field(default_factory=Detector)
    flatline: Flatline = Field(default_factory=Flatline)

    @property
    def window_ms(self) -> int:
        return self.window_seconds * 1000

    @property
    def grace_ms(self) -> int:
        return self.grace_seconds * 1000


def apply_changes(config: TelemetryConfig, changes: dict[str, Any]) -> TelemetryConfig:
    """A new version of ``config`` with dotted-path ``changes`` (``None`` removes a key).

    ``{"thresholds.cpu.above": 80, "detector.kind": "zscore"}`` changes two settings;
    the result is validated whole, so a bad change raises before anything is written.
    """
    document = config.model_dump(mode="json")
    for path, value in changes.items():
        *parents, leaf = path.split(".")
        node = document
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"{path}: {part} is not a section")
        if value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    document["version"] = config.version + 1
    return TelemetryConfig.model_validate(document)


_UNSET = object()


def describe_changes(old: TelemetryConfig, new: TelemetryConfig) -> list[str]:
    """One ``key old -> new`` line per changed setting (a whole added or removed section
    is one line; ``(unset)`` marks the missing side); the version is left out."""
    before = old.model_dump(mode="json")
    after = new.model_dump(mode="json")
    del before["version"], after["version"]
    return list(_diff(before, after, ""))


def _diff(old: Any, new: Any, path: str) -> Iterator[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*old, *(k for k in new if k not in old)]:
            yield from _diff(old.get(key, _UNSET), new.get(key, _UNSET), f"{path}{key}.")
    elif old != new:
        yield f"{path.rstrip('.')} {_render(old)} -> {_render(new)}"


def _render(value: Any) -> str:
    return "(unset)" if value is _UNSET else json.dumps(value)
