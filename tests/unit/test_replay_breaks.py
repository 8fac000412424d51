"""Component: two ways a batch read again after a crash once counted an order twice or
both counted and dead-lettered it (found by an adversarial probe, issue 14 session 15),
run through the production batch handler on real RocksDB (tests/support/orders_rig.py)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson

from streams.common.partitioning import partition_for
from streams.orders.pipeline import DLQ, ENRICHED
from tests.support.fake_kafka import Producer, Store
from tests.support.orders_rig import (
    CHANGELOG,
    PARTITIONS,
    Rig,
    message,
    rebalance,
    restore,
)
from tests.unit.factories import bundled_catalog, raw, v1

CUSTOMER = b"CUST-0"
HOME = partition_for(CUSTOMER, PARTITIONS)


def events(*orders: tuple[str, str, str], first: int = 0) -> list[Any]:
    """Events of CUSTOMER's orders (id, timestamp, product), from offset ``first``."""
    return [
        SimpleNamespace(message=message(HOME, offset, raw(v1(**fields)), CUSTOMER))
        for offset, fields in enumerate(
            (
                {"order_id": oid, "customer_id": "CUST-0", "timestamp": ts,
                 "items": [{"product_id": pid, "quantity": 1, "unit_price": 243.82}]}
                for oid, ts, pid in orders
            ),
            first,
        )
    ]  # fmt: skip


def counted_orders(store: Store) -> int:
    """Orders in every daily figure of the store: what the views add up."""
    total = 0
    for db in store.dbs.values():
        for key, value in db.items():
            if orjson.loads(key).startswith("daily|"):
                total += sum(n for n, _c, _u in orjson.loads(value)["s"].values())
    return total


def test_a_duplicate_replayed_after_a_crash_stays_a_duplicate_when_a_sweep_was_due(
    tmp_path: Path,
) -> None:
    """X counted 49 days before Y; a later batch holds X sent again, then Y (a new week
    of event time: a sweep forgets ids past the 45-day retention). The batch's keys are
    lost and its partitions move. The new owner reads the batch again: X is still a
    duplicate (the sweep ran before the batch's keys, and so forgot X's id, once)."""
    lose_keys = {"on": False}

    def rule(topic: str, key: Any, value: Any, _n: int) -> str | None:
        kept = (key is not None and key.startswith((b'"verdict|', b'"sweep|'))) or value is None
        return "later" if lose_keys["on"] and topic == CHANGELOG and not kept else None

    producer = Producer(rule)
    old = Store(tmp_path / "old")
    first = events(("X", "2025-06-01T12:00:00Z", "PROD-002"))
    assert Rig(old, producer).run(first)
    later = events(
        ("X", "2025-06-01T12:00:00Z", "PROD-002"),
        ("Y", "2025-07-20T12:00:00Z", "PROD-002"),
        first=1,
    )
    lose_keys["on"] = True
    assert not Rig(old, producer, rebalance).run(later)

    new_owner = Rig(restore(tmp_path / "new", producer), Producer(lambda *_: None))
    assert new_owner.run(later)
    assert counted_orders(new_owner.store) == 2
    assert new_owner.metrics.duplicates._value.get() == 1


def test_an_order_counted_before_its_product_left_the_catalog_is_not_dead_lettered(
    tmp_path: Path,
) -> None:
    """The batch's keys and enriched orders are delivered, its clock is not; PROD-002
    leaves the catalog; the new owner reads the batch again. The orders keep their
    verdict (counted), and are sent enriched again, their product ``unlisted``, not
    dead-lettered because enriching them failed."""

    def rule(topic: str, key: Any, _value: Any, _n: int) -> str | None:
        return "later" if topic == CHANGELOG and key.startswith(b'"clock|') else None

    producer = Producer(rule)
    batch = events(
        ("X", "2025-08-01T12:00:00Z", "PROD-002"), ("Y", "2025-08-01T12:00:01Z", "PROD-002")
    )
    assert not Rig(Store(tmp_path / "old"), producer, rebalance).run(batch)

    catalog = bundled_catalog()
    del catalog["PROD-002"]
    new_owner = Rig(restore(tmp_path / "new", producer), Producer(lambda *_: None))
    new_owner.catalog = catalog
    assert new_owner.run(batch)
    assert counted_orders(new_owner.store) == 2
    assert DLQ not in new_owner.producer.delivered
    enriched = [orjson.loads(v or b"") for _k, v, _h in new_owner.producer.delivered[ENRICHED]]
    assert [e["items"][0]["category"] for e in enriched] == ["unlisted", "unlisted"]


def test_an_order_settled_before_its_batch_failed_is_not_dead_lettered_too(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """The batch's keys and clock are written, then its weekly sweep fails every time
    (a probe made it fail with an order of year 1, now invalid; any failure there does
    the same): the records handled alone are already settled, so each is logged and
    counted as ``task_failures_total{task="after_clock"}``, not dead-lettered as a
    processing error while it also counts."""

    def failing(*_args: Any) -> Any:
        raise ValueError("year 0 is out of range")

    monkeypatch.setattr("streams.orders.batch.expired_figures", failing)
    rig = Rig(Store(tmp_path), Producer(lambda *_: None))
    batch = events(
        ("X", "2025-08-01T12:00:00Z", "PROD-002"), ("Y", "2025-08-01T12:00:01Z", "PROD-002")
    )
    assert rig.run(batch)
    assert counted_orders(rig.store) == 2
    assert DLQ not in rig.producer.delivered
    assert rig.metrics.task_failures.labels("after_clock")._value.get() == 2
    assert rig.metrics.dead_letters.labels("processing_error")._value.get() == 0
