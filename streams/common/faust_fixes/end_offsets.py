"""Client-side correction of the embedded broker's end offsets (ListOffsets "latest").

Why this exists: Tansu 0.6.0 (the embedded broker, see ``streams.common.broker``) answers
ListOffsets(latest) with the base offset of the newest record batch plus one, ignoring
how many records that batch holds. Measured: ten records produced as one batch to an
empty partition give ``AIOKafkaConsumer.end_offsets() == 1``, while a Fetch response
for the same partition reports ``high_watermark == 10``. Faust reads end offsets through
that call (``faust/transport/drivers/aiokafka.py::_highwaters``) when it restores tables,
so a restarted worker crashed with ``ConsistencyError`` (persisted offset > highwater) or
silently restored one record short.

On only for the embedded broker: ``KafkaSettings.correct_end_offsets`` (env
``KAFKA_CORRECT_END_OFFSETS``) is off by default, and the processes started against the
embedded broker (``make run``, the tests, the benchmarks) turn it on.

What it does: ``install_end_offset_correction()`` wraps
``aiokafka.consumer.fetcher.Fetcher.end_offsets``. After the normal ListOffsets lookup it
sends one Fetch request per partition leader (at each partition's listed offset,
``min_bytes=0``, 1-byte limits, so no records are wanted) and returns, per partition, the
larger of the listed offset and the Fetch response's high watermark (its last stable
offset for ``read_committed`` consumers). A check that fails, or leaves partitions
unanswered, is tried again (``CHECK_ATTEMPTS``); then the listed offset is kept, with a
warning, for the partitions still unanswered.

Harmless on real Kafka, were it turned on there: the high watermark (last stable offset
for read_committed) *is* what ListOffsets(latest) returns, so the maximum is the listed
value; and a Fetch at the listed offset (never past the log end, so never out of range)
with ``min_bytes=0`` is answered at once, with no records for ``read_uncommitted``. The
only difference is a record appended between the two requests, which makes the answer
that newer, equally valid end. The extra cost is one small round trip per partition
leader per ``end_offsets`` call, which is why it is not on by default.

Tansu detail: with ``max_wait_ms=0`` its Fetch response has no topics at all, and at the
log end it waits the whole ``max_wait_ms`` even with ``min_bytes=0``; hence the small
positive wait below.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import aiokafka.consumer.consumer as aiokafka_consumer
import aiokafka.errors as kafka_errors
from aiokafka.consumer.fetcher import READ_COMMITTED, Fetcher
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.structs import TopicPartition

from streams.common.faust_fixes.counters import Fix, count
from streams.common.faust_fixes.patching import Code, Original, Patch, install_all
from streams.common.faust_fixes.versions import check_versions

log = logging.getLogger(__name__)

#: How long the broker may hold the Fetch. Real Kafka answers at once (``min_bytes=0``);
#: Tansu answers with no partitions for 0 and holds a Fetch at the log end this long.
FETCH_MAX_WAIT_MS = 25
#: We only want the watermarks, not records.
FETCH_MAX_BYTES = 1
#: Checks tried before the listed end offsets are kept, and the base of the wait between.
CHECK_ATTEMPTS = 3
CHECK_RETRY_DELAY = 0.1


def corrected_end_offsets(
    listed: Mapping[TopicPartition, int], watermarks: Mapping[TopicPartition, int]
) -> dict[TopicPartition, int]:
    """Per partition, the larger of the listed end offset and the Fetch watermark.

    A partition without a watermark, or with a negative (unknown) listed offset, keeps
    its listed value.
    """
    result: dict[TopicPartition, int] = {}
    for tp, offset in listed.items():
        watermark = watermarks.get(tp)
        if offset < 0 or watermark is None:
            result[tp] = offset
        else:
            result[tp] = max(offset, watermark)
    return result


async def fetch_watermarks(
    fetcher: Fetcher, offsets: Mapping[TopicPartition, int]
) -> dict[TopicPartition, int]:
    """Ask each partition's leader, by one Fetch per leader, for the end of the partition.

    Returns the high watermark (the last stable offset for a ``read_committed`` fetcher)
    of each partition the brokers answered without error; others are left out, with a
    warning.
    """
    client = fetcher._client
    isolation_level: int = fetcher._isolation_level
    by_node: dict[int, dict[str, list[tuple[int, int, int]]]] = collections.defaultdict(
        lambda: collections.defaultdict(list)
    )
    for tp, offset in offsets.items():
        if offset < 0:
            continue
        node_id = client.cluster.leader_for_partition(tp)
        if node_id is None or node_id == -1:
            log.warning("end offset of %s not corrected: its leader is unknown", tp)
            continue
        by_node[node_id][tp.topic].append((tp.partition, offset, FETCH_MAX_BYTES))

    async def ask(node_id: int, topics: dict[str, list[tuple[int, int, int]]]) -> Any:
        request = FetchRequest(
            FETCH_MAX_WAIT_MS, 0, FETCH_MAX_BYTES, isolation_level, list(topics.items())
        )
        return await client.send(node_id, request)

    nodes = list(by_node.items())
    responses = await asyncio.gather(
        *(ask(node_id, topics) for node_id, topics in nodes), return_exceptions=True
    )

    watermarks: dict[TopicPartition, int] = {}
    for (node_id, topics), response in zip(nodes, responses, strict=True):
        asked = {TopicPartition(topic, p[0]) for topic, parts in topics.items() for p in parts}
        if isinstance(response, BaseException):
            log.warning(
                "end offsets of %s not corrected: Fetch to node %s failed: %r",
                sorted(asked),
                node_id,
                response,
            )
            continue
        # v0-v3: (partition, error_code, high_watermark, records);
        # v4+:   (partition, error_code, high_watermark, last_stable_offset, ...).
        use_lso = isolation_level == READ_COMMITTED and response.API_VERSION >= 4
        for topic, partitions in response.topics:
            for partition, error_code, high_watermark, *rest in partitions:
                tp = TopicPartition(topic, partition)
                if tp not in asked:
                    continue
                asked.discard(tp)
                error_type = kafka_errors.for_code(error_code)
                if error_type is not kafka_errors.NoError:
                    log.warning(
                        "end offset of %s not corrected: Fetch error %s", tp, error_type.__name__
                    )
                    continue
                watermarks[tp] = int(rest[0] if use_lso else high_watermark)
        if asked:
            log.warning(
                "end offsets of %s not corrected: missing from node %s's Fetch response",
                sorted(asked),
                node_id,
            )
    return watermarks


async def _end_offsets_corrected(
    self: Fetcher, partitions: Iterable[TopicPartition], timeout_ms: int | None
) -> dict[TopicPartition, int]:
    """Replacement for ``Fetcher.end_offsets``: ListOffsets, then the Fetch check.

    The check is tried ``CHECK_ATTEMPTS`` times before the listed values are kept: a
    table restored to a short end misses the last changelog records for good, and a
    busy broker or a connection closed mid-request is usually gone a moment later.
    """
    listed: dict[TopicPartition, int] = await END_OFFSETS.original(self, partitions, timeout_ms)
    wanted = {tp for tp, offset in listed.items() if offset >= 0}
    watermarks: dict[TopicPartition, int] = {}
    failure: Exception | None = None
    try:
        async with asyncio.timeout(None if timeout_ms is None else timeout_ms / 1000):
            for attempt in range(CHECK_ATTEMPTS):
                if attempt:
                    await asyncio.sleep(CHECK_RETRY_DELAY * attempt)
                try:
                    watermarks.update(await fetch_watermarks(self, listed))
                    failure = None
                except Exception as exc:
                    failure = exc
                if wanted <= watermarks.keys():
                    break
    except TimeoutError as exc:
        failure = exc
    if failure is not None and not watermarks:
        # Never worse than without the correction: keep what ListOffsets said.
        log.warning("end offsets not corrected (listed values kept): %r", failure)
        count(Fix.END_OFFSET_CHECKS_FAILED)
        return dict(listed)
    corrected = corrected_end_offsets(listed, watermarks)
    changed = 0
    for tp, offset in corrected.items():
        if offset != listed[tp]:
            changed += 1
            log.debug("end offset of %s corrected from %d to %d", tp, listed[tp], offset)
    if changed:
        count(Fix.END_OFFSETS_CORRECTED, changed)
    return corrected


END_OFFSETS = Patch(
    Code(
        Fetcher,
        "end_offsets",
        Original("aiokafka.consumer.fetcher", "Fetcher.end_offsets", "d03333ff4f87cd0e"),
    ),
    _end_offsets_corrected,
    # The class AIOKafkaConsumer instantiates.
    used_by=(aiokafka_consumer.Fetcher,),
    relies_on=(
        # Faust's highwaters and our readers call this, which asks the Fetcher.
        Code(
            aiokafka_consumer.AIOKafkaConsumer,
            "end_offsets",
            Original(
                "aiokafka.consumer.consumer", "AIOKafkaConsumer.end_offsets", "f4b19078581881ba"
            ),
        ),
    ),
)


def is_end_offset_correction_installed() -> bool:
    """Whether ``Fetcher.end_offsets`` is currently the corrected one."""
    return END_OFFSETS.installed


def install_end_offset_correction() -> None:
    """Patch ``aiokafka``'s ``Fetcher.end_offsets`` process-wide; calling it again only
    verifies the patch.

    It takes effect for every consumer, existing or future, from its next
    ``end_offsets`` call on, in any thread. Raises ``UnsupportedVersionError`` on another
    Faust or aiokafka release, ``PatchMismatchError`` when the function is not the one
    the correction was written for.
    """
    check_versions()
    install_all((END_OFFSETS,))


def uninstall_end_offset_correction() -> None:
    """Put aiokafka's own ``Fetcher.end_offsets`` back; a no-op when not installed."""
    END_OFFSETS.remove()


@contextmanager
def end_offset_correction(enabled: bool = True) -> Iterator[None]:
    """Within the block the correction is installed (or, with ``enabled=False``, not);
    afterwards the previous state is restored. For tests and tools run against the
    embedded broker."""
    was_installed = is_end_offset_correction_installed()
    if enabled:
        install_end_offset_correction()
    else:
        uninstall_end_offset_correction()
    try:
        yield
    finally:
        if was_installed:
            install_end_offset_correction()
        else:
            uninstall_end_offset_correction()
