"""The two forms of a telemetry.readings record, and the partition of a device."""

from __future__ import annotations

from types import SimpleNamespace

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner
from pydantic import ValidationError

from streams.common.partitioning import partition_for
from streams.telemetry.models import ReadingGroup, decode_groups
from streams.telemetry.topology import split_by_size

ROW = ("eth0", "cpu", 1.5, 1_767_225_600_000, 7)


def test_one_object_is_one_group() -> None:
    """A device's own record (any producer's form) is one group."""
    value = orjson.dumps({"device_id": "r1", "readings": [ROW]})
    assert decode_groups(value) == [ReadingGroup(device_id="r1", readings=[ROW])]


def test_an_array_is_the_groups_of_several_devices_in_order() -> None:
    """The ingest's form, leading white space allowed: every group, in order."""
    groups = [{"device_id": d, "readings": [ROW]} for d in ("r2", "r1", "r2")]
    assert [g.device_id for g in decode_groups(b" \n" + orjson.dumps(groups))] == ["r2", "r1", "r2"]


@pytest.mark.parametrize(
    "value",
    [
        b"[]",
        b"",
        b"[{}]",
        b'[{"device_id": "r1", "readings": []}]',
        b'[{"device_id": "r1", "readings": [["eth0", "cpu", "1.5", 1, 1]]}]',
        b'{"device_id": "r1", "readings": [["eth0", "cpu", 1.5, 1, 1]], "extra": 1}',
    ],
)
def test_anything_else_is_refused(value: bytes) -> None:
    """An empty array, an empty group, a value as a string or an unknown field: invalid."""
    with pytest.raises(ValidationError):
        decode_groups(value)


#: murmur2 of keys as the Java client computes it (Kafka's UtilsTest.testMurmur2).
JAVA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize("partitions", [1, 6, 7, 64])
def test_a_device_gets_the_partition_kafka_gives_its_key(partitions: int) -> None:
    """The ingest's explicit partition is the Java client's and aiokafka's choice for
    the key, so the ingest's records and a producer's keyed records of a device meet."""
    for key, java in JAVA_MURMUR2.items():
        assert partition_for(key, partitions) == (java & 0x7FFFFFFF) % partitions
    kafka = DefaultPartitioner()
    every = list(range(partitions))
    for device in ("r1", "router-17", "sw-ß-3", "x" * 128):
        key = device.encode()
        assert partition_for(key, partitions) == kafka(key, every, every)


def test_a_batch_is_split_into_runs_of_bounded_size_in_order() -> None:
    """Runs keep the records' order, stay within the byte limit, and a record larger
    than the limit is a run of its own rather than refused or split."""
    sizes = [3, 4, 2, 9, 1, 1, 5]
    events = [SimpleNamespace(message=SimpleNamespace(value=b"x" * n)) for n in sizes]
    runs = split_by_size(events, 6)
    assert [[len(e.message.value) for e in run] for run in runs] == [[3], [4, 2], [9], [1, 1], [5]]
    assert [e for run in runs for e in run] == events
