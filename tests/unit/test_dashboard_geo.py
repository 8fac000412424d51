"""Which addresses the world map counts, and where (geo.py)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from streams.flowlogs.dashboard.geo import Country, Ends, by_country, is_external, iso3_codes


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "81.2.69.160", "2003::1", "2607:f8b0::1", "::ffff:8.8.8.8", "1.1.1.1"],
)
def test_public_addresses_are_external(address: str) -> None:
    """Global unicast, IPv4 or IPv6 (an IPv4-mapped IPv6 address as its IPv4)."""
    assert is_external(address)


@pytest.mark.parametrize(
    "address",
    [
        "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.0.1",  # RFC 1918
        "100.64.0.1",  # shared space (carrier-grade NAT, a VPC CIDR AWS allows)
        "fd12:3456::1",  # IPv6 unique local
        "127.0.0.1", "169.254.169.254", "0.0.0.0", "255.255.255.255",  # reserved
        "192.0.2.1", "198.51.100.1", "2001:db8::1",  # documentation
        "224.0.0.1", "ff02::1",  # multicast
        "::1", "fe80::1",  # loopback, link local
        "-", "", "not an address", "999.1.1.1",
    ],
)  # fmt: skip
def test_private_reserved_and_garbage_are_not_external(address: str) -> None:
    """Only addresses a VPC reaches over the internet go on the map."""
    assert not is_external(address)


def test_flows_are_summed_once_per_country_they_touch() -> None:
    """Flows and bytes add up per country, each address counted once; a flow with two
    ends in one country counts once there, across two countries once in each; internal
    addresses are left out and unknown codes are counted apart."""
    codes = {"8.8.8.8": "US", "8.8.4.4": "US", "81.2.69.160": "GB", "5.5.5.5": None,
             "6.6.6.6": "EU"}  # fmt: skip

    def country_of(addresses: Sequence[str]) -> list[str | None]:
        return [codes[a] for a in addresses]

    ends = [
        Ends(("8.8.8.8",), 3, 300),
        Ends(("8.8.4.4",), 2, 50),
        Ends(("8.8.8.8", "8.8.4.4"), 10, 1000),  # both US: once
        Ends(("81.2.69.160", "8.8.8.8"), 7, 10),  # GB and US: once in each
        Ends(("10.0.0.1",), 100, 1000),
        Ends(("5.5.5.5",), 4, 4),
        Ends(("6.6.6.6", "5.5.5.5"), 1, 1),  # both unplaced: once
    ]
    countries = by_country(ends, country_of)
    assert countries.rows == (
        Country("US", "USA", "United States", addresses=2, flows=22, bytes=1360),
        Country("GB", "GBR", "United Kingdom", addresses=1, flows=7, bytes=10),
    )
    assert (countries.unplaced_addresses, countries.unplaced_flows) == (2, 5)


def test_the_real_registry_places_known_addresses() -> None:
    """iptocc's offline data, as shipped, places well-known blocks."""
    countries = by_country([Ends(("8.8.8.8",), 1, 1), Ends(("2003::1",), 2, 2)])
    assert [(c.iso3, c.flows) for c in countries.rows] == [("DEU", 2), ("USA", 1)]


def test_every_iso2_code_has_an_iso3_code() -> None:
    """The map's codes cover ISO 3166-1 (249 countries and territories)."""
    codes = iso3_codes()
    assert len(codes) == 249
    assert all(len(iso3) == 3 and iso3.isupper() for iso3, _ in codes.values())
    assert codes["KR"][0] == "KOR"
