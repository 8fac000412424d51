"""``python -m streams.telemetry config`` against a real embedded broker."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from streams.common.broker import EmbeddedBroker
from streams.telemetry import config_cli
from streams.telemetry.config import CONFIG_KEY, CONFIG_TOPIC, TelemetryConfig, apply_changes
from streams.telemetry.config_cli import (
    encode_config,
    ensure_topic,
    latest_config,
    write_config,
)
from tests.support.workers import produce, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def config(broker: EmbeddedBroker, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the config command as a user would, against ``broker``."""
    return subprocess.run(
        [sys.executable, "-m", "streams.telemetry", "config", *args],
        env={**os.environ, "KAFKA_BOOTSTRAP": broker.bootstrap},
        capture_output=True,
        text=True,
        timeout=60,
    )


def shown(broker: EmbeddedBroker) -> tuple[str, dict[str, Any]]:
    """``config show``'s heading line and the document it prints."""
    result = config(broker, "show")
    assert result.returncode == 0, result.stderr
    heading, _, document = result.stdout.partition("\n")
    return heading, json.loads(document)


def versions_in_topic(broker: EmbeddedBroker) -> list[int]:
    """The version of every record in the config topic, oldest first."""
    records = read_topic(broker.bootstrap, CONFIG_TOPIC)
    return [json.loads(r.value or b"null")["version"] for r in records]


def test_set_then_show_prints_the_new_version_and_values(broker: EmbeddedBroker) -> None:
    """Before any write show prints the defaults as version 0; after a set, the new values."""
    heading, document = shown(broker)
    assert "defaults (version 0)" in heading
    assert document == TelemetryConfig().model_dump(mode="json")

    result = config(
        broker,
        "set",
        "window_seconds=30",
        "thresholds.cpu.above=80",
        "detector.kind=zscore",
        'thresholds.temperature={"figure": "max", "above": 70}',
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("config v1 written: window_seconds 60 -> 30; ")
    assert 'detector.kind "ewma" -> "zscore"' in result.stdout

    heading, document = shown(broker)
    assert heading == f"{CONFIG_TOPIC}: version 1"
    assert document["version"] == 1
    assert document["window_seconds"] == 30
    assert document["thresholds"]["cpu"]["above"] == 80.0
    assert document["thresholds"]["temperature"] == {"figure": "max", "above": 70.0, "below": None}
    assert document["detector"]["kind"] == "zscore"


def test_each_write_adds_one_version(broker: EmbeddedBroker) -> None:
    """Each set, unset and reset writes the whole document once, one version above the last."""
    assert config(broker, "set", "grace_seconds=10").returncode == 0
    assert config(broker, "set", "--unset", "thresholds.drops").returncode == 0
    assert config(broker, "set", "grace_seconds=").returncode == 0
    assert config(broker, "reset").returncode == 0

    assert versions_in_topic(broker) == [1, 2, 3, 4]
    records = read_topic(broker.bootstrap, CONFIG_TOPIC)
    assert {r.key for r in records} == {CONFIG_KEY.encode()}
    third = TelemetryConfig.model_validate_json(records[2].value or b"")
    assert "drops" not in third.thresholds and third.grace_seconds == 5
    assert shown(broker)[1] == TelemetryConfig(version=4).model_dump(mode="json")


def test_invalid_change_exits_non_zero_and_writes_nothing(broker: EmbeddedBroker) -> None:
    """A value the config refuses exits 2, names the key, and leaves the topic as it was."""
    assert config(broker, "set", "window_seconds=30").returncode == 0

    result = config(broker, "set", "window_seconds=0", "detector.kind=magic")
    assert result.returncode == 2
    assert "nothing written" in result.stderr
    assert "window_seconds:" in result.stderr and "detector.kind:" in result.stderr
    assert versions_in_topic(broker) == [1]
    assert shown(broker)[1]["window_seconds"] == 30


def test_expect_version_conflict_is_refused(broker: EmbeddedBroker) -> None:
    """--expect-version writes only when the newest version matches; otherwise exits 3."""
    assert config(broker, "set", "window_seconds=30").returncode == 0
    assert config(broker, "set", "window_seconds=45").returncode == 0

    stale = config(broker, "set", "--expect-version", "1", "window_seconds=90")
    assert stale.returncode == 3
    assert "newest config is v2" in stale.stderr
    assert versions_in_topic(broker) == [1, 2]

    fresh = config(broker, "set", "--expect-version", "2", "window_seconds=90")
    assert fresh.returncode == 0, fresh.stderr
    assert fresh.stdout.startswith("config v3 written: window_seconds 45 -> 90")


def test_invalid_documents_in_the_topic_are_skipped(broker: EmbeddedBroker) -> None:
    """The newest valid document wins, however the records were batched; others warn."""
    first = TelemetryConfig(version=1, window_seconds=20)
    second = apply_changes(first, {"window_seconds": 40})
    asyncio.run(ensure_topic(broker.bootstrap))
    produce(
        broker.bootstrap,
        CONFIG_TOPIC,
        [
            (CONFIG_KEY.encode(), encode_config(first)),
            (CONFIG_KEY.encode(), encode_config(second)),
            (CONFIG_KEY.encode(), b'{"version": 3, "window_seconds": -1}'),
            (b"other", encode_config(TelemetryConfig(version=9))),
        ],
    )
    result = config(broker, "show")
    assert result.returncode == 0
    assert result.stdout.startswith(f"{CONFIG_TOPIC}: version 2\n")
    assert f"{CONFIG_TOPIC}@2 skipped" in result.stderr
    assert f"{CONFIG_TOPIC}@3 skipped" in result.stderr

    written = config(broker, "set", "grace_seconds=1")
    assert written.stdout.startswith("config v3 written: grace_seconds 5 -> 1")


async def test_helpers_write_and_read_the_newest_config(broker: EmbeddedBroker) -> None:
    """latest_config is None until write_config has written, then returns what was written."""
    assert await latest_config(broker.bootstrap) is None
    seeded = TelemetryConfig(version=1, window_seconds=15)
    await write_config(broker.bootstrap, seeded)
    assert await latest_config(broker.bootstrap) == seeded


def test_overtaken_write_is_reported(
    broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A write that another writer overtook after the read still lands, with a warning."""
    assert config(broker, "set", "window_seconds=30").returncode == 0
    read = config_cli.read_newest

    async def read_then_someone_writes(bootstrap: str) -> config_cli.Newest:
        newest = await read(bootstrap)
        await write_config(bootstrap, TelemetryConfig(version=2, window_seconds=45))
        return newest

    monkeypatch.setattr(config_cli, "read_newest", read_then_someone_writes)
    code = config_cli.run_config_command(broker.bootstrap, ["set", "grace_seconds=9"])
    out, err = capsys.readouterr()
    assert code == 0
    assert out == "config v2 written: grace_seconds 5 -> 9\n"
    assert "1 other record(s)" in err and "last writer wins" in err
    assert versions_in_topic(broker) == [1, 2, 2]
    newest = shown(broker)[1]
    assert (newest["window_seconds"], newest["grace_seconds"]) == (30, 9)


def test_given_defaults_stand_in_for_an_empty_topic_and_reset_writes_them(
    broker: EmbeddedBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    """The caller's defaults are shown, changed and reset to while no version exists."""
    seeded = TelemetryConfig(window_seconds=20)

    def run(*argv: str) -> str:
        code = config_cli.run_config_command(broker.bootstrap, argv, defaults=seeded)
        out = capsys.readouterr().out
        assert code == 0, out
        return out

    assert json.loads(run("show").partition("\n")[2])["window_seconds"] == 20
    assert run("set", "grace_seconds=2") == "config v1 written: grace_seconds 5 -> 2\n"
    assert run("reset") == "config v2 written: grace_seconds 2 -> 5\n"
    assert shown(broker)[1] == seeded.model_copy(update={"version": 2}).model_dump(mode="json")
