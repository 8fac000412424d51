"""``python -m producers telemetry``: simulated devices POSTing readings to the ingest.

Live (default): event time is the wall clock; each device polls every interval, so the
rate is devices x series / interval (``--rate`` caps it). Replay (``--start ISO``):
event time runs from ``--start`` one interval per poll, sent as fast as ``--rate``
allows (default ``max``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from producers.arguments import instant
from producers.http_send import (
    DEFAULT_URL,
    IngestUnreachable,
    Sender,
    SendOptions,
    print_summary,
)
from producers.telemetry import Faults, TelemetryGenerator, series_per_device

FAULTS = ("spikes", "flatlines", "silent", "duplicates", "malformed")


def add_parser(sub: Any) -> None:
    """Add the ``telemetry`` subcommand to the producers' subparsers."""
    parser = sub.add_parser("telemetry", help="simulate network devices POSTing telemetry")
    parser.add_argument("--url", default=DEFAULT_URL, help="the ingest's POST /telemetry")
    parser.add_argument("--devices", type=_positive, default=20)
    parser.add_argument("--interfaces", type=int, default=4, help="per device (eth0..)")
    parser.add_argument("--interval-seconds", type=float, default=5.0, help="between polls")
    parser.add_argument(
        "--rate", type=_rate, default=None, help="readings per second at most, or max (default)"
    )
    parser.add_argument("--batch", type=_positive, default=500, help="readings per request")
    parser.add_argument("--concurrency", type=_positive, default=4, help="requests in flight")
    parser.add_argument(
        "--count", type=int, help="stop after this many readings (duplicates, malformed included)"
    )
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    parser.add_argument(
        "--start",
        type=instant,
        help="replay from this event time (ISO 8601); the ingest refuses readings stamped "
        "more than 5 minutes ahead of its clock",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--warmup-polls", type=int, default=0, help="polls before any fault")
    for fault in FAULTS:
        what = "devices" if fault == "silent" else "readings"
        parser.add_argument(f"--{fault}", type=float, default=0.0, help=f"fraction of {what}")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("TELEMETRY_INGEST_API_KEY"),
        help="sent as X-API-Key (default: $TELEMETRY_INGEST_API_KEY)",
    )
    parser.add_argument("--report", type=Path, help="write a JSON summary with the ground truth")


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"a whole number above 0, not {value!r}")
    return int(value)


def _rate(value: str) -> float | None:
    if value == "max":
        return None
    try:
        rate = float(value)
    except ValueError:
        rate = 0.0
    if not rate > 0:
        raise argparse.ArgumentTypeError(f"a positive number or max, not {value!r}")
    return rate


def build(args: argparse.Namespace) -> tuple[TelemetryGenerator, SendOptions]:
    """The generator and send options that ``args`` describe (live unless --start is given)."""
    live = args.start is None
    start: datetime = datetime.now(UTC) if live else args.start
    try:
        faults = Faults(**{name: getattr(args, name) for name in FAULTS})
    except ValueError as error:
        raise SystemExit(f"telemetry: {error}") from None
    polls = None
    if args.count is not None:
        polls = math.ceil(args.count / (args.devices * series_per_device(args.interfaces)))
    elif args.duration is not None and live:
        polls = math.ceil(args.duration / args.interval_seconds)
    generator = TelemetryGenerator(
        devices=args.devices,
        interfaces=args.interfaces,
        seed=args.seed,
        interval=args.interval_seconds,
        start=start,
        faults=faults,
        warmup_polls=args.warmup_polls,
        # Silent devices fall quiet within the run's first half, leaving time to notice.
        silence_within_polls=max(1, (polls - args.warmup_polls) // 2) if polls else 60,
    )
    send = SendOptions(
        url=args.url,
        batch=args.batch,
        concurrency=args.concurrency,
        api_key=args.api_key,
        rate=args.rate,
        live=live,
        count=args.count,
        duration=args.duration,
    )
    return generator, send


async def run(args: argparse.Namespace) -> int:
    generator, options = build(args)
    natural = generator.readings_per_poll / args.interval_seconds
    mode = f"live, {natural:,.0f} readings/s" if options.live else f"replay from {args.start:%c}"
    sys.stderr.write(
        f"telemetry: {args.devices} devices x {generator.readings_per_poll // args.devices} "
        f"series every {args.interval_seconds:g} s ({mode}) -> {options.url}\n"
    )
    sender = Sender(options)
    with contextlib.suppress(NotImplementedError):  # Ctrl-C and docker stop end it gracefully
        for signum in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(signum, sender.stop)
    try:
        await sender.run(generator)
    except* IngestUnreachable as error:
        sys.stderr.write(
            f"telemetry: giving up, {options.url} unreachable: {error.exceptions[0]}\n"
        )
        raise SystemExit(1) from None
    finally:
        print_summary(sender.stats)
        if args.report:
            report = {
                "url": options.url,
                "mode": "live" if options.live else "replay",
                "settings": {k: v for k, v in vars(args).items() if k not in {"api_key", "report"}},
                "accepted": sender.stats.accepted,
                "stats": sender.stats.as_json(),
                "truth": generator.truth.as_json(),
            }
            args.report.write_bytes(orjson.dumps(report, default=str, option=orjson.OPT_INDENT_2))
    return sender.stats.accepted
