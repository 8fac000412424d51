"""Everyday traffic of one VPC, one 5-minute window at a time, vectorised with numpy.

A VPC's traffic is a fixed list of streams (clients of a web server, an app querying
its database, every host's monitoring agent...). In each window a stream opens
``floor(rate + U)`` connections, ``U`` uniform in [0, 1): the count is never more than
one away from the rate, so a host's egress is steady (the exfiltration detector's
baseline): its daily swing is at most 30 % on web traffic, and every host's monitoring
agent, posting a fixed ~60 kB per window whatever the volume, keeps a floor under it.
The agents and the bastion's pings run at fixed rates; everything else shares the
requested volume.

Clean traffic is built not to look like the injected anomalies: a source uses few
destination ports, each connection lasts within its window, and an initiator's
ephemeral ports run on from a random point within the half of its range that the
window's parity selects, so no 5-tuple of one window recurs in the next.
"""

from __future__ import annotations

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
from producers.flowlogs_streams import KIND_NAMES, KINDS, Kind, build_streams
from producers.flowlogs_topology import LINUX_PORTS, WINDOWS_PORTS, Vpc

WINDOW = 300
_COLUMNS = {name: np.array([getattr(k, name) for k in KINDS.values()]) for name in Kind._fields}


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
