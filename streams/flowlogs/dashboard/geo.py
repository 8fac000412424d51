"""External addresses by registered country, for the dashboard's world map (pure).

External: neither private nor reserved, which is the detectors' "public"
(streams/flowlogs/detect_base.py: global unicast, outside RFC 1918, 100.64/10 and
fc00::/7). The country is the one a regional internet registry registered the address
to (iptocc's data, inside its wheel, offline): where the holder is, not where the host
stands. Plotly's choropleth names countries by ISO 3166-1 alpha-3 and iptocc by alpha-2;
countries.json beside this file maps one to the other (from Debian's iso-codes).

The count: a flow counts once in each country it touches, its flows and bytes once
there. A flow from 8.8.8.8 to 8.8.4.4 (both US) is one US flow, not two; a flow from
the US to Germany is one flow in each (so the countries' flows may add up to more than
the flows selected, never one country to more). ``addresses``: the distinct external
addresses of the country among the flows' ends. ``unplaced``: the external addresses
no country holds, and the flows with at least one of them as an end (once each).
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
class Ends:
    """Flows sharing their ends that may be external (one or two addresses; the others,
    private, left out): how many and their bytes."""

    addresses: tuple[str, ...]
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


def by_country(ends: Sequence[Ends], country_of: CountryOf = registered_countries) -> Countries:
    """The flows of ``ends`` summed per registered country, once per country they touch."""
    external = sorted({a for end in ends for a in end.addresses if is_external(a)})
    known = iso3_codes()
    code_of = {
        address: code if code in known else None
        for address, code in zip(external, country_of(external), strict=True)
    }
    totals: dict[str, list[int]] = {}
    addresses: dict[str, set[str]] = {}
    unplaced = 0
    for end in ends:
        codes = {code_of[a] for a in end.addresses if a in code_of}
        for code in codes - {None}:
            assert code is not None
            total = totals.setdefault(code, [0, 0])
            total[0] += end.flows
            total[1] += end.bytes
        unplaced += end.flows if None in codes else 0
    for address, code in code_of.items():
        addresses.setdefault(code or "", set()).add(address)
    rows = [
        Country(code, *known[code], addresses=len(addresses[code]), flows=f, bytes=b)
        for code, (f, b) in totals.items()
    ]
    rows.sort(key=lambda row: (-row.flows, row.iso3))
    return Countries(tuple(rows), len(addresses.get("", ())), unplaced)


@functools.cache
def iso3_codes() -> dict[str, tuple[str, str]]:
    """ISO 3166-1 alpha-2 -> (alpha-3, common name)."""
    table = json.loads((Path(__file__).with_name("countries.json")).read_text())
    return {iso2: (iso3, name) for iso2, (iso3, name) in table.items()}
