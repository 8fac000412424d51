"""Which partition a key belongs in: Kafka's default partitioner, callable anywhere.

A record that carries several keys' data (a batch of devices' readings) is sent to an
explicit partition; it must be the partition each of those keys would get on its own,
or a key's records would be split between partitions and their state with them.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aiokafka.partitioner import murmur2


@lru_cache(maxsize=65_536)
def partition_for(key: bytes, partitions: int) -> int:
    """The partition the Java client, aiokafka and Faust pick for ``key`` among ``partitions``."""
    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % partitions


def owns_loaded(app: Any, topic: str, partition: int) -> bool:
    """True while this worker owns ``partition`` of ``topic`` and its tables are loaded:
    only then do its tables hold the partition's whole state."""
    if app.rebalancing or app.in_recovery or not app.tables.recovery.completed.is_set():
        return False
    return any(
        tp.topic == topic and tp.partition == partition for tp in app.assignor.assigned_actives()
    )
