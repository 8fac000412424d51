"""Connections, and the flow-log records that the interfaces at their ends write.

A flow log records each direction of a connection separately, on every interface of
the VPC it passes: an exchange between two interfaces of one VPC is four records, one
with the internet two (request in, response out, or the reverse). A connection refused
by the responder's inbound rules leaves one REJECT record at the responder (and an
ACCEPT at the initiator's interface, whose outbound rules let the SYN out); one refused
by the initiator's outbound rules leaves a REJECT at the initiator only.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

TCP, UDP, ICMP = 6, 17, 1
OUTSIDE = -1  # an end that is no interface of the VPC
ACCEPTED, REFUSED_BY_RESPONDER, REFUSED_BY_INITIATOR = 0, 1, 2
OK, NODATA, SKIPDATA = 0, 1, 2
SERVICES = ("-", "AMAZON", "S3")  # pkt-src/dst-aws-service
SYN, FIN, RST, SYN_ACK = 2, 1, 4, 18
Array = npt.NDArray[Any]


@dataclass
class Connections:
    """Columns, one row per connection; times are epoch seconds."""

    init_eni: Array  # interface index, or OUTSIDE
    resp_eni: Array
    init_addr: Array  # str objects
    resp_addr: Array
    srcport: Array  # the initiator's port
    dstport: Array
    protocol: Array
    outcome: Array  # ACCEPTED, REFUSED_BY_RESPONDER, REFUSED_BY_INITIATOR
    request_packets: Array
    request_bytes: Array
    response_packets: Array
    response_bytes: Array
    start: Array
    end: Array
    request_flags: Array
    response_flags: Array
    path: Array  # traffic-path of what leaves an interface: 1 same VPC, 7 endpoint, 8 IGW
    service: Array  # index into SERVICES of the end outside the VPC
    v6: Array


@dataclass
class Flows:
    """Columns, one row per flow-log record; ``eni`` is the interface that logged it."""

    eni: Array
    src: Array
    dst: Array
    srcport: Array
    dstport: Array
    protocol: Array
    packets: Array
    bytes: Array
    start: Array
    end: Array
    accepted: Array
    tcp_flags: Array
    egress: Array
    path: Array  # 0 where the record has none (ingress)
    v6: Array
    src_service: Array
    dst_service: Array
    status: Array  # OK, NODATA, SKIPDATA

    def __len__(self) -> int:
        return len(self.eni)

    def take(self, rows: Array) -> Flows:
        return Flows(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})

    @staticmethod
    def concat(parts: list[Flows]) -> Flows:
        return Flows(
            **{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Flows)}
        )


def connections(**columns: Any) -> Connections:
    """Connections from lists or arrays (scalars are repeated), for hand-built traffic."""
    rows = max(len(v) for v in columns.values() if not np.isscalar(v))
    arrays = {
        name: np.full(rows, value, dtype=object if isinstance(value, str) else None)
        if np.isscalar(value)
        else np.asarray(value, dtype=object if name.endswith("_addr") else None)
        for name, value in columns.items()
    }
    return Connections(**arrays)


def records(c: Connections) -> Flows:
    """The records the interfaces at both ends of the connections write, see module doc."""
    inside_init, inside_resp = c.init_eni != OUTSIDE, c.resp_eni != OUTSIDE
    accepted = c.outcome == ACCEPTED
    reaches = c.outcome != REFUSED_BY_INITIATOR
    service_out_init = np.where(inside_init, 0, c.service)
    service_out_resp = np.where(inside_resp, 0, c.service)
    refused_flags = np.where(c.protocol == TCP, SYN, 0)
    parts = [
        # the request as the initiator sends it
        _flows(
            c,
            inside_init,
            eni=c.init_eni,
            forward=True,
            accepted=reaches,
            egress=True,
            flags=np.where(accepted, c.request_flags, refused_flags),
            services=(service_out_init, service_out_resp),
        ),
        # the response as the initiator receives it
        _flows(
            c,
            inside_init & accepted,
            eni=c.init_eni,
            forward=False,
            accepted=accepted,
            egress=False,
            flags=c.response_flags,
            services=(service_out_resp, service_out_init),
        ),
        # the request as the responder receives it
        _flows(
            c,
            inside_resp & reaches,
            eni=c.resp_eni,
            forward=True,
            accepted=accepted,
            egress=False,
            flags=np.where(accepted, c.request_flags, refused_flags),
            services=(service_out_init, service_out_resp),
        ),
        # the response as the responder sends it
        _flows(
            c,
            inside_resp & accepted,
            eni=c.resp_eni,
            forward=False,
            accepted=accepted,
            egress=True,
            flags=c.response_flags,
            services=(service_out_resp, service_out_init),
        ),
    ]
    return Flows.concat(parts)


def _flows(
    c: Connections,
    rows: Array,
    *,
    eni: Array,
    forward: bool,
    accepted: Array,
    egress: bool,
    flags: Array,
    services: tuple[Array, Array],
) -> Flows:
    src, dst = (c.init_addr, c.resp_addr) if forward else (c.resp_addr, c.init_addr)
    srcport, dstport = (c.srcport, c.dstport) if forward else (c.dstport, c.srcport)
    packets = c.request_packets if forward else c.response_packets
    size = c.request_bytes if forward else c.response_bytes
    n = int(rows.sum())
    return Flows(
        eni=eni[rows],
        src=src[rows],
        dst=dst[rows],
        srcport=srcport[rows],
        dstport=dstport[rows],
        protocol=c.protocol[rows],
        packets=packets[rows],
        bytes=size[rows],
        start=c.start[rows],
        end=c.end[rows],
        accepted=accepted[rows],
        tcp_flags=flags[rows],
        egress=np.full(n, egress),
        path=c.path[rows] if egress else np.zeros(n, dtype=np.int8),
        v6=c.v6[rows],
        src_service=services[0][rows],
        dst_service=services[1][rows],
        status=np.zeros(n, dtype=np.int8),
    )


def status_records(enis: list[int], starts: list[int], status: int) -> Flows:
    """NODATA or SKIPDATA records: an interface's interval with no traffic or lost records."""
    n = len(enis)
    zeros = np.zeros(n, dtype=np.int64)
    start = np.asarray(starts, dtype=np.int64)
    blank = np.full(n, "-", dtype=object)
    return Flows(
        eni=np.asarray(enis, dtype=np.int64),
        src=blank,
        dst=blank,
        srcport=zeros,
        dstport=zeros,
        protocol=zeros,
        packets=zeros,
        bytes=zeros,
        start=start,
        end=start + 60,
        accepted=np.zeros(n, dtype=bool),
        tcp_flags=zeros,
        egress=np.zeros(n, dtype=bool),
        path=zeros,
        v6=np.zeros(n, dtype=bool),
        src_service=zeros,
        dst_service=zeros,
        status=np.full(n, status, dtype=np.int8),
    )
