"""The order formats the channels send, and the one current model they upgrade to.

Known versions:

- v1, the seed's format: ``order_id, customer_id, timestamp, channel, items[product_id,
  quantity, unit_price], shipping_address{country, state, city}, status``; an optional
  ``total_amount`` and ``currency`` were added later by some channels (v1.1).
- v2, ``schema_version: 2``: renamed fields, a nested customer and amounts in integer
  cents: ``id, customer{id, email?}, created_at, source, lines[sku, qty,
  unit_price_cents], shipping{country, region, city}, status, total_cents, currency``.

Anything else is dead-lettered as ``unknown_schema``. Money is exact: ``Decimal`` at
the edge with at most two decimal places, integer cents inside.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
)

Token = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
Channel = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
Country = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
Region = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{1,3}$")]
Money = Annotated[Decimal, Field(gt=0, decimal_places=2, max_digits=14)]


def _a_number(value: object) -> object:
    """An order's amounts and counts are JSON numbers: a string or a boolean in their
    place is a channel's bug, refused rather than read as a number."""
    if isinstance(value, str | bool):
        raise ValueError("must be a JSON number")
    return value


#: Amounts of an order (the catalog, a reference file, may write its prices as strings).
OrderMoney = Annotated[Money, BeforeValidator(_a_number)]
Count = Annotated[int, Strict()]


class Status(StrEnum):
    confirmed = "confirmed"
    pending = "pending"
    cancelled = "cancelled"


class _Edge(BaseModel):
    """Edge models ignore unknown extra fields: channels add fields before we need them."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class AddressV1(_Edge):
    country: Country
    state: Region
    city: str | None = None


class ItemV1(_Edge):
    product_id: Token
    quantity: Count = Field(gt=0, le=10_000)
    unit_price: OrderMoney


class OrderV1(_Edge):
    order_id: Token
    customer_id: Token
    timestamp: AwareDatetime
    channel: Channel
    items: list[ItemV1] = Field(min_length=1, max_length=500)
    shipping_address: AddressV1
    status: Status
    total_amount: OrderMoney | None = None
    currency: Literal["USD"] = "USD"


class CustomerV2(_Edge):
    id: Token
    email: str | None = None


class LineV2(_Edge):
    sku: Token
    qty: Count = Field(gt=0, le=10_000)
    unit_price_cents: Count = Field(gt=0)


class ShippingV2(_Edge):
    country: Country
    region: Region
    city: str | None = None


class OrderV2(_Edge):
    schema_version: Literal[2]
    id: Token
    customer: CustomerV2
    created_at: AwareDatetime
    source: Channel
    lines: list[LineV2] = Field(min_length=1, max_length=500)
    shipping: ShippingV2
    status: Status
    total_cents: Count | None = Field(None, gt=0)
    currency: Literal["USD"] = "USD"


@dataclass(frozen=True, slots=True)
class Item:
    product_id: str
    quantity: int
    unit_price_cents: int

    @property
    def amount_cents(self) -> int:
        return self.quantity * self.unit_price_cents


@dataclass(frozen=True, slots=True)
class Order:
    """The current model every known version is upgraded to."""

    order_id: str
    customer_id: str
    event_time: datetime
    channel: str
    status: Status
    country: str
    region: str
    city: str | None
    items: tuple[Item, ...]
    total_cents: int | None
    schema_version: int
    # Derived once here: the rules read them several times per order.
    event_ms: int = field(init=False)
    items_cents: int = field(init=False)
    units: int = field(init=False)

    def __post_init__(self) -> None:
        set_field = object.__setattr__  # frozen: derived fields are set once, here
        set_field(self, "event_ms", int(self.event_time.timestamp() * 1000))
        cents = units = 0
        for item in self.items:
            cents += item.quantity * item.unit_price_cents
            units += item.quantity
        set_field(self, "items_cents", cents)
        set_field(self, "units", units)


def cents(amount: Decimal) -> int:
    return int(amount * 100)


def upgrade_v1(order: OrderV1) -> Order:
    return Order(
        order_id=order.order_id,
        customer_id=order.customer_id,
        event_time=order.timestamp.astimezone(UTC),
        channel=order.channel,
        status=order.status,
        country=order.shipping_address.country,
        region=order.shipping_address.state,
        city=order.shipping_address.city,
        items=tuple(Item(i.product_id, i.quantity, cents(i.unit_price)) for i in order.items),
        total_cents=cents(order.total_amount) if order.total_amount is not None else None,
        schema_version=1,
    )


def upgrade_v2(order: OrderV2) -> Order:
    return Order(
        order_id=order.id,
        customer_id=order.customer.id,
        event_time=order.created_at.astimezone(UTC),
        channel=order.source,
        status=order.status,
        country=order.shipping.country,
        region=order.shipping.region,
        city=order.shipping.city,
        items=tuple(Item(line.sku, line.qty, line.unit_price_cents) for line in order.lines),
        total_cents=order.total_cents,
        schema_version=2,
    )


class CatalogEntry(_Edge):
    product_id: Token
    category: str = Field(max_length=128)
    brand: str = Field(max_length=128)
    price: Money
    launch_date: AwareDatetime | None = None


class InventoryRow(_Edge):
    product_id: Token
    # Bounded by the Parquet copy's int32 column.
    available_quantity: Count = Field(ge=0, le=2**31 - 1)
    warehouse_location: str = Field(max_length=128)
    last_updated: AwareDatetime
