"""A write request's way: its command sent to the series' partition of
``timeseries.writes`` (acknowledged by Kafka), then its answer awaited from whichever
worker applies that partition.

The answer is awaited where the partition is applied: on this worker, a future the
agent resolves once the batch is written (the table is read first, in case the command
was applied already); on another, a long poll of that worker's answer route. The owner
is looked up again on every poll, so a rebalance between the send and the answer only
delays it: the new owner applies the command (or finds it applied) and keeps its answer
under the request id. A request not answered within ``write_timeout_seconds`` is a 503
that says the write may still be applied: retried with the same ``Idempotency-Key``, it
is applied once.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

from streams.common.sends import Confirmed
from streams.common.web import API_KEY, Unavailable
from streams.timeseries import commands
from streams.timeseries.answers import waiting_key
from streams.timeseries.points import Points
from streams.timeseries.service import TimeSeries
from streams.timeseries.store import Answer, answer_key, replayed

#: The path of the answer route between workers (not part of the public API).
ANSWER_ROUTE = "/_internal/timeseries/answer"
#: Longest single wait before the owner is looked up again.
POLL_SECONDS = 1.0
#: Pause before looking again when no worker may answer (a rebalance under way).
SETTLING_SECONDS = 0.05


async def submit(
    series: TimeSeries, parts: list[tuple[dict[str, Any], Points | None]]
) -> list[Answer]:
    """Send the commands of a write, in order, to their partition (one series: one
    partition) and return their answers once applied, in order."""
    started = time.perf_counter()
    sends = Confirmed(series.app.producer)
    topic = series.writes.get_topic_name()
    for command, points in parts:
        key = command["id"].encode()
        value = commands.encode(command, points)
        await sends.send(topic, key, value, partition=series.partition(command["id"]))
    await sends.confirm()
    deadline = time.monotonic() + series.settings.write_timeout_seconds
    answers = []
    for command, _points in parts:
        request = (command["rid"], command.get("digest"))
        answers.append(
            await _answer(series, request, series.partition(command["id"]), deadline, started)
        )
    return answers


async def _answer(
    series: TimeSeries, request: Request, partition: int, deadline: float, started: float
) -> Answer:
    series.metrics.waiting.inc()
    where = "timeout"  # unless answered: the worst waits are seen too
    try:
        answer, where = await _await(series, request, partition, deadline)
    finally:
        series.metrics.waiting.dec()
        series.metrics.write_wait.labels(where).observe(time.perf_counter() - started)
    return answer


#: A write request: its request id and its body's fingerprint.
Request = tuple[str, str | None]


async def _await(
    series: TimeSeries, request: Request, partition: int, deadline: float
) -> tuple[Answer, str]:
    while (remaining := deadline - time.monotonic()) > 0:
        wait = min(remaining, POLL_SECONDS)
        try:
            owner = series.owner(partition)
        except KeyError:
            owner = None
        if owner is None:
            await asyncio.sleep(SETTLING_SECONDS)
            continue
        if series.is_here(owner):
            found, where = await wait_here(series, request, partition, wait), "here"
        else:
            found, where = await _ask(series, str(owner), request, partition, wait), "owner"
        if found is not None:
            return found, where
    seconds = series.settings.write_timeout_seconds
    raise Unavailable(
        f"the write was not applied within {seconds:g} s; it may still be: "
        "retry with the same Idempotency-Key to have it applied once"
    )


async def wait_here(
    series: TimeSeries, request: Request, partition: int, wait: float
) -> Answer | None:
    """The answer to ``request`` in this worker's ``partition`` within ``wait`` seconds;
    None if not yet, or if this worker does not serve the partition (now)."""
    local = series.local(partition)
    if local is None:
        await asyncio.sleep(min(wait, SETTLING_SECONDS))
        return None
    rid, digest = request
    key = waiting_key(rid, digest)
    future = series.answers.expect(key)  # before the look: no answer slips between
    try:
        kept = local.get(answer_key(rid))
        if kept is not None:
            return replayed(kept, digest)  # as the agent answers a replay
        return await asyncio.wait_for(future, wait)
    except TimeoutError:
        return None
    finally:
        series.answers.forget(key, future)


async def _ask(
    series: TimeSeries, owner: str, request: Request, partition: int, wait: float
) -> Answer | None:
    headers = {} if series.settings.api_key is None else {API_KEY: series.settings.api_key}
    rid, digest = request
    query = {
        "rid": rid,
        "digest": digest or "",
        "partition": str(partition),
        "wait_ms": str(int(wait * 1000)),
    }
    timeout = aiohttp.ClientTimeout(total=wait + 2.0)
    try:
        async with series.app.http_client.get(
            owner.rstrip("/") + ANSWER_ROUTE, params=query, headers=headers, timeout=timeout
        ) as response:
            if response.status == 200:
                found: Answer | None = (await response.json())["answer"]
                return found
    except (aiohttp.ClientError, TimeoutError, ValueError, KeyError):
        pass
    # Not the owner any more, or unreachable: look the owner up again shortly.
    await asyncio.sleep(SETTLING_SECONDS)
    return None
