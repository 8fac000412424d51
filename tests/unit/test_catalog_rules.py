"""Checks against the catalog, quality findings and enrichment (streams.orders.logic)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from producers.orders import to_v2, to_v11
from streams.orders.logic import (
    Rejected,
    Rules,
    check_against_catalog,
    enrich,
    money,
    parse_order,
    quality_issues,
)
from tests.unit.factories import DEFAULT_RULES, catalog_of, entry, item, order, raw, v1

SHOP = catalog_of(
    entry("PROD-001", "100.00", category="Electronics", brand="Voltix"),
    entry("PROD-002", "29.99", category="Books", brand="ReadMore"),
)


def rejected_reason(obj: dict[str, object], rules: Rules = DEFAULT_RULES) -> str | None:
    try:
        check_against_catalog(parse_order(raw(obj)), SHOP, rules)
    except Rejected as rejected:
        return rejected.reason
    return None


def test_unknown_product_is_rejected() -> None:
    """An order for a product the catalog does not list is rejected, naming the product."""
    with pytest.raises(Rejected) as caught:
        check_against_catalog(order(items=[item("PROD-404", 1, "5.00")]), SHOP, Rules())
    assert caught.value.reason == "unknown_product"
    assert "PROD-404" in caught.value.detail


def test_catalog_price_is_accepted() -> None:
    """An order at the catalog prices passes."""
    assert (
        rejected_reason(v1(items=[item("PROD-001", 2, "100.00"), item("PROD-002", 1, "29.99")]))
        is None
    )


@pytest.mark.parametrize(
    ("price", "tolerance", "reason"),
    [
        ("100.01", "0", "price_mismatch"),
        ("99.99", "0", "price_mismatch"),
        ("100.99", "0.01", None),
        ("101.00", "0.01", None),
        ("99.00", "0.01", None),
        ("101.01", "0.01", "price_mismatch"),
        ("98.99", "0.01", "price_mismatch"),
    ],
)
def test_price_tolerance(price: str, tolerance: str, reason: str | None) -> None:
    """A price differing from the catalog by more than the relative tolerance is rejected."""
    obj = v1(items=[item("PROD-001", 1, price)])
    assert rejected_reason(obj, Rules(price_tolerance=Decimal(tolerance))) == reason


@pytest.mark.parametrize("form", [to_v11, to_v2], ids=["v1.1", "v2"])
def test_declared_total_must_match_the_items(
    form: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    """A v1.1 or v2 order whose declared total differs from its items by a cent is rejected."""
    good = form(v1(items=[item("PROD-001", 2, "100.00"), item("PROD-002", 3, "29.99")]))
    assert rejected_reason(good) is None
    bad = dict(good)
    if "total_cents" in bad:
        bad["total_cents"] += 1
    else:
        bad["total_amount"] = 289.98
    assert rejected_reason(bad) == "total_mismatch"


@pytest.mark.parametrize("city", [None, ""])
def test_missing_city_is_a_quality_issue(city: str | None) -> None:
    """An order without a city is counted as a quality issue, not rejected."""
    parsed = order(shipping_address={"country": "US", "state": "CA", "city": city})
    assert quality_issues(parsed) == ["missing_city"]


def test_non_us_country_is_a_quality_issue() -> None:
    """An order shipped outside the US is flagged, together with a missing city."""
    parsed = order(shipping_address={"country": "CA", "state": "ON"})
    assert quality_issues(parsed) == ["missing_city", "non_us_country"]


def test_complete_us_order_has_no_quality_issue() -> None:
    """A US order with a city has no quality finding."""
    assert quality_issues(order()) == []


def enriched(status: str = "confirmed", *, revision: bool = False) -> dict[str, object]:
    parsed = order(
        items=[item("PROD-001", 2, "100.00"), item("PROD-002", 3, "29.99")], status=status
    )
    inventory = {"PROD-001": {"available_quantity": 7, "warehouse_location": "WH-NY"}}
    return enrich(parsed, SHOP, inventory, Rules(), revision=revision)


def test_enrich_adds_catalog_and_inventory_fields() -> None:
    """Each enriched item carries its category, brand, stock and warehouse (None if unknown)."""
    items = enriched()["items"]
    assert isinstance(items, list)
    first, second = items
    assert (first["category"], first["brand"]) == ("Electronics", "Voltix")
    assert (first["available_quantity"], first["warehouse"]) == (7, "WH-NY")
    assert (second["category"], second["brand"]) == ("Books", "ReadMore")
    assert (second["available_quantity"], second["warehouse"]) == (None, None)


def test_enrich_renders_money_as_decimal_strings() -> None:
    """Prices, line amounts and the total are exact decimal strings, never floats."""
    result = enriched()
    items = result["items"]
    assert isinstance(items, list)
    assert [(i["unit_price"], i["amount"]) for i in items] == [
        ("100.00", "200.00"),
        ("29.99", "89.97"),
    ]
    assert (result["total"], result["units"]) == ("289.97", 5)


def test_enrich_states_date_revenue_and_revision() -> None:
    """The enriched order says its UTC date, whether it counts as revenue and if it revises."""
    assert enriched()["date"] == "2025-08-01"
    assert enriched()["event_time"] == "2025-08-01T12:00:00Z"
    assert enriched("confirmed")["counts_as_revenue"] is True
    assert enriched("pending")["counts_as_revenue"] is False
    assert enriched(revision=True)["revision"] is True


@pytest.mark.parametrize(
    ("cents", "text"), [(95108, "951.08"), (5, "0.05"), (0, "0.00"), (-5, "-0.05"), (100, "1.00")]
)
def test_money_renders_cents_exactly(cents: int, text: str) -> None:
    """Cents are shown as a decimal string with exactly two places."""
    assert money(cents) == text
