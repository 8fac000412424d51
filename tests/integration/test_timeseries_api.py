"""The time-series API against two real workers on the embedded broker: every endpoint
from either worker, read-your-writes across workers, figures against numpy.

The expected series are computed here from what was sent (a dict of time -> value, the
last write of a time winning), never by the API's code.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest

from tests.support.timeseries import TimeSeriesWorkers, call, serving
from tests.support.workers import Worker

Expected = dict[int, float]  # Unix ms -> value
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def points(pairs: Sequence[tuple[float, float]]) -> list[dict[str, Any]]:
    return [{"ts": ts, "value": value} for ts, value in pairs]


def read_all(worker: Worker, series_id: str, query: str = "", limit: int = 0) -> Expected:
    """Every point, page after page (``limit`` per page when given), in columns."""
    found: Expected = {}
    cursor = ""
    while True:
        page_query = f"format=columns{query}{cursor}" + (f"&limit={limit}" if limit else "")
        answer = call(f"{worker.url}/series/{series_id}?{page_query}")
        assert answer.status == 200, answer
        times, values = answer.body["timestamps"], answer.body["values"]
        assert times == sorted(times) and len(set(times)) == len(times)
        assert not set(times) & set(found), "a point came on two pages"
        found.update(zip(times, values, strict=True))
        if answer.body["next"] is None:
            return found
        cursor = f"&cursor={answer.body['next']}"


def expected_metrics(expected: Expected) -> dict[str, Any]:
    times = np.array(sorted(expected), dtype=np.float64) / 1000
    values = np.array([expected[t] for t in sorted(expected)])
    slope = np.polyfit(times - times.mean(), values, 1)[0]
    return {
        "count": len(values),
        "min": values.min(),
        "max": values.max(),
        "mean": values.mean(),
        "std": values.std(),
        **{f"p{p}": np.percentile(values, p) for p in (50, 90, 95, 99)},
        "mean_interval_seconds": (times[-1] - times[0]) / (len(times) - 1),
        "slope_per_second": slope,
    }


@pytest.fixture
def two(timeseries: TimeSeriesWorkers) -> list[Worker]:
    workers = [timeseries.start(), timeseries.start()]
    for worker in workers:
        serving(worker)
    return workers


def test_writes_through_either_worker_are_read_back_from_the_other(two: list[Worker]) -> None:
    first, second = two
    rng = np.random.default_rng(11)
    stored: dict[str, Expected] = {}
    # Unordered points with repeated times: the last of a time in a request wins.
    for n in range(12):
        sent = [
            (T0 + int(t), float(v))
            for t, v in zip(rng.integers(0, 500, 300), rng.normal(size=300), strict=True)
        ]
        answer = call(f"{first.url}/series", "POST", {"name": f"s{n}", "points": points(sent)})
        assert answer.status == 201, answer
        expected = {ts * 1000: value for ts, value in sent}
        assert answer.body["count"] == len(expected)
        stored[answer.body["id"]] = expected
        # Read your write, at once, from the worker that did not take it.
        assert read_all(second, answer.body["id"]) == expected
    for series_id, expected in stored.items():
        # ISO times with offsets too; times already held are replaced.
        sent = [(T0 + 100 + k, 1000.0 + k) for k in range(50)]
        plus_one = timezone(timedelta(hours=1))
        iso = [
            {"ts": datetime.fromtimestamp(ts, plus_one).isoformat(), "value": v} for ts, v in sent
        ]
        answer = call(f"{second.url}/series/{series_id}/points", "POST", {"points": iso})
        assert answer.status == 200, answer
        expected.update({ts * 1000: value for ts, value in sent})
        assert answer.body == {"id": series_id, "count": len(expected)}
        assert read_all(first, series_id) == expected
    listed = call(f"{first.url}/series?limit=5")
    assert listed.status == 200 and listed.body["count"] == len(stored)


def test_every_endpoint_answers_the_same_from_either_worker(two: list[Worker]) -> None:
    first, second = two
    rng = np.random.default_rng(5)
    stored: dict[str, Expected] = {}
    for n in range(10):
        sent = [(T0 + 60 * k, float(v)) for k, v in enumerate(rng.gamma(2.0, 3.0, 400 + n))]
        created = call(f"{(first, second)[n % 2].url}/series", "POST", {"points": points(sent)})
        stored[created.body["id"]] = {ts * 1000: value for ts, value in sent}
    for series_id, expected in stored.items():
        start, end = T0 + 60 * 37, T0 + 60 * 301
        in_range = {t: v for t, v in expected.items() if start * 1000 <= t < end * 1000}
        assert read_all(first, series_id, f"&start={start}&end={end}", limit=7) == in_range
        for path in (
            f"/series/{series_id}",
            f"/series/{series_id}?start=2026-01-01T01:00:00Z&limit=3",
            f"/series/{series_id}?format=columns&end={end}",
            f"/series/{series_id}/metrics",
            f"/series/{series_id}/metrics?start={start}&end={end}",
            f"/series/{series_id}/forecast?horizon=5&level=50,99",
            "/series?limit=3",
            f"/series?limit=4&cursor={series_id}",
        ):
            one, other = call(first.url + path), call(second.url + path)
            assert one.status == 200, (path, one)
            assert one.body == other.body, path
        for query, subset in (("", expected), (f"?start={start}&end={end}", in_range)):
            figures = call(f"{second.url}/series/{series_id}/metrics{query}").body
            for name, value in expected_metrics(subset).items():
                assert figures[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name
    # Paging the list visits every series once, in id order; the count is exact.
    seen: list[str] = []
    cursor = ""
    while True:
        page = call(f"{second.url}/series?limit=3{cursor}").body
        assert page["count"] == len(stored)
        seen += [item["id"] for item in page["items"]]
        if page["next"] is None:
            break
        cursor = f"&cursor={page['next']}"
    assert seen == sorted(stored)


def test_a_deleted_series_is_gone_everywhere_and_the_count_follows(two: list[Worker]) -> None:
    first = two[0]
    ids = [
        call(f"{first.url}/series", "POST", {"points": points([(T0, 1.0)])}).body["id"]
        for _ in range(6)
    ]
    gone = ids[:3]
    for n, series_id in enumerate(gone):
        answer = call(f"{two[n % 2].url}/series/{series_id}", "DELETE")
        assert answer.status == 204 and answer.body is None
    for worker in two:
        for series_id in gone:
            for path in ("", "/metrics", "/forecast?horizon=2"):
                answer = call(f"{worker.url}/series/{series_id}{path}")
                assert answer.status == 404, (path, answer)
                assert answer.body["error"]
            appended = call(
                f"{worker.url}/series/{series_id}/points", "POST", {"points": points([(T0, 2.0)])}
            )
            assert appended.status == 404
            assert call(f"{worker.url}/series/{series_id}", "DELETE").status == 404
        listed = call(f"{worker.url}/series").body
        assert listed["count"] == 3 and {item["id"] for item in listed["items"]} == set(ids[3:])


def test_a_retried_request_with_the_same_idempotency_key_is_applied_once(two: list[Worker]) -> None:
    first, second = two
    body = {"name": "retried", "points": points([(T0, 1.0), (T0 + 1, 2.0)])}
    key = {"Idempotency-Key": "create-7f3a"}
    created = call(f"{first.url}/series", "POST", body, headers=key)
    again = call(f"{second.url}/series", "POST", body, headers=key)
    assert created.status == again.status == 201 and created.body == again.body
    assert call(f"{first.url}/series").body["count"] == 1
    series_id = created.body["id"]
    # A key replayed after a later write does not undo that write.
    append_key = {"Idempotency-Key": "append-1"}
    old = {"points": points([(T0, 10.0)])}
    assert (
        call(f"{first.url}/series/{series_id}/points", "POST", old, headers=append_key).status
        == 200
    )
    newer = {"points": points([(T0, 20.0)])}
    assert call(f"{second.url}/series/{series_id}/points", "POST", newer).status == 200
    replay = call(f"{second.url}/series/{series_id}/points", "POST", old, headers=append_key)
    assert replay.status == 200
    assert read_all(first, series_id) == {T0 * 1000: 20.0, (T0 + 1) * 1000: 2.0}
    # The same key with another body is refused, not applied.
    other = call(
        f"{first.url}/series/{series_id}/points",
        "POST",
        {"points": points([(T0, 99.0)])},
        headers=append_key,
    )
    assert other.status == 422 and other.body["error"]
    assert read_all(second, series_id)[T0 * 1000] == 20.0


def test_bad_requests_are_refused_with_their_status_and_never_stored(two: list[Worker]) -> None:
    first, _ = two
    series_id = call(f"{first.url}/series", "POST", {"points": points([(T0, 1.0)])}).body["id"]
    url = f"{first.url}/series/{series_id}/points"
    refused = [
        (call(url, "POST", {"points": [{"ts": T0, "value": "x"}]}), 422),
        (call(url, "POST", {"points": [{"ts": T0, "value": True}]}), 422),
        (call(url, "POST", raw=b'{"points": [{"ts": 1, "value": 1e999}]}'), 422),
        (call(url, "POST", {"points": [{"ts": "yesterday", "value": 1}]}), 422),
        (call(url, "POST", {"points": [{"ts": "2026-01-01T00:00:00", "value": 1}]}), 422),
        (call(url, "POST", {"points": [{"ts": 99999999999999, "value": 1}]}), 422),
        (call(url, "POST", raw=b'{"points": [{"ts": 1, "value": NaN}]}'), 400),
        (call(url, "POST", raw=b"{", headers={}), 400),
        (call(url, "POST", {"points": []}, headers={"Content-Type": "text/plain"}), 415),
        (call(url, "POST", raw=b"[" + b"1," * 5_000_000 + b"1]"), 413),
        (call(url, "PUT", {"points": []}), 405),
        (call(f"{first.url}/series/{'0' * 32}/points", "POST", {"points": []}), 404),
        (call(f"{first.url}/series/not-an-id"), 404),
        (call(f"{first.url}/series/{series_id}/forecast"), 400),
        (call(f"{first.url}/series/{series_id}?limit=0"), 400),
        (call(f"{first.url}/series/{series_id}?start=tomorrow"), 400),
    ]
    for answer, status in refused:
        assert answer.status == status, answer
        assert isinstance(answer.body, dict) and answer.body["error"], answer
    assert refused[10][0].headers["Allow"]
    assert read_all(first, series_id) == {T0 * 1000: 1.0}


def test_the_forecast_beats_seasonal_naive_on_a_seasonal_series(two: list[Worker]) -> None:
    first, second = two
    rng = np.random.default_rng(3)
    season, days, held_out = 24, 30, 48
    hours = np.arange(season * days)
    values = (
        50 + 0.02 * hours + 10 * np.sin(2 * np.pi * hours / season) + rng.normal(0, 1.0, len(hours))
    )
    history = [
        (T0 + 3600 * int(h), float(v))
        for h, v in zip(hours[:-held_out], values[:-held_out], strict=True)
    ]
    series_id = call(f"{first.url}/series", "POST", {"points": points(history)}).body["id"]
    answer = call(f"{second.url}/series/{series_id}/forecast?horizon={held_out}&level=95")
    assert answer.status == 200, answer
    rows = answer.body["points"]
    assert [row["ts"] for row in rows][:2] == [
        "2026-01-29T00:00:00.000Z",
        "2026-01-29T01:00:00.000Z",
    ]
    predicted = np.array([row["value"] for row in rows])
    actual = values[-held_out:]
    train = values[:-held_out]
    scale = np.mean(np.abs(train[season:] - train[:-season]))
    mase = np.mean(np.abs(actual - predicted)) / scale
    naive_mase = np.mean(np.abs(actual - np.tile(train[-season:], 2))) / scale
    assert answer.body["season"] == season
    assert mase < naive_mase, (mase, naive_mase)
    lower = np.array([row["intervals"][0]["lower"] for row in rows])
    upper = np.array([row["intervals"][0]["upper"] for row in rows])
    assert np.mean((lower <= actual) & (actual <= upper)) >= 0.85
