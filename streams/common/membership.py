"""Whether the broker still counts this worker a member of its consumer group, asked now.

A worker that stood still past its session timeout (SIGSTOP, a stalled VM) was dropped
from the group and its partitions went to another; it learns so only when its
consumer's next heartbeat is refused, and its rebalance comes later still. A writer that
may not write with a stale table after such a pause (streams/launches/rewrite.py) asks
the group's coordinator directly: a heartbeat the coordinator accepts under this
member's generation proves that no other member holds that generation's partitions.

aiokafka has no public call for it: the heartbeat is sent as its own heartbeat routine
sends it (``GroupCoordinator._send_req``), from the consumer's thread (Faust runs the
consumer on a loop of its own).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka.errors import KafkaError, for_code
from aiokafka.errors import NoError as _NoError
from aiokafka.protocol.group import HeartbeatRequest

log = logging.getLogger(__name__)


async def heartbeat_accepted(consumer: Any) -> bool:
    """True if the coordinator accepts a heartbeat of ``consumer`` (an AIOKafkaConsumer,
    on its own loop) for the generation it holds; False if refused, unsent or not in a
    group. A rebalance in progress is False too: the partitions may be moving."""
    coordinator = getattr(consumer, "_coordinator", None)
    generation = getattr(coordinator, "generation", -1)
    if coordinator is None or generation is None or generation < 0:
        return False
    request = HeartbeatRequest(coordinator.group_id, generation, coordinator.member_id)
    try:
        response = await coordinator._send_req(request)
    except KafkaError as error:
        log.info("membership heartbeat not sent: %r", error)
        return False
    refused = for_code(response.error_code)
    if refused is not _NoError:
        log.info("membership heartbeat refused: %s", refused.__name__)
        return False
    return True


async def still_member(app: Any, patience: float) -> bool:
    """``heartbeat_accepted`` for a Faust app's consumer, asked from its thread; False
    if no answer comes within ``patience`` seconds."""
    thread = app.consumer._thread
    try:
        return bool(
            await asyncio.wait_for(
                thread.call_thread(heartbeat_accepted, thread._ensure_consumer()), patience
            )
        )
    except TimeoutError:
        return False
