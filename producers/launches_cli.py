"""``python -m producers launches``: the SpaceX API's launches, published to ``launches.raw``.

Each record of the API's answer goes as it came (compact JSON), keyed by its launch id
(a record with no usable id under a key made from its digest: the worker dead-letters
it). The request is the batch job's extract, with its timeouts and retries. ``--every-seconds``
fetches again and again (the topic is compacted by key: a launch's latest version is
what it keeps); ``--url file://...`` reads a local copy, as ``make run`` does.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
from typing import Any

from producers.send import Record, paced, send_all
from streams.launches.payload import Undecodable
from streams.launches.settings import DEFAULT_API_URL

#: Kafka's default record limit is 1 MB (1,048,588 bytes with the overhead).
MAX_VALUE_BYTES = 1_000_000
READ_FIELDS = ("id", "flight_number", "name", "date_utc", "success")


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("launches", help="publish the SpaceX API's launches to Kafka")
    parser.add_argument("--url", default=os.environ.get("SPACEX_API_URL", DEFAULT_API_URL))
    parser.add_argument("--topic", default="launches.raw")
    parser.add_argument("--every-seconds", type=float, help="fetch again this often (default once)")


def records(payload: list[Any]) -> list[Record]:
    """The payload's records as (key, value) pairs, in the payload's order.

    A record with no usable id still gets a key (``no-id:`` and a digest of its value):
    Kafka refuses a record without a key on a compacted topic, and the worker must see
    it to dead-letter it. A record Python cannot decode goes as its text (the worker
    dead-letters it as the batch job rejects it). A record over Kafka's 1 MB limit goes
    as the fields the ETL reads, or, if those are still too large (the rule refuses
    them anyway), as a note saying so.
    """
    out: list[Record] = []
    for record in payload:
        if isinstance(record, Undecodable):
            value = record.text.encode("utf-8", "surrogatepass")
        else:
            value = json.dumps(record, separators=(",", ":")).encode()
            if len(value) > MAX_VALUE_BYTES:
                value = json.dumps(_read_fields(record), separators=(",", ":")).encode()
        if len(value) > MAX_VALUE_BYTES:
            value = f"a record of {len(value)} bytes, over the producer's limit".encode()
        launch_id = record.get("id") if isinstance(record, dict) else None
        key = launch_id.encode("utf-8", "surrogatepass") if isinstance(launch_id, str) else b""
        out.append((key or b"no-id:" + hashlib.sha256(value).hexdigest()[:32].encode(), value))
    return out


def _read_fields(record: Any) -> Any:
    """Only what the ETL reads of ``record`` (models.py): the rest is ignored anyway."""
    if not isinstance(record, dict):
        return record
    kept = {name: record[name] for name in READ_FIELDS if name in record}
    links = record.get("links")
    if isinstance(links, dict) and "webcast" in links:
        kept["links"] = {"webcast": links["webcast"]}
    elif "links" in record and not isinstance(links, dict):
        kept["links"] = links
    return kept


async def run(args: argparse.Namespace) -> int:
    from streams.common.settings import KafkaSettings
    from streams.common.topics import declare_topics
    from streams.launches.extract import ExtractError, Policy, fetch_records
    from streams.launches.topology import topic_specs

    await declare_topics(
        args.bootstrap, topic_specs(), replication_factor=KafkaSettings().replication_factor
    )
    sent = 0
    while True:
        try:
            payload = await asyncio.to_thread(fetch_records, args.url, Policy())
        except ExtractError as exc:
            if not args.every_seconds:
                raise SystemExit(f"launches: {exc}") from exc
            sys.stderr.write(f"launches: {exc}; trying again in {args.every_seconds:g} s\n")
        else:
            batch = records(payload)
            sent += await send_all(args.bootstrap, args.topic, paced(batch, None), label="launches")
        if not args.every_seconds:
            return sent
        await asyncio.sleep(args.every_seconds)
