"""What POST /telemetry makes of a body, without a server (streams.telemetry.ingest_parse)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner

from streams.common.partitioning import partition_for
from streams.telemetry import ingest_parse
from streams.telemetry.ingest_parse import Accepted, Refusal, body_format, parse_request
from streams.telemetry.models import ReadingGroup, decode_groups

NOW_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
PARTITIONS = 6


def reading(device: str = "r1", seq: int = 0, **fields: Any) -> dict[str, Any]:
    return {
        "device_id": device,
        "interface": "eth0",
        "metric": "rx_bytes",
        "value": 10.5 + seq,
        "ts": "2025-12-31T23:59:00+00:00",
        "seq": seq,
        **fields,
    }


def parse(body: bytes | Any, fmt: str = "json", max_future_seconds: int = 300) -> Any:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return parse_request(
        raw,
        fmt,  # type: ignore[arg-type]
        now_ms=NOW_MS,
        max_future_seconds=max_future_seconds,
        partitions=PARTITIONS,
    )


def accepted(body: bytes | Any, fmt: str = "json") -> list[tuple[int, ReadingGroup]]:
    """(partition, group) of every group of every record, in order."""
    result = parse(body, fmt)
    assert isinstance(result, Accepted), result
    return [
        (partition, group) for partition, value in result.records for group in decode_groups(value)
    ]


def refused(body: bytes | Any, fmt: str = "json", **kwargs: Any) -> Refusal:
    result = parse(body, fmt, **kwargs)
    assert isinstance(result, Refusal), result
    return result


def ndjson(*objects: Any) -> bytes:
    return b"\n".join(orjson.dumps(o) for o in objects) + b"\n"


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/json", "json"),
        ("Application/JSON; charset=utf-8", "json"),
        ("application/x-ndjson", "ndjson"),
        ("text/plain", None),
        ("application/ndjson", None),
        ("", None),
        (None, None),
    ],
)
def test_only_json_and_ndjson_content_types_are_read(
    content_type: str | None, expected: str | None
) -> None:
    """JSON and NDJSON are read whatever their parameters; anything else is a 415."""
    assert body_format(content_type) == expected


def test_a_single_object_is_one_reading() -> None:
    """One reading object becomes one record, in its device's partition."""
    [(partition, group)] = accepted(reading("r1", 7))
    assert partition == partition_for(b"r1", PARTITIONS)
    assert group == ReadingGroup(
        device_id="r1", readings=[("eth0", "rx_bytes", 17.5, NOW_MS - 60_000, 7)]
    )


def test_readings_are_grouped_by_device_in_request_order() -> None:
    """Each device gets one group holding its readings in the order they were sent."""
    sent = [
        reading("r2", 5),
        reading("r1", 9),
        reading("r2", 3),
        reading("r1", 1),
        reading("r3", 0),
    ]
    records = accepted(sent)
    assert sorted(group.device_id for _, group in records) == ["r1", "r2", "r3"]
    assert {group.device_id: [row[4] for row in group.readings] for _, group in records} == {
        "r2": [5, 3],
        "r1": [9, 1],
        "r3": [0],
    }
    assert parse(sent).readings == 5


def test_ndjson_lines_are_readings_and_blank_lines_are_skipped() -> None:
    """NDJSON gives the same records as the equivalent array, blank lines ignored."""
    body = ndjson(reading("r1", 1), reading("r2", 2)) + b"\n  \n" + ndjson(reading("r1", 3))
    assert accepted(body, "ndjson") == accepted(
        [reading("r1", 1), reading("r2", 2), reading("r1", 3)]
    )


@pytest.mark.parametrize(
    ("ts", "expected_ms"),
    [
        ("2025-12-31T23:59:00.123+00:00", NOW_MS - 59_877),
        ("2026-01-01T01:00:00+01:00", NOW_MS),
        (NOW_MS // 1000 - 1, NOW_MS - 1000),
        (NOW_MS - 1, NOW_MS - 1),
    ],
)
def test_timestamps_are_epoch_milliseconds_on_the_wire(ts: Any, expected_ms: int) -> None:
    """ISO 8601 with any offset, Unix seconds and Unix milliseconds all arrive as epoch ms."""
    [(_, group)] = accepted(reading(ts=ts))
    assert group.readings[0][3] == expected_ms


def test_a_device_with_very_many_readings_is_split_in_order() -> None:
    """A device's readings beyond one record's share follow in further records, in order."""
    count = ingest_parse.MAX_GROUP_READINGS + 3
    records = accepted([reading("r1", seq) for seq in range(count)])
    assert [len(group.readings) for _, group in records] == [ingest_parse.MAX_GROUP_READINGS, 3]
    assert [row[4] for _, group in records for row in group.readings] == list(range(count))


def test_a_device_split_in_groups_has_its_older_readings_first() -> None:
    """Split readings go in event-time order, so a later group never holds a reading
    older than an earlier group's newest (it could be late once that one is applied)."""
    count = ingest_parse.MAX_GROUP_READINGS + 10
    sent = [reading("r1", seq, ts=NOW_MS - 1_000 - seq) for seq in range(count)]
    groups = [group for _, group in accepted(sent)]
    assert len(groups) == 2
    assert max(row[3] for row in groups[0].readings) <= min(row[3] for row in groups[1].readings)
    assert sorted(row[4] for g in groups for row in g.readings) == list(range(count))


def test_devices_of_a_partition_share_records() -> None:
    """A request's devices of one partition share a record, in the partition Kafka's
    default partitioner gives each device id: 40 devices, at most one record each."""
    devices = [f"router-{n}" for n in range(40)]
    sent = [reading(device, seq) for seq in range(20) for device in devices]
    result = parse(sent)
    assert isinstance(result, Accepted)
    kafka = DefaultPartitioner()
    everything = list(range(PARTITIONS))
    for partition, value in result.records:
        groups = decode_groups(value)
        assert {kafka(g.device_id.encode(), everything, everything) for g in groups} == {partition}
    assert sorted(p for p, _ in result.records) == sorted(
        {kafka(d.encode(), everything, everything) for d in devices}
    )
    assert len(accepted(sent)) == len(devices)  # each device's readings in one group


def test_records_stay_under_the_size_limit_with_whole_groups() -> None:
    """Thousands of one-reading devices with the longest ids, all in one partition, make
    records under the byte limit, each device whole in one of them, in request order."""
    devices = [f"{n:0>128}" for n in range(9_000)]
    sent = [reading(device, 1) for device in devices]
    result = parse_request(
        orjson.dumps(sent), "json", now_ms=NOW_MS, max_future_seconds=300, partitions=1
    )
    assert isinstance(result, Accepted)
    assert len(result.records) > 1
    assert all(len(value) <= ingest_parse.MAX_RECORD_BYTES for _, value in result.records)
    found = [g.device_id for _, value in result.records for g in decode_groups(value)]
    assert found == devices


@pytest.mark.parametrize(
    ("body", "fmt", "message"),
    [
        (b"", "json", "empty body"),
        (b" \n\t", "json", "empty body"),
        (b"not json", "json", "not JSON"),
        (b'{"device_id": "r1",', "json", "not JSON"),
        (b"[1, 2", "json", "not JSON"),
        (b'"a string"', "json", "reading object or an array"),
        (b"42", "json", "reading object or an array"),
        (b"null", "json", "reading object or an array"),
        (b"\n\n", "ndjson", "empty body"),
        (ndjson(reading()) + b"{oops\n", "ndjson", "line 2 is not JSON"),
    ],
)
def test_bodies_that_are_not_readings_json_are_400(body: bytes, fmt: str, message: str) -> None:
    """Empty, non-JSON or non-object/array bodies are refused with 400 and a reason."""
    refusal = refused(body, fmt)
    assert refusal.status == 400
    assert message in refusal.body["error"]


@pytest.mark.parametrize(
    ("sent", "loc", "kind"),
    [
        ([reading(), {**reading(), "device_id": ""}], [1, "device_id"], "string_too_short"),
        ([reading(device="bad id")], [0, "device_id"], "string_pattern_mismatch"),
        ([{k: v for k, v in reading().items() if k != "metric"}], [0, "metric"], "missing"),
        ([reading(color="red")], [0, "color"], "extra_forbidden"),
        ([reading(value="high")], [0, "value"], "float_type"),
        ([reading(ts="2025-12-31T23:59:00")], [0, "ts"], "timezone_aware"),
        ([reading(seq=-1)], [0, "seq"], "greater_than_equal"),
        ([reading(), 5], [1], "model_type"),
        (reading(seq=-1), [0, "seq"], "greater_than_equal"),
    ],
)
def test_invalid_readings_are_422_with_their_location(sent: Any, loc: list[Any], kind: str) -> None:
    """An invalid field is reported by its index in the array (0 for one object) and name."""
    refusal = refused(sent)
    assert refusal.status == 422
    assert refusal.body["error"] == "invalid readings"
    assert [(e["loc"], e["type"]) for e in refusal.body["detail"]] == [(loc, kind)]
    assert all(isinstance(e["msg"], str) and e["msg"] for e in refusal.body["detail"])


def test_non_finite_values_are_422() -> None:
    """A value that overflows to infinity is refused as not finite."""
    body = orjson.dumps([reading()]).replace(b"10.5", b"1e999")
    [entry] = refused(body).body["detail"]
    assert (entry["loc"], entry["msg"]) == ([0, "value"], "Input should be a finite number")


def test_ndjson_errors_are_located_by_line_number() -> None:
    """In NDJSON the location is the 1-based line number, blank lines counted."""
    body = ndjson(reading()) + b"\n" + ndjson(reading(seq=-1), reading(), reading(extra=1))
    refusal = refused(body, "ndjson")
    assert refusal.status == 422
    assert [e["loc"] for e in refusal.body["detail"]] == [[3, "seq"], [5, "extra"]]


def test_one_invalid_reading_refuses_the_whole_request() -> None:
    """A request is all-or-nothing: nothing of it is accepted when one reading is invalid."""
    assert isinstance(parse([reading(seq=s) for s in range(100)] + [reading(seq=-1)]), Refusal)


def test_the_detail_holds_at_most_fifty_errors() -> None:
    """A body full of errors gets the first 50 of them, in body order."""
    for fmt, body in (
        ("json", orjson.dumps([reading(seq=-1)] * 80)),
        ("ndjson", ndjson(*[reading(seq=-1)] * 80)),
    ):
        detail = refused(body, fmt).body["detail"]
        assert len(detail) == ingest_parse.MAX_DETAIL
        assert detail[0]["loc"][0] in (0, 1)
        assert detail[-1]["loc"][0] in (49, 50)


def test_readings_too_far_in_the_future_are_422() -> None:
    """A timestamp more than max_future_seconds ahead of the clock is refused; at the
    limit it is accepted."""
    at_limit = reading(ts=NOW_MS + 60_000)
    beyond = reading(ts=NOW_MS + 60_001)
    assert isinstance(parse([at_limit], max_future_seconds=60), Accepted)
    refusal = refused([at_limit, beyond], max_future_seconds=60)
    assert refusal.status == 422
    assert [(e["loc"], e["type"]) for e in refusal.body["detail"]] == [([1, "ts"], "ts_in_future")]
    lines = refused(ndjson(at_limit, beyond), "ndjson", max_future_seconds=60)
    assert [e["loc"] for e in lines.body["detail"]] == [[2, "ts"]]
