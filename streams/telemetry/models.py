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

import math
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

NAME = r"^[A-Za-z0-9][A-Za-z0-9._:/@-]*$"


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


FiniteFloat = Annotated[float, AfterValidator(_finite)]


class Reading(BaseModel):
    """One reading as a client sends it to ``POST /telemetry``."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    device_id: str = Field(min_length=1, max_length=128, pattern=NAME)
    interface: str = Field(min_length=1, max_length=64, pattern=NAME)
    metric: str = Field(min_length=1, max_length=64, pattern=NAME)
    value: FiniteFloat
    # ISO 8601 with an offset, or a Unix time number (seconds, or milliseconds when
    # it is too large to be seconds: pydantic's rule).
    ts: AwareDatetime
    seq: int = Field(ge=0, lt=2**63)

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

    device_id: str = Field(min_length=1, max_length=128)
    readings: list[tuple[str, str, float, int, int]] = Field(min_length=1)


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


def iso_ms(ms: int) -> str:
    """An epoch-milliseconds instant as ISO 8601 UTC with a ``Z``."""
    stamp = datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")
