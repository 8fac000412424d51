"""Component: the orders batch on real RocksDB with a producer whose sends fail.

The batch handler and the batch runner are the production ones; the producer is a
fake that delivers, refuses at once or fails later as each scenario says, and records
what was delivered. Nothing may be acknowledged (the runner done) that was not
delivered, RocksDB may not move before its changelog is delivered, and once the fault
clears the figures must equal a clean run's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError

from streams.common.partitioning import partition_for
from streams.common.sends import Confirmed
from streams.orders.pipeline import DLQ, ENRICHED
from tests.support.fake_kafka import Producer, Rule, Store
from tests.support.orders_rig import (
    CHANGELOG,
    NOW_S,
    PARTITIONS,
    Rig,
    message,
    rebalance,
    restore,
)
from tests.unit.factories import item, raw, v1


def orders() -> list[Any]:
    """Events of four customers' orders, two a duplicate, one unknown product."""
    events: list[Any] = []
    offsets = dict.fromkeys(range(PARTITIONS), 0)
    for n in range(24):
        customer = f"CUST-{n % 4}"
        order_id = f"ORD-{n - 4 if n in (8, 13) else n}"  # the customer's order sent again
        items = [item("PROD-404" if n == 10 else "PROD-002", 1 + n % 3, "243.82")]
        value = raw(v1(order_id=order_id, customer_id=customer, items=items))
        key = customer.encode()
        partition = partition_for(key, PARTITIONS)
        events.append(SimpleNamespace(message=message(partition, offsets[partition], value, key)))
        offsets[partition] += 1
    return events


def expected_revenue(events: list[Any]) -> Decimal:
    """Revenue of the first occurrence of each valid order id, computed from the bytes."""
    seen: set[str] = set()
    total = Decimal(0)
    for event in events:
        order = orjson.loads(event.message.value)
        if order["order_id"] in seen or order["items"][0]["product_id"] == "PROD-404":
            continue
        seen.add(order["order_id"])
        total += sum(Decimal(str(i["unit_price"])) * i["quantity"] for i in order["items"])
    return total


def run(
    tmp_path: Path, rule: Rule, events: list[Any], store: Store | None = None
) -> tuple[bool, Producer, Any, Store]:
    rig = Rig(store or Store(tmp_path), Producer(rule))
    done = rig.run(events)
    return done, rig.producer, rig.metrics, rig.store


def stored_revenue(store: Store) -> Decimal:
    cents = 0
    for db in store.dbs.values():
        for key, value in db.items():
            parsed = orjson.loads(key)
            if parsed.startswith("daily|"):
                cents += orjson.loads(value)["s"].get("confirmed", [0, 0])[1]
    return Decimal(cents) / 100


def distinct(producer: Producer, topic: str) -> set[bytes | None]:
    return {key for key, _value, _headers in producer.delivered.get(topic, [])}


@pytest.fixture(autouse=True)
def _wall_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Orders of 2025 are not in the future: the batch's clock is the records' time."""
    import time

    monkeypatch.setattr(time, "time", lambda: NOW_S)


def test_a_clean_run_delivers_and_counts_every_order_once(tmp_path: Path) -> None:
    """No fault: the reference figures, each valid order enriched once, one dead letter."""
    events = orders()
    done, producer, metrics, store = run(tmp_path, lambda *_: None, events)

    assert done
    assert stored_revenue(store) == expected_revenue(events)
    assert len(distinct(producer, ENRICHED)) == 21
    assert len(producer.delivered[DLQ]) == 1
    assert metrics.batch_failures._value.get() == 0


@pytest.mark.parametrize("fault", ["refused at once", "failed later"])
@pytest.mark.parametrize(
    "window", [(1, 1), (10, 15), (30, 40)], ids=["dead-letter", "enriched", "changelog"]
)
def test_sends_failing_for_a_while_are_retried_and_nothing_counts_twice(
    tmp_path: Path, fault: str, window: tuple[int, int]
) -> None:
    """Kafka refusing some sends (a dead letter, enriched orders, table changelog): the
    batch is retried until they pass; the figures are then exact and every order and
    dead letter is delivered."""

    def rule(_topic: str, _key: Any, _value: Any, n: int) -> BaseException | str | None:
        if window[0] <= n <= window[1]:
            return KafkaConnectionError() if fault == "refused at once" else "later"
        return None

    events = orders()
    done, producer, metrics, store = run(tmp_path, rule, events)

    assert done
    assert metrics.batch_failures._value.get() >= 1
    assert stored_revenue(store) == expected_revenue(events)
    assert len(distinct(producer, ENRICHED)) == 21
    assert len(distinct(producer, DLQ)) == 1
    assert metrics.dead_letters.labels("unknown_product")._value.get() == 1


def test_rocksdb_is_not_written_before_its_changelog_is_delivered(tmp_path: Path) -> None:
    """Every changelog send failing: the batch never completes, and RocksDB stays empty."""

    def rule(topic: str, _key: Any, _value: Any, _n: int) -> BaseException | str | None:
        return "later" if topic == CHANGELOG else None

    waits = 0

    def third_wait_rebalances(rig: Rig) -> None:
        nonlocal waits
        waits += 1
        if waits == 3:
            rebalance(rig)

    store = Store(tmp_path)
    assert not Rig(store, Producer(rule), third_wait_rebalances).run(orders())
    assert store.keys() == 0
    assert store.persisted == {}


def test_a_changelog_value_over_the_size_limit_dead_letters_its_record_alone(
    tmp_path: Path,
) -> None:
    """One order whose table write Kafka refuses as too large: it alone is a dead letter
    (processing_error), every other order is counted exactly."""
    poison = b'"customer|CUST-3"'

    def rule(topic: str, key: Any, _value: Any, _n: int) -> BaseException | str | None:
        too_large: BaseException = MessageSizeTooLargeError()
        return too_large if topic == CHANGELOG and key == poison else None

    events = orders()
    done, producer, _metrics, store = run(tmp_path, rule, events)

    assert done
    letters = producer.delivered[DLQ]
    reasons = [dict(headers)["dlq.reason"] for _k, _v, headers in letters]
    assert reasons.count(b"processing_error") == 6  # CUST-3's six orders
    survivors = [e for e in events if e.message.key != b"CUST-3"]
    assert stored_revenue(store) == expected_revenue(survivors)


def test_a_new_owner_restoring_a_partly_delivered_changelog_counts_exactly(
    tmp_path: Path,
) -> None:
    """Some of a batch's changelog records delivered, others failed, then the partitions
    move: the clock (sent only once all else is acknowledged) never arrives, and a new
    owner restoring what did arrive and reading the batch again counts every order once."""

    def rule(topic: str, key: Any, _value: Any, _n: int) -> BaseException | str | None:
        return "later" if topic == CHANGELOG and key.startswith(b'"daily|') else None

    events = orders()
    producer = Producer(rule)
    store = Store(tmp_path / "old")
    assert not Rig(store, producer, rebalance).run(events)
    delivered = list(
        zip(producer.delivered[CHANGELOG], producer.partitions[CHANGELOG], strict=True)
    )
    keys = [key or b"" for (key, _v, _h), _p in delivered]
    assert any(key.startswith(b'"customer|') for key in keys)
    assert not any(key.startswith(b'"clock|') for key in keys)
    # Stored locally: only each partition's verdicts, acknowledged before the rest.
    local = [key for db in store.dbs.values() for key in db.keys()]  # noqa: SIM118 (Rdict)
    assert sorted(local) == [b'"verdict|%d"' % p for p in range(4)]

    # The new owner restores what the changelog holds, then reads the batch again.
    restored = restore(tmp_path / "new", producer)
    done, _producer, _metrics, store = run(tmp_path, lambda *_: None, events, restored)

    assert done
    assert stored_revenue(store) == expected_revenue(events)
    summaries = [
        orjson.loads(value)
        for db in store.dbs.values()
        for key, value in db.items()
        if key.startswith(b'"customers|')
    ]
    assert sum(s["customers"] for s in summaries) == 4
    assert sum(s["orders"] for s in summaries) == 21


def test_enriched_orders_lost_with_their_clock_are_sent_again_by_the_next_owner(
    tmp_path: Path,
) -> None:
    """The enriched orders share their wait with the tables' keys: a worker whose
    orders' keys were delivered but whose enriched records and clocks were not, then
    lost its partitions, leaves orders its keys already hold. The next owner, restoring
    those keys and reading the batch again, sends every enriched order."""

    def rule(topic: str, key: Any, _value: Any, _n: int) -> BaseException | str | None:
        lost = topic == ENRICHED or (topic == CHANGELOG and key.startswith(b'"clock|'))
        return "later" if lost else None

    events = orders()
    first = Producer(rule)
    assert not Rig(Store(tmp_path / "old"), first, rebalance).run(events)
    assert ENRICHED not in first.delivered
    assert any(key and key.startswith(b'"order|') for key, _v, _h in first.delivered[CHANGELOG])

    done, producer, metrics, store = run(
        tmp_path, lambda *_: None, events, restore(tmp_path / "new", first)
    )
    assert done
    assert len(distinct(producer, ENRICHED)) == 21
    assert stored_revenue(store) == expected_revenue(events)
    assert metrics.replayed._value.get() == 21


def waits_of(scenario: Callable[[], Coroutine[Any, Any, None]] | Rig) -> list[list[Any]]:
    """Run ``scenario`` (a rig: its batch of ``orders()``); the keys of each wait for
    acknowledgements (``confirm``) it made, in the order the waits began."""
    waits: list[list[Any]] = []
    real = Confirmed.confirm

    async def confirm(self: Confirmed) -> list[Any]:
        waits.append([key for _topic, key, _v, _p, _h in self.pending])
        return await real(self)

    Confirmed.confirm = confirm  # type: ignore[method-assign]
    try:
        if isinstance(scenario, Rig):
            assert scenario.run(orders())
        else:
            asyncio.run(scenario())
    finally:
        Confirmed.confirm = real  # type: ignore[method-assign]
    return waits


def test_results_go_with_the_last_phase_before_every_partitions_marker(
    tmp_path: Path,
) -> None:
    """``along`` shares the latest wait before every partition's marker; a partition
    with one phase (its marker alone) has them acknowledged first."""
    from streams.common.table_io import RocksPartition, write_all

    table = SimpleNamespace(
        name="t", data=Store(tmp_path), changelog_topic=SimpleNamespace(get_topic_name=lambda: "c")
    )

    def waits(marker_alone: bool, first: bool = False) -> list[list[Any]]:
        producer = Producer(lambda *_: None)
        parts = [RocksPartition(table, 0), RocksPartition(table, 1)]
        for part in parts:
            if first:
                part["verdict"] = 0
                part.barrier()
            if not (marker_alone and part.partition == 1):
                part["figure"] = 1
                part.barrier()
            part["clock"] = 2

        async def scenario() -> None:
            along = Confirmed(producer)
            await along.send("out", b"result", b"1")
            await write_all(parts, producer, along=along)

        return waits_of(scenario)

    assert waits(marker_alone=False) == [
        [b"result", b'"figure"', b'"figure"'],
        [b'"clock"', b'"clock"'],
    ]
    assert waits(marker_alone=True) == [
        [b"result"],
        [b'"figure"', b'"clock"'],
        [b'"clock"'],
    ]
    # Three phases: the results wait with the last phase before every marker.
    assert waits(marker_alone=False, first=True) == [
        [b'"verdict"', b'"verdict"'],
        [b"result", b'"figure"', b'"figure"'],
        [b'"clock"', b'"clock"'],
    ]


def test_a_batch_acknowledges_its_verdicts_then_its_results_and_keys_then_its_clocks(
    tmp_path: Path,
) -> None:
    """Each partition's verdicts wait alone, all before the wait of the results and the
    other keys, and the clocks wait last: a key a verdict allowed is never stored
    without that verdict (tests/unit/test_verdicts.py: what a replay makes of them)."""
    waits = waits_of(Rig(Store(tmp_path), Producer(lambda *_: None)))
    kinds = [sorted({bytes(key or b"x").split(b"|")[0] for key in wait}) for wait in waits]
    assert kinds[:4] == [[b'"verdict']] * 4
    assert kinds[5] == [b'"clock']
    # Then, each partition's first batch: its sweep (nothing expired yet), after all.
    assert kinds[6:] == [[b'"sweep']] * 4
    results_and_keys = kinds[4]
    assert {b"ORD-1", b'"daily', b'"order', b'"customer'} <= set(results_and_keys)


def test_changelog_phases_are_sent_in_order_with_late_deletions_last(tmp_path: Path) -> None:
    """Writes before a barrier are acknowledged before those after it are sent, and the
    deletions asked for with delete_last go in one final phase, whoever asked."""
    from streams.common.table_io import RocksPartition, write_all

    producer = Producer(lambda *_: None)
    table = SimpleNamespace(
        name="t", data=Store(tmp_path), changelog_topic=SimpleNamespace(get_topic_name=lambda: "c")
    )
    io = RocksPartition(table, 0)
    io["a"] = 1
    io.barrier()
    io["b"] = 2
    io.delete_last("old-1")
    io["c"] = 3
    io.delete_last("old-2")

    async def scenario() -> None:
        await write_all([io], producer)

    assert waits_of(scenario) == [[b'"a"'], [b'"b"', b'"c"'], [b'"old-1"', b'"old-2"']]
    assert table.data.persisted == {0: 4}
