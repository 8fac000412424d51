"""The live configuration's pure rules: changes, validation, KEY=VALUE parsing, diffs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from streams.telemetry.config import TelemetryConfig, Threshold, apply_changes, describe_changes
from streams.telemetry.config_cli import (
    explain,
    parse_assignment,
    parse_changes,
)


def test_nested_changes_make_the_next_version() -> None:
    """Dotted keys change nested settings, add a threshold, and bump the version by one."""
    old = TelemetryConfig(version=4)
    new = apply_changes(
        old,
        {
            "window_seconds": 30,
            "thresholds.cpu.above": 80,
            "detector.kind": "zscore",
            "thresholds.temperature": {"figure": "max", "above": 70},
        },
    )
    assert new.version == 5
    assert new.window_seconds == 30
    assert new.thresholds["cpu"] == Threshold(figure="max", above=80.0)
    assert new.thresholds["temperature"] == Threshold(figure="max", above=70.0)
    assert new.detector.kind == "zscore"
    assert old.window_seconds == 60 and old.version == 4


def test_unset_drops_a_threshold_and_restores_a_default() -> None:
    """Removing a key drops a threshold, and a removed setting falls back to its default."""
    changed = apply_changes(TelemetryConfig(), {"detector.z": 2.5})
    new = apply_changes(changed, {"thresholds.drops": None, "detector.z": None})
    assert "drops" not in new.thresholds
    assert new.detector.z == TelemetryConfig().detector.z
    assert new.version == 2


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"window_seconds": 0}, "window_seconds"),
        ({"detector.kind": "magic"}, "detector.kind"),
        ({"detector.colour": "red"}, "detector.colour"),
        ({"thresholds.cpu.above": float("nan")}, "thresholds.cpu.above"),
        ({"thresholds.cpu.above": None}, "thresholds.cpu"),
    ],
)
def test_invalid_changes_are_refused_naming_the_key(changes: dict[str, object], where: str) -> None:
    """An invalid change raises, and the explanation names the offending key."""
    with pytest.raises(ValueError) as caught:
        apply_changes(TelemetryConfig(), changes)
    assert explain(caught.value).startswith(f"{where}: ")


def test_a_value_cannot_become_a_section() -> None:
    """A dotted key through a plain setting is refused."""
    with pytest.raises(ValueError, match="window_seconds is not a section"):
        apply_changes(TelemetryConfig(), {"window_seconds.max": 3})


def test_threshold_needs_a_limit() -> None:
    """A threshold with neither 'above' nor 'below' is invalid."""
    with pytest.raises(ValidationError, match="needs 'above', 'below' or both"):
        Threshold(figure="max")
    assert Threshold(below=1.0).below == 1.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("window_seconds=30", ("window_seconds", 30)),
        ("thresholds.cpu.above=80.5", ("thresholds.cpu.above", 80.5)),
        ("detector.kind=zscore", ("detector.kind", "zscore")),
        ('detector.kind="true"', ("detector.kind", "true")),
        ("flatline.enabled=false", ("flatline.enabled", False)),
        ('flatline.metrics=["cpu"]', ("flatline.metrics", ["cpu"])),
        (
            'thresholds.temperature={"figure":"max","above":70}',
            ("thresholds.temperature", {"figure": "max", "above": 70}),
        ),
        ("thresholds.drops=", ("thresholds.drops", None)),
        ("thresholds.drops=null", ("thresholds.drops", None)),
        ("note=a=b", ("note", "a=b")),
    ],
)
def test_assignment_value_is_json_when_it_parses(text: str, expected: tuple[str, object]) -> None:
    """VALUE is JSON when it parses, else a string; empty or null means remove."""
    assert parse_assignment(text) == expected


@pytest.mark.parametrize("text", ["window_seconds", "=3", "a..b=1", "a. b=1", "version=7"])
def test_malformed_assignments_are_refused(text: str) -> None:
    """A missing '=', an empty or spaced key part, or the version itself is refused."""
    with pytest.raises(ValueError):
        parse_assignment(text)


def test_changes_combine_assignments_and_unsets() -> None:
    """--unset keys join the assignments as removals; no change at all is refused."""
    assert parse_changes(["window_seconds=30"], ["thresholds.drops"]) == {
        "window_seconds": 30,
        "thresholds.drops": None,
    }
    with pytest.raises(ValueError, match="nothing to change"):
        parse_changes([], [])


def test_diff_lists_each_changed_setting_old_to_new() -> None:
    """The diff names each changed leaf, and an added or removed section as one line."""
    old = TelemetryConfig()
    new = apply_changes(
        old,
        {
            "window_seconds": 30,
            "thresholds.cpu.above": 80,
            "thresholds.drops": None,
            "thresholds.temperature": {"figure": "max", "above": 70},
        },
    )
    assert describe_changes(old, new) == [
        "window_seconds 60 -> 30",
        'thresholds.drops {"figure": "max", "above": 100.0, "below": null} -> (unset)',
        "thresholds.cpu.above 95.0 -> 80.0",
        'thresholds.temperature (unset) -> {"figure": "max", "above": 70.0, "below": null}',
    ]
    assert describe_changes(new, apply_changes(new, {})) == []
