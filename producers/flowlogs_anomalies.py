"""Anomalies injected on request, planned up front and written down as ground truth.

Each is a handful of connections added to chosen windows of one VPC, on top of its
everyday traffic. The public addresses they involve are fresh, but (except for the
new-country anomaly, whose whole point is a new country) come from countries the VPC
already talks to, so one anomaly never sets off another kind's detector.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from producers.flowlogs_records import (
    ACCEPTED,
    FIN,
    OUTSIDE,
    REFUSED_BY_INITIATOR,
    REFUSED_BY_RESPONDER,
    RST,
    SYN,
    SYN_ACK,
    TCP,
    Connections,
    connections,
)
from producers.flowlogs_topology import COUNTRY_BLOCKS, LINUX_PORTS, Role, Vpc, public_address
from producers.flowlogs_traffic import WINDOW, VpcTraffic

Kind = Literal["port_scan", "exfiltration", "long_lived", "new_country"]
BASELINE = 6 * 3600 // WINDOW  # windows of normal traffic before an exfiltration or new country
LONG_LIVED = (24, 48)  # windows: 2 to 4 hours
# The fewest windows a span needs for each kind, and how to say it.
NEEDS: dict[Kind, tuple[int, str]] = {
    "port_scan": (1, "a window"),
    "exfiltration": (BASELINE + 1, "more than 6 hours"),
    "long_lived": (LONG_LIVED[0], "at least 2 hours"),
    "new_country": (BASELINE + 1, "more than 6 hours"),
}
LISTENING: dict[Role, frozenset[int]] = {
    "web": frozenset({80, 443}),
    "bastion": frozenset({22}),
    "rdp": frozenset({3389}),
    "app": frozenset({8080}),
    "db": frozenset({3306, 5432}),
    "dns": frozenset({53}),
    "idle": frozenset(),
}
OPEN_TO_INTERNET = frozenset({80, 443})  # the web servers' security group
SCANNER_EGRESS = frozenset({22, 53, 80, 123, 443, 3306, 5432, 8080})  # a hardened host's


@dataclass(frozen=True)
class Injected:
    """One injected anomaly: what a detector should report, and where and when.

    ``subject`` is the address to alert on (the scanner, the exfiltrating host, the
    long-lived connection's initiator, the new country's address); ``interface_id`` the
    interface that logged it (a scan's first target when the scanner is outside).
    """

    kind: Kind
    account_id: str
    vpc_id: str
    flow_log_id: str
    format: str
    interface_id: str
    subject: str
    peer: str | None
    window_start: int  # epoch seconds of its first 5-minute window
    windows: int  # consecutive windows it spans
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Plan:
    truth: list[Injected] = field(default_factory=list)
    # (VPC index, window start) -> connections added to that window
    added: dict[tuple[int, int], list[Connections]] = field(default_factory=dict)

    def add(self, vpc: int, window_start: int, conns: Connections) -> None:
        self.added.setdefault((vpc, window_start), []).append(conns)


def plan(traffic: list[VpcTraffic], counts: dict[Kind, int], windows: list[int], seed: int) -> Plan:
    """Where and when each requested anomaly goes, and its connections."""
    rng = np.random.default_rng([seed, 3])
    out = Plan()
    used: set[tuple[int, int]] = set()  # (VPC, interface) already given an anomaly
    for kind, count in counts.items():
        if count and len(windows) < NEEDS[kind][0]:
            raise ValueError(f"{kind.replace('_', '-')} needs {NEEDS[kind][1]} of traffic")
        first_vpc = int(rng.integers(len(traffic)))
        for n in range(count):
            model = traffic[(first_vpc + n) % len(traffic)]
            host = _host(model.vpc, rng, used)
            if kind == "port_scan":
                _port_scan(out, model, rng, windows[int(rng.integers(len(windows)))], host)
            elif kind == "exfiltration":
                at = int(rng.integers(BASELINE, len(windows)))
                _exfiltration(out, model, rng, windows, at, host)
            elif kind == "long_lived":
                length = int(rng.integers(LONG_LIVED[0], min(LONG_LIVED[1], len(windows)) + 1))
                at = int(rng.integers(0, len(windows) - length + 1))
                _long_lived(out, model, rng, windows[at : at + length], host)
            else:
                at = int(rng.integers(BASELINE, len(windows)))
                _new_country(out, model, rng, windows[at])
    return out


def _host(vpc: Vpc, rng: np.random.Generator, used: set[tuple[int, int]]) -> int:
    apps = vpc.role("app")
    fresh = [i for i in apps if (vpc.index, i) not in used] or apps
    host = int(rng.choice(fresh))
    used.add((vpc.index, host))
    return host


def _truth(vpc: Vpc, kind: Kind, interface: int, **fields: Any) -> Injected:
    return Injected(
        kind=kind,
        account_id=vpc.account_id,
        vpc_id=vpc.vpc_id,
        flow_log_id=vpc.flow_log_id,
        format=vpc.format,
        interface_id=vpc.enis[interface].eni_id,
        **fields,
    )


def _known_address(vpc: Vpc, rng: np.random.Generator) -> str:
    return public_address(rng, str(rng.choice(vpc.countries)))


def _port(rng: np.random.Generator, window_start: int) -> int:
    """An ephemeral port from the half of the Linux range that traffic uses this window."""
    half = LINUX_PORTS[1] // 2
    return LINUX_PORTS[0] + (window_start // WINDOW) % 2 * half + int(rng.integers(half))


def _port_scan(out: Plan, model: VpcTraffic, rng: np.random.Generator, w: int, host: int) -> None:
    """A SYN scan of 200-400 ports on one to three interfaces, within one window."""
    vpc = model.vpc
    internal = bool(rng.random() < 0.4)
    facing = vpc.role("web") + vpc.role("bastion") + vpc.role("rdp")
    live = [i for i, e in enumerate(vpc.enis) if e.role != "idle" and i != host]
    pool = live if internal else facing
    targets = rng.choice(pool, size=int(rng.integers(1, min(3, len(pool)) + 1)), replace=False)
    drawn = rng.choice(np.arange(1, 10_001), int(rng.integers(200, 401)), replace=False)
    ports = np.union1d(drawn, sorted(SCANNER_EGRESS | {3389, 8443}))
    target = np.repeat(targets, len(ports))
    port = np.tile(ports, len(targets))
    scanner = vpc.addresses[vpc.enis[host].ipv4] if internal else _known_address(vpc, rng)
    listening = [
        p in LISTENING[vpc.enis[t].role] and (internal or p in OPEN_TO_INTERNET)
        for t, p in zip(target.tolist(), port.tolist(), strict=True)
    ]
    allowed = [not internal or p in SCANNER_EGRESS for p in port.tolist()]
    outcome = np.where(
        allowed, np.where(listening, ACCEPTED, REFUSED_BY_RESPONDER), REFUSED_BY_INITIATOR
    )
    n = len(port)
    burst = int(rng.integers(20, 120))
    start = w + int(rng.integers(0, WINDOW - burst)) + np.sort(rng.integers(0, burst, n))
    tries = np.where(outcome == ACCEPTED, 1, rng.integers(1, 3, n))
    conns = connections(
        init_eni=host if internal else OUTSIDE,
        resp_eni=target,
        init_addr=scanner,
        resp_addr=[vpc.addresses[vpc.enis[t].ipv4] for t in target.tolist()],
        srcport=_port(rng, w),  # a SYN scanner sends every probe from one port
        dstport=port,
        protocol=TCP,
        outcome=outcome,
        request_packets=tries,
        request_bytes=44 * tries,
        response_packets=1,
        response_bytes=44,
        start=start,
        end=start + tries - 1,
        request_flags=SYN | RST,
        response_flags=SYN_ACK,
        path=1 if internal else 8,
        service=0,
        v6=False,
    )
    out.add(vpc.index, w, conns)
    truth = _truth(
        vpc,
        "port_scan",
        host if internal else int(targets[0]),
        subject=scanner,
        peer=None,
        window_start=w,
        windows=1,
        detail={
            "internal": internal,
            "ports": len(ports),
            "targets": [vpc.addresses[vpc.enis[t].ipv4] for t in targets.tolist()],
        },
    )
    out.truth.append(truth)


def _exfiltration(
    out: Plan,
    model: VpcTraffic,
    rng: np.random.Generator,
    windows: list[int],
    at: int,
    host: int,
) -> None:
    """50-100x the host's usual egress to one address, in one or two windows."""
    vpc = model.vpc
    # The usual egress over the whole span (its median) with a margin for the day's swing.
    usual = 1.15 * float(np.median([model.expected_egress(host, w) for w in windows]))
    factor = float(rng.uniform(50, 85))
    span = windows[at : at + (2 if rng.random() < 0.4 else 1)]
    source, peer = vpc.addresses[vpc.enis[host].ipv4], _known_address(vpc, rng)
    for w in span:
        n = int(rng.integers(4, 13))
        payload = (rng.dirichlet(np.ones(n)) * factor * usual).astype(np.int64)
        packets = 2 + np.ceil(payload / 1448).astype(np.int64)
        start = w + np.sort(rng.integers(0, WINDOW - 10, n))
        acks = packets // 2 + 1
        conns = connections(
            init_eni=host,
            resp_eni=OUTSIDE,
            init_addr=source,
            resp_addr=peer,
            srcport=_port(rng, w) + np.arange(n),
            dstport=443,
            protocol=TCP,
            outcome=ACCEPTED,
            request_packets=packets,
            request_bytes=payload + 52 * packets,
            response_packets=acks,
            response_bytes=52 * acks + 600,
            start=start,
            end=np.minimum(start + rng.integers(20, 240, n), w + 2 * WINDOW - 1),
            request_flags=SYN | FIN,
            response_flags=SYN_ACK | FIN,
            path=8,
            service=0,
            v6=False,
        )
        out.add(vpc.index, w, conns)
    detail = {"factor": round(factor, 1), "usual_bytes": int(usual / 1.15)}
    out.truth.append(
        _truth(
            vpc,
            "exfiltration",
            host,
            subject=source,
            peer=peer,
            window_start=span[0],
            windows=len(span),
            detail=detail,
        )
    )


def _long_lived(
    out: Plan, model: VpcTraffic, rng: np.random.Generator, span: list[int], host: int
) -> None:
    """One connection, one 5-tuple, carrying a trickle in every window for 2-4 hours."""
    vpc = model.vpc
    source, peer = vpc.addresses[vpc.enis[host].ipv4], _known_address(vpc, rng)
    srcport, dstport = _port(rng, span[0]), int(rng.choice([443, 8443, 4444, 22]))
    for n, w in enumerate(span):
        packets = rng.integers(10, 40, 2)
        flags = (SYN, SYN_ACK) if n == 0 else (FIN, FIN) if n == len(span) - 1 else (0, 0)
        conns = connections(
            init_eni=[host],
            resp_eni=OUTSIDE,
            init_addr=source,
            resp_addr=peer,
            srcport=srcport,
            dstport=dstport,
            protocol=TCP,
            outcome=ACCEPTED,
            request_packets=packets[:1],
            request_bytes=packets[:1] * 52 + rng.integers(200, 2000, 1),
            response_packets=packets[1:],
            response_bytes=packets[1:] * 52 + rng.integers(200, 2000, 1),
            start=w + rng.integers(0, 3, 1),
            end=w + WINDOW - 1 - rng.integers(0, 3, 1),
            request_flags=flags[0],
            response_flags=flags[1],
            path=8,
            service=0,
            v6=False,
        )
        out.add(vpc.index, w, conns)
    out.truth.append(
        _truth(
            vpc,
            "long_lived",
            host,
            subject=source,
            peer=peer,
            window_start=span[0],
            windows=len(span),
            detail={"srcport": srcport, "dstport": dstport, "protocol": TCP},
        )
    )


def _new_country(out: Plan, model: VpcTraffic, rng: np.random.Generator, w: int) -> None:
    """A login to the bastion, or an app's calls, from a country the VPC never talked to."""
    vpc = model.vpc
    country = str(rng.choice([c for c in COUNTRY_BLOCKS if c not in vpc.countries]))
    stranger = public_address(rng, country)
    inbound = bool(rng.random() < 0.5)
    local = vpc.role("bastion")[0] if inbound else int(rng.choice(vpc.role("app")))
    here = vpc.addresses[vpc.enis[local].ipv4]
    n = int(rng.integers(1, 4))
    start = w + np.sort(rng.integers(0, WINDOW, n))
    packets = rng.integers(8, 40, n)
    conns = connections(
        init_eni=OUTSIDE if inbound else local,
        resp_eni=local if inbound else OUTSIDE,
        init_addr=stranger if inbound else here,
        resp_addr=here if inbound else stranger,
        srcport=_port(rng, w) + np.arange(n),
        dstport=22 if inbound else 443,
        protocol=TCP,
        outcome=ACCEPTED,
        request_packets=packets,
        request_bytes=packets * 52 + rng.integers(500, 3000, n),
        response_packets=packets,
        response_bytes=packets * 52 + rng.integers(1000, 6000, n),
        start=start,
        end=start + rng.integers(1, 90, n),
        request_flags=SYN | FIN,
        response_flags=SYN_ACK | FIN,
        path=8,
        service=0,
        v6=False,
    )
    out.add(vpc.index, w, conns)
    out.truth.append(
        _truth(
            vpc,
            "new_country",
            local,
            subject=stranger,
            peer=here,
            window_start=w,
            windows=1,
            detail={"country": country, "direction": "inbound" if inbound else "outbound"},
        )
    )
