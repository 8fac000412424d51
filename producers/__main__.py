"""Producers: ``python -m producers <command> --help`` (orders, catalog, inventory,
telemetry, flowlogs, timeseries, launches)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from producers.flowlogs_cli import add_parser as add_flowlogs_parser
from producers.flowlogs_cli import run as run_flowlogs
from producers.launches_cli import add_parser as add_launches_parser
from producers.launches_cli import run as run_launches
from producers.orders import (
    Faults,
    OrderGenerator,
    Record,
    catalog_records,
    file_records,
    inventory_records,
    load_catalog,
)
from producers.send import paced, send_all
from producers.telemetry_cli import add_parser as add_telemetry_parser
from producers.telemetry_cli import run as run_telemetry
from producers.timeseries_cli import add_parser as add_timeseries_parser
from producers.timeseries_cli import run as run_timeseries


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m producers")
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    sub = parser.add_subparsers(dest="command", required=True)

    orders = sub.add_parser("orders", help="replay a JSONL file or generate orders")
    orders.add_argument("--topic", default="orders.raw")
    orders.add_argument("--file", type=Path, help="JSONL file in the seed's format")
    orders.add_argument("--speed", default="max", help="real-time factor for --file, or max")
    orders.add_argument("--rate", default="50", help="generated orders per second, or max")
    orders.add_argument("--count", type=int, help="stop after this many records")
    orders.add_argument("--seed", type=int, default=7)
    orders.add_argument("--start", help="event time of the first order (ISO); default now")
    orders.add_argument("--step-seconds", type=float, help="event time between orders")
    orders.add_argument("--customers", type=int, default=5000)
    for fault in ("duplicates", "variants", "malformed", "late"):
        orders.add_argument(f"--{fault}", type=float, default=0.0, help="fraction, 0..1")
    orders.add_argument("--spike-channel", help="channel that gets a revenue spike")
    orders.add_argument("--spike-factor", type=float, default=1.0)
    orders.add_argument("--catalog", type=Path, help="catalog JSON (default: bundled sample)")

    catalog = sub.add_parser("catalog", help="load the product catalog (JSON array)")
    catalog.add_argument("--topic", default="orders.catalog")
    catalog.add_argument("--file", type=Path)

    inventory = sub.add_parser("inventory", help="load an inventory CSV batch")
    inventory.add_argument("--topic", default="orders.inventory")
    inventory.add_argument("--file", type=Path)

    add_telemetry_parser(sub)
    add_timeseries_parser(sub)
    add_flowlogs_parser(sub)
    add_launches_parser(sub)
    return parser


def _rate(value: str) -> float | None:
    return None if value == "max" else float(value)


async def _replay(path: Path, speed: float | None) -> AsyncIterator[Record]:
    """Replay in file order; with a speed, wait as event time advances (never backwards)."""
    started, first, high = time.monotonic(), None, None
    for record, stamp in file_records(path):
        if speed and stamp is not None:
            first = first or stamp
            high = max(high or stamp, stamp)
            delay = started + (high - first).total_seconds() / speed - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        yield record


def _generated(args: argparse.Namespace) -> tuple[Iterator[Record], float | None]:
    rate = _rate(args.rate)
    start = (
        datetime.fromisoformat(args.start.replace("Z", "+00:00"))
        if args.start
        else datetime.now(UTC)
    )
    step = args.step_seconds if args.step_seconds is not None else 1 / (rate or 1000)
    faults = Faults(
        duplicates=args.duplicates,
        variants=args.variants,
        malformed=args.malformed,
        late=args.late,
        spike_channel=args.spike_channel,
        spike_factor=args.spike_factor,
    )
    generator = OrderGenerator(
        load_catalog(args.catalog),
        seed=args.seed,
        start=start,
        step=timedelta(seconds=step),
        faults=faults,
        customers=args.customers,
    )
    records: Iterator[Record] = generator
    if args.count is not None:
        records = itertools.islice(generator, args.count)
    return records, rate


async def _run(args: argparse.Namespace) -> int:
    if args.command == "telemetry":
        return await run_telemetry(args)
    if args.command == "timeseries":
        return await run_timeseries(args)
    if args.command == "flowlogs":
        return run_flowlogs(args)
    if args.command == "launches":
        return await run_launches(args)
    await _declare_orders_topics(args.bootstrap)
    if args.command == "catalog":
        entries = load_catalog(args.file)
        return await send_all(
            args.bootstrap, args.topic, paced(catalog_records(entries), None), label="catalog"
        )
    if args.command == "inventory":
        rows = list(inventory_records(args.file))
        return await send_all(args.bootstrap, args.topic, paced(rows, None), label="inventory")
    if args.file:
        source = _replay(args.file, _rate(args.speed))
        if args.count is not None:
            source = _take(source, args.count)
        return await send_all(args.bootstrap, args.topic, source, label=f"orders from {args.file}")
    records, rate = _generated(args)
    return await send_all(
        args.bootstrap, args.topic, paced(records, rate), label="orders", total=args.count
    )


async def _declare_orders_topics(bootstrap: str) -> None:
    """The orders pipeline's topics, with its partition counts (ORDERS_PARTITIONS), before
    the first record: a broker that creates topics on first use would otherwise give
    them its default count, and the workers would refuse to start."""
    from streams.common.settings import KafkaSettings
    from streams.common.topics import declare_topics
    from streams.orders.pipeline import topic_specs
    from streams.orders.settings import OrdersSettings

    specs = topic_specs(OrdersSettings().partitions)
    await declare_topics(bootstrap, specs, replication_factor=KafkaSettings().replication_factor)


async def _take(source: AsyncIterator[Record], count: int) -> AsyncIterator[Record]:
    sent = 0
    async for record in source:
        if sent >= count:
            return
        sent += 1
        yield record


def main() -> None:
    args = _parser().parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run(args))


if __name__ == "__main__":
    main()
