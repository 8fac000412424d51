"""End to end against a real S3 API (moto's server): 12 generated hours of flow logs in a
bucket, one reader, one worker; every view equal to an independent computation, every
injected anomaly alerted and nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from producers.flowlogs import Options, Simulation, write
from streams.common.broker import EmbeddedBroker
from tests.integration.s3_server import empty_bucket, moto_server, s3
from tests.support import flowlogs_oracle as oracle
from tests.support.flowlogs import FlowLogsProcesses, ingested, wait_for_flows
from tests.support.workers import Worker, wait_until

pytestmark = pytest.mark.integration

BUCKET = "flowlogs"
DAY = datetime(2026, 11, 30, tzinfo=UTC)
OPTIONS = Options(
    start=DAY, hours=12, flows_per_hour=4000, seed=5,
    port_scans=1, exfiltration=1, long_lived=1, new_country=1,
)  # fmt: skip


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def bucket(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    empty_bucket(endpoint, BUCKET, monkeypatch)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    return endpoint


def stored_objects(endpoint: str) -> list[bytes]:
    """Every object of the bucket, read with boto3 (not with the pipeline's reader)."""
    client = s3(endpoint)
    bodies = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for item in page.get("Contents", []):
            bodies.append(client.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read())
    return bodies


def test_a_generated_day_in_s3_gives_exact_views_and_its_anomalies(
    broker: EmbeddedBroker, bucket: str, tmp_path: Path
) -> None:
    simulation = Simulation(OPTIONS)
    written = write(OPTIONS, f"s3://{BUCKET}", simulation=simulation)
    rows = oracle.rows_of(stored_objects(bucket))
    assert len(rows) == written.flows
    processes = FlowLogsProcesses(broker.bootstrap, tmp_path)
    try:
        worker = processes.worker()
        reader = processes.reader(f"s3://{BUCKET}/AWSLogs")
        wait_until(lambda: ingested(reader) == written.objects, timeout=240, what="all objects")
        expected = oracle.summary(rows, {})
        wait_for_flows(worker, expected["flows"], timeout=240)
        wait_until(lambda: worker.get("/flowlogs/summary") == expected, timeout=60)
        check_views(worker, rows)
        check_vpc_windows(worker, rows)
        check_alerts(worker, simulation)
        assert reader.metric("streams_flowlogs_dead_letters_total") == 0
        assert worker.metric("streams_flowlogs_duplicate_chunks_total") == 0
    finally:
        processes.stop_all()


def check_views(worker: Worker, rows: list[oracle.Row]) -> None:
    account = rows[0].get("account_id")
    eni = rows[0].get("interface_id")
    vpc = next(r.get("vpc_id") for r in rows if r.get("vpc_id"))
    morning, later = int(DAY.timestamp()) + 6 * 3600, int(DAY.timestamp()) + 9 * 3600 + 1800
    cases: list[tuple[str, dict[str, Any]]] = [
        ("", {}),
        (f"account_id={account}&action=REJECT", {"account_id": [account], "action": ["REJECT"]}),
        (f"vpc_id={vpc}&protocol=tcp", {"vpc_id": [vpc], "protocol": [6]}),
        (f"interface_id={eni}&protocol=17,1", {"interface_id": [eni], "protocol": [17, 1]}),
        (
            "start=2026-11-30T06:00:00Z&end=2026-11-30T09:30:00%2B00:00",
            {"start": morning, "end": later},
        ),
    ]
    for query, filters in cases:
        assert worker.get(f"/flowlogs/summary?{query}") == oracle.summary(rows, filters), query
        for field, by in (("srcaddr", "bytes"), ("dstport", "flows"), ("dstaddr", "packets"),
                          ("interface_id", "bytes"), ("protocol", "flows")):  # fmt: skip
            answer = worker.get(f"/flowlogs/top?field={field}&by={by}&limit=7&{query}")
            assert answer == oracle.top(rows, filters, field, by, 7), (query, field, by)
        hourly = worker.get(f"/flowlogs/hourly?{query}")
        expected = oracle.hourly(rows, filters)
        assert [(h["flows"], h["rejected"], h["bytes"]) for h in hourly] == [
            e[1:] for e in expected
        ]
        assert [h["hour"] for h in hourly] == [
            datetime.fromtimestamp(e[0], UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for e in expected
        ]


def check_vpc_windows(worker: Worker, rows: list[oracle.Row]) -> None:
    """A VPC's live rollups (from the owner's table) add up to its flows, per hour too."""
    owner = next(r for r in rows if r.get("vpc_id"))
    account, vpc = owner.get("account_id"), owner.get("vpc_id")
    filters = {"account_id": [account], "vpc_id": [vpc]}
    answer = worker.get(f"/flowlogs/windows?vpc={account}%7C{vpc}&resolution=1h&limit=1000")
    assert answer["vpc"] == f"{account}|{vpc}"
    expected = oracle.hourly(rows, filters)
    assert [(w["flows"], w["rejected"], w["bytes"]) for w in answer["windows"]] == [
        e[1:] for e in expected
    ]
    five = worker.get(f"/flowlogs/windows?vpc={account}%7C{vpc}&limit=1000&action=REJECT")
    assert (
        sum(w["flows"] for w in five["windows"])
        == oracle.summary(rows, {**filters, "action": ["REJECT"]})["flows"]
    )


def check_alerts(worker: Worker, simulation: Simulation) -> None:
    """Each injected anomaly is alerted, and no alert is raised by the everyday traffic."""
    truth = simulation.truth
    assert {t.kind for t in truth} == {"port_scan", "exfiltration", "long_lived", "new_country"}
    alerts = wait_until(
        lambda: (
            (found := worker.get("/flowlogs/alerts?limit=1000"))
            and len({a["kind"] for a in found}) == 4
            and found
        ),
        timeout=60,
        what="an alert of each kind",
    )
    for alert in alerts:
        assert any(matches(alert, t) for t in truth), f"an alert no anomaly explains: {alert}"
    for injected in truth:
        assert any(matches(a, injected) for a in alerts), f"not alerted: {injected}"
    assert len({a["id"] for a in alerts}) == len(alerts)


def matches(alert: dict[str, Any], injected: Any) -> bool:
    if alert["kind"] != injected.kind or alert["account_id"] != injected.account_id:
        return False
    if injected.format != "v2" and alert["vpc_id"] != injected.vpc_id:
        return False  # version-2 logs name no VPC: their alerts say "-"
    if injected.kind in ("port_scan", "exfiltration"):
        return bool(alert["subject"] == injected.subject)
    if injected.kind == "long_lived":
        return injected.subject in (alert["srcaddr"], alert["dstaddr"])
    # new_country: the injected subject is the public address from the new country.
    return bool(
        alert["subject"] == injected.detail["country"] and alert["peer"] == injected.subject
    )
