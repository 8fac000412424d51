"""A customer's remembered order ids stay bounded by the retention horizon."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from streams.common.exactly_once import PartitionState
from streams.orders.aggregates import customer_key, process_record
from streams.orders.logic import Rules
from tests.unit.factories import bundled_catalog, v1

RULES = Rules(retention_ms=10 * 86_400_000)
START = datetime(2025, 8, 1, 12, tzinfo=UTC)


def run(table: dict[str, object], orders: list[tuple[str, datetime]]) -> list[str]:
    state = PartitionState(table)  # type: ignore[arg-type]
    kinds = []
    for offset, (order_id, when) in enumerate(orders):
        raw = orjson.dumps(v1(order_id=order_id, timestamp=when.isoformat()))
        kinds.append(process_record(raw, 0, offset, 0, state, state, bundled_catalog(), RULES).kind)
    state.flush()
    return kinds


def test_old_order_ids_are_forgotten_but_recent_duplicates_still_caught() -> None:
    """Ids older than the horizon are dropped as the stream moves on; a duplicate within
    it is still a duplicate, and one beyond it is rejected as late, never counted twice."""
    table: dict[str, object] = {}
    daily = [(f"ORD-{d}", START + timedelta(days=d)) for d in range(30)]
    kinds = run(table, [*daily, ("ORD-25", START + timedelta(days=25)), ("ORD-2", START)])
    assert kinds[:30] == ["applied"] * 30
    assert kinds[30:] == ["duplicate", "rejected"]
    remembered = table[customer_key("CUST-1")]["ids"]  # type: ignore[index]
    assert len(remembered) <= 12
    assert "ORD-29" in remembered and "ORD-2" not in remembered
    assert table[customer_key("CUST-1")]["n"] == 30  # type: ignore[index]
