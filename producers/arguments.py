"""Argument types the producers' command lines share."""

from __future__ import annotations

import argparse
from datetime import datetime


def instant(value: str) -> datetime:
    """An ISO 8601 time with its offset (``Z`` for UTC)."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError("needs a timezone offset, e.g. 2025-08-01T00:00:00Z")
    return moment
