"""What ``POST /telemetry`` does with a body, without I/O: readings in, Kafka records out.

Pure and synchronous, so every refusal is unit-tested without a server. A request is
all-or-nothing: ``parse_request`` returns either every record to publish or one
``Refusal`` (status and JSON body), never a partial result.

Speed: the body goes to pydantic-core as raw bytes in one call (``validate_json`` of a
``list[Reading]``), not through ``json.loads`` and a model per dict; what is left in
Python is one short loop per reading that builds the wire rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any, Literal

import orjson
from pydantic import TypeAdapter, ValidationError

from streams.common.partitioning import partition_for
from streams.telemetry.models import Reading, ReadingRow

Format = Literal["json", "ndjson"]

MEDIA_TYPES: dict[str, Format] = {
    "application/json": "json",
    "application/x-ndjson": "ndjson",
}
#: At most this many entries in a 422's ``detail``.
MAX_DETAIL = 50
#: Bytes of a Kafka record's value: the groups of a request's devices of one partition
#: share records up to this, under the producers' and brokers' 1 MB default limit.
MAX_RECORD_BYTES = 900_000
#: Readings of one group. A row is at most ~200 bytes (64-character names), so a group
#: fits in a record; a device with more readings in one request gets several groups.
MAX_GROUP_READINGS = 4096

_READINGS: TypeAdapter[list[Reading]] = TypeAdapter(list[Reading])
_READING: TypeAdapter[Reading] = TypeAdapter(Reading)
_LEADING_SPACE = re.compile(rb"[ \t\r\n]*")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TS = itemgetter(3)
_MS = timedelta(milliseconds=1)


@dataclass(frozen=True)
class Refusal:
    """An answer other than 202: the HTTP status and its JSON body."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Accepted:
    """A valid request: ``readings`` readings as Kafka (partition, value) records."""

    readings: int
    records: list[tuple[int, bytes]]


def error(
    status: int, message: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> Refusal:
    """A refusal whose body is ``{"error": message, **extra}``."""
    return Refusal(status, {"error": message, **extra}, headers or {})


def body_format(content_type: str | None) -> Format | None:
    """The body format a Content-Type header names (parameters ignored), or None."""
    if not content_type:
        return None
    return MEDIA_TYPES.get(content_type.split(";", 1)[0].strip().lower())


def parse_request(
    body: bytes, fmt: Format, *, now_ms: int, max_future_seconds: int, partitions: int
) -> Accepted | Refusal:
    """Validate a whole body; on success, its readings grouped by device, and the
    groups by partition, as records (models.py)."""
    parsed = parse_ndjson(body) if fmt == "ndjson" else parse_json(body)
    if isinstance(parsed, Refusal):
        return parsed
    readings, places = parsed
    groups = group_by_device(readings, places, latest_ms=now_ms + max_future_seconds * 1000)
    if isinstance(groups, Refusal):
        return groups
    return Accepted(len(readings), partition_records(groups, partitions))


#: Where each reading was in the body, for error locations: NDJSON line numbers, or
#: None when a reading's place is its index in the array.
Places = list[int] | None


def parse_json(body: bytes) -> tuple[list[Reading], Places] | Refusal:
    """One reading object or an array of them."""
    start = _LEADING_SPACE.match(body)
    first = body[start.end() : start.end() + 1] if start else body[:1]
    if not first:
        return error(400, "empty body: send a reading object or an array of them")
    try:
        if first == b"[":
            return _READINGS.validate_json(body), None
        if first == b"{":
            return [_READING.validate_json(body)], None
    except ValidationError as exc:
        return _invalid(exc, () if first == b"[" else (0,))
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return error(400, f"body is not JSON: {exc}")
    return error(400, "body must be a reading object or an array of them")


def parse_ndjson(body: bytes) -> tuple[list[Reading], Places] | Refusal:
    """One reading object per line; blank lines are skipped but still counted."""
    readings: list[Reading] = []
    places: list[int] = []
    detail: list[dict[str, Any]] = []
    errors = 0
    validate = _READING.validate_json
    for number, line in enumerate(body.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            readings.append(validate(line))
            places.append(number)
        except ValidationError as exc:
            found = exc.errors(include_url=False, include_context=False, include_input=False)
            if found and found[0]["type"] == "json_invalid":
                return error(400, f"line {number} is not JSON: {found[0]['msg']}")
            errors += len(found)
            detail.extend(_entry((number, *e["loc"]), e) for e in found[: MAX_DETAIL - len(detail)])
    if errors:
        return error(422, "invalid readings", detail=detail)
    if not readings:
        return error(400, "empty body: send one reading object per line")
    return readings, places


def group_by_device(
    readings: list[Reading], places: Places, *, latest_ms: int
) -> dict[str, list[ReadingRow]] | Refusal:
    """Each device's readings as rows (devices in order of first appearance, readings in
    request order); 422 if any reading is stamped after latest_ms or before 1970 (the
    workers' rule for a record's readings, models.py)."""
    groups: dict[str, list[ReadingRow]] = {}
    future: list[dict[str, Any]] = []
    for index, reading in enumerate(readings):
        ts_ms = (reading.ts - _EPOCH) // _MS
        if ts_ms > latest_ms or ts_ms < 0:
            if len(future) < MAX_DETAIL:
                place = index if places is None else places[index]
                future.append(
                    {
                        "loc": [place, "ts"],
                        "msg": "timestamp is too far in the future"
                        if ts_ms > 0
                        else "timestamp is before 1970",
                        "type": "ts_in_future" if ts_ms > 0 else "ts_before_epoch",
                    }
                )
            continue
        rows = groups.get(reading.device_id)
        if rows is None:
            rows = groups[reading.device_id] = []
        rows.append((reading.interface, reading.metric, reading.value, ts_ms, reading.seq))
    if future:
        return error(422, "invalid readings", detail=future)
    return groups


def partition_records(
    groups: dict[str, list[ReadingRow]], partitions: int
) -> list[tuple[int, bytes]]:
    """(partition, value) records: per partition, a JSON array of its devices' groups,
    whole groups only, at most MAX_RECORD_BYTES each.

    A device with more than MAX_GROUP_READINGS readings gets several groups, its readings
    in event-time order first: a later group then never holds a reading older than an
    earlier group's newest, which would be late if that one had closed its window.
    """
    pending: dict[int, list[bytes]] = {}
    sizes: dict[int, int] = {}
    records: list[tuple[int, bytes]] = []
    for device, rows in groups.items():
        partition = partition_for(device.encode(), partitions)
        if len(rows) > MAX_GROUP_READINGS:
            rows = sorted(rows, key=_TS)
        for start in range(0, len(rows), MAX_GROUP_READINGS):
            part = rows[start : start + MAX_GROUP_READINGS]
            group = orjson.dumps({"device_id": device, "readings": part})
            if partition in pending and sizes[partition] + len(group) + 1 > MAX_RECORD_BYTES:
                records.append((partition, _array(pending.pop(partition))))
                sizes[partition] = 0
            pending.setdefault(partition, []).append(group)
            sizes[partition] = sizes.get(partition, 0) + len(group) + 1
    records.extend((partition, _array(parts)) for partition, parts in pending.items())
    return records


def _array(groups: list[bytes]) -> bytes:
    return b"[" + b",".join(groups) + b"]"


def _invalid(exc: ValidationError, prefix: tuple[int, ...]) -> Refusal:
    """400 when the body is not JSON at all, else 422 with pydantic's first errors; a
    single object's errors are located as index 0."""
    found = exc.errors(include_url=False, include_context=False, include_input=False)
    if found and found[0]["type"] == "json_invalid":
        return error(400, f"body is not JSON: {found[0]['msg']}")
    detail = [_entry((*prefix, *e["loc"]), e) for e in found[:MAX_DETAIL]]
    return error(422, "invalid readings", detail=detail)


def _entry(loc: tuple[Any, ...], found: Any) -> dict[str, Any]:
    return {"loc": list(loc), "msg": found["msg"], "type": found["type"]}
