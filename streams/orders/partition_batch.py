"""One partition's records of a batch of orders.raw, each in a straight line of stages:
decode, validate, dedupe and apply (aggregates.py), the partition's clock moved once for
the batch. ``process_record`` is a batch of one (tests, the oracle, the logic bench)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from streams.common.exactly_once import OFFSET, PartitionState
from streams.orders.aggregates import (
    Applied,
    apply_order,
    check_lateness,
    claim,
    clock_key,
    empty_value,
    touch_order,
    verdict_key,
)
from streams.orders.logic import (
    Rejected,
    Rules,
    check_against_catalog,
    check_bounds,
    check_event_time,
    check_key,
    parse_order,
    quality_issues,
)
from streams.orders.models import CatalogEntry, Order


class PartitionBatch:
    """One partition's records of one batch, in offset order: each goes through decode,
    validate, dedupe and apply, and the partition's clock moves once for the batch.

    The clock (``clock|<p>``) holds the offset of the last record handled, the
    partition's event-time high mark, the wall clock of that record and how many records
    had each outcome (applied, duplicate, rejected:<reason>). Counted under the clock's
    offset guard, the outcomes are exact, unlike a worker's metrics, which restart from
    zero and see replays again. The batch keeps them here and ``close`` writes them into
    the state: the value is the one a write per record would leave, and the clock is
    flushed after every other key (``flush_partition``) either way, so a crash before
    it is written replays the whole batch, as it did record by record.

    A replayed batch keeps every verdict of the try a crash cut short: validation
    depends on the catalog the worker holds and on its wall clock, which may have moved
    in between, and an order counted must not be dead-lettered too (or the reverse).
    So the batch records what it decided for each record past the clock
    (``verdict|<p>``), flushed before every key those verdicts allowed, and a record
    that verdict covers is judged by it, not validated again.
    """

    def __init__(
        self,
        aggregates: PartitionState,
        customers: PartitionState,
        partition: int,
        catalog: Mapping[str, CatalogEntry],
        rules: Rules,
    ) -> None:
        self.aggregates = aggregates
        self.customers = customers
        self.partition = partition
        self.catalog = catalog
        self.rules = rules
        clock = aggregates.get(clock_key(partition)) or {}
        #: The offset of the last record handled: anything at or below it is a replay.
        self.offset: int = clock.get(OFFSET, -1)
        #: The event-time high mark, before the record being handled.
        self.high: int | None = None if clock.get("max_ms") is None else int(clock["max_ms"])
        #: The high mark as the batch began: what its sweep may forget by (batch.py).
        self.start_high = self.high
        self._outcomes: dict[str, int] = {}
        self._wall_ms = 0
        #: The offsets past the clock that a try cut short by a crash decided.
        self._decided_to = -1
        #: Rejected offsets past the clock and their reasons: that try's and this one's.
        self._rejected: dict[int, str] = {}
        recorded = aggregates.peek(verdict_key(partition))
        if recorded is not None and recorded["to"] > self.offset:
            self._decided_to = recorded["to"]
            self._rejected = {
                offset: reason
                for reason, offsets in recorded["r"].items()
                for offset in offsets
                if offset > self.offset
            }
        self._first = self.offset

    def process(
        self,
        raw: bytes | None,
        offset: int,
        wall_ms: int,
        *,
        key: bytes | None = None,
        record_ms: int | None = None,
    ) -> Applied:
        """Decode, check and count one record of orders.raw exactly once (process_record)."""
        if offset <= self.offset:
            return self._replay(raw)
        try:
            order = parse_order(raw)
            clock_ms = wall_ms if record_ms is None else min(record_ms, wall_ms)
            if offset <= self._decided_to:
                revision = self._follow_verdict(order, offset, key, clock_ms)
            else:
                revision = self._validate(order, key, clock_ms)
        except Rejected as rejected:
            self.settle(offset, wall_ms, None, f"rejected:{rejected.reason}")
            return Applied("rejected", rejected=rejected)
        high = self.high
        kind = apply_order(
            order, offset, self.partition, self.aggregates, self.customers, self.rules, high
        )
        # "replayed" here means a crash cut the flush after this record's keys but
        # before the clock: a clean run counted it as applied, and so must the clock.
        counted = "duplicate" if kind == "duplicate" else "applied"
        self.settle(offset, wall_ms, order.event_ms, counted)
        issues = quality_issues(order)
        emits = kind != "duplicate"
        return Applied(kind, order=order, revision=revision, issues=issues, emits=emits)

    def process_events(self, events: Iterable[Any], wall_ms: int) -> list[Applied]:
        """Every record of ``events`` (items with a Kafka ``.message``, in offset order),
        then the clock written into the state."""
        outcomes = [
            self.process(
                event.message.value,
                event.message.offset,
                wall_ms,
                key=event.message.key,
                record_ms=int(event.message.timestamp * 1000),
            )
            for event in events
        ]
        self.close()
        return outcomes

    def _replay(self, raw: bytes | None) -> Applied:
        """A record the clock already counts: nothing changes and nothing is emitted
        again, but its keys are read, and so rewritten at flush, to heal a changelog
        that lost them when a worker died."""
        try:
            order = parse_order(raw)
        except Rejected as rejected:
            return Applied("replayed", rejected=rejected)
        touch_order(order, self.partition, self.aggregates, self.customers)
        return Applied("replayed", order=order)

    def _validate(self, order: Order, key: bytes | None, clock_ms: int) -> bool:
        """Raise Rejected for an order that may not count; True if it is a revision."""
        rules = self.rules
        check_bounds(order)
        check_key(order, key, self.partition, rules)
        check_event_time(order, clock_ms, rules)
        check_against_catalog(order, self.catalog, rules)
        return check_lateness(order, self.high, rules)

    def _follow_verdict(self, order: Order, offset: int, key: bytes | None, clock_ms: int) -> bool:
        """Judge a record as the try a crash cut short did (``_validate`` otherwise)."""
        reason = self._rejected.get(offset)
        if reason is None:  # counted then: whatever the catalog and the clock say now
            return check_lateness(order, self.high, self.rules)
        try:
            self._validate(order, key, clock_ms)
        except Rejected as rejected:
            if rejected.reason == reason:
                raise
        raise Rejected(reason, "so judged before the worker restarted (detail not kept)")

    def settle(self, offset: int, wall_ms: int, event_ms: int | None, outcome: str) -> None:
        """Move the clock past ``offset`` and count its ``outcome``; an order's
        ``event_ms`` moves the high mark. A record the clock already counts (at or
        below its offset) moves nothing."""
        if offset <= self.offset:
            return
        self.offset = offset
        self._wall_ms = wall_ms
        self._outcomes[outcome] = self._outcomes.get(outcome, 0) + 1
        if outcome.startswith("rejected:"):
            self._rejected[offset] = outcome.removeprefix("rejected:")
        if event_ms is not None:
            self.high = event_ms if self.high is None or event_ms > self.high else self.high

    def close(self) -> None:
        """Write the clock into the state, if a record moved it (to be flushed last),
        and the batch's verdicts (to be flushed first)."""
        if not self._outcomes:
            return
        self._record_verdicts()
        key = clock_key(self.partition)
        clock = claim(self.aggregates, key, self.offset, self.aggregates.get(key), empty_value)
        if clock is None:
            raise RuntimeError(f"{key} is already past offset {self.offset}")
        counts = clock.setdefault("n", {})
        for outcome, count in self._outcomes.items():
            counts[outcome] = counts.get(outcome, 0) + count
        clock["max_ms"] = self.high
        clock["wall_ms"] = self._wall_ms
        clock[OFFSET] = self.offset
        self._outcomes = {}

    def _record_verdicts(self) -> None:
        """Every offset decided past the clock as the batch began, a cut-short try's
        included: this batch may end before that try did."""
        rejected: dict[str, list[int]] = {}
        for offset in sorted(self._rejected):
            if offset > self._first:
                rejected.setdefault(self._rejected[offset], []).append(offset)
        decided = {"to": max(self.offset, self._decided_to), "r": rejected}
        self.aggregates.put(verdict_key(self.partition), decided)


def process_record(
    raw: bytes | None,
    partition: int,
    offset: int,
    wall_ms: int,
    aggregates: PartitionState,
    customers: PartitionState,
    catalog: Mapping[str, CatalogEntry],
    rules: Rules,
    *,
    key: bytes | None = None,
    record_ms: int | None = None,
) -> Applied:
    """Decode, check and count one record of orders.raw exactly once, alone: a batch of
    one (``PartitionBatch``), its clock written into the state.

    ``key`` and ``record_ms`` are the Kafka record's key and timestamp: the key must be
    the customer id (when ``rules.partitions`` is set), and the order may not be
    stamped after ``min(record_ms, wall_ms)`` by more than ``rules.max_future_ms``.

    A record at or below the partition clock's offset was fully handled before a
    restart (the clock is flushed last): it changes nothing and emits nothing again,
    but its keys are rewritten so a changelog that lost them is healed.
    """
    batch = PartitionBatch(aggregates, customers, partition, catalog, rules)
    applied = batch.process(raw, offset, wall_ms, key=key, record_ms=record_ms)
    batch.close()
    return applied
