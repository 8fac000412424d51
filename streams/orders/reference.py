"""Batches of reference data: inventory rows (low-stock alerts) and catalog entries.

Every worker's mirror keeps only the valid rows (OrdersPipeline.on_mirrored, with the
same rule, logic.reference_record); these agents, run by the one worker that owns each
partition, send every rejected row to the dead-letter topic once and raise the
low-stock alerts. Both are acknowledged by Kafka before the batch counts as done.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson

from streams.common.batches import dead_letter_failure
from streams.common.deadletter import dead_letter
from streams.common.sends import Confirmed
from streams.orders.logic import Rejected, reference_record
from streams.orders.models import CatalogEntry, InventoryRow
from streams.orders.pipeline import ALERTS, DLQ, OrdersPipeline


async def handle_inventory(pipeline: OrdersPipeline, events: list[Any]) -> None:
    """Check each inventory row; dead-letter bad ones and alert on low stock."""
    sends = Confirmed(pipeline.app.producer)
    letters: Counter[str] = Counter()
    alerts = 0
    threshold = pipeline.settings.low_stock_threshold
    for event in events:
        message = event.message
        if message.value is None:
            continue  # a tombstone deletes the product's row: no row to check
        try:
            row = reference_record(InventoryRow, message.key, message.value)
        except Rejected as rejected:
            await dead_letter(sends, DLQ, message, rejected.reason, rejected.detail)
            letters[rejected.reason] += 1
            continue
        if row.available_quantity < threshold:
            alert = low_stock_alert(row, threshold)
            await sends.send(ALERTS, alert["id"].encode(), orjson.dumps(alert))
            alerts += 1
    await sends.confirm()
    for reason, count in letters.items():
        pipeline.metrics.dead_letters.labels(reason).inc(count)
    pipeline.metrics.alerts.labels("low_stock").inc(alerts)


def low_stock_alert(row: InventoryRow, threshold: int) -> dict[str, Any]:
    stamp = row.last_updated.isoformat().replace("+00:00", "Z")
    return {
        "id": f"low_stock:{row.product_id}:{stamp}",
        "kind": "low_stock",
        "product_id": row.product_id,
        "available_quantity": row.available_quantity,
        "threshold": threshold,
        "warehouse": row.warehouse_location,
        "at": stamp,
    }


async def handle_catalog(pipeline: OrdersPipeline, events: list[Any]) -> None:
    """Dead-letter every catalog entry the mirror leaves out."""
    sends = Confirmed(pipeline.app.producer)
    letters: Counter[str] = Counter()
    for event in events:
        message = event.message
        if message.value is None:
            continue  # a tombstone deletes the product (the mirror forgets it too)
        try:
            reference_record(CatalogEntry, message.key, message.value)
        except Rejected as rejected:
            await dead_letter(sends, DLQ, message, rejected.reason, rejected.detail)
            letters[rejected.reason] += 1
    await sends.confirm()
    for reason, count in letters.items():
        pipeline.metrics.dead_letters.labels(reason).inc(count)


async def reject_reference(pipeline: OrdersPipeline, event: Any, error: Exception) -> None:
    """A reference row that fails alone: dead-lettered as processing_error."""
    await dead_letter_failure(
        pipeline.app.producer, DLQ, event, error, pipeline.metrics.dead_letters
    )
