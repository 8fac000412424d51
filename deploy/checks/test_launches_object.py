"""The acceptance check the deploy runs once the ECS task stopped: the object the job
wrote to the real bucket, downloaded and compared with the API's answer, fetched again
here and transformed independently (plain json and datetime, nothing from
streams.launches).

Run from a checkout with the job's environment::

    S3_BUCKET=... [S3_KEY=launches.parquet] [AWS_REGION=...] [AWS_ENDPOINT_URL=...] \\
    [SPACEX_API_URL=...] python -m pytest -q -p no:cacheprovider deploy/checks

It is not part of ``make test`` (it needs a deployed bucket); the suite runs it through
the deploy command against an AWS emulator (tests/deploy/test_launches_deploy.py).
"""

from __future__ import annotations

import json
import os
import urllib.request
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from tests.support.launches import EXPECTED_SCHEMA, expected_rows, object_rows

#: The job's default, repeated: nothing here comes from the code under test.
DEFAULT_API_URL = "https://api.spacexdata.com/v4/launches"


@pytest.fixture(scope="module")
def api_records() -> list[dict[str, Any]]:
    url = os.environ.get("SPACEX_API_URL", DEFAULT_API_URL)
    with urllib.request.urlopen(url, timeout=60) as answer:
        records: list[dict[str, Any]] = json.loads(answer.read())
    return records


@pytest.fixture(scope="module")
def written() -> tuple[Any, list[tuple[Any, ...]]]:
    bucket = os.environ.get("S3_BUCKET")
    if not bucket:
        pytest.fail("S3_BUCKET is not set: the check needs the bucket the job wrote to")
    client = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)
    key = os.environ.get("S3_KEY", "launches.parquet")
    body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    return object_rows(body)


def test_the_object_has_the_seed_s_five_columns(written: tuple[Any, Any]) -> None:
    """Names, order and types: a UTC timestamp (not a string), nullable success/webcast."""
    schema, _ = written
    assert schema.remove_metadata() == EXPECTED_SCHEMA


def test_one_row_per_launch_id_of_the_api(
    written: tuple[Any, Any], api_records: list[dict[str, Any]]
) -> None:
    """As many rows as the API has distinct launch ids (flight numbers repeat)."""
    _, rows = written
    assert len(rows) == len({record["id"] for record in api_records}) > 0


def test_null_counts_match_the_api(
    written: tuple[Any, Any], api_records: list[dict[str, Any]]
) -> None:
    """Unknown outcomes and missing webcasts stay null, as many as the API has."""
    _, rows = written
    expected = expected_rows(api_records)
    assert sum(r[3] is None for r in rows) == sum(r[3] is None for r in expected)
    assert sum(r[4] is None for r in rows) == sum(r[4] is None for r in expected)


def test_every_row_and_its_order_match_an_independent_transform(
    written: tuple[Any, Any], api_records: list[dict[str, Any]]
) -> None:
    """Row for row, in launch-date order, what the seed's rules give."""
    _, rows = written
    assert rows == expected_rows(api_records)


def test_the_first_launch_is_falconsat(written: tuple[Any, Any]) -> None:
    """A known row of the real data: flight 1, FalconSat, 2006-03-24 22:30 UTC, failed."""
    _, rows = written
    assert rows[0][:4] == (1, "FalconSat", datetime(2006, 3, 24, 22, 30, tzinfo=UTC), False)
