"""S3 keys pyarrow lists but cannot address (a real S3 API: moto's server, no broker):
each is settled once, dead-lettered with its reason and recorded in the ledger, never
"vanished" at every poll; a console's empty "folder" marker is no object at all."""

from __future__ import annotations

import gzip
from collections import Counter

import orjson
import pytest

from streams.flowlogs.ledger import LEDGER
from streams.flowlogs.reader import RECORDS
from tests.integration.s3_server import empty_bucket, moto_server, s3
from tests.unit.test_flowlogs_reader_edges import HEADER, M, counted_ports, line, make_reader

pytestmark = pytest.mark.integration

BUCKET = "edge-keys"


async def test_odd_s3_keys_are_settled_once_with_a_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = gzip.compress("\n".join([HEADER, *(line(p, M - 60) for p in range(3))]).encode())
    keys = {
        "AWSLogs/111100000057/trailing/": body,  # bytes under a key ending in "/"
        "AWSLogs/111100000058/folder/": b"",  # the console's "Create folder"
        "AWSLogs/111100000054//double.log.gz": body,  # an empty path segment
        "AWSLogs/111100000055/ok.log.gz": body,
    }
    with moto_server() as url:
        client = s3(empty_bucket(url, BUCKET, monkeypatch))
        for key, data in keys.items():
            client.put_object(Bucket=BUCKET, Key=key, Body=data)
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        reader, producer = make_reader(f"s3://{BUCKET}/AWSLogs")
        for _poll in range(2):  # a second listing finds everything settled
            for obj in reader.source.list():
                if not reader.ledger.is_done(obj.uri):
                    await reader.ingest(obj)
    recorded = {
        key.decode().removeprefix(f"s3://{BUCKET}/"): orjson.loads(value)["status"]
        for key, value, _p, _h in producer.topic(LEDGER)
    }
    assert recorded == {
        "AWSLogs/111100000057/trailing": "dead_lettered",
        "AWSLogs/111100000054//double.log.gz": "dead_lettered",
        "AWSLogs/111100000055/ok.log.gz": "ingested",
    }
    assert producer.reasons() == ["unreadable_object", "unreadable_object"]
    counted = counted_ports([v for _k, v, _p, _h in producer.topic(RECORDS)])
    assert counted == Counter(range(3))  # ok.log.gz's flows, once
