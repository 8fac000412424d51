"""Each pipeline's topic registry, declared and verified before any client touches it.

A broker that creates topics on first use (Kafka's ``auto.create.topics.enable``, and
the embedded broker always) gives a topic its default partition count the moment a
consumer or producer asks for it. Partition counts are part of a pipeline's design
(keyed state lives in the partition of its key, and a table's changelog partition is
its source partition), so every pipeline lists every topic it reads or writes, its
tables' changelogs included, in one registry (``TopicSpec`` by name), and each of its
processes declares them at start and refuses to start when an existing topic
disagrees.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka import errors as kafka_errors
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicSpec:
    partitions: int
    config: Mapping[str, str] = field(default_factory=dict)


#: A compacted topic: the newest value per key is what it holds (tables, reference data).
COMPACTED: Mapping[str, str] = {"cleanup.policy": "compact"}


def changelog(app_id: str, table: str) -> str:
    """The changelog topic Faust names for ``table`` of the app ``app_id``."""
    return f"{app_id}-{table}-changelog"


def declare(bootstrap: str, topics: Mapping[str, TopicSpec], replication_factor: int) -> None:
    """``declare_topics`` from synchronous start-up code (a process's ``main``)."""
    asyncio.run(declare_topics(bootstrap, topics, replication_factor=replication_factor))


class TopicMismatch(RuntimeError):
    """An existing topic has another partition count than the pipeline needs."""


async def declare_topics(
    bootstrap: str, topics: Mapping[str, TopicSpec], *, replication_factor: int = 1
) -> None:
    """Create the missing ``topics``; raise TopicMismatch if one has the wrong partitions."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        # Describing a topic that does not exist creates it on the embedded broker:
        # list first, describe only what exists.
        present = set(await admin.list_topics()) & set(topics)
        described = await admin.describe_topics(sorted(present)) if present else []
        existing = {entry["topic"]: len(entry["partitions"]) for entry in described}
        wrong = {
            name: count for name, count in existing.items() if count != topics[name].partitions
        }
        if wrong:
            raise TopicMismatch(
                "; ".join(
                    f"{name} has {count} partitions, the pipeline needs {topics[name].partitions}"
                    for name, count in wrong.items()
                )
            )
        missing = [
            NewTopic(name, spec.partitions, replication_factor, topic_configs=dict(spec.config))
            for name, spec in topics.items()
            if name not in existing
        ]
        if not missing:
            return
        response = await admin.create_topics(missing)
        for name, code, *_ in response.topic_errors:
            error = kafka_errors.for_code(code)
            if error not in (kafka_errors.NoError, kafka_errors.TopicAlreadyExistsError):
                raise error(f"could not create {name}")
        log.info("created topics %s", ", ".join(topic.name for topic in missing))
    finally:
        await admin.close()


def raw_topic(app: Any, name: str, partitions: int) -> Any:
    """A Faust topic of raw bytes: the pipelines decode and validate records themselves."""
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
    )
