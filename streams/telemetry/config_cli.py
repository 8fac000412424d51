"""``python -m streams.telemetry config show|set|reset``: read and write the live config.

    config show                                   # the newest version, as JSON
    config set window_seconds=30 thresholds.cpu.above=80 detector.kind=zscore
    config set 'thresholds.temperature={"figure": "max", "above": 70}'
    config set --unset thresholds.drops           # or: config set thresholds.drops=
    config set --expect-version 4 grace_seconds=10
    config reset                                  # the defaults, as a new version

A VALUE is read as JSON when it parses (``80``, ``true``, ``["cpu"]``, ``null``), else as
a string (``zscore``); quote a string that looks like JSON: ``'"true"'``. An empty VALUE
or ``null`` removes the key: a setting goes back to its built-in default, a threshold
is dropped.

The newest version is the last valid document in partition 0 of ``telemetry.config``
(invalid ones are skipped with a warning; a tombstone means "no document"), which is
also what a compacted topic keeps. ``set`` reads it, applies the changes, validates the
whole result and writes it as version + 1, then waits for Kafka's acknowledgement.
Two concurrent writers are last-writer-wins: both may write the same version number,
and the record written last is the newest. ``--expect-version N`` refuses to write
unless the newest version is N; it narrows that race but cannot close it (Kafka has no
compare-and-set), so a write that another one overtook is reported with a warning.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import aiokafka.errors as kafka_errors
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import ValidationError

from streams.common.mirror import text_or_json_key
from streams.common.topics import TopicMismatch, TopicSpec, declare_topics
from streams.telemetry.config import (
    CONFIG_KEY,
    CONFIG_TOPIC,
    TelemetryConfig,
    apply_changes,
    describe_changes,
)

log = logging.getLogger(__name__)

CONFIG_PARTITION = TopicPartition(CONFIG_TOPIC, 0)

EXIT_OK, EXIT_KAFKA, EXIT_INVALID, EXIT_CONFLICT = 0, 1, 2, 3


# -- Pure parts ----------------------------------------------------------------------


def parse_assignment(text: str) -> tuple[str, Any]:
    """``"a.b=VALUE"`` -> ``("a.b", value)``: JSON when it parses, else the string;
    an empty VALUE gives ``None`` (remove the key)."""
    key, sep, raw = text.partition("=")
    if not sep:
        raise ValueError(f"{text!r}: expected KEY=VALUE")
    check_key(key)
    if raw == "":
        return key, None
    try:
        return key, json.loads(raw)
    except ValueError:
        return key, raw


def check_key(key: str) -> None:
    """Refuse keys that cannot name a setting: empty parts, spaces, ``version``."""
    if not key or any(not part or part != part.strip() for part in key.split(".")):
        raise ValueError(f"{key!r}: not a dotted key such as thresholds.cpu.above")
    if key.split(".")[0] == "version":
        raise ValueError("version is not a setting: each write sets it to the newest + 1")


def parse_changes(assignments: Iterable[str], unset: Iterable[str] = ()) -> dict[str, Any]:
    """The ``apply_changes`` argument for ``KEY=VALUE`` assignments and removed keys."""
    changes = dict(parse_assignment(text) for text in assignments)
    for key in unset:
        check_key(key)
        changes[key] = None
    if not changes:
        raise ValueError("nothing to change: give KEY=VALUE or --unset KEY")
    return changes


def explain(exc: ValueError) -> str:
    """A validation failure as ``key: reason`` lines."""
    if isinstance(exc, ValidationError):
        return "\n".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'config'}: {error['msg']}"
            for error in exc.errors()
        )
    return str(exc)


def encode_config(config: TelemetryConfig) -> bytes:
    return config.model_dump_json().encode()


# -- Kafka ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Newest:
    """The newest valid document (None: none yet) and the end offset it was read to."""

    config: TelemetryConfig | None
    end_offset: int


async def read_newest(bootstrap: str) -> Newest:
    """Read partition 0 of the config topic from its beginning to its current end."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    try:
        await consumer.start()
        if CONFIG_TOPIC not in await consumer.topics():
            return Newest(None, 0)
        partitions = consumer.partitions_for_topic(CONFIG_TOPIC) or set()
        if len(partitions) > 1:
            log.warning("%s has %d partitions: only 0 is read", CONFIG_TOPIC, len(partitions))
        tp = CONFIG_PARTITION
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        # On the embedded broker this end is right only with the correction installed
        # (broker defect 1): main.py installs it when KAFKA_CORRECT_END_OFFSETS is set.
        end = (await consumer.end_offsets([tp]))[tp]
        newest: TelemetryConfig | None = None
        while await consumer.position(tp) < end:
            batch = await consumer.getmany(tp, timeout_ms=1000)
            for record in batch.get(tp, []):
                if record.offset < end:
                    newest = _fold(newest, record.offset, record.key, record.value)
        return Newest(newest, end)
    finally:
        await consumer.stop()


def _fold(
    newest: TelemetryConfig | None, offset: int, key: bytes | None, value: bytes | None
) -> TelemetryConfig | None:
    try:
        if text_or_json_key(key) != CONFIG_KEY:
            raise ValueError(f"key {key!r} is not {CONFIG_KEY!r}")
        return None if value is None else TelemetryConfig.model_validate_json(value)
    except ValueError as exc:
        reason = explain(exc).replace("\n", "; ")
        log.warning("%s@%d skipped, not a valid config: %s", CONFIG_TOPIC, offset, reason)
        return newest


async def latest_config(bootstrap: str) -> TelemetryConfig | None:
    """The newest valid config document in the topic, or None when there is none."""
    return (await read_newest(bootstrap)).config


async def ensure_topic(bootstrap: str, *, replication_factor: int = 1) -> None:
    """Create the config topic (1 partition, compacted) unless it exists; raise
    TopicMismatch when it exists with another partition count."""
    spec = TopicSpec(1, {"cleanup.policy": "compact"})
    await declare_topics(bootstrap, {CONFIG_TOPIC: spec}, replication_factor=replication_factor)


async def write_config(
    bootstrap: str, config: TelemetryConfig, *, replication_factor: int = 1
) -> int:
    """Write ``config`` as it is (the caller sets its version); returns its offset once
    Kafka acknowledged it. Creates the topic when missing."""
    await ensure_topic(bootstrap, replication_factor=replication_factor)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        await producer.start()
        sent = await producer.send_and_wait(
            CONFIG_TOPIC,
            key=CONFIG_KEY.encode(),
            value=encode_config(config),
            partition=CONFIG_PARTITION.partition,
        )
        return int(sent.offset)
    finally:
        await producer.stop()


# -- Commands ------------------------------------------------------------------------


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")


async def _show(bootstrap: str, args: argparse.Namespace, defaults: TelemetryConfig) -> int:
    config = await latest_config(bootstrap)
    if config is None:
        _out(f"{CONFIG_TOPIC} holds no valid config yet; these are the defaults (version 0):")
        config = defaults
    else:
        _out(f"{CONFIG_TOPIC}: version {config.version}")
    _out(json.dumps(config.model_dump(mode="json"), indent=2))
    return EXIT_OK


async def _write(bootstrap: str, args: argparse.Namespace, defaults: TelemetryConfig) -> int:
    changes: dict[str, Any] | None = None
    if args.command == "set":
        try:
            changes = parse_changes(args.assignments, args.unset)
        except ValueError as exc:
            _err(f"refused: {exc}")
            return EXIT_INVALID
    newest = await read_newest(bootstrap)
    base = newest.config or defaults
    if args.expect_version is not None and base.version != args.expect_version:
        _err(
            f"refused: the newest config is v{base.version}, not v{args.expect_version}; "
            "nothing written (run `config show` and retry)"
        )
        return EXIT_CONFLICT
    try:
        if changes is None:
            config = defaults.model_copy(update={"version": base.version + 1})
        else:
            config = apply_changes(base, changes)
    except ValueError as exc:
        _err(f"refused, nothing written:\n{explain(exc)}")
        return EXIT_INVALID
    offset = await write_config(bootstrap, config, replication_factor=args.replication_factor)
    if offset != newest.end_offset:
        _err(
            f"warning: {offset - newest.end_offset} other record(s) reached {CONFIG_TOPIC} "
            f"after v{base.version} was read; this write is the newest (last writer wins)"
        )
    changed = "; ".join(describe_changes(base, config)) or "no setting changed"
    _out(f"config v{config.version} written: {changed}")
    return EXIT_OK


def build_parser(replication_factor: int = 1) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m streams.telemetry config",
        description="Show or change the live configuration in the telemetry.config topic.",
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for Kafka (default 30)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("show", help="print the newest version")
    writes = argparse.ArgumentParser(add_help=False)
    writes.add_argument(
        "--expect-version",
        type=int,
        metavar="N",
        help="write only if the newest version is N (else exit 3)",
    )
    writes.add_argument(
        "--replication-factor",
        type=int,
        default=replication_factor,
        metavar="N",
        help=f"used only when this command creates the topic (default {replication_factor})",
    )
    change = commands.add_parser(
        "set", parents=[writes], help="write a new version with some settings changed"
    )
    change.add_argument(
        "assignments",
        nargs="*",
        metavar="KEY=VALUE",
        help="dotted KEY; VALUE is JSON when it parses, else a string; empty removes KEY",
    )
    change.add_argument(
        "--unset", action="append", default=[], metavar="KEY", help="remove KEY (repeatable)"
    )
    commands.add_parser("reset", parents=[writes], help="write the defaults as a new version")
    return parser


def run_config_command(
    bootstrap: str,
    argv: Sequence[str],
    *,
    defaults: TelemetryConfig | None = None,
    replication_factor: int = 1,
) -> int:
    """Run one config command against the Kafka at ``bootstrap``; returns the exit code:
    0 done, 1 Kafka unreachable or failing, 2 invalid change, 3 version conflict.

    ``defaults`` (version 0) stand in while the topic holds no valid document, and are
    what ``reset`` writes: pass ``TelemetrySettings().initial_config()``, which is what
    workers start with; without it, the built-in defaults.
    """
    try:
        args = build_parser(replication_factor).parse_args(list(argv))
    except SystemExit as exc:  # --help, or a usage error argparse already printed
        return exc.code if isinstance(exc.code, int) else EXIT_INVALID
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    command = _show if args.command == "show" else _write
    base = (defaults or TelemetryConfig()).model_copy(update={"version": 0})

    async def run() -> int:
        async with asyncio.timeout(args.timeout):
            return await command(bootstrap, args, base)

    try:
        return asyncio.run(run())
    except TimeoutError:
        _err(f"no answer from Kafka at {bootstrap} within {args.timeout:g}s")
    except kafka_errors.KafkaError as exc:
        _err(f"Kafka at {bootstrap}: {exc!r}")
    except TopicMismatch as exc:
        _err(f"refused: {exc}")
    return EXIT_KAFKA
