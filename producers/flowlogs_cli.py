"""``python -m producers flowlogs``: a span of AWS VPC flow logs written as AWS delivers
them, to a directory or through the S3 API (``--out s3://bucket/prefix``, endpoint and
region from ``AWS_ENDPOINT_URL`` and ``AWS_REGION``), with anomalies on request.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from producers.arguments import instant
from producers.flowlogs import Options, Simulation, Summary, truth_json, write

ANOMALIES = {
    "port_scans": "sources probing 200+ ports of a VPC's hosts within 5 minutes",
    "exfiltration": "hosts sending 50-100x their usual egress to one address (after 6 h)",
    "long_lived": "5-tuples present in every window for 2-4 hours",
    "new_country": "peers from a country the VPC never talked to (after 6 h)",
}


def add_parser(sub: Any) -> None:
    """Add the ``flowlogs`` subcommand to the producers' subparsers."""
    parser = sub.add_parser("flowlogs", help="write a span of AWS VPC flow logs (gzipped)")
    parser.add_argument(
        "--out",
        default="var/flowlogs",
        help="directory or s3://bucket/prefix (default: %(default)s)",
    )
    parser.add_argument("--hours", type=_positive_float, default=24.0)
    parser.add_argument(
        "--start", type=instant, help="ISO 8601 (default: the last full span before now)"
    )
    parser.add_argument("--accounts", type=_positive, default=2)
    parser.add_argument("--vpcs-per-account", type=_positive, default=2)
    parser.add_argument(
        "--flows-per-hour",
        type=_positive_float,
        default=10_000.0,
        help="records per hour, all VPCs together (default: %(default)g)",
    )
    parser.add_argument(
        "--format",
        choices=("v2", "v5", "mixed"),
        default="mixed",
        help="v2: AWS's default format; v5: a custom one with v3-v5 fields; mixed: "
        "VPCs alternate (default)",
    )
    parser.add_argument("--seed", type=int, default=7)
    for name, what in ANOMALIES.items():
        flag = "--" + name.replace("_", "-")
        parser.add_argument(flag, type=int, default=0, metavar="N", help=f"inject N {what}")
    parser.add_argument("--truth", type=Path, help="write the injected anomalies here (JSON)")


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"a whole number above 0, not {value!r}")
    return int(value)


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    if not number > 0:
        raise argparse.ArgumentTypeError(f"a positive number, not {value!r}")
    return number


def options(args: argparse.Namespace, now: datetime | None = None) -> Options:
    """The options ``args`` describe; without --start, the span ending at the last hour."""
    start = args.start
    if start is None:
        hour = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
        start = hour - timedelta(hours=args.hours)
    try:
        return Options(
            start=start,
            hours=args.hours,
            accounts=args.accounts,
            vpcs_per_account=args.vpcs_per_account,
            flows_per_hour=args.flows_per_hour,
            format=args.format,
            seed=args.seed,
            **{name: getattr(args, name) for name in ANOMALIES},
        )
    except ValueError as error:
        raise SystemExit(f"flowlogs: {error}") from None


def run(args: argparse.Namespace) -> int:
    """Write the objects, show progress on stderr; returns the number of flows written."""
    chosen = options(args)
    try:
        simulation = Simulation(chosen)
    except ValueError as error:
        raise SystemExit(f"flowlogs: {error}") from None
    expected = len(simulation.windows) * len(simulation.vpcs)
    formats = ", ".join(sorted({v.format for v in simulation.vpcs}))
    sys.stderr.write(
        f"flowlogs: {chosen.accounts} accounts x {chosen.vpcs_per_account} VPCs ({formats}), "
        f"{chosen.hours:g} h from {chosen.start:%Y-%m-%dT%H:%MZ}, "
        f"~{chosen.flows_per_hour:,.0f} flows/h -> {args.out}\n"
    )
    shown = [0.0]

    def progress(summary: Summary) -> None:
        if summary.seconds - shown[0] >= 1.0 or summary.objects == expected:
            shown[0] = summary.seconds
            sys.stderr.write(
                f"\rflowlogs: {summary.objects:,}/{expected:,} objects, "
                f"{summary.flows:,} flows, {summary.rate:,.0f} flows/s "
            )
            sys.stderr.flush()

    began = time.monotonic()
    summary = write(chosen, args.out, progress, simulation=simulation)
    if args.truth:
        report = truth_json(chosen, simulation.truth)
        args.truth.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    sys.stderr.write(
        f"\nflowlogs: wrote {summary.objects:,} objects, {summary.flows:,} flows "
        f"({summary.gzipped_bytes / 1e6:,.1f} MB gzipped) in {time.monotonic() - began:.1f} s, "
        f"{summary.rate:,.0f} flows/s; {len(simulation.truth)} anomalies injected\n"
    )
    return summary.flows
