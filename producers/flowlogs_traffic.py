"""Everyday traffic of one VPC, one 5-minute window at a time, vectorised with numpy.

A VPC's traffic is a fixed list of streams (clients of a web server, an app querying
its database, every host's monitoring agent...). In each window a stream opens
``floor(rate + U)`` connections, ``U`` uniform in [0, 1): the count is never more than
one away from the rate, so a host's egress is steady (the exfiltration detector's
baseline) with a daily swing of at most ~40 %. Monitoring agents post at a fixed rate;
everything else shares the requested volume.

Clean traffic is built not to look like the injected anomalies: a source uses few
destination ports, each connection lasts within its window, and an initiator's
ephemeral ports run on from a random point within the half of its range that the
window's parity selects, so no 5-tuple of one window recurs in the next.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from producers.flowlogs_records import (
    ICMP,
    NODATA,
    OUTSIDE,
    REFUSED_BY_INITIATOR,
    REFUSED_BY_RESPONDER,
    RST,
    SKIPDATA,
    SYN,
    SYN_ACK,
    TCP,
    UDP,
    Array,
    Connections,
    Flows,
    connections,
    records,
    status_records,
)
from producers.flowlogs_topology import LINUX_PORTS, WINDOWS_PORTS, Vpc

WINDOW = 300
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
_COLUMNS = {name: np.array([getattr(k, name) for k in KINDS.values()]) for name in Kind._fields}
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


class VpcTraffic:
    """The streams of one VPC, scaled to its share of ``flows_per_hour`` records."""

    def __init__(self, vpc: Vpc, seed: int, flows_per_hour: float) -> None:
        self.vpc = vpc
        streams = build_streams(vpc, np.random.default_rng([seed, 2, vpc.index]))
        self.streams = streams
        self.kind = np.array([KIND_NAMES.index(s.kind) for s in streams])
        self.weight = np.array([s.weight for s in streams])
        self.fixed = np.array([s.fixed for s in streams])
        self.init = np.array([s.init for s in streams], dtype=np.int64).reshape(-1, 3)
        self.resp = np.array([s.resp for s in streams], dtype=np.int64).reshape(-1, 3)
        self.v6 = np.array([s.v6 for s in streams])
        self.ports = np.array([p for s in streams for p in s.ports], dtype=np.int64)
        sizes = np.array([len(s.ports) for s in streams])
        self.ports_first = np.cumsum(sizes) - sizes
        self.ports_size = sizes
        self.addresses = np.array(vpc.addresses, dtype=object)
        windows = np.array(vpc.windows_os)
        self.port_first = np.where(windows, WINDOWS_PORTS[0], LINUX_PORTS[0])
        self.port_half = np.where(windows, WINDOWS_PORTS[1], LINUX_PORTS[1]) // 2
        per_connection = self._records_per_connection()
        wanted = flows_per_hour * vpc.share / (3600 / WINDOW)
        fixed = float((self.weight * per_connection)[self.fixed].sum())
        scaled = float((self.weight * per_connection)[~self.fixed].sum())
        self.scale = max(wanted - fixed, 0.0) / scaled

    def _records_per_connection(self) -> Array:
        refused = _COLUMNS["refused"][self.kind]
        accepted = 1 - refused
        reaches = np.where(_COLUMNS["by_initiator"][self.kind], accepted, 1.0)
        inside_init = self.init[:, 0] != OUTSIDE
        inside_resp = self.resp[:, 0] != OUTSIDE
        per_connection: Array = inside_init * (1 + accepted) + inside_resp * reaches * (
            1 + accepted
        )
        return per_connection

    def rates(self, window_start: int) -> Array:
        """Expected connections of each stream in the window starting at ``window_start``."""
        hour = ((window_start + WINDOW / 2) / 3600 + self.vpc.utc_offset) % 24
        swing = 1 + _COLUMNS["diurnal"][self.kind] * np.sin(2 * np.pi * (hour - 10) / 24)
        rates: Array = self.weight * np.where(self.fixed, 1.0, self.scale) * swing
        return rates

    def expected_egress(self, eni: int, window_start: int) -> float:
        """Bytes the interface is expected to send outside the VPC in a window."""
        kind, rates = self.kind, self.rates(window_start)
        protocol = _COLUMNS["protocol"][kind]
        request = _mean_bytes(protocol, _COLUMNS["request"][kind][:, 0])
        response = _mean_bytes(protocol, _COLUMNS["response"][kind][:, 0])
        accepted = 1 - _COLUMNS["refused"][kind]
        sends = (self.init[:, 0] == eni) & (self.resp[:, 0] == OUTSIDE)
        answers = (self.resp[:, 0] == eni) & (self.init[:, 0] == OUTSIDE)
        return float((rates * (sends * request + answers * accepted * response)).sum())

    def window(self, window_start: int, rng: np.random.Generator, *, roll_call: bool) -> Flows:
        """The VPC's records of the connections that start in this window."""
        rates = self.rates(window_start)
        stream = np.repeat(
            np.arange(len(rates)), np.floor(rates + rng.random(len(rates))).astype(int)
        )
        n = len(stream)
        init = self.init[stream, 1] + (rng.random(n) * self.init[stream, 2]).astype(np.int64)
        resp = self.resp[stream, 1] + (rng.random(n) * self.resp[stream, 2]).astype(np.int64)
        kind = self.kind[stream]
        column = {name: values[kind] for name, values in _COLUMNS.items()}
        protocol = column["protocol"]
        pick = (rng.random(n) * self.ports_size[stream]).astype(np.int64)
        dstport = self.ports[self.ports_first[stream] + pick]
        srcport = ephemeral_ports(init, self.port_first, self.port_half, window_start, rng)
        icmp = protocol == ICMP
        srcport[icmp] = dstport[icmp] = 0
        refused = rng.random(n) < column["refused"]
        by_initiator = np.where(column["by_initiator"], REFUSED_BY_INITIATOR, REFUSED_BY_RESPONDER)
        outcome = np.where(refused, by_initiator, 0)
        request = sizes(rng, protocol, column["request"][:, 0], column["request"][:, 1])
        response = sizes(rng, protocol, column["response"][:, 0], column["response"][:, 1])
        response = (
            np.where(icmp, request[0], response[0]),
            np.where(icmp, request[1], response[1]),
        )
        # A refused SYN is retried once or twice before the client gives up.
        tries = rng.integers(1, 4, n)
        refused_size = np.where(protocol == TCP, 60, np.where(protocol == UDP, request[1], 84))
        request_packets = np.where(refused, tries, request[0])
        request_bytes = np.where(refused, tries * refused_size, request[1])
        start = window_start + rng.integers(0, WINDOW, n)
        lasting = np.minimum(rng.exponential(column["duration"]).astype(np.int64), WINDOW - 1)
        end = start + np.where(refused, (tries - 1) * 3, lasting)
        reset = rng.random(n) < 0.04
        tcp = protocol == TCP
        opened = Connections(
            init_eni=self.init[stream, 0],
            resp_eni=self.resp[stream, 0],
            init_addr=self.addresses[init],
            resp_addr=self.addresses[resp],
            srcport=srcport,
            dstport=dstport,
            protocol=protocol,
            outcome=outcome,
            request_packets=request_packets,
            request_bytes=request_bytes,
            response_packets=response[0],
            response_bytes=response[1],
            start=start,
            end=end,
            request_flags=np.where(tcp, np.where(reset, SYN | RST, SYN | 1), 0),
            response_flags=np.where(tcp, np.where(reset, SYN_ACK, SYN_ACK | 1), 0),
            path=column["path"],
            service=column["service"],
            v6=self.v6[stream],
        )
        parts = [records(opened)]
        if roll_call:
            parts.append(self._roll_call(window_start, rng))
        flows = Flows.concat(parts)
        return Flows.concat([flows, self._status(flows, window_start, rng)])

    def _roll_call(self, window_start: int, rng: np.random.Generator) -> Flows:
        """Pings to the web servers from a client in each of the VPC's countries, so that
        every country it ever talks to appears in its first window, whatever the volume."""
        clients, webs = self.vpc.pools["clients"], self.vpc.role("web")
        n = len(self.vpc.countries)
        target = [webs[i % len(webs)] for i in range(n)]
        packets = rng.integers(1, 5, n)
        start = window_start + rng.integers(0, WINDOW - 10, n)
        pings = connections(
            init_eni=OUTSIDE,
            resp_eni=target,
            init_addr=[self.vpc.addresses[i] for i in clients.by_country],
            resp_addr=[self.vpc.addresses[self.vpc.enis[t].ipv4] for t in target],
            srcport=0,
            dstport=0,
            protocol=ICMP,
            outcome=0,
            request_packets=packets,
            request_bytes=84 * packets,
            response_packets=packets,
            response_bytes=84 * packets,
            start=start,
            end=start + packets - 1,
            request_flags=0,
            response_flags=0,
            path=8,
            service=0,
            v6=False,
        )
        return records(pings)

    def _status(self, flows: Flows, window_start: int, rng: np.random.Generator) -> Flows:
        """NODATA for most interfaces without traffic; now and then a SKIPDATA."""
        enis = len(self.vpc.enis)
        quiet = np.flatnonzero(np.bincount(flows.eni, minlength=enis) == 0)
        quiet = quiet[rng.random(len(quiet)) < 0.7]
        parts = [_at(quiet.tolist(), window_start, rng, NODATA)]
        if rng.random() < 0.02:
            parts.append(_at([int(rng.integers(enis))], window_start, rng, SKIPDATA))
        return Flows.concat(parts)


def _at(enis: list[int], window_start: int, rng: np.random.Generator, status: int) -> Flows:
    starts = (window_start + rng.integers(0, WINDOW - 60, len(enis))).tolist()
    return status_records(enis, starts, status)


def sizes(
    rng: np.random.Generator, protocol: Array, mean: Array, sigma: Array
) -> tuple[Array, Array]:
    """Packets and bytes (headers included) for lognormal payloads of the given mean."""
    drawn = rng.lognormal(np.log(mean) - sigma**2 / 2, sigma)
    tcp, udp = protocol == TCP, protocol == UDP
    # TCP: the handshake and FIN add two packets; ICMP: an echo of 1-4 pings.
    packets = np.where(
        tcp,
        2 + np.ceil(drawn / 1448),
        np.where(udp, np.ceil(drawn / 1472), rng.integers(1, 5, len(drawn))),
    ).astype(np.int64)
    header = np.where(tcp, 52, 28)
    size = np.where(protocol == ICMP, 84 * packets, drawn.astype(np.int64) + header * packets)
    return packets, size


def _mean_bytes(protocol: Array, payload: Array) -> Array:
    """Mean bytes of a record with this mean payload, headers included (see sizes)."""
    tcp = payload + 52 * (2.5 + payload / 1448)
    return np.where(protocol == TCP, tcp, np.where(protocol == UDP, payload + 28, 210.0))


def ephemeral_ports(
    init: Array, first: Array, half: Array, window_start: int, rng: np.random.Generator
) -> Array:
    """Source ports: per initiator, consecutive from a random point of the half of its
    ephemeral range that the window's parity picks (so no port repeats next window)."""
    n = len(init)
    order = np.argsort(init, kind="stable")
    grouped = init[order]
    new = np.ones(n, dtype=bool)
    new[1:] = grouped[1:] != grouped[:-1]
    group = np.cumsum(new) - 1
    rank = np.arange(n) - np.flatnonzero(new)[group]
    offset = rng.integers(0, 1 << 30, int(new.sum()))[group]
    parity = (window_start // WINDOW) % 2
    h = half[grouped]
    ports = np.empty(n, dtype=np.int64)
    ports[order] = first[grouped] + parity * h + (offset + rank) % h
    return ports


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
                out.append(Stream("ping_int", eni(i), eni(j), (0,), 0.05, fixed=True))
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
