"""The latency benchmark's matching of orders to polls and its percentiles."""

from __future__ import annotations

import pytest

from bench.data import partition_of
from bench.latency import Sent, bucket_quantile, buckets, first_seen, percentile, plan, summarize


def test_percentile_is_the_nearest_rank() -> None:
    """p50 of 1..100 is 50, p99 is 99, p100 the largest; nothing gives None."""
    values = [float(v) for v in range(100, 0, -1)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None


def test_the_kth_order_of_a_group_is_seen_when_its_count_reaches_k() -> None:
    """Each order is matched to the first poll whose count for its own group includes it."""
    groups = ["a", "b", "a", "a", "b"]
    polls = [{}, {"a": 1}, {"a": 1, "b": 2}, {"a": 3, "b": 2}]
    assert first_seen(groups, polls) == [1, 2, 3, 3, 2]


def test_an_order_never_counted_is_unseen() -> None:
    """An order beyond the last count of its group has no poll."""
    assert first_seen(["a", "a"], [{"a": 1}]) == [0, None]


def test_summary_measures_from_the_send_to_the_end_of_the_first_poll_showing_it() -> None:
    """Latency is the showing poll's end minus the send; the poll before bounds it below."""
    sent = Sent(
        scheduled=[0.0, 0.5], sent=[0.0, 0.5], acked=[0.02, 0.52], groups=[("d", "web", "CA")] * 2
    )
    polls = [
        (0.05, 0.06, {}),
        (0.25, 0.26, {("d", "web", "CA"): 1}),
        (0.85, 0.86, {("d", "web", "CA"): 2}),
    ]
    figures = summarize(sent, polls)
    assert figures["seen"] == 2 and figures["unseen"] == 0
    assert figures["latency_ms"]["max"] == pytest.approx(360.0)
    assert figures["latency_ms"]["p50"] == pytest.approx(260.0)
    # The first order: not in the poll that began at 0.05 s; the second: sent after it.
    assert figures["latency_lower_bound_ms"]["p90"] == pytest.approx(50.0)
    assert figures["latency_lower_bound_ms"]["p50"] == 0.0
    assert figures["target_met"] is True


def test_every_state_of_the_plan_is_fed_by_one_partition() -> None:
    """A group's orders are all in one partition, so they are counted in the order sent."""
    partitions: dict[str, set[int]] = {}
    for order in plan(400, 4):
        state = order["shipping_address"]["state"]
        partitions.setdefault(state, set()).add(partition_of(order["customer_id"].encode(), 4))
    assert all(len(p) == 1 for p in partitions.values())
    assert set().union(*partitions.values()) == {0, 1, 2, 3}


METRICS = """# HELP streams_orders_processing_latency_seconds From produce to written
streams_orders_processing_latency_seconds_bucket{le="0.1"} 10.0
streams_orders_processing_latency_seconds_bucket{le="0.25"} 50.0
streams_orders_processing_latency_seconds_bucket{le="0.5"} 99.0
streams_orders_processing_latency_seconds_bucket{le="+Inf"} 100.0
streams_orders_processing_latency_seconds_count 100.0
"""


def test_a_histograms_quantile_is_the_bound_of_its_bucket_between_two_readings() -> None:
    """Only what was observed between the readings counts; beyond the last bound is None."""
    after = buckets(METRICS)
    assert after == {0.1: 10.0, 0.25: 50.0, 0.5: 99.0, float("inf"): 100.0}
    assert bucket_quantile({}, after, 50) == 0.25
    assert bucket_quantile({}, after, 95) == 0.5
    assert bucket_quantile({}, after, 100) is None
    before = {0.1: 10.0, 0.25: 10.0, 0.5: 10.0, float("inf"): 10.0}  # 0 / 40 / 89 / 90 since
    assert bucket_quantile(before, after, 40) == 0.25
    assert bucket_quantile(before, after, 50) == 0.5
    assert bucket_quantile(after, after, 50) is None
