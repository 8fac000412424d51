"""The orders pipeline end to end on the real embedded broker, with real workers."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal

import orjson
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from producers.orders import fixture
from streams.common.broker import EmbeddedBroker
from streams.common.deadletter import DETAIL, REASON, SOURCE_OFFSET, SOURCE_TOPIC
from tests.support.oracle import confirmed_revenue, revenue_rows
from tests.support.workers import Consumed, Worker, produce, read_topic, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("reference_data")]

SAMPLE = fixture("orders_sample.jsonl")


def seed_order(
    order_id: str, *, product: str = "PROD-001", quantity: int = 1, **extra: object
) -> dict[str, object]:
    """A valid order in the seed's format (PROD-001 costs 248.06 in the bundled catalog)."""
    order: dict[str, object] = {
        "order_id": order_id,
        "customer_id": "CUST-TEST",
        "timestamp": "2025-08-20T10:00:00Z",
        "channel": "web",
        "items": [{"product_id": product, "quantity": quantity, "unit_price": 248.06}],
        "shipping_address": {"country": "US", "state": "CA", "city": "San Diego"},
        "status": "confirmed",
    }
    order.update(extra)
    return order


def read_lake(worker: Worker) -> pa.Table:
    if not worker.lake.exists():
        return pa.table({})
    return ds.dataset(worker.lake, format="parquet", partitioning="hive").to_table()


def as_record(order: dict[str, object]) -> tuple[bytes, bytes]:
    return str(order["customer_id"]).encode(), orjson.dumps(order)


def test_sample_replay_counts_every_order(
    broker: EmbeddedBroker, start_worker: Callable[..., Worker]
) -> None:
    """Replaying the seed's sample, far out of time order, counts every order exactly."""
    worker = start_worker()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "producers",
            "--bootstrap",
            broker.bootstrap,
            "orders",
            "--file",
            str(SAMPLE),
        ],
        check=True,
        capture_output=True,
    )
    lines = SAMPLE.read_bytes().splitlines()
    expected = confirmed_revenue(lines)
    wait_until(
        lambda: revenue_rows(worker.get("/orders/revenue/daily")) == expected,
        timeout=60,
        what="revenue of the whole sample",
    )
    # Metrics move once a batch is done, after its figures reached the changelog the
    # views mirror: they can trail the view briefly.
    wait_until(
        lambda: worker.metric("streams_orders_accepted_total") == len(lines),
        timeout=30,
        what="the accepted counter",
    )
    assert worker.metric("streams_orders_dead_letters_total") == 0
    # The partitions' clocks (which the quality view sums) are written after the figures
    # they guard (streams/common/table_io.py): the view can trail the revenue briefly.
    wait_until(
        lambda: (
            (q := worker.get("/orders/quality"))
            and (q["received"], q["counted"], q["dead_letters"]) == (1000, 1000, {})
        ),
        timeout=30,
        what="the data-quality counts",
    )
    # The Parquet copy holds every order once, partitioned by date, money exact.
    lake = wait_until(
        lambda: (t := read_lake(worker)).num_rows == len(lines) and t,
        timeout=60,
        what="every order in the Parquet copy",
    )
    confirmed = [
        t
        for t, s in zip(lake["total"].to_pylist(), lake["status"].to_pylist(), strict=True)
        if s == "confirmed"
    ]
    assert f"{sum(confirmed):.2f}" == f"{sum(Decimal(r) for r, _ in expected.values()):.2f}"
    assert len(set(lake["order_id"].to_pylist())) == len(lines)
    customers = worker.get("/orders/customers")
    counted = [orjson.loads(x) for x in lines]
    assert customers["customers"] == len(
        {o["customer_id"] for o in counted if o["status"] != "cancelled"}
    )


def test_bad_records_become_dead_letters_and_replay_after_a_fix(
    broker: EmbeddedBroker, start_worker: Callable[..., Worker]
) -> None:
    """Each kind of bad record lands in orders.dlq with its reason and bytes; none crashes."""
    worker = start_worker()
    bad = {
        "decode_error": b'{"order_id": "ORD-BROKEN", "items": [',
        "unknown_schema": orjson.dumps({"schema_version": 9, "id": "ORD-V9"}),
        "invalid": orjson.dumps(seed_order("ORD-NEG", quantity=-2)),
        "unknown_product": orjson.dumps(seed_order("ORD-NEW", product="PROD-999")),
        "total_mismatch": orjson.dumps(seed_order("ORD-TOT", total_amount=1.00)),
        "price_mismatch": orjson.dumps(
            {
                **seed_order("ORD-PRICE"),
                "items": [{"product_id": "PROD-001", "quantity": 1, "unit_price": 1.5}],
            }
        ),
    }
    # A high mark first, then an order 60 days older than it: beyond the 45-day horizon.
    produce(broker.bootstrap, "orders.raw", [as_record(seed_order("ORD-HIGH"))])
    bad["late"] = orjson.dumps(seed_order("ORD-OLD", timestamp="2025-06-21T10:00:00Z"))
    produce(broker.bootstrap, "orders.raw", [(b"CUST-TEST", value) for value in bad.values()])

    def letters() -> dict[str, Consumed] | None:
        found = {r.headers[REASON]: r for r in read_topic(broker.bootstrap, "orders.dlq")}
        return found if set(bad) <= set(found) else None

    found = wait_until(letters, timeout=30, what="a dead letter for every reason")
    for reason, value in bad.items():
        letter = found[reason]
        assert letter.value == value
        assert letter.headers[SOURCE_TOPIC] == "orders.raw"
        assert letter.headers[SOURCE_OFFSET].isdigit()
    assert worker.alive()
    # A batch's metrics move once all of it is done (its tables written too).
    wait_until(
        lambda: worker.metric('streams_orders_dead_letters_total{reason="unknown_product"}') == 1,
        timeout=30,
        what="the dead letter counted",
    )
    quality = wait_until(
        lambda: (q := worker.get("/orders/quality"))["received"] == len(bad) + 1 and q,
        timeout=30,
        what="the quality view to count every record",
    )
    assert quality["dead_letters"] == dict.fromkeys(bad, 1)
    assert quality["counted"] == 1
    assert worker.status("/orders/revenue/daily?from=yesterday")[0] == 400

    # A bad inventory row is a dead letter too, from its own topic.
    row = {"product_id": "PROD-001", "available_quantity": -5, "warehouse_location": "WH-SF"}
    produce(broker.bootstrap, "orders.inventory", [(b"PROD-001", orjson.dumps(row))])
    inventory_letter = wait_until(
        lambda: [
            r
            for r in read_topic(broker.bootstrap, "orders.dlq")
            if r.headers[SOURCE_TOPIC] == "orders.inventory"
        ],
        timeout=30,
        what="the inventory dead letter",
    )[0]
    assert inventory_letter.headers[REASON] == "invalid"
    assert "available_quantity" in inventory_letter.headers[DETAIL]

    # The fix: PROD-999 joins the catalog; replaying its dead letter counts the order.
    product = {"product_id": "PROD-999", "category": "Toys", "brand": "New", "price": 248.06}
    produce(broker.bootstrap, "orders.catalog", [(b"PROD-999", orjson.dumps(product))])
    before = worker.metric("streams_orders_accepted_total")
    replay = subprocess.run(
        [sys.executable, "-m", "streams.orders", "dlq-replay", "--reason", "unknown_product"],
        env={
            **os.environ,
            "KAFKA_BOOTSTRAP": broker.bootstrap,
            "STREAMS_DATA_DIR": str(worker.data_dir),
        },
        check=True,
        capture_output=True,
        text=True,
    )
    assert "replayed 1 dead letters" in replay.stdout + replay.stderr
    wait_until(
        lambda: worker.metric("streams_orders_accepted_total") == before + 1,
        timeout=30,
        what="the replayed order to be counted",
    )


def test_duplicated_orders_count_once(
    broker: EmbeddedBroker, start_worker: Callable[..., Worker]
) -> None:
    """An order id sent three times counts once, in every figure."""
    worker = start_worker()
    orders = [seed_order(f"ORD-DUP-{i}", customer_id=f"CUST-DUP-{i % 3}") for i in range(30)]
    records = [as_record(o) for o in orders]
    produce(broker.bootstrap, "orders.raw", records + records + records)
    path = "/orders/revenue/daily?from=2025-08-20&to=2025-08-20&channel=web&region=CA"
    expected = [(30, f"{30 * 248.06:.2f}")]
    wait_until(
        lambda: [(r["orders"], r["revenue"]) for r in worker.get(path)] == expected,
        timeout=30,
        what="30 orders counted once",
    )
    wait_until(
        lambda: worker.metric("streams_orders_duplicates_total") == 60,
        timeout=30,
        what="both extra copies of every order to be recognised",
    )
    assert worker.metric("streams_orders_accepted_total") == 30
    assert [(r["orders"], r["revenue"]) for r in worker.get(path)] == expected
