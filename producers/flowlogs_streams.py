"""The streams of a VPC's everyday traffic: what talks to what, on which ports, how
often and how much (the catalogue that ``flowlogs_traffic`` draws windows from).

Weights are connections per 5-minute window before the volume's scale. Every source
keeps to a few destination ports, so that only an injected scan touches hundreds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from producers.flowlogs_records import ICMP, OUTSIDE, TCP, UDP
from producers.flowlogs_topology import Vpc

NOISE_PORTS = (22, 23, 25, 80, 443, 445, 1433, 3306, 3389, 5432, 5900, 6379, 8080, 9200)


class Kind(NamedTuple):
    protocol: int
    request: tuple[float, float]  # mean payload bytes, lognormal sigma
    response: tuple[float, float]
    duration: float  # mean seconds
    diurnal: float  # amplitude of the daily swing, 0 for flat
    refused: float = 0.0
    by_initiator: bool = False  # refused by the initiator's outbound rules
    path: int = 8  # traffic-path when leaving: 8 internet gateway, 7 endpoint, 1 same VPC
    service: int = 0  # index into SERVICES of the end outside the VPC


KINDS: dict[str, Kind] = {
    "web": Kind(TCP, (900, 0.4), (30_000, 0.3), 4.0, 0.3),
    "noise": Kind(TCP, (60, 0.0), (60, 0.0), 0.0, 0.0, refused=1.0),
    "ping": Kind(ICMP, (84, 0.0), (84, 0.0), 2.0, 0.2, refused=0.5),
    "web_app": Kind(TCP, (1_200, 0.4), (15_000, 0.5), 1.0, 0.4, path=1),
    "agent": Kind(TCP, (60_000, 0.1), (1_500, 0.3), 1.0, 0.0, service=1),
    "https": Kind(TCP, (2_500, 0.4), (20_000, 0.8), 2.0, 0.3),
    "s3": Kind(TCP, (6_000, 0.4), (40_000, 0.6), 2.0, 0.3, path=7, service=2),
    "smtp": Kind(TCP, (60, 0.0), (60, 0.0), 0.0, 0.0, refused=1.0, by_initiator=True),
    "db": Kind(TCP, (600, 0.5), (8_000, 0.7), 0.5, 0.3, path=1),
    "dns": Kind(UDP, (70, 0.1), (160, 0.3), 0.0, 0.3, path=1),
    "dns_fwd": Kind(UDP, (70, 0.1), (160, 0.3), 0.0, 0.3),
    "ntp": Kind(UDP, (48, 0.0), (48, 0.0), 0.0, 0.0),
    "ssh_admin": Kind(TCP, (3_000, 0.5), (5_000, 0.5), 120.0, 0.6),
    "ssh_int": Kind(TCP, (2_000, 0.5), (4_000, 0.5), 60.0, 0.6, path=1),
    "rdp_admin": Kind(TCP, (4_000, 0.5), (8_000, 0.5), 150.0, 0.6),
    "ping_int": Kind(ICMP, (84, 0.0), (84, 0.0), 2.0, 0.0, path=1),
}
KIND_NAMES = tuple(KINDS)
Side = tuple[int, int, int]  # interface (or OUTSIDE), first address index, how many


@dataclass(frozen=True)
class Stream:
    kind: str
    init: Side
    resp: Side
    ports: tuple[int, ...]  # destination ports, one drawn per connection
    weight: float  # connections per window, before the volume's scale
    fixed: bool = False  # a fixed rate, not scaled with the volume
    v6: bool = False


def build_streams(vpc: Vpc, rng: np.random.Generator) -> list[Stream]:
    pools = vpc.pools
    live = [i for i, eni in enumerate(vpc.enis) if eni.role != "idle"]
    apps, dns = vpc.role("app"), vpc.role("dns")[0]

    def eni(i: int, v6: bool = False) -> Side:
        address = vpc.enis[i].ipv6 if v6 else vpc.enis[i].ipv4
        assert address is not None
        return (i, address, 1)

    def pool(name: str) -> Side:
        return (OUTSIDE, pools[name].first, pools[name].size)

    web_ports = (443,) * 6 + (80,)
    out: list[Stream] = []
    for i in vpc.role("web"):
        out.append(Stream("web", pool("clients"), eni(i), web_ports, 12))
        if vpc.enis[i].ipv6 is not None:
            out.append(Stream("web", pool("clients6"), eni(i, True), web_ports, 5, v6=True))
        out.append(Stream("ping", pool("clients"), eni(i), (0,), 0.3))
        for app in rng.choice(apps, size=min(2, len(apps)), replace=False).tolist():
            out.append(Stream("web_app", eni(i), eni(app), (8080,), 5))
    for i in vpc.role("web") + vpc.role("bastion") + vpc.role("rdp"):
        out.append(Stream("noise", pool("noise"), eni(i), NOISE_PORTS, 1.5))
    for i in vpc.role("bastion"):
        out.append(Stream("ssh_admin", pool("admins"), eni(i), (22,), 0.3))
        for j in live:
            if j != i:
                out.append(Stream("ssh_int", eni(i), eni(j), (22,), 0.04))
                out.append(Stream("ping_int", eni(i), eni(j), (0,), 0.03, fixed=True))
    for i in vpc.role("rdp"):
        out.append(Stream("rdp_admin", pool("admins"), eni(i), (3389,), 0.3))
    for i in apps:
        out.append(Stream("https", eni(i), pool("saas"), (443,), 5))
        if vpc.enis[i].ipv6 is not None:
            out.append(Stream("https", eni(i, True), pool("saas6"), (443,), 2, v6=True))
        out.append(Stream("s3", eni(i), pool("s3"), (443,), 1.5))
        out.append(Stream("smtp", eni(i), pool("saas"), (25,), 0.03))
        for n, db in enumerate(vpc.role("db")):
            out.append(Stream("db", eni(i), eni(db), ((5432,), (3306,))[n % 2], 6))
    out.append(Stream("dns_fwd", eni(dns), pool("resolvers"), (53,), 3))
    for i in live:
        out.append(Stream("agent", eni(i), pool("amazon"), (443,), 1, fixed=True))
        out.append(Stream("ntp", eni(i), pool("ntp"), (123,), 0.4))
        if i != dns:
            out.append(Stream("dns", eni(i), eni(dns), (53,), 4))
    return out
