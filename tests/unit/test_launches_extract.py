"""Extract against a local API: what is retried, how long it waits, what fails at once."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from streams.launches.extract import ExtractError, Policy, _retry_after, fetch_records
from tests.support.launches import Reply, api, ok

FAST = Policy(attempts=4, backoff=1.0, backoff_max=4.0, read_timeout=2.0)


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def test_waits_double_with_jitter_up_to_the_cap() -> None:
    """Each wait is in the upper half of a doubling ceiling, capped."""
    sleeps = Sleeps()
    with api(Reply(500)) as served, pytest.raises(ExtractError, match="HTTP 500"):
        fetch_records(served.url, FAST, sleep=sleeps)
    assert served.requests == 4
    for wait, ceiling in zip(sleeps, (1.0, 2.0, 4.0), strict=True):
        assert ceiling / 2 <= wait <= ceiling


def test_retry_after_longer_than_the_backoff_is_waited_out() -> None:
    """A 429 asking for 3 s gets at least 3 s, then the answer is used."""
    sleeps = Sleeps()
    with api(Reply(429, headers={"Retry-After": "3"}), ok([{"id": "x"}])) as served:
        assert fetch_records(served.url, FAST, sleep=sleeps) == [{"id": "x"}]
    assert sleeps == [3.0]


def test_retry_after_beyond_the_limit_fails_at_once() -> None:
    """A server asking for an hour fails the run now rather than hold the task."""
    sleeps = Sleeps()
    with (
        api(Reply(503, headers={"Retry-After": "3600"})) as served,
        pytest.raises(ExtractError, match="retry after 3600 s"),
    ):
        fetch_records(served.url, FAST, sleep=sleeps)
    assert served.requests == 1 and sleeps == []


def test_retry_after_as_an_http_date() -> None:
    """Retry-After may be a date: the wait is the time until it (never negative)."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    later = {"Retry-After": format_datetime(now + timedelta(seconds=30), usegmt=True)}
    earlier = {"Retry-After": format_datetime(now - timedelta(seconds=30), usegmt=True)}
    assert _retry_after(later, lambda: now) == 30.0
    assert _retry_after(earlier, lambda: now) == 0.0
    assert _retry_after({"Retry-After": "soon"}, lambda: now) is None


def test_a_refused_connection_is_retried() -> None:
    """Nothing listening: each attempt fails to connect, then the run fails."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps = Sleeps()
    with pytest.raises(ExtractError, match=r"cannot connect.*after 4 attempts"):
        fetch_records(f"http://127.0.0.1:{port}/", FAST, sleep=sleeps)
    assert len(sleeps) == 3


def test_a_connection_that_never_answers_times_out() -> None:
    """A server that accepts and stays silent: the read timeout ends each attempt."""
    policy = Policy(attempts=2, backoff=0.0, read_timeout=0.2)
    with api(Reply(delay=2.0)) as served, pytest.raises(ExtractError, match="timed out"):
        fetch_records(served.url, policy, sleep=Sleeps())
    assert served.requests == 2


def test_an_answer_over_the_size_limit_fails_at_once() -> None:
    """A runaway answer is not read to the end, nor retried."""
    policy = Policy(max_bytes=1024)
    with api(Reply(200, b"[" + b"1," * 2000 + b"1]")) as served:
        with pytest.raises(ExtractError, match="over 1024 bytes"):
            fetch_records(served.url, policy, sleep=Sleeps())
        assert served.requests == 1


@pytest.mark.parametrize("body", [b'{"docs": []}', b"null", b'"launches"'])
def test_json_that_is_no_array_fails_at_once(body: bytes) -> None:
    """An object or a scalar is a different API, not a transient failure."""
    with api(Reply(200, body)) as served:
        with pytest.raises(ExtractError, match="not an array"):
            fetch_records(served.url, FAST, sleep=Sleeps())
        assert served.requests == 1


def test_a_local_copy_is_read_through_a_file_url(tmp_path: Path) -> None:
    """file:// reads a local copy (make run); a missing file fails at once."""
    copy = tmp_path / "launches.json"
    copy.write_text('[{"id": "x"}]')
    assert fetch_records(copy.as_uri(), FAST) == [{"id": "x"}]
    with pytest.raises(ExtractError, match="cannot fetch"):
        fetch_records((copy.parent / "missing.json").as_uri(), FAST, sleep=Sleeps())


@pytest.mark.parametrize("where", ["headers", "body"])
def test_an_answer_that_trickles_is_cut_at_the_whole_request_limit(where: str) -> None:
    """A byte every 50 ms never trips the read timeout; the whole-answer limit ends it."""
    policy = Policy(attempts=1, read_timeout=5.0, attempt_timeout=0.5)
    # Trickled from the first byte, the status line itself takes 2 s; with a short
    # head (a 1-byte body first needs the head), the long body does.
    body = b"[" + b" " * 400 + b"]"
    reply = Reply(200, body, trickle=0.05, head_at_once=where == "body")
    started = time.monotonic()
    with api(reply) as served, pytest.raises(ExtractError, match=r"took over 0.5 s"):
        fetch_records(served.url, policy, sleep=Sleeps())
    assert time.monotonic() - started < 3.0


@pytest.mark.parametrize("value", ["²", "³", "1²", "-1", "1.5", "", "soon"])
def test_retry_after_that_is_no_number_of_seconds_is_ignored(value: str) -> None:
    """Unicode digits, signs and fractions are no delay-seconds: the backoff applies."""
    assert _retry_after({"Retry-After": value}) is None


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        (Reply(999), "HTTP 999"),
        (Reply(302, headers={"Location": "ftp://127.0.0.1/launches"}), "unknown url type"),
    ],
)
def test_answers_no_retry_can_change_fail_at_once(reply: Reply, problem: str) -> None:
    """A status outside 5xx and a redirect to another scheme: one request, no wait."""
    sleeps = Sleeps()
    with api(reply) as served:
        with pytest.raises(ExtractError, match=problem):
            fetch_records(served.url, FAST, sleep=sleeps)
        assert served.requests == 1 and sleeps == []


def test_a_local_path_that_is_no_file_fails_at_once(tmp_path: Path) -> None:
    """A directory given as the local copy: no retry reads it."""
    sleeps = Sleeps()
    with pytest.raises(ExtractError, match="cannot fetch"):
        fetch_records(tmp_path.as_uri(), FAST, sleep=sleeps)
    assert sleeps == []
