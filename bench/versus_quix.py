"""The peer workload in Quix Streams, one process (``make bench-versus`` runs it).

``.venv/bench-quix/bin/python -m bench.versus_quix --bootstrap HOST:PORT ...``

Parse each order (Quix's JSON deserializer, orjson), take its event time as the
record's timestamp, compute its total, then a one-day tumbling window of revenue and
count per channel and state, in RocksDB with a changelog, at-least-once. Quix keeps
window state per message key, and orders are keyed by customer: the documented way to
aggregate per channel and state is ``group_by``, a repartition through an internal
topic (produced and consumed by this same process). That is the peer workload as Quix
users write it; docs/orders.md#versus-quix-streams says what it costs.

Runs until SIGTERM (the bench reads its progress from the consumer group's committed
offsets, and its result from the changelog topic).
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import Any

from bench.versus_work import event_ms, group_of, total_cents

GROUP = "versus-quix"
GROUP_BY = "channel_state"
#: Quix names its internal topics after the consumer group: the repartition topic
#: (``repartition__<group>--<source>--<name>``) and the window's changelog.
REPARTITION_PREFIX = f"repartition__{GROUP}--"
CHANGELOG_PREFIX = f"changelog__{GROUP}--"


def _timestamp(value: Any, _headers: Any, _timestamp: float, _kind: Any) -> int:
    return event_ms(value)


def _peer_fields(order: dict[str, Any]) -> dict[str, Any]:
    return {"g": group_of(order), "cents": total_cents(order)}


def build(args: argparse.Namespace) -> Any:
    """The Quix Application with the peer workload's dataframe."""
    from quixstreams import Application
    from quixstreams.dataframe.windows import Count, Sum

    app = Application(
        broker_address=args.bootstrap,
        consumer_group=GROUP,
        auto_offset_reset="earliest",
        commit_interval=args.commit_interval,
        state_dir=args.state_dir,
        processing_guarantee="at-least-once",
        use_changelog_topics=True,
        loglevel="WARNING",
        # Our workers' group settings (KafkaSettings): the embedded broker holds a
        # JoinGroup for half the session timeout, so Quix's 45 s default costs ~22 s
        # per start. Neither changes the processing rate.
        consumer_extra_config={"session.timeout.ms": 10_000, "heartbeat.interval.ms": 1_000},
    )
    source = app.topic(
        args.topic,
        key_deserializer="bytes",
        value_deserializer="json",
        timestamp_extractor=_timestamp,
    )
    sdf = app.dataframe(source)
    sdf = sdf.apply(_peer_fields)
    sdf = sdf.group_by("g", name=GROUP_BY)
    # Days of event time arrive out of order across the source partitions (read at
    # different paces, merged by the repartition): a grace longer than the data's span
    # keeps every window open, as our tables do, so no order is dropped as late.
    window = sdf.tumbling_window(timedelta(days=1), grace_ms=timedelta(days=args.grace_days))
    sdf = window.agg(revenue=Sum("cents"), count=Count()).final()
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.versus_quix", description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", default="orders.raw")
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--commit-interval", type=float, default=5.0)  # Quix's default
    parser.add_argument("--grace-days", type=float, default=30.0)
    args = parser.parse_args(argv)
    build(args).run()


if __name__ == "__main__":
    main()
