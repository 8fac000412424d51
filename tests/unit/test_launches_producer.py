"""``python -m producers launches``: every record goes keyed, as it came."""

from __future__ import annotations

import json

from producers.launches_cli import records
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
