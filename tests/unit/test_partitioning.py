"""Kafka's default partitioner, as the platform computes it for explicit partitions."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from streams.common.partitioning import murmur2, partition_for


def test_murmur2_equals_aiokafkas_on_every_length_and_byte() -> None:
    """Keys of 0 to 200 bytes (every tail length), random bytes, high bytes included."""
    rng = random.Random(14)
    keys = [bytes(rng.randrange(256) for _ in range(n)) for n in range(201) for _ in range(20)]
    keys += [b"\xff" * n for n in range(12)] + [b"\x80" * n for n in range(12)]
    assert [murmur2(k) for k in keys] == [aiokafka_murmur2(k) for k in keys]


def test_partition_for_is_where_aiokafka_sends_a_keyed_record() -> None:
    rng = random.Random(2)
    partitioner = DefaultPartitioner()
    for _ in range(2000):
        key = f"ord-{rng.randrange(10**9)}".encode()
        partitions = rng.randrange(1, 64)
        assert partition_for(key, partitions) == partitioner(key, list(range(partitions)), [])
