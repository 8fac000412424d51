"""Write requests as the API receives them, turned into commands or refused (pure).

Refusals, each ``{"error": message, "detail": ...}``:

- 413: a body over the byte limit, or more points than one request may carry;
- 415: a body that is not ``application/json`` (a charset parameter is fine);
- 400: a body that is not JSON at all, or a malformed ``Idempotency-Key``;
- 422: JSON that breaks a rule: not an object, an unknown field, a name that is no
  string or too long, a bad point (``detail`` names its index, field and problem).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import orjson

from streams.common.errors import BadRequest, PayloadTooLarge, Unprocessable, UnsupportedMediaType
from streams.timeseries.commands import REQUEST_ID, new_series_id
from streams.timeseries.points import PointError, Points, parse_points

#: Points one write command carries at most (~350 kB as a record).
COMMAND_POINTS = 16_384
#: Longest series name kept.
MAX_NAME = 256
JSON = "application/json"


def json_body(raw: bytes, content_type: str | None, *, limit: int) -> Any:
    """The parsed body; 413, 415 or 400 as the module says."""
    if len(raw) > limit:
        raise PayloadTooLarge(f"a body holds at most {limit} bytes", detail={"limit": limit})
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media != JSON:
        raise UnsupportedMediaType(
            f"send {JSON}", detail={"content_type": (content_type or "")[:64]}
        )
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        problem = str(exc)[:200]
    try:
        # Valid JSON that orjson refuses: a number beyond a double (1e999). Read as
        # infinity, it is refused as a non-finite value (422, naming the point).
        return json.loads(raw, parse_constant=_not_json)
    except (ValueError, RecursionError):
        raise BadRequest("the body is not JSON", detail=problem) from None


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def idempotency_key(header: str | None) -> str | None:
    """The ``Idempotency-Key`` header, checked (printable ASCII, 1-128 characters)."""
    if header is None:
        return None
    if not REQUEST_ID.fullmatch(header):
        raise BadRequest(
            "Idempotency-Key must be 1-128 printable ASCII characters without spaces",
            parameter="Idempotency-Key",
        )
    return header


def request_id(op: str, series_id: str, key: str | None) -> str:
    """The id a write's answer is kept under: drawn afresh, or derived from the
    ``Idempotency-Key`` and what it applies to (one key reused for two series' appends
    is two requests, not a replay)."""
    if key is None:
        return uuid.uuid4().hex
    return hashlib.blake2b(f"{op}\0{series_id}\0{key}".encode(), digest_size=16).hexdigest()


def digest(command: dict[str, Any], points: Points) -> str:
    """A fingerprint of what a write asks for: a key replayed with another request is
    refused. Of the checked request, not of its bytes: the same points in another order,
    or the fields in another order, are the same request."""
    asked = {key: command.get(key) for key in ("op", "id", "name")}
    fingerprint = hashlib.blake2b(orjson.dumps(asked), digest_size=16)
    fingerprint.update(points.times.tobytes())
    fingerprint.update(points.values.tobytes())
    return fingerprint.hexdigest()


def in_parts(
    command: dict[str, Any], points: Points | None, size: int = COMMAND_POINTS
) -> list[tuple[dict[str, Any], Points | None]]:
    """The commands a write is sent as: one, or for more than ``size`` points the
    command with the first ``size`` and appends with the rest, each under its own
    request id (``<rid>.<n>``), applied in order. A record stays far below Kafka's 1 MB
    (a point is ~21 bytes in a command). A retry with the same ``Idempotency-Key`` finds
    the parts already applied and applies the others."""
    if points is None or len(points) <= size:
        return [(command, points)]
    parts: list[tuple[dict[str, Any], Points | None]] = []
    for n, start in enumerate(range(0, len(points), size)):
        piece = Points(points.times[start : start + size], points.values[start : start + size])
        if n == 0:
            parts.append((command, piece))
            continue
        rid = f"{command['rid']}.{n}"
        parts.append(
            (
                {"op": "append", "id": command["id"], "rid": rid, "digest": command.get("digest")},
                piece,
            )
        )
    return parts


def create(
    body: Any, *, key: str | None, request_id: str, now_ms: int, max_points: int
) -> tuple[dict[str, Any], Points]:
    """The create command of ``POST /series`` (``{"name"?, "points"?}``) and its points."""
    fields = _object(body, allowed={"name", "points"})
    name = fields.get("name")
    if name is not None and (not isinstance(name, str) or len(name) > MAX_NAME or _unpaired(name)):
        raise Unprocessable(
            f"name must be a Unicode string of at most {MAX_NAME} characters",
            detail={"field": "name"},
        )
    points = _points(fields.get("points", []), max_points)
    command = {"op": "create", "id": new_series_id(key), "rid": request_id, "at": now_ms}
    if name is not None:
        command["name"] = name
    return command, points


def append(
    body: Any, series_id: str, *, request_id: str, max_points: int
) -> tuple[dict[str, Any], Points]:
    """The append command of ``POST /series/{id}/points`` (``{"points": [...]}``)."""
    fields = _object(body, allowed={"points"})
    if "points" not in fields:
        raise Unprocessable("points are required", detail={"field": "points"})
    command = {"op": "append", "id": series_id, "rid": request_id}
    return command, _points(fields["points"], max_points)


def _unpaired(text: str) -> bool:
    """Whether ``text`` holds a lone surrogate (valid in JSON's escapes, not in UTF-8)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return True
    return False


def _object(body: Any, *, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise Unprocessable("the body must be a JSON object", detail={"field": ""})
    unknown = sorted(body.keys() - allowed)
    if unknown:
        raise Unprocessable(f"unknown field {unknown[0]!r}", detail={"field": unknown[0]})
    return body


def _points(raw: Any, max_points: int) -> Points:
    if isinstance(raw, list) and len(raw) > max_points:
        raise PayloadTooLarge(
            f"at most {max_points} points per request", detail={"limit": max_points}
        )
    try:
        return parse_points(raw, limit=max_points)
    except PointError as exc:
        detail = {"index": exc.index, "field": exc.field, "problem": exc.problem}
        raise Unprocessable(str(exc), detail=detail) from None
    except ValueError as exc:
        raise Unprocessable(str(exc), detail={"field": "points"}) from None
