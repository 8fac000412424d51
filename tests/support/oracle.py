"""Expected results, computed without a worker, to compare the worker against.

Two kinds, not to be confused:

- ``clean_run_table`` replays orders.raw through the worker's own pure rules: the table
  one clean, crash-free run ends with. It shows that recovery (kills, restarts,
  rebalances) changes nothing, but shares every bug of those rules, so it proves no
  figure right. What users must see is computed independently in
  ``tests/support/independent.py``.
- ``confirmed_revenue`` recomputes revenue from seed-format lines with plain json.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from producers.orders import load_catalog
from streams.common.exactly_once import PartitionState
from streams.orders.aggregates import clock_key
from streams.orders.logic import Rules
from streams.orders.models import CatalogEntry
from streams.orders.partition_batch import process_record
from tests.support.workers import Consumed


def catalog() -> dict[str, CatalogEntry]:
    return {e["product_id"]: CatalogEntry.model_validate(e) for e in load_catalog()}


def clean_run_table(raw: Iterable[Consumed], rules: Rules | None = None) -> dict[str, Any]:
    """The aggregates table one clean, crash-free run over ``raw`` ends with.

    It replays what orders.raw holds, partition by partition in offset order, through
    the worker's own pure rules (so it is no oracle of correctness); ``wall_ms`` (the
    processing wall clock) is left out, and so are the partitions' last verdicts
    (``verdict|``: which records they cover depends on where the batches began).
    """
    table: dict[str, Any] = {}
    products = catalog()
    by_partition: dict[int, list[Consumed]] = defaultdict(list)
    for record in raw:
        by_partition[record.partition].append(record)
    for partition, records in by_partition.items():
        state = PartitionState(table)
        for record in sorted(records, key=lambda r: r.offset):
            process_record(
                record.value, partition, record.offset, 0, state, state, products, rules or Rules()
            )
        state.flush(last=clock_key(partition))
    decided = {key: value for key, value in table.items() if not key.startswith("verdict|")}
    return without_wall_clock(decided)


def without_wall_clock(table: dict[str, Any]) -> dict[str, Any]:
    return {key: {k: v for k, v in value.items() if k != "wall_ms"} for key, value in table.items()}


def confirmed_revenue(lines: Iterable[bytes]) -> dict[tuple[str, str, str], tuple[str, int]]:
    """(date, channel, state) -> (revenue, orders) straight from seed-format JSON lines."""
    groups: dict[tuple[str, str, str], list[Any]] = defaultdict(lambda: [Decimal(0), 0])
    seen: set[str] = set()
    for line in lines:
        order = json.loads(line)
        if order["order_id"] in seen or order["status"] != "confirmed":
            seen.add(order["order_id"])
            continue
        seen.add(order["order_id"])
        key = (order["timestamp"][:10], order["channel"], order["shipping_address"]["state"])
        groups[key][0] += sum(Decimal(str(i["unit_price"])) * i["quantity"] for i in order["items"])
        groups[key][1] += 1
    return {key: (f"{amount:.2f}", count) for key, (amount, count) in groups.items()}


def revenue_rows(rows: list[dict[str, Any]]) -> dict[tuple[str, str, str], tuple[str, int]]:
    """A /orders/revenue/daily answer in the same shape, groups with revenue orders only."""
    return {
        (r["date"], r["channel"], r["region"]): (r["revenue"], r["orders"])
        for r in rows
        if r["orders"]
    }


def table_diff(actual: dict[str, Any], expected: dict[str, Any]) -> str:
    """Empty when equal; else a short account of missing, extra and differing keys.

    Keys of a kind (the part before the first ``|``) that ``expected`` has none of are
    left out: they are the batch layer's own bookkeeping (say, when a partition was last
    swept), which a replay of the per-record rules does not write.
    """
    kinds = {key.split("|", 1)[0] for key in expected}
    actual = {key: value for key, value in actual.items() if key.split("|", 1)[0] in kinds}
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    differ = sorted(k for k in set(actual) & set(expected) if actual[k] != expected[k])
    if not (missing or extra or differ):
        return ""
    sample = {k: (actual[k], expected[k]) for k in differ[:2]}
    return (
        f"{len(missing)} missing {missing[:3]}, {len(extra)} extra {extra[:3]}, "
        f"{len(differ)} differ, e.g. {sample} (actual, expected)"
    )
