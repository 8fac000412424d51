"""What the ingest says when Kafka does not acknowledge a request's readings."""

from __future__ import annotations

from aiokafka.errors import KafkaTimeoutError

from streams.telemetry.ingest import FAILURE_CHARS, describe


def test_a_failure_is_described_by_its_type_and_its_message() -> None:
    """The 503's body and the log name the failure's type and say what it was, on one
    bounded line, so neither a client nor an operator is left with "(Exception)"."""
    assert describe(Exception("Controller node not found")) == (
        "Exception: Controller node not found"
    )
    assert describe(KafkaTimeoutError()) == "KafkaTimeoutError: KafkaTimeoutError"
    assert describe(RuntimeError()) == "RuntimeError"
    long = describe(ValueError("a\nb " + "x" * 1_000))
    assert (
        long.startswith("ValueError: a b xx") and len(long) == len("ValueError: ") + FAILURE_CHARS
    )
