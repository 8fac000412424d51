"""A launch as the ETL accepts it, and the rule that accepts or rejects each record.

Only the fields the transform keeps are read; every other field of the API's records is
ignored, so the API may add fields freely. A field is accepted only as the type its
column holds, never coerced: ``"12"`` is no flight number, ``1`` no ``success``, a
number no date. A record that breaks the rule is rejected with its reason (job.py
decides whether the run goes on); the rule:

- ``id``: a non-empty text of at most 256 characters (the unique key of a launch);
- ``flight_number``: an integer within int64;
- ``name``: a text of at most 1,000 characters;
- ``date_utc``: an ISO 8601 / RFC 3339 text with a UTC offset
  (``2006-03-24T22:30:00.000Z``; the forms Python's ``datetime.fromisoformat`` reads,
  upper or lower case), kept as that instant in UTC, within years 1 to 9999 there;
  digits below the microsecond are dropped (the column holds microseconds); a date
  without an offset is ambiguous and rejected;
- ``success``: true, false, null or absent (unknown);
- ``links``: an object or null or absent; its ``webcast`` a text of at most 4,096
  characters, null or absent.

Texts must be valid Unicode (JSON can spell a lone surrogate, Parquet cannot store it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from streams.launches.payload import Undecodable

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
ID_MAX_LENGTH = 256
#: Longer texts are no mission name or URL, and a launch must stay a small record:
#: the worker's table writes it to a changelog whose records Kafka caps at 1 MB.
NAME_MAX_LENGTH = 1_000
URL_MAX_LENGTH = 4_096


def _unicode(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("not valid Unicode (a lone surrogate)") from exc
    return value


def _instant(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 text with a UTC offset")
    try:  # RFC 3339 allows a lower-case t and z; fromisoformat only upper case
        parsed = datetime.fromisoformat(value.upper())
    except ValueError as exc:
        raise ValueError(f"not an ISO 8601 time: {value[:40]!r}") from exc
    if parsed.tzinfo is None:
        raise ValueError(f"no UTC offset: {value[:40]!r}")
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:  # 0001-01-01T00:00+01:00 is in year 0 in UTC
        raise ValueError(f"outside years 1 to 9999 in UTC: {value[:40]!r}") from exc


Name = Annotated[str, StringConstraints(max_length=NAME_MAX_LENGTH), AfterValidator(_unicode)]
Url = Annotated[str, StringConstraints(max_length=URL_MAX_LENGTH), AfterValidator(_unicode)]


class Links(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)

    webcast: Url | None = None


class Launch(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)

    id: Annotated[
        str, StringConstraints(min_length=1, max_length=ID_MAX_LENGTH), AfterValidator(_unicode)
    ]
    flight_number: Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
    name: Name
    date_utc: Annotated[datetime, BeforeValidator(_instant)]
    success: bool | None = None
    links: Links | None = None

    @property
    def webcast(self) -> str | None:
        return self.links.webcast if self.links is not None else None


@dataclass(frozen=True)
class Rejection:
    """A record the rule refused: where it was, its id if it had a usable one, why."""

    index: int
    id: str | None
    reason: str
    decoded: bool = True  # False: not JSON this parser reads (payload.Undecodable)


@dataclass(frozen=True)
class Checked:
    """The launches of a payload, one per id (the last version of an id wins, as in a
    compacted topic), and the records rejected."""

    launches: list[Launch]
    rejected: list[Rejection]
    records: int

    @property
    def duplicates(self) -> int:
        """Valid records that were older versions of an id seen again later."""
        return self.records - len(self.rejected) - len(self.launches)


def check(record: object) -> Launch:
    """The launch ``record`` (a decoded JSON value) stands for; ValidationError if none."""
    return Launch.model_validate(record)


def check_all(records: Iterable[object]) -> Checked:
    """Every record checked; valid ones kept, one per id."""
    latest: dict[str, Launch] = {}
    rejected: list[Rejection] = []
    count = 0
    for index, record in enumerate(records):
        count += 1
        if isinstance(record, Undecodable):
            rejected.append(Rejection(index, None, record.reason, decoded=False))
            continue
        try:
            launch = check(record)
        except ValidationError as exc:
            rejected.append(Rejection(index, record_id(record), reason(exc)))
            continue
        latest.pop(launch.id, None)  # a later version takes the later place
        latest[launch.id] = launch
    return Checked(list(latest.values()), rejected, count)


def record_id(record: object) -> str | None:
    """The record's ``id`` for a log line, if it is a short text."""
    value = record.get("id") if isinstance(record, dict) else None
    if isinstance(value, str) and 0 < len(value) <= ID_MAX_LENGTH:
        return json.dumps(value)[1:-1]  # escaped: no id can forge a log line
    return None


def reason(exc: ValidationError) -> str:
    """One line: each failed field with its problem."""
    return "; ".join(_problem(error) for error in exc.errors(include_url=False))


def _problem(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "record"
    return f"{where}: {error['msg']}"
