"""``GET /series`` over partitions (streams/timeseries/listing.py): each partition's part
read from a real RocksDB table, merged into pages in id order with the exact count;
paging visits every series once; a malformed cursor is a 400 naming it."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from streams.common.errors import BadRequest
from streams.common.exactly_once import PartitionState
from streams.common.table_io import RocksPartition
from streams.timeseries import listing, models, store
from streams.timeseries.points import Points, iso
from tests.support.fake_kafka import Producer, Store, rocks_table

PARTITIONS = 8
NOW = 1_800_000_000_000
FIRST_POINT = 5_000


def series_ids(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.getrandbits(128):032x}" for _ in range(count)]


def placed(series_id: str, partitions: int) -> int:
    """Any placement will do; this one is uneven, as hashing is."""
    return int(series_id, 16) % partitions


def points(n: int) -> Points:
    """Series n holds n % 3 points (some none), from FIRST_POINT on."""
    times = FIRST_POINT + 1000 * np.arange(n % 3, dtype=np.int64)
    return Points(times, times.astype(np.float64))


def expected_summary(series_id: str, n: int) -> dict[str, Any]:
    return {
        "id": series_id,
        "name": f"series {n}",
        "count": n % 3,
        "created": iso(NOW + n),
        "first": iso(FIRST_POINT) if n % 3 else None,
    }


async def write(io: RocksPartition, commands: list[tuple[dict[str, Any], Points]]) -> None:
    state = PartitionState(io)
    for command, given in commands:
        store.apply(state, command, given, NOW)
    state.flush_in_phases(store.phase)
    await io.write(Producer(lambda *_: None))


async def stored(
    tmp_path: Path, ids: list[str], partitions: int = PARTITIONS
) -> list[RocksPartition]:
    """``ids`` created (series n named "series n", created at NOW + n) over ``partitions``
    partitions of one RocksDB-backed table."""
    table = rocks_table(Store(tmp_path), "series", "timeseries-series-changelog")
    parts = []
    for partition in range(partitions):
        io = RocksPartition(table, partition)
        creates = [
            ({"op": "create", "id": sid, "rid": f"c{n}", "name": f"series {n}", "at": NOW + n},
             points(n))
            for n, sid in enumerate(ids)
            if placed(sid, partitions) == partition
        ]  # fmt: skip
        await write(io, creates)
        parts.append(io)
    return parts


def page(parts: list[RocksPartition], query: dict[str, str], limit: int) -> dict[str, Any]:
    """One page as GET /series answers it: every partition's part, merged."""
    after = listing.cursor(query)
    return listing.merge([listing.part(io, after, limit) for io in parts], limit)


def every_page(parts: list[RocksPartition], limit: int) -> list[dict[str, Any]]:
    pages = [page(parts, {}, limit)]
    while pages[-1]["next"] is not None:
        assert len(pages) < 1000, "paging does not end"
        pages.append(page(parts, {"cursor": pages[-1]["next"]}, limit))
    return pages


async def test_a_page_counts_every_series_and_lists_the_first_in_id_order(
    tmp_path: Path,
) -> None:
    ids = series_ids(250)
    parts = await stored(tmp_path, ids)
    assert len({placed(sid, PARTITIONS) for sid in ids}) == PARTITIONS

    first = page(parts, {}, 10)

    models.SeriesList.model_validate(first)
    ordered = sorted(ids)
    assert first["count"] == 250
    assert [item["id"] for item in first["items"]] == ordered[:10]
    assert first["next"] == ordered[9]
    by_id = {sid: n for n, sid in enumerate(ids)}
    assert first["items"] == [expected_summary(sid, by_id[sid]) for sid in ordered[:10]]


async def test_paging_with_limit_7_visits_each_of_250_series_exactly_once(
    tmp_path: Path,
) -> None:
    ids = series_ids(250, seed=1)
    parts = await stored(tmp_path, ids)

    pages = every_page(parts, 7)

    seen = [item["id"] for p in pages for item in p["items"]]
    assert seen == sorted(ids)
    assert len(pages) == 36  # 35 full pages and one of 5
    assert [len(p["items"]) for p in pages] == [7] * 35 + [5]
    assert {p["count"] for p in pages} == {250}
    assert [p["next"] for p in pages[:-1]] == [p["items"][-1]["id"] for p in pages[:-1]]


@pytest.mark.parametrize(
    ("total", "limit", "partitions", "sizes"),
    [
        (0, 7, 3, [0]),
        (5, 7, 3, [5]),
        (7, 7, 3, [7]),
        (8, 7, 3, [7, 1]),
        (14, 7, 3, [7, 7]),
        (15, 7, 1, [7, 7, 1]),
        (8, 7, 1, [7, 1]),
        (1, 1, 8, [1]),
    ],
)
async def test_next_is_given_only_when_more_series_follow(
    tmp_path: Path, total: int, limit: int, partitions: int, sizes: list[int]
) -> None:
    """The last page has no next, even when it is full; no empty page follows."""
    ids = series_ids(total, seed=total)
    parts = await stored(tmp_path, ids, partitions)

    pages = every_page(parts, limit)

    assert [len(p["items"]) for p in pages] == sizes
    assert pages[-1]["next"] is None
    assert all(p["next"] is not None for p in pages[:-1])
    assert [item["id"] for p in pages for item in p["items"]] == sorted(ids)
    assert {p["count"] for p in pages} == {total}


async def test_deleted_series_leave_the_count_and_the_pages(tmp_path: Path) -> None:
    """A deleted series is neither counted nor listed, and a cursor naming it (deleted
    after its page was read) still goes on after it."""
    ids = series_ids(40, seed=2)
    parts = await stored(tmp_path, ids, 4)
    ordered = sorted(ids)
    first = page(parts, {}, 10)
    assert first["next"] == ordered[9]
    gone = [ordered[9], ordered[10], ordered[25]]
    for sid in gone:
        io = parts[placed(sid, 4)]
        await write(io, [({"op": "delete", "id": sid, "rid": f"d-{sid}"}, points(0))])

    second = page(parts, {"cursor": first["next"]}, 10)

    assert second["count"] == 37
    kept = [sid for sid in ordered if sid not in gone]
    assert [item["id"] for item in second["items"]] == kept[9:19]
    assert [item["id"] for p in every_page(parts, 10) for item in p["items"]] == kept


@pytest.mark.parametrize(
    "cursor",
    [
        "zz",
        "A" * 32,
        "a" * 31,
        "a" * 33,
        " " + "a" * 31,
        "s|" + "a" * 30,
        "a" * 32 + "\n",
        "1700000000000",
    ],
)
def test_a_malformed_cursor_is_a_400_naming_it(cursor: str) -> None:
    with pytest.raises(BadRequest) as refused:
        listing.cursor({"cursor": cursor})
    assert refused.value.status == 400
    assert refused.value.details == {"parameter": "cursor"}


def test_no_cursor_is_the_first_page_and_a_series_id_goes_on_after_it() -> None:
    assert listing.cursor({}) == ""
    assert listing.cursor({"cursor": ""}) == ""
    assert listing.cursor({"cursor": "0123456789abcdef" * 2}) == "0123456789abcdef" * 2
