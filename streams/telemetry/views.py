"""Web views of the telemetry workers.

``/telemetry/alerts`` and ``/telemetry/config`` come from topics every worker mirrors,
so any worker answers. A device's windows live with the worker that owns the device's
partition: another worker forwards the request there (Faust's router, by the key of
``telemetry.readings``), so any worker answers that too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from faust.exceptions import SameNode
from faust.web.exceptions import ServiceUnavailable

from streams.common.query import integer, json_page
from streams.telemetry.columns import SeriesFigures
from streams.telemetry.models import iso_ms
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


def recent_alerts(pipeline: TelemetryPipeline, query: Mapping[str, str]) -> list[dict[str, Any]]:
    limit = integer(query, "limit", 100, 1, pipeline.settings.alerts_kept)
    device, kind = query.get("device_id"), query.get("kind")
    found = []
    for alert in pipeline.recent_alerts:
        if device not in (None, alert.get("device_id")) or kind not in (None, *alert["kinds"]):
            continue
        found.append(alert)
        if len(found) == limit:
            break
    return found


def register_views(pipeline: TelemetryPipeline) -> None:
    app = pipeline.app
    readings = pipeline.topics[READINGS]

    json_page(app, "/telemetry/alerts", lambda q: recent_alerts(pipeline, q))
    json_page(app, "/telemetry/config", lambda q: pipeline.config.model_dump(mode="json"))

    @app.page("/telemetry/devices/{device_id}/windows", name="telemetry_device_windows")
    async def windows(view: Any, request: Any, device_id: str) -> Any:
        try:
            return await app.router.route_topic_req(readings, device_id.encode(), view, request)
        except SameNode:
            pass
        except ServiceUnavailable:
            return view.json({"error": "partition assignment under way; retry"}, status=503)
        answer = device_windows(pipeline, device_id)
        if answer is None:
            return view.json({"error": f"no readings from device {device_id!r}"}, status=404)
        return view.json(answer)
