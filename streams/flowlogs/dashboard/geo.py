"""External addresses by registered country, for the dashboard's world map (pure).

External: neither private nor reserved, which is the detectors' "public"
(streams/flowlogs/detect_base.py: global unicast, outside RFC 1918, 100.64/10 and
fc00::/7). The country is the one a regional internet registry registered the address
to (iptocc's data, inside its wheel, offline): where the holder is, not where the host
stands. Plotly's choropleth names countries by ISO 3166-1 alpha-3 and iptocc by alpha-2;
countries.json beside this file maps one to the other (from Debian's iso-codes).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from streams.flowlogs.detect_base import address_kind
from streams.flowlogs.detect_countries import registered_countries

CountryOf = Callable[[Sequence[str]], Sequence[str | None]]


@dataclass(frozen=True)
class Endpoint:
    """One address as an end of the selected flows: flows and bytes it took part in."""

    address: str
    flows: int
    bytes: int


@dataclass(frozen=True)
class Country:
    iso2: str
    iso3: str
    name: str
    addresses: int
    flows: int
    bytes: int


@dataclass(frozen=True)
class Countries:
    """Per country, most flows first; ``unplaced``: external addresses with no country
    on the map (unregistered, or a registry code such as ``EU`` that names none)."""

    rows: tuple[Country, ...]
    unplaced_addresses: int = 0
    unplaced_flows: int = 0


def is_external(address: str) -> bool:
    return address_kind(address) == "public"


def by_country(
    endpoints: Sequence[Endpoint], country_of: CountryOf = registered_countries
) -> Countries:
    """The external ``endpoints`` summed per registered country."""
    external = [endpoint for endpoint in endpoints if is_external(endpoint.address)]
    codes = country_of([endpoint.address for endpoint in external])
    totals: dict[str, list[int]] = {}
    unplaced = [0, 0]
    for endpoint, code in zip(external, codes, strict=True):
        if code is None or code not in iso3_codes():
            unplaced[0] += 1
            unplaced[1] += endpoint.flows
            continue
        total = totals.setdefault(code, [0, 0, 0])
        total[0] += 1
        total[1] += endpoint.flows
        total[2] += endpoint.bytes
    rows = [
        Country(code, *iso3_codes()[code], addresses=a, flows=f, bytes=b)
        for code, (a, f, b) in totals.items()
    ]
    rows.sort(key=lambda row: (-row.flows, row.iso3))
    return Countries(tuple(rows), *unplaced)


@functools.cache
def iso3_codes() -> dict[str, tuple[str, str]]:
    """ISO 3166-1 alpha-2 -> (alpha-3, common name)."""
    table = json.loads((Path(__file__).with_name("countries.json")).read_text())
    return {iso2: (iso3, name) for iso2, (iso3, name) in table.items()}
