"""New countries: a VPC talking to a country it never talked to, after it has been learned.

The rule and its reasons are in ``detect.py``. Entries are ``cc|<account>|<vpc>`` ->
``{"first": first window seen, "countries": [sorted country codes]}``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import iptocc
import pyarrow as pa
import pyarrow.compute as pc

from streams.flowlogs.detect_base import (
    VPC,
    WINDOW_SECONDS,
    Alert,
    DetectorSettings,
    addresses_of_kind,
    flows,
    iso_time,
    key_of,
)

PREFIX = "cc"
CountryOf = Callable[[Sequence[str]], Sequence[str | None]]


def registered_countries(addresses: Sequence[str]) -> list[str | None]:
    """The registered country of each address (iptocc's RIR data), None when unknown."""
    if not addresses:
        return []
    return list(iptocc.country_code(list(addresses)))


def country_keys(window: pa.Table) -> list[str]:
    """The entries ``new_countries`` reads: every account and VPC with flows."""
    return [country_key(*vpc) for vpc in _vpcs(flows(window))]


def country_key(account_id: str, vpc_id: str) -> str:
    return key_of((PREFIX, account_id, vpc_id))


def new_countries(
    window: pa.Table,
    window_start: int,
    seen: Mapping[str, object],
    settings: DetectorSettings,
    country_of: CountryOf = registered_countries,
) -> tuple[list[Alert], dict[str, object]]:
    """Alerts for countries new to a learned VPC, and the entries this window changed."""
    rows = flows(window)
    found = found_of(countries_found(rows, country_of).to_pylist())
    return countries_in(_vpcs(rows), found, window_start, seen, settings)


#: Per account and VPC, per country: its public peers in the window and the first of them.
Found = Mapping[tuple[str, str], Mapping[str, tuple[int, str]]]


def countries_in(
    vpcs: Sequence[tuple[str, str]],
    found_by_vpc: Found,
    window_start: int,
    seen: Mapping[str, object],
    settings: DetectorSettings,
) -> tuple[list[Alert], dict[str, object]]:
    """``new_countries`` of a window whose VPCs with flows (``vpcs``) and countries
    (``found_of(countries_found(...))``) were already found."""
    alerts: list[Alert] = []
    updated: dict[str, object] = {}
    for account, vpc_id in vpcs:
        key = country_key(account, vpc_id)
        first, known, stored = _entry(seen.get(key), window_start)
        found = found_by_vpc.get((account, vpc_id), {})
        fresh = sorted(set(found) - known)
        learned = window_start >= first + settings.country_learning_windows * WINDOW_SECONDS
        if learned:
            alerts += [
                _alert(account, vpc_id, country, found[country], window_start, first)
                for country in fresh
            ]
        if fresh or not stored:
            updated[key] = {"first": first, "countries": sorted(known | set(fresh))}
    return alerts, updated


def vpcs_of(rows: pa.Table, apart: Sequence[str] = ()) -> pa.Table:
    """The distinct accounts and VPCs of normalised flows, kept apart by ``apart``."""
    return rows.select([*apart, *VPC]).group_by([*apart, *VPC], use_threads=False).aggregate([])


def _vpcs(rows: pa.Table) -> list[tuple[str, str]]:
    return [(vpc["account_id"], vpc["vpc_id"]) for vpc in vpcs_of(rows).to_pylist()]


def countries_found(rows: pa.Table, country_of: CountryOf, apart: Sequence[str] = ()) -> pa.Table:
    """Per account and VPC (and ``apart``) and country: ``peers``, its distinct public
    addresses at either end of accepted flows, and ``peer``, the first of them in text
    order. Each distinct address is looked up once, in one call; unknown countries are
    left out.

    Rejected flows are left out: the internet's background probing of public
    addresses comes from everywhere and says nothing about what the VPC talks to.
    """
    keys = [*apart, *VPC]
    accepted = pc.equal(rows["action"], "ACCEPT")
    ends = pa.concat_tables(
        [
            rows.select([*keys, end]).filter(accepted).rename_columns([*keys, "peer"])
            for end in ("srcaddr", "dstaddr")
        ]
    )
    public = addresses_of_kind([ends["peer"]], "public")
    peers = ends.filter(pc.is_in(ends["peer"], value_set=public))
    peers = peers.group_by([*keys, "peer"], use_threads=False).aggregate([])
    codes = country_of(public.to_pylist())
    # "" is no country either: only a code counts.
    named = pa.array([code or None for code in codes], pa.string())
    country = pc.take(named, pc.index_in(peers["peer"], value_set=public))
    return (
        peers.append_column("country", country)
        .filter(pc.is_valid(country))
        .group_by([*keys, "country"], use_threads=False)
        .aggregate([("peer", "count"), ("peer", "min")])
        .rename_columns({"peer_count": "peers", "peer_min": "peer"})
    )


def found_of(
    rows: Iterable[Mapping[str, Any]],
) -> dict[tuple[str, str], dict[str, tuple[int, str]]]:
    """``countries_found``' rows (of one window) as ``countries_in`` reads them."""
    found: dict[tuple[str, str], dict[str, tuple[int, str]]] = defaultdict(dict)
    for row in rows:
        found[(row["account_id"], row["vpc_id"])][row["country"]] = (row["peers"], row["peer"])
    return found


def _entry(stored: object, window_start: int) -> tuple[int, set[str], bool]:
    """First window, known countries and whether the entry was usable; else a new VPC."""
    if isinstance(stored, Mapping):
        first, countries = stored.get("first"), stored.get("countries")
        if isinstance(first, int) and isinstance(countries, list):
            return first, {str(country) for country in countries}, True
    return window_start, set(), False


def _alert(
    account: str,
    vpc_id: str,
    country: str,
    peers: tuple[int, str],
    window_start: int,
    first: int,
) -> Alert:
    return Alert(
        kind="new_country",
        account_id=account,
        vpc_id=vpc_id,
        subject=country,
        window_start=window_start,
        detail={
            "country": country,
            "peers": peers[0],
            "peer": peers[1],
            "vpc_first_seen": iso_time(first),
        },
    )
