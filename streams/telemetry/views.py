"""Web views of the telemetry workers.

``/telemetry/alerts`` and ``/telemetry/config`` come from topics every worker mirrors,
so any worker answers. A device's windows live with the worker that owns the device's
partition: another worker forwards the request there (by the key of
``telemetry.readings``, streams/common/web.py), so any worker answers that too. Until
the worker's mirror has caught up (the pipeline's ``ready``), views answer 503 with
``Retry-After`` rather than a seed configuration or a partial list of alerts.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from streams.common.query import Query, integer, names, text
from streams.common.web import NotFound, Views, route_latency
from streams.telemetry.columns import SeriesFigures
from streams.telemetry.metrics import ALERT_KINDS, PREFIX
from streams.telemetry.models import NAME, iso_ms
from streams.telemetry.runtime import READINGS, TelemetryPipeline
from streams.telemetry.state import chunk_key, open_windows, recent_key
from streams.telemetry.windows import series_values


def device_windows(pipeline: TelemetryPipeline, device: str) -> dict[str, Any] | None:
    """The device's open windows (figures so far) and its recent closed windows."""
    for runtime in pipeline.partitions.values():
        meta = runtime.windows.metas.get(device)
        if meta is not None:
            break
    else:
        return None
    io = runtime.io
    current = []
    for start, end in sorted(open_windows(meta).items()):
        chunks = meta["open"][str(start)][1]
        values = series_values(io.get(chunk_key(device, start, n)) or [] for n in range(chunks))
        current.append(
            {
                "window_start": iso_ms(start),
                "window_end": iso_ms(end),
                "series": SeriesFigures.of(values).as_series(),
            }
        )
    # Closed windows exactly as emitted to telemetry.aggregates, newest first.
    recent = [io.get(recent_key(device, start)) for start in reversed(meta.get("recent", []))]
    last = meta["max"]
    return {
        "device_id": device,
        "last_reading": None if last is None else iso_ms(last),
        "config_version": pipeline.config.version,
        "open": current,
        "recent": [window for window in recent if window is not None],
    }


def recent_alerts(pipeline: TelemetryPipeline, query: Query) -> list[dict[str, Any]]:
    limit = integer(query, "limit", 100, 1, pipeline.settings.alerts_kept)
    device = text(query, "device_id", NAME, 128)
    kinds = set(names(query, "kind", ALERT_KINDS))
    found = []
    for alert in pipeline.recent_alerts:
        if device not in (None, alert.get("device_id")):
            continue
        if kinds and kinds.isdisjoint(alert["kinds"]):
            continue
        found.append(alert)
        if len(found) == limit:
            break
    return found


def register_views(pipeline: TelemetryPipeline, registry: CollectorRegistry | None = None) -> None:
    """Declare the views; ``registry`` (the app's) gets their latency histogram."""
    latency = None if registry is None else route_latency(registry, PREFIX)
    views = Views(pipeline.app, latency, ready=pipeline.ready)

    views.page("/telemetry/alerts", lambda q: recent_alerts(pipeline, q))
    views.page("/telemetry/config", lambda q: pipeline.config.model_dump(mode="json"))

    def windows(query: Query, device_id: str) -> dict[str, Any]:
        answer = device_windows(pipeline, device_id)
        if answer is None:
            raise NotFound(f"no readings from device {device_id!r}", device_id=device_id)
        return answer

    views.routed(
        "/telemetry/devices/{device_id}/windows",
        windows,
        key="device_id",
        topic=pipeline.topics[READINGS],
    )
