"""A batch's accepted orders as the Parquet copy's columns, filled from the parsed orders.

The copy's rows were once made by decoding each enriched order's JSON again and
converting row dicts to Arrow; both cost more per order than the rest of its Parquet
write. Here the batch appends each accepted order's values to one list per column as it
emits the order, and Arrow converts each list in one call. The rows are the ones
``lake.to_row`` makes of the enriched JSON (tests/unit/test_lake_columns.py compares
the files): money is the exact cents (MONEY is decimal128(12, 2), whose unscaled value
is cents), and a record ``to_row`` refuses is left out with the same error.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from streams.orders.lake import ENRICHED_SCHEMA, ITEM, MONEY, checked_day
from streams.orders.logic import money
from streams.orders.models import Order

#: Cents MONEY cannot hold (10 integer digits and cents).
_MONEY_LIMIT_CENTS = 10**MONEY.precision
#: Cents as unscaled decimals, cast to MONEY in one step (which checks the precision).
_CENTS = pa.decimal128(19, 0)
_CENTS_AS_MONEY = pa.decimal128(19, 2)
_ITEMS = ENRICHED_SCHEMA.field("items").type


class DayColumns:
    """One day's rows of a batch, column by column."""

    def __init__(self) -> None:
        self.offsets: list[int] = []
        self.order_id: list[str] = []
        self.customer_id: list[str] = []
        self.event_time: list[datetime] = []
        self.channel: list[str] = []
        self.status: list[str] = []
        self.country: list[str] = []
        self.region: list[str] = []
        self.city: list[str | None] = []
        self.total: list[int] = []
        self.units: list[int] = []
        self.counts_as_revenue: list[bool] = []
        self.revision: list[bool] = []
        self.schema_version: list[int] = []
        self.item_ends: list[int] = [0]
        self.product_id: list[str] = []
        self.quantity: list[int] = []
        self.unit_price: list[int] = []
        self.amount: list[int] = []
        self.category: list[str] = []
        self.brand: list[str] = []
        self.available_quantity: list[Any] = []
        self.warehouse: list[Any] = []

    def add(self, offset: int, order: Order, enriched: Mapping[str, Any]) -> None:
        self.offsets.append(offset)
        self.order_id.append(order.order_id)
        self.customer_id.append(order.customer_id)
        self.event_time.append(order.event_time)
        self.channel.append(order.channel)
        self.status.append(enriched["status"])
        self.country.append(order.country)
        self.region.append(order.region)
        self.city.append(order.city)
        self.total.append(order.items_cents)
        self.units.append(order.units)
        self.counts_as_revenue.append(enriched["counts_as_revenue"])
        self.revision.append(enriched["revision"])
        self.schema_version.append(order.schema_version)
        for item, line in zip(order.items, enriched["items"], strict=True):
            self.product_id.append(item.product_id)
            self.quantity.append(item.quantity)
            self.unit_price.append(item.unit_price_cents)
            self.amount.append(item.amount_cents)
            self.category.append(line["category"])
            self.brand.append(line["brand"])
            self.available_quantity.append(line["available_quantity"])
            self.warehouse.append(line["warehouse"])
        self.item_ends.append(len(self.product_id))

    def table(self) -> pa.Table:
        """The rows as a table of ENRICHED_SCHEMA."""
        items = pa.StructArray.from_arrays(
            [
                pa.array(self.product_id, pa.string()),
                pa.array(self.quantity, pa.int32()),
                _money(self.unit_price),
                _money(self.amount),
                pa.array(self.category, pa.string()),
                pa.array(self.brand, pa.string()),
                pa.array(self.available_quantity, pa.int32()),
                pa.array(self.warehouse, pa.string()),
            ],
            fields=list(ITEM),
        )
        columns = [
            pa.array(self.order_id, pa.string()),
            pa.array(self.customer_id, pa.string()),
            pa.array(self.event_time, ENRICHED_SCHEMA.field("event_time").type),
            pa.array(self.channel, pa.string()),
            pa.array(self.status, pa.string()),
            pa.array(self.country, pa.string()),
            pa.array(self.region, pa.string()),
            pa.array(self.city, pa.string()),
            _money(self.total),
            pa.array(self.units, pa.int32()),
            pa.array(self.counts_as_revenue, pa.bool_()),
            pa.array(self.revision, pa.bool_()),
            pa.array(self.schema_version, pa.int16()),
            pa.ListArray.from_arrays(pa.array(self.item_ends, pa.int32()), items, type=_ITEMS),
        ]
        return pa.Table.from_arrays(columns, schema=ENRICHED_SCHEMA)


def _money(cents: list[int]) -> pa.Array:
    unscaled = pc.cast(pa.array(cents, pa.int64()), _CENTS)
    return unscaled.view(_CENTS_AS_MONEY).cast(MONEY)


class LakeBatch:
    """One source partition's accepted orders of a batch, by day, as columns."""

    def __init__(self) -> None:
        #: Every record added, left out or not, in offset order.
        self.offsets: list[int] = []
        #: Records ``to_row`` would refuse: (offset, the error it would raise).
        self.left_out: list[tuple[int, Exception]] = []
        self.days: dict[str, DayColumns] = {}
        #: ``checked_day`` of each date seen: it parses a date, and a batch has few.
        self._checked: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.offsets)

    def add(self, offset: int, order: Order, enriched: Mapping[str, Any]) -> None:
        """Add an accepted order and its enriched value (``enrich()``)."""
        self.offsets.append(offset)
        try:
            day = self._checked_day(enriched["date"])
            _check_money(order)
        except ValueError as exc:
            self.left_out.append((offset, exc))
            return
        columns = self.days.get(day)
        if columns is None:
            columns = self.days[day] = DayColumns()
        columns.add(offset, order, enriched)

    def _checked_day(self, date: str) -> str:
        day = self._checked.get(date)
        if day is None:
            day = self._checked[date] = checked_day(date)
        return day

    def tables(self, after: int) -> dict[str, pa.Table]:
        """The rows of offsets above ``after``, by partition directory (``date=...``)."""
        tables = {}
        for day, columns in self.days.items():
            table = columns.table()
            if columns.offsets[0] <= after:  # rows already in the files (a replay)
                table = table.filter(pa.array([o > after for o in columns.offsets]))
            if table.num_rows:
                tables[f"date={day}"] = table
        return tables


def _check_money(order: Order) -> None:
    """Raise what ``to_row`` raises for an amount MONEY cannot hold. Amounts are
    positive, so no price or line amount exceeds the total, which ``to_row`` checks
    first."""
    if order.items_cents >= _MONEY_LIMIT_CENTS:
        raise ValueError(f"money {money(order.items_cents)!r} does not fit {MONEY}")
