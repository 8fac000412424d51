"""One batch of ``timeseries.writes``: apply each command once, write, then answer.

Per partition, the commands are applied in offset order to one ``PartitionState`` (each
key read once and written once per batch), written in the phases store.py orders,
and only once the table is written (changelog acknowledged, then RocksDB) are the
waiting requests answered. A record that is no command is dead-lettered with its reason
(``invalid_command``) and counted; it never stops the partition. So is a command on
another partition than its series' (``misplaced_command``: anything can write to the
topic): applied there, the series would be listed and counted by that partition while
reads, which look in ``partition_for(id)``, never find it.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Protocol

from streams.common.batches import by_partition
from streams.common.deadletter import dead_letter
from streams.common.exactly_once import PartitionState
from streams.common.partitioning import partition_for
from streams.common.sends import Confirmed
from streams.common.table_io import RocksPartition, write_all
from streams.timeseries import commands, store
from streams.timeseries.answers import Answers, waiting_key
from streams.timeseries.metrics import INVALID_COMMAND, MISPLACED_COMMAND

DLQ = "timeseries.dlq"


class Counting(Protocol):
    def labels(self, *values: str) -> Any: ...


@dataclass
class Applier:
    """What a batch needs: the table, the producer, the waiting requests, the counters."""

    table: Any
    producer: Any
    answers: Answers
    applied: Counting  # by op and status
    dead_letters: Counting  # by reason
    #: The topic's partition count, to refuse misplaced commands; None: not checked.
    partitions: int | None = None


async def handle_batch(applier: Applier, events: list[Any]) -> None:
    sends = Confirmed(applier.producer)
    now_ms = int(time.time() * 1000)
    written: list[RocksPartition] = []
    answered: list[tuple[str, store.Answer]] = []
    tally: Counter[tuple[str, str]] = Counter()
    letters: Counter[str] = Counter()
    for partition, group in by_partition(events).items():
        io = RocksPartition(applier.table, partition)
        state = PartitionState(io)
        for event in group:
            try:
                command, points = commands.decode(event.message.value)
            except commands.CommandError as exc:
                await dead_letter(sends, DLQ, event.message, INVALID_COMMAND, str(exc))
                letters[INVALID_COMMAND] += 1
                continue
            misplaced = _misplaced(command["id"], partition, applier.partitions)
            if misplaced:
                await dead_letter(sends, DLQ, event.message, MISPLACED_COMMAND, misplaced)
                letters[MISPLACED_COMMAND] += 1
                continue
            answer = store.apply(state, command, points, now_ms)
            answered.append((waiting_key(command["rid"], command.get("digest")), answer))
            tally[(command["op"], str(answer["status"]))] += 1
        state.flush_in_phases(store.phase)
        written.append(io)
    await sends.confirm()
    await write_all(written, applier.producer)
    for key, answer in answered:
        applier.answers.resolve(key, answer)
    for (op, status), count in tally.items():
        applier.applied.labels(op, status).inc(count)
    for reason, count in letters.items():
        applier.dead_letters.labels(reason).inc(count)


def _misplaced(series_id: str, partition: int, partitions: int | None) -> str:
    """Why a command for ``series_id`` does not belong in ``partition`` ("" if it does)."""
    if partitions is None:
        return ""
    home = partition_for(series_id.encode(), partitions)
    if home == partition:
        return ""
    return f"series {series_id} belongs in partition {home} of {partitions}, not {partition}"
