"""The mirror: readiness by consumer position, failing listeners, bounded topics."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry, Counter

from streams.common.mirror import TopicMirror

TP = TopicPartition("t", 0)


class EmptiedConsumer:
    """A partition whose records retention deleted: its end is 10, and the position
    reached 10 without a single record being returned."""

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(partitions, 10)

    async def position(self, tp: TopicPartition) -> int:
        return 10


def record(offset: int, key: bytes, value: bytes | None) -> Any:
    return SimpleNamespace(offset=offset, key=key, value=value)


def test_a_partition_emptied_by_retention_counts_as_caught_up() -> None:
    """No record will ever come: readiness follows the consumer's position, not records."""

    async def scenario() -> None:
        mirror = TopicMirror("127.0.0.1:1", ["t"])
        mirror._consumer = EmptiedConsumer()  # type: ignore[assignment]
        mirror._assigned.set()
        await asyncio.wait_for(mirror.caught_up(), timeout=5)

    asyncio.run(scenario())


def test_a_failing_listener_is_counted_and_the_mirror_goes_on() -> None:
    """A listener that raises on one record loses that call only; the rest are applied."""
    failures = Counter("f", "", ["task"], registry=CollectorRegistry())

    async def scenario() -> dict[Any, Any]:
        mirror = TopicMirror("127.0.0.1:1", ["t"], failures=failures)
        seen: list[str] = []

        def listener(_topic: str, key: Any, _value: Any) -> None:
            if key == "bad":
                raise ValueError("a row no rule foresaw")
            seen.append(key)

        mirror.listeners.append(listener)
        mirror._apply("t", [record(0, b"a", b"1"), record(1, b"bad", b"2"), record(2, b"c", b"3")])
        assert seen == ["a", "c"]
        return mirror.data["t"]

    assert asyncio.run(scenario()) == {"a": 1, "bad": 2, "c": 3}
    assert failures.labels("mirror")._value.get() == 1


def test_a_bounded_topic_keeps_its_newest_keys() -> None:
    """Alerts beyond the limit drop the oldest; a key sent again counts as new."""

    async def scenario() -> list[Any]:
        mirror = TopicMirror("127.0.0.1:1", ["t"], newest={"t": 2})
        mirror._apply("t", [record(0, b"a", b"1"), record(1, b"b", b"2"), record(2, b"a", b"3")])
        mirror._apply("t", [record(3, b"c", b"4")])
        return list(mirror.data["t"].items())

    assert asyncio.run(scenario()) == [("a", 3), ("c", 4)]


def test_raw_key_prefixes_are_passed_over_before_decoding_in_their_topic_only() -> None:
    """Skipped keys reach neither the data nor a listener, even with an undecodable
    value; the same key in another topic, and other keys of the topic, are kept."""

    async def scenario() -> tuple[dict[Any, Any], dict[Any, Any], list[Any]]:
        mirror = TopicMirror("127.0.0.1:1", ["t", "u"], skip_raw={"t": (b'"order|',)})
        heard: list[Any] = []
        mirror.listeners.append(lambda _topic, key, _value: heard.append(key))
        mirror._apply("t", [record(0, b'"order|c|1"', b"not json"), record(1, b'"daily|x"', b"2")])
        mirror._apply("u", [record(0, b'"order|c|1"', b"3")])
        return mirror.data["t"], mirror.data["u"], heard

    assert asyncio.run(scenario()) == ({"daily|x": 2}, {"order|c|1": 3}, ["daily|x", "order|c|1"])
