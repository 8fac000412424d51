"""``GET /series``: the count of series and a page of them, gathered from every
partition (pure; views.py asks each partition's owner for its part).

Each partition keeps its count of series under ``count``, written with the meta in one
phase (store.py), so the sum over the partitions is exact whenever every partition
answers; the API answers 503 rather than a partial count when one cannot. Pages are in
id order; ``next`` is the last id of the page, and the following page starts after it.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from streams.common.errors import BadRequest
from streams.timeseries.commands import SERIES_ID
from streams.timeseries.points import iso
from streams.timeseries.store import COUNT

Part = dict[str, Any]  # {"count": int, "items": [summary, ...]}


class Readable(Protocol):
    def get(self, key: str) -> Any: ...

    def items_between(self, begin: str, end: str) -> Iterable[tuple[str, Any]]: ...


def cursor(query: Mapping[str, str]) -> str:
    """The id to go on after ("" for the first page); 400 for anything else."""
    after = query.get("cursor") or ""
    if after and not SERIES_ID.fullmatch(after):
        raise BadRequest("cursor is the next field of a previous page", parameter="cursor")
    return after


def part(io: Readable, after: str, limit: int) -> Part:
    """One partition's count, and its first ``limit + 1`` series after ``after`` (one
    more than a page: the merge learns whether a next page exists)."""
    counted = io.get(COUNT) or {"series": 0}
    items: list[dict[str, Any]] = []
    for key, meta in io.items_between(f"s|{after}", "s}"):
        if key == f"s|{after}":
            continue
        items.append(summary(meta))
        if len(items) > limit:
            break
    return {"count": counted["series"], "items": items}


def summary(meta: dict[str, Any]) -> dict[str, Any]:
    index = meta["index"]
    return {
        "id": meta["id"],
        "name": meta.get("name"),
        "count": meta["count"],
        "created": iso(meta["created"]),
        "first": iso(index[0][0]) if index else None,
    }


def merge(parts: Iterable[Part], limit: int) -> dict[str, Any]:
    """The page: the total count, the first ``limit`` series in id order, ``next``."""
    parts = list(parts)
    merged = list(heapq.merge(*(p["items"] for p in parts), key=lambda item: item["id"]))
    page = merged[:limit]
    following = page[-1]["id"] if len(merged) > limit else None
    return {"count": sum(p["count"] for p in parts), "items": page, "next": following}
