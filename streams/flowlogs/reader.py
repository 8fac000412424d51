"""The reader: objects of the source to chunks on ``flowlogs.records``, each object once.

Every ``poll_seconds`` the reader lists the source and ingests, oldest delivery first,
each object it owns (ledger.py) that the ledger does not hold yet:

1. A gzip object is first decompressed once without parsing: a truncated or corrupt
   object is found before anything of it is sent. Decompression errors are retried
   ``object_attempts`` times (an object still being written locally), then the object
   is dead-lettered whole (``corrupt_object``) and recorded in the ledger as such.
2. It is parsed block by block (parse.py): each block's rows become chunks (chunks.py)
   and its malformed lines dead letters (object URI and line number); the block's
   sends are acknowledged before the next block is read, so memory stays bounded by a
   block, whatever the object's size.
3. Its ledger record is sent and acknowledged; only then do the metrics count it.

Failures of the surroundings (listing or reading the source, Kafka) are retried with
waits doubling to ``max_delay`` (jittered), for as long as they last; an object that
fails half-way is read again from its start, and the chunks it sends again are the
same chunks, which the workers count once (dedupe.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka.errors import KafkaError

from streams.common.batches import Retry
from streams.common.deadletter import DeadLetter, Source, send_dead_letter
from streams.common.sends import Confirmed, SendFailed
from streams.flowlogs.chunks import MAX_VALUE_BYTES, encode_chunks
from streams.flowlogs.ledger import LEDGER, Ledger, ledger_partition
from streams.flowlogs.metrics import ReaderMetrics, reason_label
from streams.flowlogs.parse import (
    UNREADABLE_OBJECT,
    Block,
    ObjectError,
    field_names,
    parse_parquet,
    parse_text,
)
from streams.flowlogs.reading import CorruptObject, check_gzip, cutoff, surroundings
from streams.flowlogs.source import GZIP_MAGIC, ObjectSource, StoredObject

log = logging.getLogger(__name__)

RECORDS = "flowlogs.records"
DLQ = "flowlogs.dlq"


@dataclass
class Outcome:
    records: int = 0
    chunks: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def letter(self, reason: str) -> None:
        self.reasons[reason] = self.reasons.get(reason, 0) + 1


@dataclass
class Reader:
    source: ObjectSource
    ledger: Ledger
    producer: Any
    metrics: ReaderMetrics
    poll_seconds: float
    object_attempts: int
    max_future_seconds: int
    chunk_rows: int
    format: str | None = None
    #: Objects read at once: their sends' round trips to Kafka overlap.
    concurrency: int = 8
    retry: Retry = field(default_factory=Retry)
    newest_ingested: float = 0.0

    def __post_init__(self) -> None:
        # Checked once, here: a bad format is the setting's fault, never an object's
        # (ValueError: the reader does not start). Objects with a header never use it.
        self._default_format = field_names(self.format) if self.format else None

    async def run(self) -> None:
        """List and ingest for ever (the app's task); each failure waits and tries again."""
        failures = 0
        while True:
            try:
                await self.once()
                failures = 0
                await self._idle(self.poll_seconds)
            except Exception as exc:
                failures += 1
                # The source (listing, reading: OSError) or anything else (Kafka...).
                if isinstance(exc, OSError):
                    self.metrics.source_errors.inc()
                else:
                    self.metrics.task_failures.labels("reader").inc()
                log.exception("flowlogs reader: attempt %d failed; retrying", failures)
                await self._idle(self.retry.delay(failures))

    async def once(self) -> int:
        """One listing and the objects it shows this reader owns; the count ingested."""
        await self.ledger.settle(60.0)
        if not self.ledger.ready:
            return 0
        await self._move_misplaced()
        objects = await asyncio.to_thread(self.source.list)
        if objects:
            self.metrics.newest_seen.set(max(o.written or time.time() for o in objects))
        mine = [o for o in objects if self.ledger.owns(o.uri)]
        await self._report_changed(o for o in mine if self.ledger.is_done(o.uri))
        todo = [o for o in mine if not self.ledger.is_done(o.uri)]
        self.metrics.pending.set(len(todo))
        ingested = 0
        running = self.ledger.in_flight
        try:
            for obj in todo:
                await self.ledger.poll(timeout_ms=0)
                if not self.ledger.ready or not self.ledger.owns(obj.uri):
                    break  # a rebalance: list again with the new share
                if self.ledger.is_done(obj.uri):
                    continue
                while len(running) >= self.concurrency:
                    done, _ = await asyncio.wait(running, return_when="FIRST_COMPLETED")
                    running.difference_update(done)
                    for task in done:
                        task.result()  # a failure: the whole listing is tried again
                running.add(asyncio.create_task(self.ingest(obj)))
                ingested += 1
            if running:
                outcomes = await asyncio.gather(*running, return_exceptions=True)
                running.clear()
                for outcome in outcomes:
                    if isinstance(outcome, BaseException):
                        raise outcome
        finally:
            # Objects half-read when another failed are finished, not cancelled: a
            # cancelled one could leave its ledger record sent and its metrics not moved.
            if running:
                await asyncio.gather(*running, return_exceptions=True)
            running.clear()
        return ingested

    async def ingest(self, obj: StoredObject) -> None:
        started = time.perf_counter()
        latest_start = cutoff(obj, self.max_future_seconds)
        outcome: Outcome | None = None
        problem = ("", "")
        for attempt in range(1, self.object_attempts + 1):
            try:
                await asyncio.to_thread(self._check, obj)
                outcome = await self._publish(obj, latest_start)
                break
            except ObjectError as exc:
                problem = (exc.reason, exc.detail)
                break  # the header decides it: reading again cannot help
            except CorruptObject as exc:
                problem = (exc.reason, str(exc))
            except FileNotFoundError:
                if await asyncio.to_thread(self.source.ends_in_slash, obj):
                    problem = (UNREADABLE_OBJECT, "its S3 key ends in '/': pyarrow cannot read it")
                    break  # listed again at every poll, and never readable
                log.warning("flowlogs reader: %s vanished after the listing", obj.uri)
                self.metrics.pending.dec()
                return  # nothing to read; listed again if it comes back
            except Exception as exc:
                if isinstance(exc, SendFailed | KafkaError):
                    raise  # nothing can be sent: the listing is tried again, after a wait
                if surroundings(exc):
                    # The network or S3 failing for this object (access denied, a dropped
                    # connection): it stays unread and is tried at the next listing; the
                    # others go on meanwhile.
                    self.metrics.source_errors.inc()
                    self.metrics.pending.dec()
                    log.warning("flowlogs reader: %s not read now: %s", obj.uri, exc)
                    return
                # Anything else is this object's bytes (or name): read again, then
                # dead-lettered, never a stuck reader.
                problem = ("unreadable_object", f"{type(exc).__name__}: {exc}")
            log.warning("flowlogs reader: %s unreadable (%s), try %d", obj.uri, problem[1], attempt)
            if attempt < self.object_attempts:
                await asyncio.sleep(self.retry.delay(attempt))
        if outcome is None:
            await self._dead_letter_object(obj, *problem)
            self.metrics.objects.labels("dead_lettered").inc()
        else:
            await self._record(
                obj,
                {
                    "status": "ingested",
                    "records": outcome.records,
                    "chunks": outcome.chunks,
                    "dead_letters": outcome.reasons,
                },
            )
            self.metrics.objects.labels("ingested").inc()
            self.metrics.records.inc(outcome.records)
            for reason, count in outcome.reasons.items():
                self.metrics.dead_letters.labels(reason_label(reason)).inc(count)
        self.metrics.bytes.inc(obj.size)
        self.newest_ingested = max(self.newest_ingested, obj.written or time.time())
        self.metrics.newest_ingested.set(self.newest_ingested)
        self.metrics.object_seconds.observe(time.perf_counter() - started)
        self.metrics.pending.dec()

    def _check(self, obj: StoredObject) -> None:
        """Decompress a gzip object once, discarding the text (blocking I/O)."""
        if unaddressable := self.source.unaddressable(obj):
            raise ObjectError(UNREADABLE_OBJECT, unaddressable)
        if obj.is_parquet:
            return  # parse_parquet reads the footer first: a broken file fails there
        with self.source.fs.open_input_stream(obj.path, compression=None) as raw:
            head = raw.read(2)
            if head != GZIP_MAGIC:
                return
            check_gzip(head, raw.read)

    async def _publish(self, obj: StoredObject, latest_start: int) -> Outcome:
        outcome = Outcome()
        blocks = self._blocks(obj, latest_start)
        try:
            while True:
                block = await asyncio.to_thread(next, blocks, None)
                if block is None:
                    return outcome
                await self._send_block(obj, block, outcome)
        finally:
            # A generator still running in its thread (this task was cancelled) cannot
            # be closed; it is collected when that thread lets go of it.
            with contextlib.suppress(ValueError):
                blocks.close()

    def _blocks(self, obj: StoredObject, latest_start: int) -> Generator[Block, None, None]:
        if obj.is_parquet:
            with self.source.open_file(obj) as file:
                yield from parse_parquet(file, latest_start=latest_start)
            return
        with self.source.open_text(obj) as text:
            yield from parse_text(
                text, latest_start=latest_start, default_format=self._default_format
            )

    async def _send_block(self, obj: StoredObject, block: Block, outcome: Outcome) -> None:
        sends = Confirmed(self.producer)
        chunks = encode_chunks(block.flows, obj.uri, outcome.chunks, max_rows=self.chunk_rows)
        for key, value in chunks:
            outcome.chunks += 1
            if len(value) > MAX_VALUE_BYTES:  # one row over Kafka's record limit
                letter = DeadLetter(
                    "too_large", f"a row of {len(value)} bytes", Source(object=obj.uri),
                    obj.uri.encode(), None,
                )  # fmt: skip
                await send_dead_letter(sends, DLQ, letter)
                outcome.letter("too_large")
                outcome.records -= 1
                continue
            await sends.send(RECORDS, key, value)
        for bad in block.bad:
            letter = DeadLetter(
                bad.reason, bad.detail, Source(object=obj.uri, line=bad.line),
                obj.uri.encode(), bad.text.encode(errors="replace"),
            )  # fmt: skip
            await send_dead_letter(sends, DLQ, letter)
            outcome.letter(bad.reason)
        await sends.confirm()
        outcome.records += block.flows.num_rows

    async def _dead_letter_object(self, obj: StoredObject, reason: str, detail: str) -> None:
        sends = Confirmed(self.producer)
        letter = DeadLetter(reason, detail, Source(object=obj.uri), obj.uri.encode(), None)
        await send_dead_letter(sends, DLQ, letter)
        await sends.confirm()
        self.metrics.dead_letters.labels(reason_label(reason)).inc()
        log.error("flowlogs reader: %s dead-lettered: %s (%s)", obj.uri, reason, detail)
        await self._record(obj, {"status": "dead_lettered", "reason": reason, "detail": detail})

    async def _report_changed(self, done: Iterable[StoredObject]) -> None:
        """An object read before whose size is now another: AWS never rewrites one, so
        its new bytes are not read (that could count its flows twice); it is
        dead-lettered (``changed_object``) once, and the ledger notes the new size."""
        for obj in done:
            size = self.ledger.done[obj.uri].get("size")
            if size is None or size == obj.size:
                continue
            detail = f"read at {size} bytes, now {obj.size}: the new bytes are not read"
            sends = Confirmed(self.producer)
            letter = DeadLetter(
                "changed_object", detail, Source(object=obj.uri), obj.uri.encode(), None
            )
            await send_dead_letter(sends, DLQ, letter)
            await sends.confirm()
            self.metrics.dead_letters.labels("changed_object").inc()
            log.warning("flowlogs reader: %s changed after it was read: %s", obj.uri, detail)
            earlier = {k: v for k, v in self.ledger.done[obj.uri].items() if k != "size"}
            await self._record(obj, {**earlier, "changed_from": size})  # now at obj.size

    async def _record(self, obj: StoredObject, outcome: dict[str, Any]) -> None:
        sends = Confirmed(self.producer)
        value = {"size": obj.size, "delivered": obj.delivered, "read_at": time.time(), **outcome}
        # The partition its owner reads (a flow log's objects share one: ledger.py).
        partition = ledger_partition(obj.uri, self.ledger.partitions)
        await sends.send(LEDGER, obj.uri.encode(), orjson.dumps(value), partition=partition)
        await sends.confirm()
        self.ledger.done[obj.uri] = value

    async def _move_misplaced(self) -> None:
        """Move ledger records an earlier version placed by URI to their flow log's
        partition (ledger.py), so that the object's reader knows it was read."""
        if not self.ledger.misplaced:
            return
        sends = Confirmed(self.producer)
        for uri, (was, value) in self.ledger.misplaced.items():
            now = ledger_partition(uri, self.ledger.partitions)
            await sends.send(LEDGER, uri.encode(), value, partition=now)
            await sends.send(LEDGER, uri.encode(), None, partition=was)
        await sends.confirm()
        log.info("flowlogs reader: moved %d ledger records", len(self.ledger.misplaced))
        self.ledger.misplaced.clear()

    async def _idle(self, seconds: float) -> None:
        """Wait, staying in the readers' group (its rebalances need the consumer polled)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await self.ledger.poll(timeout_ms=int(min(1.0, deadline - time.monotonic()) * 1000))
