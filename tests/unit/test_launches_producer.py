"""``python -m producers launches``: every record goes keyed, as it came."""

from __future__ import annotations

import json

from producers.launches_cli import records
from streams.launches.payload import decode_array
from tests.support.launches import SAMPLE, payload


def test_records_are_keyed_by_launch_id_in_payload_order() -> None:
    """The key is the id (a launch's versions share a partition and a compaction key)."""
    sample = payload(SAMPLE)
    sent = records(sample)
    assert [key for key, *_ in sent] == [r["id"].encode() for r in sample]
    assert [json.loads(value) for _, value, *_ in sent] == sample


def test_a_record_without_a_usable_id_still_gets_a_key() -> None:
    """Kafka refuses keyless records on a compacted topic: a digest key stands in, the
    same for the same record, so the worker can dead-letter it."""
    odd = [42, {"name": "no id"}, {"id": ""}, {"id": 7}, 42]
    keys = [key for key, *_ in records(odd)]
    assert all(key and key.startswith(b"no-id:") for key in keys)
    assert keys[0] == keys[4] and len(set(keys)) == 4


def test_a_record_python_cannot_decode_goes_as_its_text() -> None:
    """A 5,000-digit integer: published as it came, for the worker to dead-letter; the
    valid records around it go too."""
    sample = payload(SAMPLE)[:2]
    body = json.dumps(sample)[:-1] + ', {"id": "big", "flight_number": ' + "9" * 5000 + "}]"
    sent = records(decode_array(body.encode()))
    assert len(sent) == 3
    assert [json.loads(value) for _, value, *_ in sent[:2]] == sample
    assert sent[2][1] == ('{"id": "big", "flight_number": ' + "9" * 5000 + "}").encode()


def test_a_record_over_kafka_s_limit_goes_as_the_fields_the_etl_reads() -> None:
    """1.5 MB of ignored details: the launch still reaches the worker, whole for the
    rule; a launch whose kept fields are too large goes as a note the rule refuses."""
    launch = payload(SAMPLE)[0]
    bulky = {**launch, "details": "x" * 1_500_000}
    huge_name = {**launch, "name": "n" * 1_500_000}
    (_, first, *_), (_, second, *_) = records([bulky, huge_name])
    assert json.loads(first) == {
        **{k: launch[k] for k in ("id", "flight_number", "name", "date_utc", "success")},
        "links": {"webcast": launch["links"]["webcast"]},
    }
    assert len(second) < 100 and b"over the producer's limit" in second
