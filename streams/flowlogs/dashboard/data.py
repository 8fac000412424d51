"""The dashboard's questions to the lake: one per figure, all over the same selection.

They run on the worker views' own code (streams/flowlogs/query.py): the summary, the
top addresses and the hourly figures are the views' questions themselves, so the
dashboard shows exactly what ``/flowlogs/summary``, ``/top`` and ``/hourly`` answer for
the same filters. One render asks them all over one listing of the lake (``ask_all``),
so its figures agree with each other while workers add files.

A selection narrowed by any filter but time is copied into memory once (its seven
columns) when it holds at most half a million flows, and the questions are asked of the
copy: one scan of the files instead of six. A broader selection is read from the files
by each question: a copy of an unfiltered day would hold the whole lake in memory
(about 1 GB for 10 million flows) and is slower to query than the files (measured).

A file that cannot be read (not Parquet, truncated, another schema) is left out and
named in ``Answers.skipped`` and ``Catalog.skipped`` (query.py), so the page can say
which files its figures lack instead of showing nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from streams.flowlogs.dashboard.geo import Countries, Ends, by_country
from streams.flowlogs.dashboard.selection import Selection
from streams.flowlogs.filters import Filters
from streams.flowlogs.query import (
    FLOW,
    HOURLY,
    SUMMARY,
    Copy,
    LakeQueries,
    Question,
    Rows,
    top_question,
)

#: Rows of the top-talker tables; the top-10 bars are their first ten rows (the same
#: ordering, so the same ten the views' ``limit=10`` answers).
TABLE_ROWS = 100
BARS = 10
#: Conversations the Sankey is drawn from, before its node cap.
CONVERSATIONS = 60
#: Unreadable files the page's message names at most.
NAMED = 3
#: Values each filter's list offers at most.
OPTIONS = 1000
OPTION_COLUMNS = ("account_id", "vpc_id", "subnet_id", "interface_id", "protocol")
#: A narrowed selection is copied once when it holds at most this many flows (~35 MB of
#: these seven columns), instead of read from the files by each of the six questions.
NARROW_COPY = Copy(
    ("srcaddr", "dstaddr", "bytes", "packets", "action", "log_status", "start"), 500_000
)


@dataclass(frozen=True)
class Answers:
    """Everything one render draws."""

    summary: dict[str, int]
    sources: list[dict[str, Any]]  # top srcaddr, TABLE_ROWS at most
    destinations: list[dict[str, Any]]  # top dstaddr
    hourly: list[dict[str, Any]]
    countries: Countries
    conversations: list[dict[str, Any]]  # {"srcaddr", "dstaddr", "bytes", "packets", "flows"}
    #: Files in the selection's hours left out as unreadable (query.Reading.skipped).
    skipped: tuple[str, ...] = ()


@dataclass(frozen=True)
class Catalog:
    """What the lake holds, for the filters' lists and the time presets."""

    options: dict[str, list[str]]
    earliest: int | None = None
    latest: int | None = None
    #: Files left out as unreadable (query.Reading.skipped).
    skipped: tuple[str, ...] = ()


# The flows grouped by their two ends, each end kept only when it may be external (NULL
# otherwise), so geo.py counts a flow once per country it touches. Grouped by the pair
# first and tested once per pair: a test per row costs twice the scan. Private IPv4 is
# left out in SQL only to send fewer groups to Python: geo.py decides what is external,
# and these prefixes are never that.
_PRIVATE_V4 = r"^(10|127)\.|^192\.168\.|^172\.(1[6-9]|2[0-9]|3[01])\."


def _outer(column: str) -> str:
    return f"CASE WHEN NOT regexp_matches({column}, '{_PRIVATE_V4}') THEN {column} END"


FLOW_ENDS = Question(
    f"""
    WITH pairs AS (SELECT srcaddr, dstaddr, count(*) AS flows, sum(bytes) AS bytes
                   FROM {{flows}} WHERE {{where}} AND {FLOW} GROUP BY srcaddr, dstaddr)
    SELECT {_outer("srcaddr")} AS source, {_outer("dstaddr")} AS destination,
           sum(flows), coalesce(sum(bytes), 0)
    FROM pairs GROUP BY source, destination
    HAVING source IS NOT NULL OR destination IS NOT NULL""",
    lambda rows: [
        Ends(tuple(a for a in (s, d) if a is not None), int(f), int(b)) for s, d, f, b in rows
    ],
)


def conversations_question(by: str, limit: int) -> Question[list[dict[str, Any]]]:
    if by not in ("bytes", "packets", "flows"):
        raise ValueError(f"conversations by {by!r}")
    return Question(
        f"""
        SELECT srcaddr, dstaddr, sum(bytes) AS bytes, sum(packets) AS packets,
               count(*) AS flows
        FROM {{flows}} WHERE {{where}} AND {FLOW}
             AND srcaddr IS NOT NULL AND dstaddr IS NOT NULL
        GROUP BY srcaddr, dstaddr ORDER BY {by} DESC, srcaddr, dstaddr LIMIT {int(limit)}""",
        lambda rows: [
            {
                "srcaddr": s,
                "dstaddr": d,
                "bytes": int(b or 0),
                "packets": int(p or 0),
                "flows": int(f),
            }
            for s, d, b, p, f in rows
        ],
    )


def _catalog(rows: Rows) -> Catalog:
    if not rows or rows[0][-1] is None:
        return Catalog({name: [] for name in OPTION_COLUMNS})
    *lists, earliest, latest = rows[0]
    # A column null in every row (version-2 logs have no VPC) lists nothing: NULL.
    options = {
        name: [str(value) for value in (values or [])[:OPTIONS]]
        for name, values in zip(OPTION_COLUMNS, lists, strict=True)
    }
    return Catalog(options, int(earliest), int(latest))


CATALOG = Question(
    f"""
    SELECT {
        ", ".join(
            f"list(DISTINCT {c} ORDER BY {c}) FILTER (WHERE {c} IS NOT NULL)"
            for c in OPTION_COLUMNS
        )
    },
           min("start"), max("start")
    FROM {{flows}} WHERE {{where}}""",
    _catalog,
)


class DashboardData:
    """The dashboard's reads of one lake (blocking; one render at a time per lake)."""

    def __init__(self, lake: LakeQueries) -> None:
        self.lake = lake

    def answers(self, selection: Selection) -> Answers:
        by = selection.by
        reading = self.lake.read(
            [
                SUMMARY,
                top_question("srcaddr", by, TABLE_ROWS),
                top_question("dstaddr", by, TABLE_ROWS),
                HOURLY,
                FLOW_ENDS,
                conversations_question(by, CONVERSATIONS),
            ],
            selection.filters,
            selection.also(),
            NARROW_COPY if selection.narrows() else None,
        )
        summary, sources, destinations, hourly, ends, conversations = reading.answers
        return Answers(
            summary,
            sources,
            destinations,
            hourly,
            by_country(ends),
            conversations,
            reading.skipped,
        )

    def catalog(self) -> Catalog:
        """Every account, VPC, subnet, ENI and protocol held, and the span of flow starts."""
        reading = self.lake.read([CATALOG], Filters())
        catalog: Catalog = reading.answers[0]
        return replace(catalog, skipped=reading.skipped)

    def version(self) -> str:
        """A digest of the lake's listing (paths, sizes, times): it changes when a worker
        writes a file, and only then. Listing is cheap (no file is read), so the page can
        ask often and re-query only when it changed."""
        digest = hashlib.sha256()
        for info in self.lake.files():
            stamp = info.mtime_ns if info.mtime_ns is not None else ""
            digest.update(f"{info.path}\0{info.size}\0{stamp}\n".encode())
        return digest.hexdigest()[:16]

    def unreadable(self, skipped: Sequence[str]) -> str | None:
        """The page's line about the unreadable files left out (None: there are none),
        naming the first few by their path in the lake."""
        if not skipped:
            return None
        names = ", ".join(path.removeprefix(f"{self.lake.root}/") for path in skipped[:NAMED])
        more = f" and {len(skipped) - NAMED} more" if len(skipped) > NAMED else ""
        files = "1 file" if len(skipped) == 1 else f"{len(skipped)} files"
        verb = "is" if len(skipped) == 1 else "are"
        return f"{files} of the lake could not be read and {verb} left out: {names}{more}"
