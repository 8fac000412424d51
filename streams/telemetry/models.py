"""The shapes at the telemetry topics' edges: readings in, windows and alerts out.

A reading is one value of one metric of one interface of one device at one time, with
the device's sequence number. The ingest service validates readings one by one
(``Reading``) and groups them by device (``ReadingGroup``). A ``telemetry.readings``
record holds either

- a JSON array of groups: what the ingest publishes, one record per partition per
  request, holding the groups of the devices Kafka's default partitioner puts in that
  partition (streams/common/partitioning.py), sent to it explicitly, with no key; or
- one group as a JSON object, keyed by its device id: what any Kafka producer can
  write with Kafka's default (murmur2) partitioner (librdkafka clients need
  ``partitioner=murmur2_random``).

Either way a device's records must land in the partition Kafka's default partitioner
gives its id: the workers dead-letter a group found elsewhere, since windowing it there
would split the device's windows between two partitions.

Carrying many readings per record is what lets a worker handle hundreds of thousands
of readings a second: Faust's cost is per record, not per reading.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

NAME = r"^[A-Za-z0-9][A-Za-z0-9._:/@-]*$"
#: The last millisecond of year 9999: datetime's range, and every clock's.
MAX_TS_MS = 253_402_300_799_999


# One rule set for a reading, whichever way it comes in (the ingest's JSON, or a
# record any producer wrote to telemetry.readings): names without the table keys'
# separator ``|``, finite values within MAX_MAGNITUDE (a NaN would silence its series'
# detector for good), numbers as numbers (not strings or booleans), times from 1970 to
# the end of year 9999, sequence numbers that fit a signed 64-bit integer.
DeviceId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=NAME)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=NAME)]
#: Values beyond this magnitude are refused: a window's sum or variance of values
#: near float's limit overflows, and one such reading would block its device's window.
MAX_MAGNITUDE = 1e100
FiniteFloat = Annotated[
    float, Field(strict=True, allow_inf_nan=False, ge=-MAX_MAGNITUDE, le=MAX_MAGNITUDE)
]
EpochMs = Annotated[int, Field(ge=0, le=MAX_TS_MS)]
Seq = Annotated[int, Field(ge=0, lt=2**63)]


class Reading(BaseModel):
    """One reading as a client sends it to ``POST /telemetry``."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    device_id: DeviceId
    interface: Name
    metric: Name
    value: FiniteFloat
    # ISO 8601 with an offset, or a Unix time number (seconds, or milliseconds when
    # it is too large to be seconds: pydantic's rule).
    ts: AwareDatetime
    seq: Seq

    @property
    def ts_ms(self) -> int:
        return int(self.ts.timestamp() * 1000)

    def row(self) -> ReadingRow:
        return (self.interface, self.metric, self.value, self.ts_ms, self.seq)


#: A reading inside a group: (interface, metric, value, ts in epoch ms, seq).
ReadingRow = tuple[str, str, float, int, int]


class ReadingGroup(BaseModel):
    """The value of one ``telemetry.readings`` record: some readings of one device."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    device_id: DeviceId
    readings: list[tuple[Name, Name, FiniteFloat, EpochMs, Seq]] = Field(min_length=1)


#: The ingest's form of a record: the groups of one partition's devices.
GroupList = Annotated[list[ReadingGroup], Field(min_length=1)]
_GROUPS: TypeAdapter[list[ReadingGroup]] = TypeAdapter(GroupList)


def is_group_list(value: bytes) -> bool:
    """Whether a record's value is in the array form (else it is one group, or invalid)."""
    head = value[:1]
    if head.isspace():
        head = value.lstrip()[:1]
    return head == b"["


def decode_groups(value: bytes) -> list[ReadingGroup]:
    """A record's groups, from either form; raises pydantic's ValidationError."""
    if is_group_list(value):
        return _GROUPS.validate_json(value)
    return [ReadingGroup.model_validate_json(value)]


def decode_each_group(value: bytes) -> list[ReadingGroup | tuple[bytes, str]]:
    """An array record's groups one by one, after the whole record failed validation:
    each valid group, or an invalid group's bytes with why. Raises ValidationError when
    the record is not a JSON array of objects at all (then it is invalid whole)."""
    try:
        # The standard parser, like pydantic's, reads NaN and Infinity: such a group is
        # then refused alone, and its dead letter shows the value as it was sent.
        items = json.loads(value)
    except ValueError:
        items = None
    if not isinstance(items, list) or not items:
        return [*decode_groups(value)]  # raises: the record's own error
    found: list[ReadingGroup | tuple[bytes, str]] = []
    for item in items:
        raw = json.dumps(item, separators=(",", ":")).encode()
        try:
            found.append(ReadingGroup.model_validate_json(raw))
        except ValidationError as exc:
            found.append((raw, explain(exc)))
    return found


def explain(exc: ValidationError) -> str:
    """A dead letter's detail: the first failing fields and why."""
    return "; ".join(
        f"{'.'.join(map(str, error['loc']))}: {error['msg']}" for error in exc.errors()[:5]
    )


def beyond(rows: list[ReadingRow], latest_ms: int) -> tuple[list[ReadingRow], list[ReadingRow]]:
    """``rows`` split into those stamped at or before ``latest_ms`` and those after."""
    if max(row[3] for row in rows) <= latest_ms:
        return rows, []
    return [r for r in rows if r[3] <= latest_ms], [r for r in rows if r[3] > latest_ms]


def iso_ms(ms: int) -> str:
    """An epoch-milliseconds instant as ISO 8601 UTC with a ``Z``."""
    stamp = datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")
