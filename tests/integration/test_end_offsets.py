"""End offsets against the embedded broker, with and without the end-offset correction."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.consumer.fetcher import Fetcher
from aiokafka.structs import TopicPartition

from streams.common.broker import EmbeddedBroker
from streams.common.faust_fixes import Fix, counts
from streams.common.faust_fixes import end_offsets as eo
from tests.support.ports import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def bootstrap() -> Iterator[str]:
    with EmbeddedBroker(port=free_port()) as broker:
        yield broker.bootstrap


async def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


async def produce_batches(bootstrap: str, topic: str, batches: dict[int, list[int]]) -> None:
    """Per partition, send one record batch per listed size (each batch is one Produce)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for partition, sizes in batches.items():
            for size in sizes:
                batch = producer.create_batch()
                for i in range(size):
                    assert batch.append(key=None, value=b"v%d" % i, timestamp=None) is not None
                batch.close()
                await (await producer.send_batch(batch, topic, partition=partition))
    finally:
        await producer.stop()


async def started_consumer(bootstrap: str, **config: str) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, **config)
    await consumer.start()
    return consumer


async def test_listed_end_offset_is_short_without_correction(bootstrap: str) -> None:
    """Without the correction, a partition holding ten records in one batch reports an
    end offset of 1, although a Fetch reports the right high watermark, 10."""
    await create_topic(bootstrap, "uncorrected", 1)
    await produce_batches(bootstrap, "uncorrected", {0: [10]})
    tp = TopicPartition("uncorrected", 0)
    with eo.end_offset_correction(enabled=False):
        consumer = await started_consumer(bootstrap)
        try:
            listed = await consumer.end_offsets([tp])
            watermarks = await eo.fetch_watermarks(consumer._fetcher, listed)
        finally:
            await consumer.stop()
    # Tansu 0.6.0: base offset of the newest batch (0) plus one.
    assert listed == {tp: 1}
    assert watermarks == {tp: 10}


async def test_corrected_end_offset_is_exact(bootstrap: str) -> None:
    """With the correction, end_offsets counts every record of every batch, and an empty
    partition stays at 0, also for consumers started before it was installed."""
    await create_topic(bootstrap, "corrected-one", 1)
    await produce_batches(bootstrap, "corrected-one", {0: [10]})
    await create_topic(bootstrap, "corrected-many", 4)
    # Partition 2 gets single-record batches (Tansu lists those right), 3 stays empty.
    await produce_batches(bootstrap, "corrected-many", {0: [4, 3, 5], 1: [1, 7], 2: [1, 1, 1]})
    one = TopicPartition("corrected-one", 0)
    many = [TopicPartition("corrected-many", p) for p in range(4)]
    expected = {one: 10, many[0]: 12, many[1]: 8, many[2]: 3, many[3]: 0}

    with eo.end_offset_correction(enabled=False):
        early = await started_consumer(bootstrap)
        try:
            # What the broker lists: base offset of the newest batch plus one.
            assert await early.end_offsets([one, *many]) == {
                one: 1,
                many[0]: 8,
                many[1]: 2,
                many[2]: 3,
                many[3]: 0,
            }
            with eo.end_offset_correction():
                before = counts()[Fix.END_OFFSETS_CORRECTED]
                assert await early.end_offsets([one, *many]) == expected
                # one, many[0] and many[1] were listed short.
                assert counts()[Fix.END_OFFSETS_CORRECTED] == before + 3
        finally:
            await early.stop()

    with eo.end_offset_correction():
        for isolation_level in ("read_uncommitted", "read_committed"):
            consumer = await started_consumer(bootstrap, isolation_level=isolation_level)
            try:
                assert await consumer.end_offsets([one, *many]) == expected, isolation_level
            finally:
                await consumer.stop()


async def test_failed_check_keeps_listed_offsets(
    bootstrap: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """When the Fetch check gets no answer for a partition, end_offsets returns what the
    broker listed and logs a warning instead of failing."""
    await create_topic(bootstrap, "fallback", 1)
    await produce_batches(bootstrap, "fallback", {0: [10]})
    tp = TopicPartition("fallback", 0)
    # Tansu answers a Fetch with max_wait_ms=0 with no partitions at all.
    monkeypatch.setattr(eo, "FETCH_MAX_WAIT_MS", 0)
    before = counts()[Fix.END_OFFSETS_CORRECTED]
    with eo.end_offset_correction(), caplog.at_level(logging.WARNING, logger=eo.__name__):
        consumer = await started_consumer(bootstrap)
        try:
            assert await consumer.end_offsets([tp]) == {tp: 1}
        finally:
            await consumer.stop()
    assert "missing from node" in caplog.text
    assert counts()[Fix.END_OFFSETS_CORRECTED] == before


async def test_a_failed_check_is_counted_and_keeps_listed_offsets(
    bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the Fetch check raises, end_offsets returns what the broker listed and
    streams_faust_fix_end_offset_checks_failed_total counts it."""
    await create_topic(bootstrap, "check-fails", 1)
    await produce_batches(bootstrap, "check-fails", {0: [10]})
    tp = TopicPartition("check-fails", 0)

    async def unreachable(*args: object) -> dict[TopicPartition, int]:
        raise ConnectionError("leader unreachable")

    monkeypatch.setattr(eo, "fetch_watermarks", unreachable)
    before = counts()[Fix.END_OFFSET_CHECKS_FAILED]
    with eo.end_offset_correction():
        consumer = await started_consumer(bootstrap)
        try:
            assert await consumer.end_offsets([tp]) == {tp: 1}
        finally:
            await consumer.stop()
    assert counts()[Fix.END_OFFSET_CHECKS_FAILED] == before + 1


async def test_a_check_that_fails_once_is_tried_again(
    bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection closed under the first check does not leave a restore one batch
    short: the check is tried again and the end is corrected."""
    await create_topic(bootstrap, "check-retried", 1)
    await produce_batches(bootstrap, "check-retried", {0: [10]})
    tp = TopicPartition("check-retried", 0)
    real, calls = eo.fetch_watermarks, []

    async def fails_once(*args: Any) -> dict[TopicPartition, int]:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("connection closed")
        return await real(*args)

    monkeypatch.setattr(eo, "fetch_watermarks", fails_once)
    failed = counts()[Fix.END_OFFSET_CHECKS_FAILED]
    with eo.end_offset_correction():
        consumer = await started_consumer(bootstrap)
        try:
            assert await consumer.end_offsets([tp]) == {tp: 10}
        finally:
            await consumer.stop()
    assert len(calls) == 2
    assert counts()[Fix.END_OFFSET_CHECKS_FAILED] == failed


def test_install_is_idempotent_and_reversible() -> None:
    """Installing the correction any number of times wraps end_offsets once, and the
    context manager puts back whatever was there before."""
    before = Fetcher.end_offsets
    was_installed = eo.is_end_offset_correction_installed()
    with eo.end_offset_correction(enabled=False):
        original = Fetcher.end_offsets
        eo.install_end_offset_correction()
        patched = Fetcher.end_offsets
        eo.install_end_offset_correction()
        assert Fetcher.end_offsets is patched is not original
        assert eo.is_end_offset_correction_installed()
        eo.uninstall_end_offset_correction()
        eo.uninstall_end_offset_correction()
        assert Fetcher.end_offsets is original
    assert Fetcher.end_offsets is before
    assert eo.is_end_offset_correction_installed() is was_installed
