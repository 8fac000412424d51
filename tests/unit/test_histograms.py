"""A batch's observations equal the same values observed one by one."""

from __future__ import annotations

import math
import random

from prometheus_client import CollectorRegistry, Histogram

from streams.common.histograms import observe_all

BUCKETS = (0.005, 0.05, 0.5, 1.0, 5.0)


def samples(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    found = {}
    for metric in registry.collect():
        for sample in metric.samples:
            if not sample.name.endswith("_created"):
                found[(sample.name, sample.labels.get("le", ""))] = sample.value
    return found


def test_observe_all_leaves_the_samples_observe_leaves() -> None:
    """Values on each bound, between them, past the last, negative, zero and NaN."""
    rng = random.Random(7)
    values = [*BUCKETS, 0.0, -1.0, 7.5, 1e9, *(rng.uniform(-0.1, 6) for _ in range(500))]
    one, many = CollectorRegistry(), CollectorRegistry()
    by_one = Histogram("lat", "", buckets=BUCKETS, registry=one)
    by_many = Histogram("lat", "", buckets=BUCKETS, registry=many)
    for value in values:
        by_one.observe(value)
    observe_all(by_many, values)
    assert samples(many) == samples(one)
    assert samples(many)[("lat_count", "")] == len(values)


def test_nan_is_counted_in_no_bucket_but_in_the_sum_as_observe_does() -> None:
    one, many = CollectorRegistry(), CollectorRegistry()
    by_one = Histogram("lat", "", buckets=BUCKETS, registry=one)
    by_many = Histogram("lat", "", buckets=BUCKETS, registry=many)
    by_one.observe(math.nan)
    by_one.observe(0.1)
    observe_all(by_many, [math.nan, 0.1])
    one_samples, many_samples = samples(one), samples(many)
    assert math.isnan(one_samples.pop(("lat_sum", ""))) and math.isnan(
        many_samples.pop(("lat_sum", ""))
    )
    assert many_samples == one_samples
