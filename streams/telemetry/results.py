"""What a closed window emits: its record (every series' figures) and its alerts (pure)."""

from __future__ import annotations

from typing import Any

from streams.telemetry.config import TelemetryConfig
from streams.telemetry.detect import flatline_reason, statistical_reason, threshold_reasons
from streams.telemetry.models import iso_ms
from streams.telemetry.windows import Figures

Record = dict[str, Any]


def window_record(
    device: str, start: int, end: int, trigger: str, config: TelemetryConfig, duplicates: int
) -> Record:
    """A closed window of one device: one record holding every series' figures."""
    return {
        "id": f"{device}|{iso_ms(start)}",
        "device_id": device,
        "window_start": iso_ms(start),
        "window_end": iso_ms(end),
        "closed_by": trigger,
        "config_version": config.version,
        "duplicates": duplicates,
        "series": [],
    }


def series_alert(
    window: Record,
    interface: str,
    metric: str,
    figures: Figures,
    past: dict[str, Any],
    config: TelemetryConfig,
) -> Record | None:
    """One alert for a series' window, listing every rule it broke, or None."""
    reasons = threshold_reasons(figures, config.thresholds.get(metric))
    flat = flatline_reason(metric, figures, config.flatline)
    if flat is not None:
        reasons.append(flat)
    unusual = statistical_reason(past, figures.mean, config.detector)
    if unusual is not None:
        reasons.append(unusual)
    if not reasons:
        return None
    device = window["device_id"]
    return {
        "id": f"{device}|{interface}|{metric}|{window['window_start']}",
        "device_id": device,
        "interface": interface,
        "metric": metric,
        "window_start": window["window_start"],
        "window_end": window["window_end"],
        "kinds": sorted({reason["kind"] for reason in reasons}),
        "reasons": reasons,
        "figures": figures.as_dict(),
        "at": window["window_end"],
        "config_version": config.version,
    }


def silent_alert(device: str, last: int, clock: float, config: TelemetryConfig) -> Record:
    """The alert of a device that has sent nothing since ``last`` (epoch ms)."""
    return {
        "id": f"{device}|silent|{iso_ms(last)}",
        "device_id": device,
        "interface": None,
        "metric": None,
        "kinds": ["silent"],
        "reasons": [{"kind": "silent", "last_reading": iso_ms(last)}],
        "at": iso_ms(int(clock)),
        "config_version": config.version,
    }
