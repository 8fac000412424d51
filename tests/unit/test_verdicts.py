"""A batch read again after a crash keeps every verdict of the try the crash cut short
(streams.orders.partition_batch, ``verdict|<p>``): validation depends on the catalog
and the wall clock, which may move between the crash and the replay."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest

from streams.orders.logic import DAY_MS, Rules
from streams.orders.models import CatalogEntry
from tests.unit.factories import Crash, LossyTable, entry, numbered, order, raw, run_batch, v1

DAILY = "daily|2025-08-01|web|CA|0"


def cut_short(kept: Any) -> LossyTable:
    """A table whose worker dies in a flush: the verdicts (written first, acknowledged
    before the rest is sent) reach it, of the other keys only those ``kept(key)`` lets
    through, and never the clock."""
    return LossyTable(lambda key: key.startswith("verdict|") or kept(key))


def rec(order_id: str, **fields: Any) -> bytes:
    return raw(v1(order_id=order_id, customer_id=f"C-{order_id}", **fields))


def repriced(catalog: dict[str, CatalogEntry], cents: str) -> dict[str, CatalogEntry]:
    return {pid: entry(pid, str(e.price + Decimal(cents))) for pid, e in catalog.items()}


def counted(table: dict[Any, Any]) -> int:
    return int(table.get(DAILY, {}).get("s", {}).get("confirmed", [0])[0])


def crash_then_replay(
    kept: Any, records: list[bytes], before: Any, after: Any, **replay: Any
) -> tuple[dict[Any, Any], list[str]]:
    table = cut_short(kept)
    with pytest.raises(Crash):
        run_batch(table, numbered(records), before)
    plain: dict[Any, Any] = dict(table)
    outcomes = run_batch(plain, numbered(records), after, wall_ms=2, **replay)
    return plain, [o.kind for o in outcomes]


@pytest.mark.parametrize("seed", range(20))
def test_orders_counted_before_a_price_change_stay_counted_and_are_not_dead_lettered(
    catalog: dict[str, CatalogEntry], seed: int
) -> None:
    """Whichever keys of the batch the crash let through, a catalog repriced before
    the replay neither dead-letters an order counted nor counts one twice."""
    rng = random.Random(seed)
    records = [rec(f"ORD-{n}") for n in range(6)]
    table, outcomes = crash_then_replay(
        lambda _k: rng.random() < 0.5, records, catalog, repriced(catalog, "0.01")
    )
    assert "rejected" not in outcomes
    assert counted(table) == 6


def test_orders_dead_lettered_before_a_price_change_stay_dead_lettered(
    catalog: dict[str, CatalogEntry],
) -> None:
    """The reverse: orders rejected for their price are not counted after a restart
    whose catalog now lists that price; they are dead-lettered again (at least once),
    with the reason they had."""
    cheap = repriced(catalog, "-0.50")
    records = [rec("ORD-1"), rec("ORD-2")]
    table, outcomes = crash_then_replay(lambda _k: True, records, cheap, catalog)
    assert outcomes == ["rejected", "rejected"]
    assert counted(table) == 0
    cheap_again = run_batch(dict(cut_short(lambda _k: True)), numbered(records), cheap)
    assert [o.rejected.reason for o in cheap_again if o.rejected] == ["price_mismatch"] * 2


def test_a_verdict_kept_keeps_its_reason_when_the_record_now_fails_otherwise(
    catalog: dict[str, CatalogEntry],
) -> None:
    """Rejected for its price, and after the restart the product is gone from the
    catalog: dead-lettered again as price_mismatch, not as unknown_product."""
    cheap = repriced(catalog, "-0.50")
    table = cut_short(lambda _k: True)
    with pytest.raises(Crash):
        run_batch(table, numbered([rec("ORD-1")]), cheap)
    outcomes = run_batch(dict(table), numbered([rec("ORD-1")]), {}, wall_ms=2)
    assert outcomes[0].rejected is not None
    assert outcomes[0].rejected.reason == "price_mismatch"


def test_a_future_order_rejected_before_a_restart_is_not_counted_by_a_later_clock(
    catalog: dict[str, CatalogEntry],
) -> None:
    """Rejected as stamped too far ahead of the wall clock; by the replay the clock has
    caught up, and the order is still rejected, once counted nowhere."""
    rules = Rules(max_future_ms=60_000)
    noon = order().event_ms
    table = cut_short(lambda _k: True)
    records = numbered([rec("ORD-1"), rec("ORD-2", timestamp="2025-08-01T12:05:00Z")])
    with pytest.raises(Crash):
        run_batch(table, records, catalog, rules=rules, wall_ms=noon)
    plain: dict[Any, Any] = dict(table)
    outcomes = run_batch(plain, records, catalog, rules=rules, wall_ms=noon + DAY_MS)
    assert [o.kind for o in outcomes] == ["replayed", "rejected"]
    assert counted(plain) == 1


def test_a_replay_that_ends_early_leaves_the_rest_to_the_next_batch_with_its_verdicts(
    catalog: dict[str, CatalogEntry],
) -> None:
    """The try a crash cut short covered four records; the replay reads two, and the
    next batch the other two: all four keep the verdicts of the first try."""
    records = [rec("ORD-0"), rec("ORD-1"), rec("ORD-2", items=[]), rec("ORD-3")]
    cheap = repriced(catalog, "-0.50")
    mixed = {**catalog, "PROD-001": cheap["PROD-001"]}
    table = cut_short(lambda _k: True)
    first_try = run_batch(dict(), numbered(records), mixed)
    with pytest.raises(Crash):
        run_batch(table, numbered(records), mixed)
    plain: dict[Any, Any] = dict(table)
    head = run_batch(plain, numbered(records[:2]), catalog, wall_ms=2)
    tail = run_batch(plain, numbered(records[2:], start=2), catalog, wall_ms=3)
    assert [o.kind for o in head + tail] == [o.kind for o in first_try]


class Phased(dict[Any, Any]):
    """A dict-backed table that notes each key's phase (``barrier`` starts the next)."""

    def __init__(self) -> None:
        super().__init__()
        self.phase = 0
        self.phases: dict[Any, int] = {}

    def barrier(self) -> None:
        self.phase += 1

    def __setitem__(self, key: Any, value: Any) -> None:
        self.phases[key] = self.phase
        super().__setitem__(key, value)


def test_the_verdicts_are_acknowledged_before_the_keys_they_allow_and_the_clock_last(
    catalog: dict[str, CatalogEntry],
) -> None:
    table = Phased()
    run_batch(table, numbered([rec("ORD-1"), rec("ORD-2", items=[])]), catalog)
    verdict = table.phases.pop("verdict|0")
    clock = table.phases.pop("clock|0")
    assert verdict < min(table.phases.values())
    assert clock > max(table.phases.values())
    assert table["verdict|0"] == {"to": 1, "r": {"invalid": [1]}}


def test_a_batch_of_replays_only_writes_no_verdict(catalog: dict[str, CatalogEntry]) -> None:
    """Records the clock already counts decide nothing: no verdict is written."""
    table: dict[Any, Any] = {}
    run_batch(table, numbered([rec("ORD-1")]), catalog)
    del table["verdict|0"]
    run_batch(table, numbered([rec("ORD-1")]), catalog)
    assert "verdict|0" not in table
