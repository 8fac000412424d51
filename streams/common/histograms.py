"""Many observations of one Prometheus histogram at once.

``Histogram.observe`` walks the bucket bounds in Python and takes two locks per value:
~2 us, paid per record by a pipeline that times every record it handles. Here a batch's
values are placed with ``bisect`` and each bucket touched is incremented once; the
samples are those ``observe`` would leave, value by value (tests/unit/test_histograms.py).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable

from prometheus_client import Histogram


def observe_all(histogram: Histogram, amounts: Iterable[float]) -> None:
    """``histogram.observe(amount)`` for each of ``amounts`` (no exemplars)."""
    bounds = histogram._upper_bounds  # ascending, +Inf last; an amount <= bound lands there
    places: Counter[int] = Counter()
    total = 0.0
    for amount in amounts:
        total += amount
        if amount == amount:  # NaN falls in no bucket with observe: likewise here
            places[bisect_left(bounds, amount)] += 1
    histogram._sum.inc(total)
    buckets = histogram._buckets
    for place, count in places.items():
        buckets[place].inc(count)
