"""The peer workload's rules, shared by the Quix Streams app and our same-work app.

Parse an order, compute its total, place it in a one-day tumbling window of its own
event time per channel and state. Both apps call these same functions, so neither does
more arithmetic per order than the other; only the stream machinery differs.

Standard library and orjson only: the Quix app imports this module from its own
virtualenv (``.venv/bench-quix``), which has neither Faust nor the product installed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

DAY_MS = 86_400_000


def event_ms(order: dict[str, Any]) -> int:
    """The order's own timestamp (ISO 8601, a zone required) in epoch milliseconds."""
    return int(datetime.fromisoformat(order["timestamp"]).timestamp() * 1000)


def total_cents(order: dict[str, Any]) -> int:
    """The order total: its lines' quantity times unit price, in integer cents."""
    return sum(round(item["unit_price"] * 100) * item["quantity"] for item in order["items"])


def group_of(order: dict[str, Any]) -> str:
    """The aggregation key: ``<channel>|<state>``."""
    return f"{order['channel']}|{order['shipping_address']['state']}"


def day_label(ms: int) -> str:
    """The UTC date of the one-day window holding ``ms`` (windows start at midnight UTC)."""
    return _day(ms // DAY_MS)


@lru_cache(maxsize=4096)
def _day(day: int) -> str:
    # Cached, as the orders pipeline caches its date labels: one per day, not per order.
    return datetime.fromtimestamp(day * DAY_MS / 1000, tz=UTC).date().isoformat()
