"""The corrections' safety nets: version gate, identity checks, counters, settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faust.transport.consumer import Consumer
from prometheus_client import CollectorRegistry, generate_latest

from streams.common.app import make_app
from streams.common.faust_fixes import (
    SUPPORTED,
    Fix,
    PatchMismatchError,
    UnsupportedVersionError,
    counts,
    end_offset_correction,
    install_end_offset_correction,
    install_rebalance_fixes,
    is_end_offset_correction_installed,
    register_fix_metrics,
)
from streams.common.faust_fixes import versions as versions_module
from streams.common.faust_fixes.__main__ import main as describe_fixes
from streams.common.faust_fixes.counters import count
from streams.common.faust_fixes.end_offsets import END_OFFSETS
from streams.common.faust_fixes.fetch_wait import FETCH_WAIT
from streams.common.faust_fixes.patching import Code, Original, Patch, install_all
from streams.common.faust_fixes.rebalance import ACK, NEW_OFFSET, PATCHES
from streams.common.faust_fixes.versions import check_versions
from streams.common.settings import KafkaSettings, WorkerSettings

ALL_PATCHES = (*PATCHES, END_OFFSETS, FETCH_WAIT)

# -- Version gate --------------------------------------------------------------------


def test_the_installed_faust_and_aiokafka_are_the_supported_releases() -> None:
    """The pinned releases pass the gate (pyproject.toml and SUPPORTED agree)."""
    check_versions()
    assert SUPPORTED == {
        "faust-streaming": "0.15.3",
        "aiokafka": "0.14.0",
        "mode-streaming": "0.7.1",
    }


@pytest.mark.parametrize(
    ("found", "named"),
    [
        ({"faust-streaming": "0.15.4", "aiokafka": "0.14.0"}, "faust-streaming 0.15.4"),
        ({"faust-streaming": "0.15.3", "aiokafka": "0.13.0"}, "aiokafka 0.13.0"),
        ({"faust-streaming": None, "aiokafka": "0.14.0"}, "faust-streaming (not installed)"),
    ],
)
def test_another_release_is_refused_naming_found_and_supported(
    found: dict[str, str | None], named: str
) -> None:
    """Any other version, newer or older, or a missing package, refuses to start."""
    with pytest.raises(UnsupportedVersionError) as refused:
        check_versions(found)
    message = str(refused.value)
    assert named in message
    assert "faust-streaming 0.15.3" in message and "aiokafka 0.14.0" in message


def test_installing_on_another_release_is_refused_even_when_already_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The gate runs at every install, before anything is patched or verified."""
    install_rebalance_fixes()

    def newer(distribution: str) -> str:
        return "0.16.0" if distribution == "faust-streaming" else SUPPORTED[distribution]

    monkeypatch.setattr(versions_module, "version", newer)
    with pytest.raises(UnsupportedVersionError, match=r"faust-streaming 0\.16\.0"):
        install_rebalance_fixes()
    with pytest.raises(UnsupportedVersionError, match=r"faust-streaming 0\.16\.0"):
        install_end_offset_correction()


def test_the_version_gate_stops_make_app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A worker on an unsupported release does not start at all."""
    monkeypatch.setattr(versions_module, "version", lambda distribution: "9.9.9")
    with pytest.raises(UnsupportedVersionError):
        make_app(
            "gate-test",
            KafkaSettings(),
            WorkerSettings(data_dir=tmp_path, store="memory://"),
            CollectorRegistry(),
            partitions=1,
        )


# -- Identity of what is patched -----------------------------------------------------


def test_every_patched_and_relied_upon_function_is_the_expected_one() -> None:
    """The fingerprints recorded in the patches match Faust's and aiokafka's code."""
    install_rebalance_fixes()
    install_all((FETCH_WAIT,))
    with end_offset_correction():
        assert describe_fixes() == 0
        for patch in ALL_PATCHES:
            assert Original.of(patch.original) == patch.target.expected, patch.where
            for code in patch.relies_on:
                code.check()
            patch.verify()


def test_a_changed_original_is_refused() -> None:
    """A function with the right module and name but other code (a new release, a local
    edit) is not the one a correction was written for."""

    def ack(self: object, message: object) -> bool:  # what a future Consumer.ack may be
        return True

    ack.__module__, ack.__qualname__ = "faust.transport.consumer", "Consumer.ack"
    with pytest.raises(PatchMismatchError, match=r"Consumer\.ack is not the function"):
        ACK.target.check(ack)
    with pytest.raises(PatchMismatchError, match="expected Original"):
        NEW_OFFSET.target.check(ack)  # another name too


class Library:
    def method(self) -> int:
        return 1


def method_as_written(self: object) -> int:
    return 1


def method_upgraded(self: object) -> int:
    return 2


def corrected(self: object) -> int:
    return 10 * int(FIX.original(self))


FIX = Patch(Code(Library, "method", Original.of(Library.method)), corrected)


@pytest.fixture
def library() -> Iterator[type[Library]]:
    original = vars(Library)["method"]
    yield Library
    Library.method = original  # type: ignore[method-assign]


def test_a_patch_of_a_changed_original_leaves_the_library_untouched(
    library: type[Library],
) -> None:
    """install refuses an original whose source changed, and patches nothing."""
    library.method = method_upgraded  # type: ignore[method-assign]
    method_upgraded.__qualname__ = "Library.method"
    try:
        with pytest.raises(PatchMismatchError, match="not the function"):
            FIX.install()
    finally:
        method_upgraded.__qualname__ = "method_upgraded"
    assert vars(library)["method"] is method_upgraded
    assert not FIX.installed


def test_a_patch_replaced_after_install_or_overridden_by_a_subclass_fails_verification(
    library: type[Library],
) -> None:
    """The check that the correction is the one in use: the attribute is ours, and the
    classes the library instantiates do not override it."""
    FIX.install()
    assert library().method() == 10
    FIX.install()  # idempotent: verifies only
    library.method = method_as_written  # type: ignore[method-assign]
    with pytest.raises(PatchMismatchError, match="something replaced it"):
        FIX.verify()
    library.method = corrected  # type: ignore[method-assign]

    class Subclass(Library):
        def method(self) -> int:
            return 3

    overridden = Patch(FIX.target, corrected, used_by=(Subclass,))
    overridden._original = FIX.original
    with pytest.raises(PatchMismatchError, match="would not use the correction"):
        overridden.verify()


def test_a_failed_install_rolls_back_what_it_patched(library: type[Library]) -> None:
    """Several patches install all or nothing."""

    class Other:
        def method(self) -> int:
            return 1

    class OtherSubclass(Other):
        def method(self) -> int:
            return 2

    original = vars(Other)["method"]
    unused = Patch(
        Code(Other, "method", Original.of(original)), corrected, used_by=(OtherSubclass,)
    )
    with pytest.raises(PatchMismatchError, match="would not use the correction"):
        install_all((FIX, unused))
    assert vars(library)["method"] is not corrected
    assert vars(Other)["method"] is original


def test_a_faust_method_replaced_after_install_stops_the_next_app(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If anything replaces a patched Faust method, installing again (every make_app)
    raises instead of running without the correction."""
    install_rebalance_fixes()

    def ack(self: object, message: object) -> bool:
        return True

    monkeypatch.setattr(Consumer, "ack", ack)
    with pytest.raises(PatchMismatchError, match=r"Consumer\.ack"):
        install_rebalance_fixes()


# -- Counters ------------------------------------------------------------------------


def test_the_counters_are_exposed_on_the_registry_they_are_registered_on() -> None:
    """streams_faust_fix_<what>_total reads the process-wide counts."""
    registry = CollectorRegistry()
    register_fix_metrics(registry)
    before = registry.get_sample_value("streams_faust_fix_records_dropped_total")
    assert before is not None
    count(Fix.RECORDS_DROPPED, 3)
    assert registry.get_sample_value("streams_faust_fix_records_dropped_total") == before + 3
    exposed = generate_latest(registry).decode()
    for fix in Fix:
        assert f"{fix.metric}_total " in exposed
        assert f"# TYPE {fix.metric}_total counter" in exposed


def test_make_app_registers_the_counters_and_corrects_end_offsets_only_when_asked(
    tmp_path: Path,
) -> None:
    """Every app exposes the counters; only the embedded broker's get the correction."""
    worker = WorkerSettings(data_dir=tmp_path, store="memory://")
    with end_offset_correction(enabled=False):
        registry = CollectorRegistry()
        make_app("off", KafkaSettings(correct_end_offsets=False), worker, registry, partitions=1)
        assert not is_end_offset_correction_installed()
        assert registry.get_sample_value("streams_faust_fix_acks_ignored_total") == float(
            counts()[Fix.ACKS_IGNORED]
        )
        embedded = KafkaSettings(correct_end_offsets=True)
        make_app("on", embedded, worker, CollectorRegistry(), partitions=1)
        assert is_end_offset_correction_installed()


async def test_an_app_that_asks_for_a_short_fetch_wait_gets_it_and_others_keep_fausts(
    tmp_path: Path,
) -> None:
    """The embedded broker holds a fetch for half its wait: 750 ms a write of the API at
    Faust's fixed 1,500 ms."""
    worker = WorkerSettings(data_dir=tmp_path, store="memory://")
    kafka = KafkaSettings()

    def consumer_of(app: Any) -> Any:
        return app.consumer._thread._create_worker_consumer(app.transport)

    short = make_app(
        "short", kafka, worker, CollectorRegistry(), partitions=1, fetch_max_wait_ms=20
    )
    usual = make_app("usual", kafka, worker, CollectorRegistry(), partitions=1)
    assert consumer_of(short)._fetch_max_wait_ms == 20
    assert consumer_of(usual)._fetch_max_wait_ms == 1500
    with pytest.raises(ValueError, match="at least 1 ms"):
        make_app("none", kafka, worker, CollectorRegistry(), partitions=1, fetch_max_wait_ms=0)


def test_the_end_offset_correction_is_off_unless_the_environment_asks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Real Kafka needs no correction: off by default, on with KAFKA_CORRECT_END_OFFSETS."""
    monkeypatch.delenv("KAFKA_CORRECT_END_OFFSETS", raising=False)
    assert KafkaSettings().correct_end_offsets is False
    monkeypatch.setenv("KAFKA_CORRECT_END_OFFSETS", "true")
    assert KafkaSettings().correct_end_offsets is True
