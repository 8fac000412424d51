"""Reading a series page by page: every point once, in order, whatever the page size,
range and appends between pages; bad parameters a 400 naming them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from streams.common.errors import BadRequest
from streams.common.exactly_once import PartitionState
from streams.timeseries import chunks, reads, store
from streams.timeseries.points import Points

SERIES = "f" * 32


def series(times: list[int]) -> dict[str, Any]:
    table: dict[str, Any] = {}
    state = PartitionState(table)
    store.apply(state, {"op": "create", "id": SERIES, "rid": "c", "at": 0}, _points([]), 0)
    store.apply(state, {"op": "append", "id": SERIES, "rid": "a"}, _points(times), 0)
    state.flush_in_phases(store.phase)
    return table


def _points(times: list[int]) -> Points:
    array = np.array(sorted(set(times)), np.int64)
    return Points(array, array.astype(np.float64) / 10)


def all_pages(table: dict[str, Any], start: int | None, end: int | None, limit: int) -> list[int]:
    meta, seen, cursor = table[chunks.meta_key(SERIES)], [], None
    while True:
        points, cursor = reads.read_page(
            table.get, meta, start if cursor is None else cursor, end, limit
        )
        seen.extend(points.times.tolist())
        assert len(points) <= limit
        if cursor is None:
            return seen


@pytest.mark.parametrize("limit", [1, 7, 1024, 1025, 10_000])
@pytest.mark.parametrize(("start", "end"), [(None, None), (500, 2600), (2048, None), (None, 3)])
def test_pages_give_every_point_of_the_range_once_in_order(
    limit: int, start: int | None, end: int | None
) -> None:
    times = list(range(0, 6000, 2))
    table = series(times)
    expected = [t for t in times if (start is None or t >= start) and (end is None or t < end)]
    assert all_pages(table, start, end, limit) == expected


def test_a_page_reads_only_the_chunks_it_needs() -> None:
    table = series(list(range(50_000)))
    read: list[str] = []

    def get(key: str) -> Any:
        read.append(key)
        return table[key]

    points, cursor = reads.read_page(get, table[chunks.meta_key(SERIES)], None, None, 100)
    assert points.times.tolist() == list(range(100)) and cursor == 100
    assert len(read) == 1


def test_answers_in_rows_or_columns() -> None:
    points = Points(np.array([1000, 2500], np.int64), np.array([1.5, -2.0]))
    assert reads.page_answer(SERIES, points, None, "rows") == {
        "id": SERIES,
        "points": [
            {"ts": "1970-01-01T00:00:01.000Z", "value": 1.5},
            {"ts": "1970-01-01T00:00:02.500Z", "value": -2.0},
        ],
        "next": None,
    }
    assert reads.page_answer(SERIES, points, 3000, "columns") == {
        "id": SERIES,
        "timestamps": [1000, 2500],
        "values": [1.5, -2.0],
        "next": "3000",
    }


@pytest.mark.parametrize(
    ("query", "ms"),
    [
        ({"start": "1700000000"}, 1_700_000_000_000),
        ({"start": "1700000000.5"}, 1_700_000_000_500),
        ({"start": "2023-11-14T22:13:20Z"}, 1_700_000_000_000),
        ({"start": "2023-11-14T23:13:20 01:00"}, 1_700_000_000_000),
        ({"start": ""}, None),
        ({}, None),
    ],
)
def test_times_in_queries_as_in_points(query: dict[str, str], ms: int | None) -> None:
    assert reads.time_range(query) == (ms, None)


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"start": "yesterday"}, "start"),
        ({"start": "2023-11-14T22:13:20"}, "start"),
        ({"end": "1e9"}, "end"),
        ({"start": "20", "end": "10"}, "end"),
        ({"limit": "0"}, "limit"),
        ({"limit": "10001"}, "limit"),
        ({"limit": "²"}, "limit"),
        ({"cursor": "abc"}, "cursor"),
        ({"cursor": "1" * 21}, "cursor"),
        ({"cursor": "--1"}, "cursor"),
        ({"cursor": "-"}, "cursor"),
        ({"cursor": "1-"}, "cursor"),
        ({"cursor": "+1"}, "cursor"),
        ({"cursor": " 1"}, "cursor"),
        ({"cursor": "1_000"}, "cursor"),
        ({"cursor": "\u0661"}, "cursor"),
        ({"cursor": "1" * 20}, "cursor"),
        ({"format": "csv"}, "format"),
    ],
)
def test_bad_parameters_are_a_400_naming_them(query: dict[str, str], parameter: str) -> None:
    with pytest.raises(BadRequest) as refused:
        reads.time_range(query)
        reads.page_request(query, 10_000)
    assert refused.value.details["parameter"] == parameter


@pytest.mark.parametrize("cursor", ["0", "1700000000000", "-1", "-2208988800000"])
def test_a_cursor_is_any_integer_time_a_page_can_give(cursor: str) -> None:
    assert reads.page_request({"cursor": cursor}, 10)[1] == int(cursor)


@pytest.mark.parametrize(
    ("wanted", "chunks_read"),
    [(0, 0), (1, 1), (999, 1), (1000, 1), (1001, 2), (2500, 3), (5000, 5), (5001, 5), (10**6, 5)],
)
def test_a_tail_is_the_last_points_read_from_only_the_chunks_holding_them(
    wanted: int, chunks_read: int
) -> None:
    """The last ``wanted`` points across chunk boundaries (all of them when the series is
    shorter), reading only the last chunks that hold them, each once."""
    times = list(range(0, 10_000, 2))
    table = series(times)
    meta = table[chunks.meta_key(SERIES)]
    assert [entry[1] for entry in meta["index"]] == [1000] * 5
    read: list[str] = []

    def get(key: str) -> Any:
        read.append(key)
        return table[key]

    points = reads.read_tail(get, meta, wanted)

    expected = times[-wanted:] if wanted else []
    assert points.times.tolist() == expected
    assert points.values.tolist() == [t / 10 for t in expected]
    assert len(read) == len(set(read)) == chunks_read
    last_chunks = [chunks.chunk_key(SERIES, entry[2]) for entry in meta["index"][5 - chunks_read :]]
    assert sorted(read) == sorted(last_chunks)


def test_the_tail_of_an_empty_series_is_empty_and_reads_nothing() -> None:
    table = series([])
    read: list[str] = []

    def get(key: str) -> Any:
        read.append(key)
        return table[key]

    assert len(reads.read_tail(get, table[chunks.meta_key(SERIES)], 10)) == 0
    assert read == []


@pytest.mark.parametrize("wanted", [1, 700, 1500, 3000])
def test_the_tail_after_appends_out_of_order_is_the_last_points_in_time(wanted: int) -> None:
    """Chunks split and merged unevenly by appends in any order: the tail is still the
    last ``wanted`` points in time, with the values last written."""
    rng = np.random.default_rng(0)
    table: dict[str, Any] = {}
    state = PartitionState(table)
    store.apply(state, {"op": "create", "id": SERIES, "rid": "c", "at": 0}, _points([]), 0)
    expected: dict[int, float] = {}
    for n in range(12):
        base = int(rng.choice([0, 5_000, 50_000]))
        times = np.unique(rng.integers(base, base + 20_000, int(rng.choice([3, 300, 1500]))))
        values = rng.normal(size=len(times))
        expected.update(zip(times.tolist(), values.tolist(), strict=True))
        store.apply(state, {"op": "append", "id": SERIES, "rid": f"a{n}"}, Points(times, values), 0)
    state.flush_in_phases(store.phase)
    meta = table[chunks.meta_key(SERIES)]
    assert len({entry[1] for entry in meta["index"]}) > 1  # chunks of several sizes

    points = reads.read_tail(table.get, meta, wanted)

    tail = sorted(expected.items())[-wanted:]
    assert points.times.tolist() == [t for t, _ in tail]
    assert points.values.tolist() == [v for _, v in tail]
