"""Records of the writes topic: every command round-trips; anything else is refused."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import orjson
import pytest

from streams.timeseries import commands
from streams.timeseries.commands import CommandError
from streams.timeseries.points import EARLIEST_MS, LATEST_MS, Points

SERIES = "0123456789abcdef0123456789abcdef"


def test_a_command_and_its_points_round_trip() -> None:
    points = Points(np.array([1, 5], np.int64), np.array([0.5, -2.0]))
    raw = commands.encode({"op": "append", "id": SERIES, "rid": "k-1"}, points)
    command, decoded = commands.decode(raw)
    assert (command["op"], command["id"], command["rid"]) == ("append", SERIES, "k-1")
    assert decoded.times.tolist() == [1, 5] and decoded.values.tolist() == [0.5, -2.0]
    _, none = commands.decode(commands.encode({"op": "delete", "id": SERIES, "rid": "d"}))
    assert len(none) == 0


@pytest.mark.parametrize("at", [EARLIEST_MS, 0, 1_700_000_000_000, LATEST_MS])
def test_a_create_is_timed_at_any_time_a_listing_can_show(at: int) -> None:
    raw = commands.encode({"op": "create", "id": SERIES, "rid": "c", "at": at})
    assert commands.decode(raw)[0]["at"] == at


def test_an_idempotency_key_always_gives_the_same_series_id() -> None:
    assert commands.new_series_id("key") == commands.new_series_id("key")
    assert commands.new_series_id("key") != commands.new_series_id("other")
    assert commands.new_series_id(None) != commands.new_series_id(None)
    assert commands.SERIES_ID.fullmatch(commands.new_series_id("key"))


def b64(array: Any) -> str:
    return base64.b64encode(np.asarray(array).tobytes()).decode()


@pytest.mark.parametrize(
    "record",
    [
        b"",
        b"not json",
        b"[]",
        orjson.dumps({"op": "drop", "id": SERIES, "rid": "r"}),
        orjson.dumps({"op": "append", "id": "../x", "rid": "r"}),
        orjson.dumps({"op": "append", "id": SERIES, "rid": ""}),
        orjson.dumps({"op": "append", "id": SERIES, "rid": "a b"}),
        orjson.dumps({"op": "create", "id": SERIES, "rid": "r"}),
        orjson.dumps({"op": "create", "id": SERIES, "rid": "r", "at": 1, "name": 5}),
        orjson.dumps({"op": "create", "id": SERIES, "rid": "r", "at": True}),
        orjson.dumps({"op": "create", "id": SERIES, "rid": "r", "at": 1.5}),
        orjson.dumps({"op": "create", "id": SERIES, "rid": "r", "at": 10**17}),
        orjson.dumps({"op": "create", "id": SERIES, "rid": "r", "at": -(10**17)}),
        orjson.dumps({"op": "create", "id": SERIES, "rid": "r", "at": LATEST_MS + 1}),
        orjson.dumps({"op": "create", "id": SERIES, "rid": "r", "at": EARLIEST_MS - 1}),
        orjson.dumps({"op": "append", "id": SERIES, "rid": "r", "t": "!!", "v": "!!"}),
        orjson.dumps({"op": "append", "id": SERIES, "rid": "r", "t": b64(np.array([1], np.int64))}),
        orjson.dumps(
            {
                "op": "append",
                "id": SERIES,
                "rid": "r",
                "t": b64(np.array([1], np.int64)),
                "v": "AAA=",
            }
        ),
        orjson.dumps(
            {
                "op": "append",
                "id": SERIES,
                "rid": "r",
                "t": b64(np.array([1, 2], np.int64)),
                "v": b64([1.0]),
            }
        ),
        orjson.dumps(
            {
                "op": "append",
                "id": SERIES,
                "rid": "r",
                "t": b64(np.array([1], np.int64)),
                "v": b64([np.nan]),
            }
        ),
        orjson.dumps(
            {
                "op": "append",
                "id": SERIES,
                "rid": "r",
                "t": b64(np.array([2**62], np.int64)),
                "v": b64([1.0]),
            }
        ),
    ],
)
def test_a_record_that_is_no_command_is_refused_with_a_reason(record: bytes) -> None:
    with pytest.raises(CommandError):
        commands.decode(record)


def test_unordered_or_repeated_times_from_another_producer_are_put_in_order() -> None:
    raw = orjson.dumps(
        {
            "op": "append",
            "id": SERIES,
            "rid": "r",
            "t": b64(np.array([3, 1, 3], np.int64)),
            "v": b64([1.0, 2.0, 3.0]),
        }
    )
    _, points = commands.decode(raw)
    assert points.times.tolist() == [1, 3] and points.values.tolist() == [2.0, 3.0]
