"""A customer's remembered order ids stay bounded by the retention horizon."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from streams.common.exactly_once import PartitionState
from streams.common.table_io import RocksPartition, write_all
from streams.orders import batch
from streams.orders.aggregates import (
    customer_key,
    customers_key,
    flush_partition,
    watermark,
)
from streams.orders.batch import forget_expired
from streams.orders.logic import DAY_MS, Rules, day_label
from streams.orders.partition_batch import process_record
from streams.orders.reports import Closing, due_reports
from streams.orders.retention import expired_figures, expired_orders
from tests.support.fake_kafka import Producer, Store
from tests.unit.factories import bundled_catalog, v1

RULES = Rules(retention_ms=10 * 86_400_000)
START = datetime(2025, 8, 1, 12, tzinfo=UTC)


def run(table: dict[str, object], orders: list[tuple[str, datetime]], first: int = 0) -> list[str]:
    state = PartitionState(table)  # type: ignore[arg-type]
    kinds = []
    for offset, (order_id, when) in enumerate(orders, first):
        raw = orjson.dumps(v1(order_id=order_id, timestamp=when.isoformat()))
        kinds.append(process_record(raw, 0, offset, 0, state, state, bundled_catalog(), RULES).kind)
    flush_partition(state, 0)
    return kinds


def sweep(table: dict[str, object]) -> None:
    """What the agent does each week of event time: delete the expired order ids."""
    high = watermark(PartitionState(table), 0)  # type: ignore[arg-type]
    assert high is not None
    entries = [(k, v) for k, v in table.items() if k.startswith("order|")]
    for key in list(expired_orders(entries, high, RULES)):  # type: ignore[arg-type]
        del table[key]


def test_old_order_ids_are_forgotten_but_recent_duplicates_still_caught() -> None:
    """Ids older than the horizon are dropped as the stream moves on; a duplicate within
    it is still a duplicate, and one beyond it is rejected as late, never counted twice."""
    table: dict[str, object] = {}
    daily = [(f"ORD-{d}", START + timedelta(days=d)) for d in range(30)]
    assert run(table, daily) == ["applied"] * 30
    sweep(table)

    again = [("ORD-25", START + timedelta(days=25)), ("ORD-2", START)]
    assert run(table, again, first=30) == ["duplicate", "rejected"]
    remembered = {k.rsplit("|", 1)[1] for k in table if k.startswith("order|")}
    assert len(remembered) <= 12
    assert "ORD-29" in remembered and "ORD-2" not in remembered
    # The customer's value keeps its first two orders' offsets; the summary counts all.
    assert table[customer_key("CUST-1")]["f"] == [0, 1]  # type: ignore[index]
    summary = table[customers_key(0)]
    assert (summary["customers"], summary["repeat"], summary["orders"]) == (1, 1, 30)  # type: ignore[index]


def test_a_busy_customers_value_does_not_grow_with_its_orders() -> None:
    """Ten thousand orders of one customer: its own value stays a few bytes."""
    table: dict[str, object] = {}
    orders = [(f"ORD-{n}", START + timedelta(seconds=n)) for n in range(10_000)]
    run(table, orders)

    assert len(orjson.dumps(table[customer_key("CUST-1")])) < 100
    assert sum(1 for k in table if k.startswith("order|")) == 10_000


def test_an_earlier_versions_id_map_still_deduplicates_then_ages_out() -> None:
    """A customer value written with the old ``ids`` map keeps catching its duplicates
    and shrinks to nothing as the ids pass the horizon."""
    old_day = START.timestamp() * 1000 // 86_400_000
    table: dict[str, object] = {
        customer_key("CUST-1"): {"n": 1, "c": 24806, "ids": {"ORD-A": [0, old_day, 1]}, "_o": 0}
    }
    assert run(table, [("ORD-A", START)], first=1) == ["duplicate"]
    assert run(table, [("ORD-B", START + timedelta(days=20))], first=2) == ["applied"]
    assert "ids" not in table[customer_key("CUST-1")]  # type: ignore[operator]


def test_figures_older_than_the_history_kept_are_swept() -> None:
    """Daily, hourly and product figures of days past ORDERS_HISTORY_DAYS go; the rest
    (and everything, with no history limit) stay."""
    rules = Rules(retention_ms=10 * 86_400_000, history_ms=20 * 86_400_000)
    high = int((START + timedelta(days=30)).timestamp() * 1000)
    keys = [
        "daily|2025-08-01|web|CA|0",
        "hourly|2025-08-10T23|web|0",
        "product|2025-08-10|PROD-001|0",
        "daily|2025-08-11|web|CA|0",
        "hourly|2025-08-11T00|web|0",
    ]

    assert list(expired_figures(keys, high, rules)) == keys[:3]  # days before 08-11
    assert list(expired_figures(keys, high, Rules())) == []


def test_a_day_past_the_history_is_settled_without_a_revision() -> None:
    """Its figures vanishing partition by partition is no revision: no report is sent."""
    daily = {"2025-08-01": {"daily|2025-08-01|web|CA|0": {"s": {"confirmed": [1, 100, 1]}}}}
    closing = Closing(grace_ms=0, idle_close_ms=60_000)
    now = int((START + timedelta(days=90)).timestamp() * 1000)
    args = (daily, lambda _d: {"revision": 0, "rows": []}, Rules(), closing, now, now, now)

    assert due_reports({"2025-08-01"}, *args, forgotten_before="2025-08-02") == (
        [],
        {"2025-08-01"},
    )
    assert len(due_reports({"2025-08-01"}, *args)[0]) == 1


def test_a_sweep_is_written_in_chunks_and_finishes_in_its_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """5,000 expired order ids and 90 days of figures among 300 recent ids, on RocksDB:
    one sweep deletes every expired key, in changelog writes of at most SWEEP_CHUNK keys
    each; nothing recent goes."""
    rules = Rules(retention_ms=45 * DAY_MS, history_ms=60 * DAY_MS)
    table = SimpleNamespace(
        name="t", data=Store(tmp_path), changelog_topic=SimpleNamespace(get_topic_name=lambda: "c")
    )
    producer = Producer(lambda *_: None)
    high = 100 * DAY_MS
    writes: list[int] = []

    async def counted(parts: list[RocksPartition], producer: Any, **kwargs: Any) -> int:
        writes.append(sum(len(part.pending) for part in parts))
        return await write_all(parts, producer, **kwargs)

    monkeypatch.setattr(batch, "write_all", counted)

    async def scenario() -> tuple[int, list[list[Any]]]:
        io = RocksPartition(table, 0)
        for n in range(5000):
            io[f"order|C{n % 97}|OLD-{n}"] = {"o": n, "d": 20, "c": 1}
        for n in range(300):
            io[f"order|C{n % 97}|NEW-{n}"] = {"o": n, "d": 99, "c": 1}
        for day in range(90):
            io[f"daily|{day_label(day)}|web|CA|0"] = {"s": {}}
        await write_all([io], producer)
        producer.delivered.clear()
        forgotten = await forget_expired(table, 0, high, rules, producer, week=14)
        return forgotten, [[k for k, _v, _h in producer.delivered.get("c", [])]]

    forgotten, (tombstones,) = asyncio.run(scenario())
    assert forgotten == 5000 + 40  # the ids, and the days before day 40 (100 - 60)
    # The week is recorded swept with the last chunk, once every other is written.
    assert tombstones[-1] == b'"sweep|0"'
    assert len(tombstones) == forgotten + 1
    assert writes == [2000, 2000, 1041]
    db = table.data._db_for_partition(0)
    left = [orjson.loads(k) for k, _v in db.items()]
    assert sorted(k.split("|")[2][:4] for k in left if k.startswith("order|")) == ["NEW-"] * 300
    assert sum(1 for k in left if k.startswith("daily|")) == 50
