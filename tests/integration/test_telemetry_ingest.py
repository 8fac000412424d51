"""A real ``python -m streams.telemetry ingest`` process on a real embedded broker:
what clients get back and what lands in telemetry.readings."""

from __future__ import annotations

import http.client
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.common.broker import EmbeddedBroker
from streams.common.partitioning import partition_for
from streams.telemetry.models import ReadingGroup, decode_groups
from tests.support.ports import free_port
from tests.support.workers import Worker, read_topic, stop_together, wait_until

pytestmark = pytest.mark.integration

TOPIC = "telemetry.readings"
API_KEY = "k3y-for-the-ingest-tests"
PARTITIONS = 6  # of telemetry.readings: TELEMETRY_PARTITIONS' default
TS_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: in the past, so never "in the future"

Answer = tuple[int, Any, dict[str, str]]


@pytest.fixture
def start_ingest(broker: EmbeddedBroker, tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Start ingest processes with extra environment; each is stopped by pid at the end."""
    started: list[Worker] = []

    def start(**env: str) -> Worker:
        name = f"ingest{len(started)}"
        ingest = Worker(
            broker.bootstrap,
            tmp_path / name,
            tmp_path / f"{name}.log",
            env=env,
            module="streams.telemetry",
            command="ingest",
        )
        started.append(ingest)
        return ingest.start()

    yield start
    stop_together(started)


def reading(device: str, seq: int, value: float = 1.0) -> dict[str, Any]:
    return {
        "device_id": device,
        "interface": "eth0",
        "metric": "rx_bytes",
        "value": value,
        "ts": TS_MS + seq,
        "seq": seq,
    }


def post(
    ingest: Worker,
    body: bytes | Any,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> Answer:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    request = urllib.request.Request(
        ingest.url + "/telemetry",
        data=data,
        headers={"Content-Type": content_type, **(headers or {})},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, orjson.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read()), dict(exc.headers)


def post_chunked(ingest: Worker, chunks: list[bytes], headers: dict[str, str]) -> Answer:
    """POST with ``Transfer-Encoding: chunked`` (no Content-Length)."""
    connection = http.client.HTTPConnection("127.0.0.1", ingest.port, timeout=30)
    try:
        connection.request(
            "POST",
            "/telemetry",
            body=iter(chunks),
            headers={"Content-Type": "application/json", **headers},
            encode_chunked=True,
        )
        response = connection.getresponse()
        return response.status, orjson.loads(response.read()), dict(response.headers)
    finally:
        connection.close()


def published(broker: EmbeddedBroker) -> list[tuple[int, ReadingGroup]]:
    """(partition, group) of every group of every record, with no record keyed."""
    found = read_topic(broker.bootstrap, TOPIC)
    assert all(record.key is None for record in found)
    return [(r.partition, group) for r in found for group in decode_groups(r.value or b"")]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def test_accepted_readings_are_published_grouped_by_device_in_its_partition(
    broker: EmbeddedBroker, start_ingest: Callable[..., Worker]
) -> None:
    """202 comes with the count, and each request's readings of a device arrive as one
    group in the partition of that device, in the order they were sent, nothing more or
    less."""
    ingest = start_ingest()
    first = [reading("r2", 1), reading("r1", 1, 0.5), reading("r2", 2, -3.25), reading("r3", 1)]
    second = [reading("r1", 2), reading("r1", 3, 1e12)]
    ndjson = b"\n".join(orjson.dumps(r) for r in second) + b"\n"

    assert post(ingest, first)[:2] == (202, {"accepted": 4})
    assert post(ingest, ndjson, "application/x-ndjson")[:2] == (202, {"accepted": 2})
    assert post(ingest, reading("r3", 2))[:2] == (202, {"accepted": 1})

    by_device: dict[str, list[list[int]]] = {}
    for partition, group in published(broker):
        assert partition == partition_for(group.device_id.encode(), PARTITIONS)
        by_device.setdefault(group.device_id, []).append([row[4] for row in group.readings])
    assert by_device == {"r1": [[1], [2, 3]], "r2": [[1, 2]], "r3": [[1], [2]]}
    rows = {(g.device_id, *row) for _, g in published(broker) for row in g.readings}
    sent = first + second + [reading("r3", 2)]
    assert rows == {
        (r["device_id"], r["interface"], r["metric"], r["value"], r["ts"], r["seq"]) for r in sent
    }
    assert ingest.metric("streams_telemetry_ingest_readings_total") == 7


class SlowBootstrap:
    """A TCP relay to the broker that holds each new connection ``delay`` seconds before
    passing it on: a Kafka that is slow to answer a client's first connection. Clients
    reach the broker directly afterwards, at the address its metadata advertises."""

    def __init__(self, upstream: str, delay: float) -> None:
        host, port = upstream.rsplit(":", 1)
        self.upstream, self.delay = (host, int(port)), delay
        self.listener = socket.create_server(("127.0.0.1", free_port()))
        self.bootstrap = f"127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed: the test is over
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        time.sleep(self.delay)
        try:
            with client, socket.create_connection(self.upstream) as server:
                pump = threading.Thread(target=self._pump, args=(server, client), daemon=True)
                pump.start()
                self._pump(client, server)
                pump.join()
        except OSError:  # a connection opened while the test ended, the broker gone
            pass

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        self.listener.close()


def test_the_first_request_the_ingest_answers_is_accepted_however_slow_kafka_was_to_connect(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """An ingest whose first connection to Kafka takes seconds answers nothing until it
    can publish: the very first POST it answers is a 202, never a 503 for a producer that
    had not started."""
    relay = SlowBootstrap(broker.bootstrap, delay=3.0)
    ingest = Worker(
        relay.bootstrap, tmp_path / "ingest", tmp_path / "ingest.log",
        module="streams.telemetry", command="ingest",
    )  # fmt: skip
    try:
        ingest.start()  # returns as soon as /health answers
        assert post(ingest, [reading("s1", 1)])[:2] == (202, {"accepted": 1})
    finally:
        stop_together([ingest])
        relay.close()
    assert [group.device_id for _, group in published(broker)] == ["s1"]


def test_refused_requests_publish_nothing(
    broker: EmbeddedBroker, start_ingest: Callable[..., Worker]
) -> None:
    """401, 415, 413 (declared or chunked), 400 (also a body its Content-Encoding cannot
    decode) and 422 (also a time before 1970, a value whose sums would overflow) each
    come with a JSON error and leave telemetry.readings empty; the right key then gets
    a 202."""
    ingest = start_ingest(TELEMETRY_INGEST_API_KEY=API_KEY, TELEMETRY_INGEST_MAX_BODY_BYTES="2048")
    key = {"X-API-Key": API_KEY}
    good = [reading("r1", 1)]
    big = orjson.dumps([reading("r1", seq) for seq in range(40)])
    assert len(big) > 2048
    bad = [reading("r1", 1), {**reading("r1", 2), "seq": -1}]

    answers = {
        "no key": post(ingest, good),
        "wrong key": post(ingest, good, headers={"X-API-Key": API_KEY[:-1] + "x"}),
        "text": post(ingest, b"r1 eth0 1", "text/plain", key),
        "declared too large": post(ingest, big, headers=key),
        "not json": post(ingest, b"{nope", headers=key),
        "invalid": post(ingest, bad, headers=key),
        "not gzip": post(ingest, b"notgzip", headers={**key, "Content-Encoding": "gzip"}),
        "before 1970": post(ingest, [{**reading("r1", 1), "ts": -1}], headers=key),
        "overflowing": post(ingest, [{**reading("r1", 1), "value": 1.7e308}], headers=key),
    }
    statuses = {name: status for name, (status, _, _) in answers.items()}
    assert statuses == {
        "no key": 401,
        "wrong key": 401,
        "text": 415,
        "declared too large": 413,
        "not json": 400,
        "invalid": 422,
        "not gzip": 400,
        "before 1970": 422,
        "overflowing": 422,
    }
    assert all(isinstance(body["error"], str) for _, body, _ in answers.values())
    assert answers["invalid"][1]["detail"] == [
        {"loc": [1, "seq"], "msg": "Input should be greater than or equal to 0",
         "type": "greater_than_equal"}
    ]  # fmt: skip

    chunks = [big[i : i + 500] for i in range(0, len(big), 500)]
    status, body, _ = post_chunked(ingest, chunks, key)
    assert (status, "error" in body) == (413, True)
    assert published(broker) == []

    assert post(ingest, good, headers=key)[:2] == (202, {"accepted": 1})
    assert [group.device_id for _, group in published(broker)] == ["r1"]
    assert ingest.metric("streams_telemetry_ingest_requests_total") == 11


def test_lagging_workers_get_429_and_ingest_memory_stays_bounded(
    broker: EmbeddedBroker, start_ingest: Callable[..., Worker]
) -> None:
    """With no worker consuming, once more than max_lag_records records wait, requests
    get 429 with an integer Retry-After, nothing more is published, and ingest memory
    does not grow with the bodies it keeps refusing."""
    ingest = start_ingest(
        TELEMETRY_INGEST_MAX_LAG_RECORDS="5", TELEMETRY_INGEST_LAG_INTERVAL_SECONDS="0.2"
    )
    ten_devices = [reading(f"r{d}", 1) for d in range(10)]
    assert post(ingest, ten_devices)[0] == 202

    def refused() -> Answer | None:
        answer = post(ingest, ten_devices)
        return answer if answer[0] == 429 else None

    _, body, headers = wait_until(refused, timeout=30, what="a 429")
    assert body["error"] == "the workers are behind"
    assert 1 <= int(headers["Retry-After"]) <= 30
    assert ingest.metric("streams_telemetry_consumer_lag_records") > 5
    records = len(published(broker))

    assert ingest.proc is not None
    before = rss_kib(ingest.proc.pid)
    large = orjson.dumps([reading(f"r{seq % 50}", seq) for seq in range(25_000)])
    assert 2_000_000 < len(large) < 4 * 1024 * 1024
    for _ in range(50):  # 100+ MB in all
        assert post(ingest, large)[0] == 429
    assert rss_kib(ingest.proc.pid) - before < 64 * 1024
    assert len(published(broker)) == records


def test_too_many_readings_awaiting_acks_get_503(
    broker: EmbeddedBroker, start_ingest: Callable[..., Worker]
) -> None:
    """A request that would take the readings awaiting Kafka's acknowledgement over
    max_inflight_readings gets 503 with Retry-After and is not published."""
    ingest = start_ingest(TELEMETRY_INGEST_MAX_INFLIGHT_READINGS="5")
    status, body, headers = post(ingest, [reading("r1", seq) for seq in range(6)])
    assert status == 503
    assert body["max_inflight_readings"] == 5
    assert int(headers["Retry-After"]) >= 1
    assert published(broker) == []
    assert post(ingest, [reading("r1", seq) for seq in range(5)])[:2] == (202, {"accepted": 5})
    assert [len(group.readings) for _, group in published(broker)] == [5]
