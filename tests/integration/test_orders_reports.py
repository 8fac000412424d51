"""Daily reports, revisions, anomaly and low-stock alerts from a real worker."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from streams.common.broker import EmbeddedBroker
from tests.support.workers import Worker, produce, read_topic, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("reference_data")]

DAY = datetime(2025, 8, 10, tzinfo=UTC)


def order(n: int, when: datetime, channel: str) -> tuple[bytes, bytes]:
    customer = f"CUST-{n % 97:03d}"
    body = {
        "order_id": f"ORD-R{n:06d}",
        "customer_id": customer,
        "timestamp": when.isoformat().replace("+00:00", "Z"),
        "channel": channel,
        "items": [{"product_id": "PROD-002", "quantity": 1, "unit_price": 243.82}],
        "shipping_address": {"country": "US", "state": "TX", "city": "Austin"},
        "status": "confirmed",
    }
    return customer.encode(), orjson.dumps(body)


def steady_day_with_spike() -> list[tuple[bytes, bytes]]:
    """8-12 orders an hour per channel over a day, and ten times that on web at noon."""
    rng, records, n = random.Random(3), [], 0
    for hour in range(24):
        for channel in ("web", "mobile", "api"):
            count = 100 if (channel, hour) == ("web", 12) else rng.randint(8, 12)
            for i in range(count):
                n += 1
                when = DAY + timedelta(hours=hour, seconds=i * 30)
                records.append(order(n, when, channel))
    return records


def report(worker: Worker, report_id: str) -> dict[str, object] | None:
    reports = {r["id"]: r for r in worker.get("/orders/reports/daily?date=2025-08-10")}
    return reports.get(report_id)


def test_day_closes_into_a_final_report_revisions_and_alerts(
    broker: EmbeddedBroker, start_worker: Callable[..., Worker]
) -> None:
    """A day becomes final once the stream passes its end plus grace, a late order
    issues a flagged revision, the noon spike on web is alerted and low stock too."""
    worker = start_worker(ORDERS_REPORT_INTERVAL_SECONDS="0.5")
    day = steady_day_with_spike()
    produce(broker.bootstrap, "orders.raw", day)
    # Every partition moves past midnight plus the 5-minute grace.
    tomorrow = DAY + timedelta(days=1, minutes=30)
    produce(
        broker.bootstrap, "orders.raw", [order(900_000 + i, tomorrow, "api") for i in range(97)]
    )

    final = wait_until(lambda: report(worker, "2025-08-10/r0"), timeout=60, what="final report")
    assert final["kind"] == "final"
    assert final["orders"] == len(day)
    assert final["revenue"] == f"{len(day) * 243.82:.2f}"

    late = order(999_999, DAY + timedelta(hours=20), "mobile")
    produce(broker.bootstrap, "orders.raw", [late])
    revision = wait_until(lambda: report(worker, "2025-08-10/r1"), timeout=60, what="revision")
    assert revision["kind"] == "revision"
    assert revision["orders"] == len(day) + 1

    alerts = wait_until(
        lambda: {a["id"]: a for a in worker.get("/orders/alerts?limit=1000")}.get(
            "orders_spike:web:2025-08-10T12"
        ),
        timeout=30,
        what="the noon spike on web",
    )
    assert alerts["zscore"] > 3
    ids = [a["id"] for a in worker.get("/orders/alerts?limit=1000")]
    assert not [i for i in ids if i.startswith("orders_spike:") and ":web:" not in i]
    assert any(i.startswith("low_stock:PROD-001:") for i in ids)
    wait_until(
        lambda: worker.metric("streams_orders_low_stock_products") > 0,
        timeout=15,
        what="the low-stock gauge",
    )
    # Each report and alert was emitted once, with its deterministic id as the key.
    keys = [r.key for r in read_topic(broker.bootstrap, "orders.reports.daily")]
    assert keys.count(b"2025-08-10/r0") == 1
    assert keys.count(b"2025-08-10/r1") == 1
