"""New countries: a VPC talking to a country it never talked to, after it has been learned.

The rule and its reasons are in ``detect.py``. Entries are ``cc|<account>|<vpc>`` ->
``{"first": first window seen, "countries": [sorted country codes]}``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence

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
    rows = flows(window).select(VPC).group_by(VPC).aggregate([])
    return [key_of((PREFIX, *vpc.values())) for vpc in rows.to_pylist()]


def new_countries(
    window: pa.Table,
    window_start: int,
    seen: Mapping[str, object],
    settings: DetectorSettings,
    country_of: CountryOf = registered_countries,
) -> tuple[list[Alert], dict[str, object]]:
    """Alerts for countries new to a learned VPC, and the entries this window changed."""
    rows = flows(window)
    peers = _public_peers(rows)
    countries = _countries(peers, country_of)
    by_vpc: dict[tuple[str, str], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for peer in peers.to_pylist():
        country = countries.get(peer["peer"])
        if country:
            by_vpc[(peer["account_id"], peer["vpc_id"])][country].append(peer["peer"])
    alerts: list[Alert] = []
    updated: dict[str, object] = {}
    for vpc in rows.select(VPC).group_by(VPC).aggregate([]).to_pylist():
        account, vpc_id = vpc["account_id"], vpc["vpc_id"]
        key = key_of((PREFIX, account, vpc_id))
        first, known, stored = _entry(seen.get(key), window_start)
        found = by_vpc.get((account, vpc_id), {})
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


def _public_peers(rows: pa.Table) -> pa.Table:
    """Distinct public addresses at either end of accepted flows, per account and VPC.

    Rejected flows are left out: the internet's background probing of public
    addresses comes from everywhere and says nothing about what the VPC talks to.
    """
    rows = rows.filter(pc.equal(rows["action"], "ACCEPT"))
    ends = pa.concat_tables(
        [rows.select([*VPC, end]).rename_columns([*VPC, "peer"]) for end in ("srcaddr", "dstaddr")]
    )
    public = addresses_of_kind([ends["peer"]], "public")
    ends = ends.filter(pc.is_in(ends["peer"], value_set=public))
    return ends.group_by([*VPC, "peer"]).aggregate([]).sort_by([("peer", "ascending")])


def _countries(peers: pa.Table, country_of: CountryOf) -> dict[str, str | None]:
    """Each distinct address looked up once, in one call."""
    addresses = pc.unique(peers["peer"]).to_pylist()
    return dict(zip(addresses, country_of(addresses), strict=True))


def _entry(stored: object, window_start: int) -> tuple[int, set[str], bool]:
    """First window, known countries and whether the entry was usable; else a new VPC."""
    if isinstance(stored, Mapping):
        first, countries = stored.get("first"), stored.get("countries")
        if isinstance(first, int) and isinstance(countries, list):
            return first, {str(country) for country in countries}, True
    return window_start, set(), False


def _alert(
    account: str, vpc_id: str, country: str, peers: list[str], window_start: int, first: int
) -> Alert:
    return Alert(
        kind="new_country",
        account_id=account,
        vpc_id=vpc_id,
        subject=country,
        window_start=window_start,
        detail={
            "country": country,
            "peers": len(peers),
            "peer": peers[0],
            "vpc_first_seen": iso_time(first),
        },
    )
