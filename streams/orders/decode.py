"""The common case of an order, read straight from its decoded JSON into the current model.

The pydantic models of ``models.py`` are the spec, and validating into them and then
upgrading costs more than the rest of an order's rules together. Almost every order is
valid, so ``read_order`` checks the decoded JSON against the same rules in one pass and
builds the ``Order`` at once. It only ever accepts: anything it is not sure of (a
failing field, an unusual but maybe valid form such as an exponent in a price or a
timestamp without seconds) returns None, and ``logic.parse_order`` then takes the
models' path, which decides and words the rejection. So a record is accepted here only
if the models accept it, with an equal ``Order`` (tests/unit/test_order_decode.py
checks both against each other, hostile inputs included).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, TypeGuard

from streams.orders.models import Item, Order, Status

# The models' patterns (``^...$``, matched by pydantic's Rust regex, where ``$`` is the
# end of the text): a full match here, never Python's ``$``, which also matches before
# a final newline.
_token = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}").fullmatch
_channel = re.compile(r"[a-z][a-z0-9_-]{0,31}").fullmatch
_country = re.compile(r"[A-Z]{2}").fullmatch
_region = re.compile(r"[A-Z0-9]{1,3}").fullmatch
# The one timestamp form taken here (what the channels send); pydantic accepts more
# (no seconds, a space, seven decimals, numbers...), and those take the models' path.
_stamp = re.compile(
    r"\d{4}-\d\d-\d\dT(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,6})?"
    r"(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)",
    re.ASCII,  # \d is any Unicode digit otherwise
).fullmatch

_STATUS = {status.value: status for status in Status}
#: Integers up to this many cents are taken here; larger ones (valid or not) are not.
_BIG = 10**12
_MAX_LINES = 500
_MAX_QUANTITY = 10_000


def read_order(obj: dict[str, Any]) -> Order | None:
    """The order ``obj`` (a decoded JSON object) describes, or None if the models'
    path must decide."""
    if "schema_version" not in obj:
        return _v1(obj)
    version = obj["schema_version"]
    if version == 2 and type(version) is int:
        return _v2(obj)
    return None


def _v1(obj: dict[str, Any]) -> Order | None:
    order_id, customer_id = obj.get("order_id"), obj.get("customer_id")
    channel, address = obj.get("channel"), obj.get("shipping_address")
    if not (_is_token(order_id) and _is_token(customer_id) and _is_channel(channel)):
        return None
    if type(address) is not dict:
        return None
    country, state, city = address.get("country"), address.get("state"), address.get("city")
    if not (_is_country(country) and _is_region(state) and _is_city(city)):
        return None
    if "total_amount" in obj and obj["total_amount"] is not None:
        total = _cents(obj["total_amount"])
        if total is None:
            return None
    else:
        total = None
    items = _items_v1(obj.get("items"))
    status = _status(obj)
    when = _event_time(obj.get("timestamp"))
    if items is None or status is None or when is None:
        return None
    return Order(
        order_id, customer_id, when, channel, status, country, state, city, items, total, 1
    )


def _v2(obj: dict[str, Any]) -> Order | None:
    customer, channel, shipping = obj.get("customer"), obj.get("source"), obj.get("shipping")
    order_id = obj.get("id")
    if type(customer) is not dict or type(shipping) is not dict:
        return None
    customer_id, email = customer.get("id"), customer.get("email")
    if not (_is_token(order_id) and _is_token(customer_id) and _is_channel(channel)):
        return None
    if not (email is None or type(email) is str):
        return None
    country, region, city = shipping.get("country"), shipping.get("region"), shipping.get("city")
    if not (_is_country(country) and _is_region(region) and _is_city(city)):
        return None
    total = obj.get("total_cents")
    if not (total is None or _is_count(total, _BIG)):
        return None
    items = _lines_v2(obj.get("lines"))
    status = _status(obj)
    when = _event_time(obj.get("created_at"))
    if items is None or status is None or when is None:
        return None
    return Order(
        order_id, customer_id, when, channel, status, country, region, city, items, total, 2
    )


def _items_v1(items: Any) -> tuple[Item, ...] | None:
    if type(items) is not list or not 0 < len(items) <= _MAX_LINES:
        return None
    out = []
    for item in items:
        if type(item) is not dict:
            return None
        product, quantity = item.get("product_id"), item.get("quantity")
        price = _cents(item.get("unit_price"))
        if price is None or not (_is_token(product) and _is_count(quantity, _MAX_QUANTITY)):
            return None
        out.append(Item(product, quantity, price))
    return tuple(out)


def _lines_v2(lines: Any) -> tuple[Item, ...] | None:
    if type(lines) is not list or not 0 < len(lines) <= _MAX_LINES:
        return None
    out = []
    for line in lines:
        if type(line) is not dict:
            return None
        sku, qty, price = line.get("sku"), line.get("qty"), line.get("unit_price_cents")
        if not (_is_token(sku) and _is_count(qty, _MAX_QUANTITY) and _is_count(price, _BIG)):
            return None
        out.append(Item(sku, qty, price))
    return tuple(out)


def _status(obj: dict[str, Any]) -> Status | None:
    """The status, if the currency (absent or USD) is right too."""
    currency = obj.get("currency", "USD")
    status = obj.get("status")
    if type(currency) is not str or currency != "USD" or type(status) is not str:
        return None
    return _STATUS.get(status)


def _event_time(value: Any) -> datetime | None:
    if type(value) is not str or not _stamp(value):
        return None
    try:
        return datetime.fromisoformat(value).astimezone(UTC)
    except (ValueError, OverflowError):  # a day not in the calendar, or out of it in UTC
        return None


def _cents(value: Any) -> int | None:
    """An amount (a JSON number, as orjson decodes it) in cents, if it is certainly valid:
    positive, at most 14 digits, at most two decimals."""
    if type(value) is int:
        return value * 100 if 0 < value < _BIG else None
    if type(value) is not float or not 0 < value < _BIG:
        return None
    # pydantic reads a float as the decimal of its shortest repr. A float that is the
    # nearest to cents / 100 (``/`` rounds correctly) has that decimal as its shortest
    # repr (at most 14 digits: no other decimal that short is as near); below 1e14,
    # value * 100 is within 0.02 of those cents.
    cents = round(value * 100)
    return cents if cents > 0 and cents / 100 == value else None


def _is_count(value: object, bound: int) -> TypeGuard[int]:
    return type(value) is int and 0 < value <= bound


def _is_token(value: object) -> TypeGuard[str]:
    return type(value) is str and _token(value) is not None


def _is_channel(value: object) -> TypeGuard[str]:
    return type(value) is str and _channel(value) is not None


def _is_country(value: object) -> TypeGuard[str]:
    return type(value) is str and _country(value) is not None


def _is_region(value: object) -> TypeGuard[str]:
    return type(value) is str and _region(value) is not None


def _is_city(value: object) -> TypeGuard[str | None]:
    return value is None or type(value) is str
