"""The Quix comparison's harness (bench/versus*.py): its check of each workload's figures
catches a wrong one, and its rate leaves out start-up and the idle tail."""

from __future__ import annotations

import struct
from typing import Any

import orjson
import pytest

from bench import data
from bench.versus import Sample, steady
from bench.versus_check import (
    Consumed,
    VersusMismatch,
    expected,
    full_figures,
    quix_figures,
    same_work_figures,
    verify,
)
from bench.versus_faust import apply_record
from bench.versus_report import summarize
from bench.versus_work import DAY_MS, total_cents
from streams.common.exactly_once import PartitionState
from streams.orders.aggregates import flush_partition
from streams.orders.partition_batch import process_record
from tests.unit.factories import DEFAULT_RULES, bundled_catalog

AUG_1_MS = 1_754_006_400_000  # 2025-08-01T00:00:00Z


def order(channel: str, state: str, stamp: str, *lines: tuple[int, float]) -> bytes:
    items = [{"product_id": "PROD-001", "quantity": q, "unit_price": p} for q, p in lines]
    return orjson.dumps(
        {"order_id": stamp, "customer_id": "CUST-00001", "timestamp": stamp, "channel": channel,
         "items": items, "shipping_address": {"country": "US", "state": state},
         "status": "pending"}
    )  # fmt: skip


def table_records(table: dict[str, Any]) -> list[Consumed]:
    """A table's keys and values as its changelog carries them (JSON, as Faust writes)."""
    return [Consumed(orjson.dumps(k), orjson.dumps(v), {}) for k, v in table.items()]


def quix_record(group: str, start_ms: int, revenue: int, count: int) -> Consumed:
    key = orjson.dumps(group) + b"|" + struct.pack(">QcQ", start_ms, b"|", start_ms + DAY_MS)
    value = orjson.dumps({"revenue/Sum/cents": revenue, "count/Count": count})
    return Consumed(key, value, {"__column_family__": b"default"})


def test_expected_figures_count_and_add_each_order_by_day_channel_and_state() -> None:
    """Two web orders in CA on one day and one on the next give two groups, in cents."""
    records = [
        (None, order("web", "CA", "2025-08-01T10:00:00.000Z", (2, 248.06))),
        (None, order("web", "CA", "2025-08-01T23:59:59.999Z", (1, 0.1), (3, 19.99))),
        (None, order("web", "CA", "2025-08-02T00:00:00.000Z", (1, 5.0))),
    ]
    assert expected(records) == {
        ("2025-08-01", "web", "CA"): (2, 49612 + 10 + 5997),
        ("2025-08-02", "web", "CA"): (1, 500),
    }


def test_the_workloads_rules_agree_with_the_independent_figures_on_generated_orders() -> None:
    """The same-work app's table, read back as its changelog would be, equals the
    independent figures over a day and a half of generated orders."""
    records = data.generate(3_000)
    table: dict[str, Any] = {}
    for partition, values in data.by_partition(records, 4).items():
        state = PartitionState(table)
        for offset, value in enumerate(values):
            assert apply_record(state, partition, offset, value)
        state.flush()
    assert verify("same_work", expected(records), same_work_figures(table_records(table)))


def test_a_replayed_record_changes_no_figure() -> None:
    """At-least-once delivery of the same offset again counts it once (``_o``)."""
    value = order("api", "NY", "2025-08-01T10:00:00.000Z", (1, 1.5))
    table: dict[str, Any] = {}
    for _attempt in range(2):
        state = PartitionState(table)
        apply_record(state, 0, 7, value)
        state.flush()
    assert same_work_figures(table_records(table)) == {("2025-08-01", "api", "NY"): (1, 150)}


def test_the_full_pipelines_daily_figures_add_statuses_and_partitions() -> None:
    """The orders pipeline's own table (process_record) read back from its changelog
    gives the independent figures: per-product, hourly and clock keys are ignored."""
    records = data.generate(2_000)
    table: dict[str, Any] = {}
    catalog = bundled_catalog()
    wall_ms = AUG_1_MS + 30 * DAY_MS
    for partition, values in data.by_partition(records, 4).items():
        state = PartitionState(table)
        for offset, value in enumerate(values):
            applied = process_record(
                value, partition, offset, wall_ms, state, state, catalog, DEFAULT_RULES
            )
            assert applied.kind == "applied", applied.rejected
        flush_partition(state, partition)
    assert verify("full", expected(records), full_figures(table_records(table)))


def test_quix_window_keys_decode_and_other_column_families_are_ignored() -> None:
    """Window records give (day, channel, state); the newest value per window wins, a
    tombstone removes it, and Quix's latest-timestamp entries are not windows."""
    day2 = AUG_1_MS + DAY_MS
    records = [
        quix_record("web|CA", AUG_1_MS, 100, 1),
        quix_record("web|CA", AUG_1_MS, 350, 2),
        quix_record("mobile|TX", day2, 999, 9),
        Consumed(quix_record("mobile|TX", day2, 0, 0).key, None, {}),
        quix_record("api|NY", day2, 70, 1),
        Consumed(
            b'"web|CA"|__latest_timestamp__',
            b"1754046386000",
            {"__column_family__": b"__latest-timestamps__"},
        ),
    ]
    assert quix_figures(records) == {
        ("2025-08-01", "web", "CA"): (2, 350),
        ("2025-08-02", "api", "NY"): (1, 70),
    }


@pytest.mark.parametrize(
    "change",
    ["one cent more", "one order less", "a group missing", "a group too many"],
)
def test_any_difference_from_the_independent_figures_fails_loudly(change: str) -> None:
    """verify raises, naming the group, for a cent, an order or a group wrong."""
    want = {("2025-08-01", "web", "CA"): (2, 500), ("2025-08-01", "api", "NY"): (1, 70)}
    found = dict(want)
    if change == "one cent more":
        found[("2025-08-01", "web", "CA")] = (2, 501)
    elif change == "one order less":
        found[("2025-08-01", "web", "CA")] = (1, 500)
    elif change == "a group missing":
        del found[("2025-08-01", "api", "NY")]
    else:
        found[("2025-08-02", "web", "CA")] = (1, 1)
    with pytest.raises(VersusMismatch, match=r"2025-08-0[12]/"):
        verify("quix", want, found)


def test_an_order_total_is_its_lines_in_whole_cents() -> None:
    """Float prices become exact cents (0.1 + 0.2 would not be 0.3 in floats)."""
    assert total_cents({"items": [{"unit_price": 0.1, "quantity": 1},
                                  {"unit_price": 0.2, "quantity": 3}]}) == 70  # fmt: skip


def sample(t: float, done: int, cpu: float) -> Sample:
    return Sample(t, done, cpu, 0.0, 0.0, None)


def test_the_rate_runs_between_commits_made_while_orders_waited() -> None:
    """Start-up before the first commit and the idle time before the final commit are
    left out: 1,000 orders a second, 0.5 CPU s each second, gives 1,000/s and 50 CPU
    seconds per 100k orders."""
    samples = [sample(0.0, 0, 0.0), sample(5.0, 0, 2.0)]  # start-up
    samples += [sample(5.0 + i, 1_000 * i, 2.0 + 0.5 * i) for i in range(1, 10)]
    samples += [sample(14.1, 9_000, 6.5), sample(17.0, 9_500, 6.6)]  # the tail, mostly idle
    result = steady(samples, 9_500)
    assert result["orders_per_s"] == pytest.approx(1_000.0)
    assert result["cpu_s_per_100k"] == pytest.approx(50.0)
    assert result["window_orders"] == 8_000
    assert result["commits_seen"] == 10


def test_ratios_are_of_median_rates_and_say_whether_the_goals_are_met() -> None:
    """Medians of three runs each; 2/1 and 3/1 against the goals 1.5 and 1.0."""

    def runs(*rates: float) -> list[dict[str, Any]]:
        return [{"orders_per_s": r, "cpu_s_per_100k": 100_000 / r} for r in rates]

    out = summarize({
        "quix": runs(10_000, 12_000, 11_000),
        "same_work": runs(17_000, 16_000, 18_000),
        "full": runs(9_000, 8_000, 30_000),
    })  # fmt: skip
    assert out["quix"]["orders_per_s"] == 11_000
    assert out["ratio_same_work"] == pytest.approx(17_000 / 11_000)
    assert out["ratio_full"] == pytest.approx(9_000 / 11_000)
    assert out["goals"]["ratio_same_work"]["met"] is True
    assert out["goals"]["ratio_full"]["met"] is False
