"""Prometheus label values from allow-lists.

A label value taken from input data (a channel, a device type) is a new time series
per distinct value: one producer sending random strings would grow every scraper's
memory without bound. Values outside the allow-list are exported as ``other``; the
data itself keeps its real value.
"""

from __future__ import annotations

from collections.abc import Container

OTHER = "other"


def allowed(value: str, known: Container[str]) -> str:
    """``value`` if it is in ``known``, else ``other``."""
    return value if value in known else OTHER
