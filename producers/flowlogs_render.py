"""Flow-log records as AWS writes them: text lines under a header, gzipped objects under
AWS's key layout.

Rendering is the generator's hot loop (10 million lines for a benchmark), so numbers
come from lookup tables and the fields that vary together (an interface's identity,
the action with its flags) are looked up as one string per record.
"""

from __future__ import annotations

import gzip
import hashlib
from datetime import UTC, datetime
from functools import cache

import numpy as np

from producers.flowlogs_records import OK, SERVICES, Array, Flows
from producers.flowlogs_topology import Format, Vpc

V2_FIELDS = (
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes "
    "start end action log-status"
)
# A custom format: another order than v2's, with fields of versions 3 to 5.
V5_FIELDS = (
    "version vpc-id subnet-id instance-id interface-id account-id type srcaddr dstaddr "
    "srcport dstport pkt-srcaddr pkt-dstaddr protocol bytes packets start end action "
    "tcp-flags log-status region az-id flow-direction traffic-path pkt-src-aws-service "
    "pkt-dst-aws-service"
)
HEADERS: dict[Format, str] = {"v2": V2_FIELDS, "v5": V5_FIELDS}
STATUS_TEXT = ("OK", "NODATA", "SKIPDATA")
# Level 3 compresses ~2.5x faster than the default 6 for ~30 % more bytes: gzip is most
# of the generator's time when it writes a 10-million-record benchmark day.
GZIP_LEVEL = 3
_PATHS = 9  # traffic-path 1..8, 0 for none
_FLAGS = 64


@cache
def _numbers() -> Array:
    return np.array([str(i) for i in range(65536)], dtype=object)


def _text(values: Array) -> list[str]:
    if len(values) and values.min() >= 0 and values.max() < 65536:
        return list(_numbers()[values])
    return list(map(str, values.tolist()))


class Renderer:
    """Lines of one VPC's flow log, in its format."""

    def __init__(self, vpc: Vpc) -> None:
        self.vpc = vpc
        self.format = vpc.format
        self.header = HEADERS[vpc.format]
        if vpc.format == "v2":
            self.interface = np.array(
                [f"2 {vpc.account_id} {eni.eni_id}" for eni in vpc.enis], dtype=object
            )
            self.verdict = np.array(["REJECT OK", "ACCEPT OK"], dtype=object)
            return
        # v5: (interface, IPv6) and (accepted, tcp-flags) and (direction, path, services)
        self.interface = np.array(
            [
                f"5 {vpc.vpc_id} {eni.subnet_id} {eni.instance_id} {eni.eni_id} "
                f"{vpc.account_id} {kind}"
                for eni in vpc.enis
                for kind in ("IPv4", "IPv6")
            ],
            dtype=object,
        )
        self.verdict = np.array(
            [f"{a} {f} OK" for f in range(_FLAGS) for a in ("REJECT", "ACCEPT")], dtype=object
        )
        self.place = np.array([f"{vpc.region} {eni.az_id}" for eni in vpc.enis], dtype=object)
        self.route = np.array(
            [
                f"{d} {p or '-'} {s} {t}"
                for s in SERVICES
                for t in SERVICES
                for p in range(_PATHS)
                for d in ("ingress", "egress")
            ],
            dtype=object,
        )

    def lines(self, flows: Flows, window_start: int) -> list[str]:
        """The header and one line per record, in the given order."""
        times = np.array([str(window_start + s) for s in range(601)], dtype=object)
        start_at, end_at = flows.start - window_start, flows.end - window_start
        if len(flows) and (start_at.min() < 0 or end_at.max() > 600):
            raise ValueError("a record outside its 10-minute aggregation interval")
        accepted = flows.accepted.astype(np.int64)
        if self.format == "v2":
            columns = [
                self.interface[flows.eni],
                flows.src,
                flows.dst,
                _text(flows.srcport),
                _text(flows.dstport),
                _text(flows.protocol),
                _text(flows.packets),
                _text(flows.bytes),
                times[start_at],
                times[end_at],
                self.verdict[accepted],
            ]
        else:
            route = (
                flows.egress.astype(np.int64)
                + 2 * flows.path
                + 2 * _PATHS * (flows.dst_service + len(SERVICES) * flows.src_service)
            )
            columns = [
                self.interface[2 * flows.eni + flows.v6],
                flows.src,
                flows.dst,
                _text(flows.srcport),
                _text(flows.dstport),
                flows.src,
                flows.dst,
                _text(flows.protocol),
                _text(flows.bytes),
                _text(flows.packets),
                times[start_at],
                times[end_at],
                self.verdict[accepted + 2 * flows.tcp_flags],
                self.place[flows.eni],
                self.route[route],
            ]
        out = [self.header, *map(" ".join, zip(*columns, strict=True))]
        for row in np.flatnonzero(flows.status != OK).tolist():
            out[1 + row] = self._status_line(flows, row)
        return out

    def _status_line(self, flows: Flows, row: int) -> str:
        """NODATA and SKIPDATA: the interface and interval, ``-`` for every traffic field."""
        eni = self.vpc.enis[int(flows.eni[row])]
        start, end = int(flows.start[row]), int(flows.end[row])
        status = STATUS_TEXT[int(flows.status[row])]
        if self.format == "v2":
            return f"2 {self.vpc.account_id} {eni.eni_id} {'- ' * 7}{start} {end} - {status}"
        return (
            f"5 {self.vpc.vpc_id} {eni.subnet_id} {eni.instance_id} {eni.eni_id} "
            f"{self.vpc.account_id} {'- ' * 10}{start} {end} - - {status} "
            f"{self.vpc.region} {eni.az_id} - - - -"
        )


def object_key(vpc: Vpc, delivered: int, seed: int) -> str:
    """AWS's key of the object delivered at epoch ``delivered``, with a stable hash."""
    when = datetime.fromtimestamp(delivered, UTC)
    stamp = f"{when:%Y%m%dT%H%MZ}"
    digest = hashlib.blake2b(
        f"{seed}/{vpc.flow_log_id}/{stamp}".encode(), digest_size=4
    ).hexdigest()
    name = f"{vpc.account_id}_vpcflowlogs_{vpc.region}_{vpc.flow_log_id}_{stamp}_{digest}"
    return f"AWSLogs/{vpc.account_id}/vpcflowlogs/{vpc.region}/{when:%Y/%m/%d}/{name}.log.gz"


def gzipped(lines: list[str]) -> bytes:
    """The object's bytes; mtime 0 keeps them identical from run to run."""
    text = "\n".join(lines) + "\n"
    return gzip.compress(text.encode(), compresslevel=GZIP_LEVEL, mtime=0)
