"""A first live run: objects in a directory, one reader, one worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.common.broker import EmbeddedBroker
from tests.support.flowlogs import FlowLogsProcesses, ingested, wait_for_flows, write_object
from tests.support.workers import wait_until

pytestmark = pytest.mark.integration

HEADER = (
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes "
    "start end action log-status"
)


def test_objects_in_a_directory_are_counted(broker: EmbeddedBroker, tmp_path: Path) -> None:
    source = tmp_path / "source"
    t = 1_764_547_200
    write_object(source, "a/1.log.gz", [HEADER] + [
        f"2 111122223333 eni-1 10.0.0.{i} 8.8.8.8 40000 443 6 10 1000 {t + i} {t + i + 5} ACCEPT OK"
        for i in range(100)
    ])  # fmt: skip
    write_object(
        source,
        "a/2.log.gz",
        [HEADER, "garbage line", f"2 111122223333 eni-1 - - - - - - - {t} {t + 60} - NODATA"],
    )
    flows = FlowLogsProcesses(broker.bootstrap, tmp_path)
    try:
        worker = flows.worker()
        reader = flows.reader(str(source))
        wait_until(lambda: ingested(reader) == 2, timeout=60, what="2 objects ingested")
        summary = wait_for_flows(worker, 100)
        wait_until(lambda: worker.get("/flowlogs/summary")["nodata"] == 1, timeout=30)
        assert worker.get("/flowlogs/summary") == {
            "flows": 100, "bytes": 100_000, "packets": 1000, "accepted": 100, "rejected": 0,
            "nodata": 1, "skipdata": 0,
        }  # fmt: skip
        assert summary["flows"] == 100
        top = worker.get("/flowlogs/top?field=dstaddr&by=flows")
        assert top == [{"value": "8.8.8.8", "bytes": 100_000, "packets": 1000, "flows": 100}]
        assert reader.metric('streams_flowlogs_dead_letters_total{reason="malformed_line"}') == 1
    finally:
        flows.stop_all()
