"""Small Parquet rows shared by the lake writer's unit and S3 tests."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pyarrow as pa

SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("amount", pa.decimal128(12, 2), nullable=False),
    ]
)


def by_date(row: Any) -> str:
    return f"date={row['date']}"


def rows(*spec: tuple[str, str, str]) -> list[dict[str, Any]]:
    """Rows of SCHEMA + ``date`` from ``(id, date, amount)`` triples."""
    return [{"id": i, "date": d, "amount": Decimal(a)} for i, d, a in spec]
