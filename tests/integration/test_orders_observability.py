"""A real Prometheus scrapes two real orders workers during a real run; every panel
query of the Orders dashboard and every alert's operands return data."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from producers.orders import Faults, OrderGenerator, load_catalog
from streams.common.broker import EmbeddedBroker
from tests.support.prometheus import (
    alert_expressions,
    dashboard_queries,
    operands,
    running_prometheus,
)
from tests.support.workers import Worker, produce, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("reference_data")]

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "dashboards/grafana/dashboards/orders.json"
RULES = ROOT / "dashboards/prometheus/rules/orders.yml"

#: The channel z-score compares the last 5 minutes with the hour before them and waits
#: for 35 minutes of history (see the rule file), longer than a test runs; its live input
#: is checked instead. promtool's rule tests cover the rest of its arithmetic.
CHANNEL_RATE = "job_channel:streams_orders_accepted:rate5m"
NEEDS_HISTORY = {f"{CHANNEL_RATE}_zscore": CHANNEL_RATE}


def test_operands_split_alert_expressions() -> None:
    """The operand splitter strips thresholds, splits ``and on`` and unwraps absent()."""
    assert operands('a == 0 and on (job) b{t="x"} > 0 and on (job) sum by (job) (up) > 0') == [
        "a",
        'b{t="x"}',
        "sum by (job) (up)",
    ]
    assert operands('absent(up{job="orders"})') == ['up{job="orders"}']


def traffic() -> list[tuple[bytes | None, bytes]]:
    """Three days of orders with every fault kind, plus a few without a city."""
    generator = OrderGenerator(
        load_catalog(),
        seed=21,
        start=datetime(2025, 8, 1, tzinfo=UTC),
        step=timedelta(seconds=90),
        faults=Faults(duplicates=0.02, variants=0.2, malformed=0.02, late=0.02),
    )
    records = list(itertools.islice(generator, 3000))
    for n in range(5):
        order = orjson.loads(records[n][1]) if records[n][0] else None
        if order and "shipping_address" in order:
            order["order_id"] += "-NOCITY"
            order["shipping_address"].pop("city")
            records.append((records[n][0], orjson.dumps(order)))
    return records


def test_every_panel_and_alert_operand_has_data(
    broker: EmbeddedBroker, start_worker: Callable[..., Worker], tmp_path: Path
) -> None:
    """Dashboards and alerts are proven against what real workers export."""
    workers = [start_worker(ORDERS_REPORT_INTERVAL_SECONDS="0.5") for _ in range(2)]
    produce(broker.bootstrap, "orders.raw", traffic())
    wait_until(
        lambda: sum(w.metric("streams_orders_received_total") for w in workers) >= 3000,
        timeout=90,
        what="the traffic to be processed",
    )
    targets = {"orders": [f"127.0.0.1:{w.port}" for w in workers]}
    with running_prometheus(targets, [RULES], tmp_path / "prometheus") as prom:
        missing = []
        for title, expr in dashboard_queries(DASHBOARD):
            try:
                prom.wait_for(expr, timeout=30)
            except TimeoutError:
                missing.append(f"panel {title!r}: {expr}")
        for name, expr in alert_expressions(RULES):
            for operand in operands(expr):
                query = NEEDS_HISTORY.get(operand, operand)
                try:
                    prom.wait_for(query, timeout=30)
                except TimeoutError:
                    missing.append(f"alert {name}: {query}")
        assert not missing, "\n".join(missing)
        assert {t["health"] for t in prom.targets()} == {"up"}
