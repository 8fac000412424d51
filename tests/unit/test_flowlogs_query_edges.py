"""Edges of the flow-logs views' parameters, asked over HTTP of a real Faust app as a user
asks them: fractional and far-off times, non-ASCII digits, filters on /flowlogs/windows."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast
from urllib.parse import quote

import aiohttp
import faust
import orjson
import pyarrow as pa
import pytest
from aiohttp.test_utils import TestServer
from yarl import URL

from streams.flowlogs.chunks import conform
from streams.flowlogs.lake import FlowLake
from streams.flowlogs.rollups import OFFSET_COLUMN
from streams.flowlogs.runtime import RECORDS, FlowPipeline
from streams.flowlogs.views import register_views
from tests.support.ports import free_port

T = 1_796_268_462  # 2026-12-03T03:27:42Z
T_ISO = "2026-12-03T03:27:42"
#: Flows per start second: 4 exactly at T, 3 a second later, 2 an hour later.
STARTS = {T: 4, T + 1: 3, T + 3600: 2}
ALL_FLOWS = sum(STARTS.values())
HOUR = T - T % 3600
VPC = "111122223333|vpc-a"


def flow(start: int, offset: int) -> dict[str, Any]:
    return {
        "version": 2, "account_id": "111122223333", "vpc_id": "vpc-a",
        "subnet_id": "subnet-1", "interface_id": "eni-1", "srcaddr": "10.0.0.1",
        "dstaddr": "10.0.0.2", "srcport": 40000, "dstport": 443, "protocol": 6,
        "packets": 1, "bytes": 100, "start": start, "end": start + 10,
        "action": "ACCEPT", "log_status": "OK", OFFSET_COLUMN: offset,
    }  # fmt: skip


def write_lake(root: Path) -> None:
    rows = [flow(start, 0) for start, count in STARTS.items() for _ in range(count)]
    for offset, row in enumerate(rows):
        row[OFFSET_COLUMN] = offset
    table = conform(
        pa.Table.from_pylist([{k: v for k, v in r.items() if k != OFFSET_COLUMN} for r in rows])
    )
    table = table.append_column(
        OFFSET_COLUMN, pa.array([r[OFFSET_COLUMN] for r in rows], pa.int64())
    )
    FlowLake.open(str(root)).write_batch(0, 0, len(rows) - 1, table)


class RollupDb:
    """What RocksPartition reads of a partition: its raw keys in order, from a key on."""

    def __init__(self, entries: dict[str, dict[str, int]]) -> None:
        self.raw = sorted((orjson.dumps(k), orjson.dumps(v)) for k, v in entries.items())

    def items(self, from_key: bytes) -> Iterator[tuple[bytes, bytes]]:
        return iter([(key, value) for key, value in self.raw if key >= from_key])


def rollup_table() -> Any:
    """The VPC's hourly rollups: the hour of T and the next one."""
    entries = {
        f"1h|{HOUR:012d}|111122223333|vpc-a|subnet-1|eni-1|6|ACCEPT": {"flows": 7},
        f"1h|{HOUR + 3600:012d}|111122223333|vpc-a|subnet-1|eni-1|6|ACCEPT": {"flows": 2},
    }
    db = RollupDb(entries)
    return SimpleNamespace(name="rollups", data=SimpleNamespace(_db_for_partition=lambda p: db))


@asynccontextmanager
async def worker(root: Path) -> AsyncIterator[str]:
    """A worker serving the flow-logs views over the lake at ``root``; it owns every key."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = faust.App(
        f"flowlogs-edges-{port}",
        broker="kafka://127.0.0.1:1",
        autodiscover=False,
        web_host="127.0.0.1",
        web_port=port,
    )
    app.router.external_topic_key_store = lambda topic, key: URL(url)  # type: ignore[method-assign]
    ready = asyncio.Event()
    ready.set()
    pipeline = SimpleNamespace(
        app=app,
        settings=SimpleNamespace(lake=str(root), partitions=1, alerts_kept=100),
        ready=ready,
        topics={RECORDS: object()},
        table=rollup_table(),
        recent_alerts=deque(),
    )
    register_views(cast(FlowPipeline, pipeline))
    server = TestServer(app.web.web_app, host="127.0.0.1", port=port)
    await server.start_server()
    try:
        yield url
    finally:
        await server.close()
        await app.http_client.close()


async def get(base: str, path: str, **params: str) -> tuple[int, Any]:
    query = "&".join(f"{name}={quote(value, safe='')}" for name, value in params.items())
    async with aiohttp.ClientSession() as session, session.get(f"{base}{path}?{query}") as answer:
        return answer.status, await answer.json()


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    write_lake(tmp_path)
    return tmp_path


# ---- F1: start is inclusive on the instant given -------------------------------------


async def test_a_fractional_start_leaves_out_flows_of_the_second_before_it(lake: Path) -> None:
    """Flows start on whole seconds: one at 42 s began before 42.5 s."""
    async with worker(lake) as base:
        after = await get(base, "/flowlogs/summary", start=f"{T_ISO}.5Z")
        between = await get(base, "/flowlogs/summary", start=f"{T_ISO}.5Z", end=f"{T_ISO}.6Z")
        whole = await get(base, "/flowlogs/summary", start=f"{T_ISO}Z")

    assert after[0] == 200 and after[1]["flows"] == ALL_FLOWS - STARTS[T]
    assert between[0] == 200 and between[1]["flows"] == 0
    assert whole[1]["flows"] == ALL_FLOWS


async def test_an_end_before_start_in_the_same_second_is_still_refused(lake: Path) -> None:
    """Rounding both up makes them equal; the instants as given are what is compared."""
    async with worker(lake) as base:
        status, body = await get(base, "/flowlogs/summary", start=f"{T_ISO}.5Z", end=f"{T_ISO}.2Z")

    assert (status, body["error"]) == (400, "end is before start")


async def test_a_start_in_the_last_second_of_year_9999_answers_nothing(lake: Path) -> None:
    """Rounded up, such a start is past the last hour a date can name: still no flow."""
    async with worker(lake) as base:
        status, body = await get(base, "/flowlogs/summary", start="9999-12-31T23:59:59.5Z")

    assert (status, body["flows"]) == (200, 0)


# ---- F2: years below 1000 -------------------------------------------------------------


@pytest.mark.parametrize("start", ["0500-01-01T00:00:00Z", "0999-12-31T23:00:00Z"])
async def test_a_start_before_year_1000_covers_every_flow(lake: Path, start: str) -> None:
    async with worker(lake) as base:
        summary = await get(base, "/flowlogs/summary", start=start)
        hourly = await get(base, "/flowlogs/hourly", start=start, end="2027-01-01T00:00:00Z")

    assert summary == (200, {**summary[1], "flows": ALL_FLOWS})
    assert hourly[0] == 200
    assert [hour["flows"] for hour in hourly[1]] == [STARTS[T] + STARTS[T + 1], STARTS[T + 3600]]


# ---- F3: protocol numbers in ASCII digits only ----------------------------------------


@pytest.mark.parametrize("view", ["/flowlogs/summary", "/flowlogs/hourly", "/flowlogs/alerts"])
@pytest.mark.parametrize("protocol", ["²", "①", "\u0666", "\uff16"])  # ٦, fullwidth 6
async def test_a_protocol_in_other_digits_is_a_400_naming_protocol(
    lake: Path, view: str, protocol: str
) -> None:
    async with worker(lake) as base:
        status, body = await get(base, view, protocol=protocol)

    assert status == 400
    assert body["parameter"] == "protocol"
    assert "neither a number 0-255 nor a known name" in body["error"]


async def test_a_protocol_in_ascii_digits_or_by_name_still_filters(lake: Path) -> None:
    async with worker(lake) as base:
        tcp = await get(base, "/flowlogs/summary", protocol="6")
        named = await get(base, "/flowlogs/summary", protocol="TCP")
        udp = await get(base, "/flowlogs/summary", protocol="017")

    assert (tcp[1]["flows"], named[1]["flows"], udp[1]["flows"]) == (ALL_FLOWS, ALL_FLOWS, 0)


# ---- F12: /flowlogs/windows honours account_id and vpc_id -----------------------------


@pytest.mark.parametrize(
    "outside", [{"account_id": "999999999999"}, {"vpc_id": "vpc-zzz"}, {"account_id": "1,2"}]
)
async def test_windows_of_a_vpc_outside_the_filters_are_none(
    lake: Path, outside: dict[str, str]
) -> None:
    async with worker(lake) as base:
        status, body = await get(base, "/flowlogs/windows", vpc=VPC, resolution="1h", **outside)

    assert (status, body) == (200, {"vpc": VPC, "resolution": "1h", "windows": []})


async def test_windows_of_a_vpc_the_filters_name_are_all_there(lake: Path) -> None:
    async with worker(lake) as base:
        status, body = await get(
            base,
            "/flowlogs/windows",
            vpc=VPC,
            resolution="1h",
            account_id="000000000000,111122223333",
            vpc_id="vpc-a",
        )

    assert status == 200
    assert [window["flows"] for window in body["windows"]] == [7, 2]


async def test_windows_start_rounded_up_leaves_out_the_window_it_falls_in(lake: Path) -> None:
    """Windows whose start is in the range: the hour of T starts before T + 0.5 s."""
    hour = f"{T_ISO[:13]}:00:00"
    async with worker(lake) as base:
        status, body = await get(
            base, "/flowlogs/windows", vpc=VPC, resolution="1h", start=f"{hour}.5Z"
        )

    assert status == 200
    assert [window["flows"] for window in body["windows"]] == [2]


# ---- F13: in range once in UTC ----------------------------------------------------------


@pytest.mark.parametrize("start", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:30:00+01:00"])
async def test_a_time_outside_the_years_once_in_utc_is_a_400_saying_so(
    lake: Path, start: str
) -> None:
    async with worker(lake) as base:
        status, body = await get(base, "/flowlogs/summary", start=start)

    assert status == 400
    assert body["parameter"] == "start"
    assert "out of range" in body["error"]
    assert "format" not in body["error"] and "like 2025" not in body["error"]
