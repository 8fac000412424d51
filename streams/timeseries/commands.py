"""The records of ``timeseries.writes``: one write command each (pure).

``{"op": "create" | "append" | "delete", "id", "rid", "name"?, "at"?, "t"?, "v"?}`` as
JSON; ``t``/``v`` are the points as the chunks store them (base64 arrays). The worker
that took the request checked the points; the worker applying the command checks the
record again, because anything can write to a topic: a record that is no command is
dead-lettered, never applied. That includes a create whose ``at`` is no time in years
1900-9999: listings show it as a date, and one that cannot be shown would break them.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import numpy as np
import orjson

from streams.timeseries import chunks
from streams.timeseries.points import EARLIEST_MS, LATEST_MS, Points, latest_per_time

OPS = ("create", "append", "delete")
#: Series ids: 32 lowercase hex digits (a UUID without hyphens).
SERIES_ID = re.compile(r"[0-9a-f]{32}")
#: Request ids: an Idempotency-Key as clients send them (printable, bounded).
REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")
#: Ids of series created with an Idempotency-Key: a retry lands on the same series.
_IDEMPOTENT_IDS = uuid.UUID("5d1c6a43-5b7e-4b53-9a11-3f2b8f0c6e21")


class CommandError(ValueError):
    """A record of the writes topic that is no valid command (dead-lettered)."""


def new_series_id(idempotency_key: str | None) -> str:
    """A fresh id, or the one an Idempotency-Key always gives (so a retried create goes
    to the same partition and finds its answer there)."""
    if idempotency_key is None:
        return uuid.uuid4().hex
    return uuid.uuid5(_IDEMPOTENT_IDS, idempotency_key).hex


def encode(command: dict[str, Any], points: Points | None = None) -> bytes:
    body = dict(command)
    if points is not None:
        body.update(chunks.encode(points))
    return orjson.dumps(body)


def decode(raw: bytes | None) -> tuple[dict[str, Any], Points]:
    """The command and its points; CommandError if the record is none."""
    try:
        command = orjson.loads(raw or b"")
    except orjson.JSONDecodeError as exc:
        raise CommandError(f"not JSON: {exc}") from None
    if not isinstance(command, dict) or command.get("op") not in OPS:
        raise CommandError("no op of " + ", ".join(OPS))
    _check(command, "id", SERIES_ID)
    _check(command, "rid", REQUEST_ID)
    if command["op"] == "create" and not _is_time(command.get("at")):
        raise CommandError("a create needs its time, at: Unix ms in years 1900-9999")
    name = command.get("name")
    if name is not None and not isinstance(name, str):
        raise CommandError("name must be a string")
    digest = command.get("digest")
    if digest is not None and not (isinstance(digest, str) and len(digest) <= 64):
        raise CommandError("digest must be a short string")
    return command, _points(command)


def _is_time(value: Any) -> bool:
    """Unix ms a listing can show as a date (``true`` is an int to Python, not a time)."""
    return type(value) is int and EARLIEST_MS <= value <= LATEST_MS


def _check(command: dict[str, Any], field: str, pattern: re.Pattern[str]) -> None:
    value = command.get(field)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise CommandError(f"{field} is missing or malformed")


def _points(command: dict[str, Any]) -> Points:
    if "t" not in command and "v" not in command:
        return latest_per_time(np.empty(0, np.int64), np.empty(0, np.float64))
    try:
        points = chunks.decode(command)
    except (KeyError, TypeError, ValueError) as exc:  # binascii.Error is a ValueError
        raise CommandError(f"points are not base64 arrays: {exc!r}") from None
    if len(points.times) != len(points.values):
        raise CommandError("as many times as values are needed")
    if len(points.times) and not (
        points.times.min() >= EARLIEST_MS and points.times.max() <= LATEST_MS
    ):
        raise CommandError("a time is outside years 1900-9999")
    if not np.isfinite(points.values).all():
        raise CommandError("a value is not finite")
    return latest_per_time(points.times, points.values)
