"""Realistic AWS VPC flow logs: a seeded, pure generator of the gzipped objects that AWS
delivers to S3, with anomalies injected on request and their ground truth.

The estate (``flowlogs_topology``): two or more accounts with VPCs in several regions,
each with public and private subnets and a dozen or two interfaces (web servers, a
bastion, app servers, databases, a DNS server, idle interfaces), some with IPv6. Their
everyday traffic (``flowlogs_traffic``), one 5-minute window at a time: web clients
from the VPC's countries, app calls to SaaS, S3 and AWS endpoints, database queries,
DNS, NTP, admin SSH/RDP, pings, internet noise refused at the door, NODATA and
SKIPDATA records. Anomalies (``flowlogs_anomalies``) go on top.

Each VPC has one flow log, which delivers one object per 5-minute window, 10 minutes
after the window opens: its records start in the window and end by delivery, within
the 10-minute aggregation interval. Objects come out in delivery order, and the same
seed gives the same bytes under the same names.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

import numpy as np

from producers.flowlogs_anomalies import Injected, Kind, Plan, plan
from producers.flowlogs_records import Flows, records
from producers.flowlogs_render import Renderer, gzipped, object_key
from producers.flowlogs_topology import Vpc, build_estate
from producers.flowlogs_traffic import WINDOW, VpcTraffic
from streams.common.storage import open_filesystem, put_bytes

DELIVERY_DELAY = 2 * WINDOW  # the aggregation interval: an object names its delivery


@dataclass(frozen=True)
class Options:
    start: datetime  # rounded down to a 5-minute boundary
    hours: float = 24.0
    accounts: int = 2
    vpcs_per_account: int = 2
    flows_per_hour: float = 10_000.0  # records, all VPCs together, on a day's average
    format: Literal["v2", "v5", "mixed"] = "mixed"
    seed: int = 7
    port_scans: int = 0
    exfiltration: int = 0
    long_lived: int = 0
    new_country: int = 0

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise ValueError("start needs a timezone")
        if self.hours <= 0 or self.flows_per_hour <= 0:
            raise ValueError("hours and flows per hour must be positive")
        if self.accounts < 1 or self.vpcs_per_account < 1:
            raise ValueError("at least one account and one VPC per account")
        if min(self.port_scans, self.exfiltration, self.long_lived, self.new_country) < 0:
            raise ValueError("anomaly counts cannot be negative")

    @property
    def windows(self) -> list[int]:
        """Epoch seconds at which each 5-minute window of the span starts."""
        first = int(self.start.timestamp()) // WINDOW * WINDOW
        return [first + i * WINDOW for i in range(round(self.hours * 3600 / WINDOW))]

    @property
    def anomalies(self) -> dict[Kind, int]:
        return {
            "port_scan": self.port_scans,
            "exfiltration": self.exfiltration,
            "long_lived": self.long_lived,
            "new_country": self.new_country,
        }


@dataclass(frozen=True)
class GeneratedObject:
    key: str  # under AWS's layout, relative to the bucket or directory
    lines: list[str]  # the header first
    flows: int  # records (lines after the header)

    def body(self) -> bytes:
        return gzipped(self.lines)


@dataclass(frozen=True)
class Summary:
    objects: int
    flows: int
    gzipped_bytes: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.flows / self.seconds if self.seconds else 0.0


class Simulation:
    """The estate, its traffic model and its anomaly plan for one set of options."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.vpcs: list[Vpc] = build_estate(
            options.seed, options.accounts, options.vpcs_per_account, options.format
        )
        self.traffic = [VpcTraffic(v, options.seed, options.flows_per_hour) for v in self.vpcs]
        self.renderers = [Renderer(v) for v in self.vpcs]
        self.windows = options.windows
        self.plan: Plan = plan(self.traffic, options.anomalies, self.windows, options.seed)

    @property
    def truth(self) -> list[Injected]:
        return self.plan.truth

    def objects(self) -> Iterator[GeneratedObject]:
        """Every object of the span, in delivery order (windows, then VPCs)."""
        for n, window_start in enumerate(self.windows):
            for vpc in self.vpcs:
                generated = self.object(vpc.index, window_start, first=n == 0)
                if generated.flows:
                    yield generated

    def object(self, vpc: int, window_start: int, *, first: bool = False) -> GeneratedObject:
        rng = np.random.default_rng([self.options.seed, 4, vpc, window_start // WINDOW])
        parts = [self.traffic[vpc].window(window_start, rng, roll_call=first)]
        parts += [records(c) for c in self.plan.added.get((vpc, window_start), [])]
        flows = Flows.concat(parts)
        flows = flows.take(np.argsort(flows.start, kind="stable"))
        lines = self.renderers[vpc].lines(flows, window_start)
        key = object_key(self.vpcs[vpc], window_start + DELIVERY_DELAY, self.options.seed)
        return GeneratedObject(key, lines, len(flows))


def generate(options: Options) -> Iterator[GeneratedObject]:
    """The objects of ``options``' span, in delivery order (see :class:`Simulation`)."""
    return Simulation(options).objects()


def truth(options: Options) -> list[Injected]:
    """The anomalies ``generate(options)`` injects (planning only, no traffic)."""
    return Simulation(options).truth


def truth_json(options: Options, injected: list[Injected]) -> dict[str, Any]:
    settings = {**asdict(options), "start": options.start.isoformat()}
    return {"options": settings, "anomalies": [asdict(i) for i in injected]}


def write(
    options: Options,
    out_uri: str,
    progress: Callable[[Summary], None] | None = None,
    *,
    simulation: Simulation | None = None,
) -> Summary:
    """Write every object under ``out_uri`` (a directory or ``s3://bucket/prefix``);
    ``progress`` hears the running totals after each object."""
    filesystem, root = open_filesystem(out_uri)
    began = time.monotonic()
    objects = flows = size = 0
    for generated in (simulation or Simulation(options)).objects():
        body = generated.body()
        put_bytes(filesystem, f"{root}/{generated.key}", body)
        objects, flows, size = objects + 1, flows + generated.flows, size + len(body)
        if progress:
            progress(Summary(objects, flows, size, time.monotonic() - began))
    return Summary(objects, flows, size, time.monotonic() - began)
