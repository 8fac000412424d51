"""Write requests as the API receives them: every refusal with its status and detail."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from streams.common.errors import HttpError
from streams.timeseries import requests
from streams.timeseries.commands import REQUEST_ID, SERIES_ID, decode, encode
from streams.timeseries.points import Points

LIMITS = {"now_ms": 1_000, "max_points": 3}


def refusal(call: Any) -> HttpError:
    with pytest.raises(HttpError) as refused:
        call()
    return refused.value


@pytest.mark.parametrize(
    ("raw", "content_type", "status"),
    [
        (b"{}", "text/plain", 415),
        (b"{}", None, 415),
        (b"{}", "application/jsonx", 415),
        (b"{not json", "application/json", 400),
        (b"", "application/json", 400),
        (b"x" * 101, "application/json", 413),
    ],
)
def test_bodies_not_json_or_too_large_are_refused(
    raw: bytes, content_type: str | None, status: int
) -> None:
    error = refusal(lambda: requests.json_body(raw, content_type, limit=100))
    assert error.status == status
    assert set(error.body()) == {"error", "detail"}


def test_json_with_a_charset_is_json() -> None:
    assert requests.json_body(b'{"a": 1}', "Application/JSON; charset=utf-8", limit=100) == {"a": 1}


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ([], 422, {"field": ""}),
        ({"name": 5}, 422, {"field": "name"}),
        ({"name": "x" * 257}, 422, {"field": "name"}),
        ({"nam": "typo"}, 422, {"field": "nam"}),
        ({"points": {"ts": 1}}, 422, {"field": "points"}),
        ({"points": [{"ts": 1, "value": "1"}]}, 422, {"index": 0, "field": "value"}),
        ({"points": [{"ts": 1, "value": 1}] * 4}, 413, {"limit": 3}),
    ],
)
def test_a_create_that_breaks_a_rule_says_which(
    body: Any, status: int, detail: dict[str, Any]
) -> None:
    error = refusal(lambda: requests.create(body, key=None, request_id="r", **LIMITS))
    assert error.status == status
    assert detail.items() <= error.body()["detail"].items()


def test_a_create_with_a_key_names_the_same_series_every_time() -> None:
    body = {"name": "cpu", "points": [{"ts": 2, "value": 1.5}, {"ts": 1, "value": 0.5}]}
    first, points = requests.create(body, key="k-1", request_id="k-1", **LIMITS)
    again, _ = requests.create(body, key="k-1", request_id="k-1", **LIMITS)
    assert (
        first
        == again
        == {"op": "create", "id": first["id"], "rid": "k-1", "at": 1_000, "name": "cpu"}
    )
    assert SERIES_ID.fullmatch(first["id"])
    assert points.times.tolist() == [1000, 2000]
    unnamed, none = requests.create({}, key=None, request_id="r", **LIMITS)
    assert "name" not in unnamed and len(none) == 0


def test_an_append_needs_its_points() -> None:
    series = "a" * 32
    assert refusal(lambda: requests.append({}, series, request_id="r", max_points=3)).status == 422
    body = {"points": [{"ts": "1970-01-01T00:00:01Z", "value": 2}]}
    command, points = requests.append(body, series, request_id="r", max_points=3)
    assert command == {"op": "append", "id": series, "rid": "r"}
    assert points.values.tolist() == [2.0]


@pytest.mark.parametrize("header", ["", "a b", "é", "x" * 129])
def test_a_malformed_idempotency_key_is_a_400(header: str) -> None:
    assert refusal(lambda: requests.idempotency_key(header)).status == 400
    assert requests.idempotency_key(None) is None
    assert requests.idempotency_key("order-7/retry") == "order-7/retry"


def test_a_write_without_a_key_is_a_new_request_every_time() -> None:
    rids = {requests.request_id("append", "a" * 32, None) for _ in range(100)}
    assert len(rids) == 100
    assert all(REQUEST_ID.fullmatch(rid) for rid in rids)


def test_a_key_names_one_request_per_operation_and_series() -> None:
    """The same key, op and series: the same request (a retry); another series or op
    with the same key, or another key: another request."""
    rid = requests.request_id("append", "a" * 32, "key-1")
    assert requests.request_id("append", "a" * 32, "key-1") == rid
    assert REQUEST_ID.fullmatch(rid)
    others = {
        requests.request_id("append", "b" * 32, "key-1"),
        requests.request_id("delete", "a" * 32, "key-1"),
        requests.request_id("create", "a" * 32, "key-1"),
        requests.request_id("append", "a" * 32, "key-2"),
    }
    assert len(others) == 4 and rid not in others


def test_a_digest_tells_requests_apart_not_their_bytes_and_travels_in_a_command() -> None:
    def digest(raw: bytes, series_id: str = "a" * 32) -> str:
        command, points = requests.append(
            orjson.loads(raw), series_id, request_id="r", max_points=10
        )
        return requests.digest(command, points)

    body = b'{"points": [{"ts": 1, "value": 2}, {"ts": 5, "value": 6}]}'
    # The same request written differently: points reordered, spaces, an ISO time.
    same = {
        digest(b'{"points": [{"ts": 5, "value": 6}, {"ts": 1, "value": 2}]}'),
        digest(body + b" "),
        digest(b'{"points": [{"value": 2, "ts": "1970-01-01T00:00:01Z"}, {"ts": 5, "value": 6}]}'),
    }
    assert same == {digest(body)}
    other = {
        digest(body.replace(b"2}", b"3}")),
        digest(body.replace(b"5,", b"4,")),
        digest(body, "b" * 32),
    }
    assert len(other) == 3 and digest(body) not in other
    command = {"op": "append", "id": "a" * 32, "rid": "r", "digest": digest(body)}
    assert decode(encode(command))[0]["digest"] == digest(body)


def test_a_write_of_many_points_is_sent_in_ordered_parts_under_their_own_ids() -> None:
    times = np.arange(40_000, dtype=np.int64)
    points = Points(times, times.astype(np.float64))
    command = {"op": "create", "id": "a" * 32, "rid": "r" * 32, "at": 1, "digest": "d"}
    parts = requests.in_parts(command, points, size=16_384)
    assert [len(p) for _, p in parts if p is not None] == [16_384, 16_384, 7_232]
    assert parts[0][0] is command
    assert [c["op"] for c, _ in parts] == ["create", "append", "append"]
    assert [c["rid"] for c, _ in parts][1:] == ["r" * 32 + ".1", "r" * 32 + ".2"]
    joined = np.concatenate([p.times for _, p in parts if p is not None])
    assert (joined == times).all()
    for part, piece in parts:
        assert len(encode(part, piece)) < 500_000  # far below Kafka's 1 MB
        assert decode(encode(part, piece))[0]["rid"] == part["rid"]
    small = Points(times[:5], times[:5].astype(np.float64))
    [(alone, piece)] = requests.in_parts(command, small)
    assert alone is command and piece is small
