from __future__ import annotations

import pytest

from streams.orders.models import CatalogEntry
from tests.unit.factories import bundled_catalog


@pytest.fixture(scope="session")
def catalog() -> dict[str, CatalogEntry]:
    """The bundled catalog (PROD-001..PROD-050) as the pipeline holds it."""
    return bundled_catalog()
