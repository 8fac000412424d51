"""Which partition a key belongs in: Kafka's default partitioner, callable anywhere.

A record that carries several keys' data (a batch of devices' readings) is sent to an
explicit partition; it must be the partition each of those keys would get on its own,
or a key's records would be split between partitions and their state with them.
"""

from __future__ import annotations

from functools import lru_cache

from aiokafka.partitioner import murmur2


@lru_cache(maxsize=65_536)
def partition_for(key: bytes, partitions: int) -> int:
    """The partition the Java client, aiokafka and Faust pick for ``key`` among ``partitions``."""
    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % partitions
