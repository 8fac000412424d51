"""The views' answers, computed by DuckDB over the lake's Parquet files (exact).

Why the lake and not the rollup tables: the views take any combination of six filters
and any time range, over every partition. The rollups (rollups.py) hold exact figures
per 5-minute window and filter combination, but each worker holds only its own
partitions' keys, and top talkers need addresses, which no key can hold. Every worker
reads the same lake (a shared directory or bucket), so any worker answers for all
of them, whatever the number of workers; DuckDB scans the columns a question needs
and skips the hours outside its range (``hour=`` directories).

Answers, as the issue fixes them: counts are integers; ``value``, ``hour`` are strings.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar, cast

import duckdb
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from streams.common.storage import open_filesystem
from streams.flowlogs.fields import SCHEMA
from streams.flowlogs.filters import Filters
from streams.flowlogs.lake_paths import FLOWS, hour_dir

TOP_FIELDS = (
    "srcaddr", "dstaddr", "srcport", "dstport", "protocol", "account_id", "vpc_id",
    "subnet_id", "interface_id",
)  # fmt: skip
TOP_BY = ("bytes", "packets", "flows")
FLOW = "log_status = 'OK'"
#: The start of 9999-12-31T23:00:00Z, the last hour a ``hour=`` directory can name.
LAST_HOUR = int(datetime(9999, 12, 31, 23, tzinfo=UTC).timestamp())
A = TypeVar("A")
Rows = Sequence[tuple[Any, ...]]
#: A SQL condition and its ``?`` parameters.
Condition = tuple[str, list[object]]


@dataclass(frozen=True)
class Question(Generic[A]):
    """One question to the lake: SQL over ``{flows}`` (the files of the hours in range)
    and ``{where}`` (the filters; each place it appears takes the filters' parameters),
    and how its rows become the answer (``[]`` rows: the answer of an empty lake)."""

    sql: str
    answer: Callable[[Rows], A]


def _summary(rows: Rows) -> dict[str, int]:
    names = ("flows", "bytes", "packets", "accepted", "rejected", "nodata", "skipdata")
    first = rows[0] if rows else (0,) * len(names)
    return {name: int(value or 0) for name, value in zip(names, first, strict=True)}


SUMMARY = Question(
    f"""
    SELECT count(*) FILTER (WHERE {FLOW}),
           coalesce(sum(bytes) FILTER (WHERE {FLOW}), 0),
           coalesce(sum(packets) FILTER (WHERE {FLOW}), 0),
           count(*) FILTER (WHERE {FLOW} AND action = 'ACCEPT'),
           count(*) FILTER (WHERE {FLOW} AND action = 'REJECT'),
           count(*) FILTER (WHERE log_status = 'NODATA'),
           count(*) FILTER (WHERE log_status = 'SKIPDATA')
    FROM {{flows}} WHERE {{where}}""",
    _summary,
)


def top_question(field: str, by: str, limit: int) -> Question[list[dict[str, Any]]]:
    if field not in TOP_FIELDS or by not in TOP_BY:
        raise ValueError(f"top {field!r} by {by!r}")
    return Question(
        f"""
        SELECT CAST({field} AS VARCHAR) AS value, sum(bytes) AS bytes,
               sum(packets) AS packets, count(*) AS flows
        FROM {{flows}} WHERE {{where}} AND {FLOW} AND {field} IS NOT NULL
        GROUP BY {field} ORDER BY {by} DESC, value LIMIT {int(limit)}""",
        lambda rows: [
            {"value": value, "bytes": int(b or 0), "packets": int(p or 0), "flows": int(f)}
            for value, b, p, f in rows
        ],
    )


HOURLY = Question(
    f"""
    SELECT "start" // 3600 * 3600 AS hour_start, count(*) AS flows,
           count(*) FILTER (WHERE action = 'REJECT') AS rejected,
           coalesce(sum(bytes), 0) AS bytes
    FROM {{flows}} WHERE {{where}} AND {FLOW}
    GROUP BY hour_start ORDER BY hour_start""",
    lambda rows: [
        {"hour": _iso(hour), "flows": int(f), "rejected": int(r), "bytes": int(b)}
        for hour, f, r, b in rows
    ],
)


@dataclass(frozen=True)
class Copy:
    """Ask the questions of an in-memory copy of the selected flows' ``columns``, made
    by one scan, when the selection holds at most ``most_rows`` flows; of the files,
    one scan per question, otherwise. A narrow selection (one VPC's rejected flows of a
    day of 10 million) is answered about four times faster; a copy of millions of rows
    is slower to query than the Parquet files themselves (bench/dashboard.py)."""

    columns: tuple[str, ...]
    most_rows: int


#: The temporary table a Copy fills (one connection, used under its lock).
COPIED = "copied_flows"


@dataclass(frozen=True)
class Source:
    """Where the flows are: a SQL table expression over the lake's files."""

    sql: str
    dataset: ds.Dataset | None = None


class LakeQueries:
    """Runs the views' questions; one DuckDB connection, used by one thread at a time."""

    def __init__(self, uri: str, *, threads: int = 2, region: str | None = None) -> None:
        self.fs, root = open_filesystem(uri, region=region)
        self.root = f"{root}/{FLOWS}"
        self.local = isinstance(self.fs, pafs.LocalFileSystem)
        self.connection = duckdb.connect(config={"threads": threads})
        self.lock = threading.Lock()

    def summary(self, filters: Filters) -> dict[str, int]:
        return self.ask(SUMMARY, filters)

    def top(self, filters: Filters, field: str, by: str, limit: int) -> list[dict[str, Any]]:
        return self.ask(top_question(field, by, limit), filters)

    def hourly(self, filters: Filters) -> list[dict[str, Any]]:
        return self.ask(HOURLY, filters)

    def ask(self, question: Question[A], filters: Filters, also: Condition | None = None) -> A:
        return cast(A, self.ask_all([question], filters, also)[0])

    def ask_all(
        self,
        questions: Sequence[Question[Any]],
        filters: Filters,
        also: Condition | None = None,
        copy: Copy | None = None,
    ) -> list[Any]:
        """The answers to ``questions``, all over one listing of the lake: figures drawn
        together agree with each other while workers add files. ``also``: a condition
        ANDed with the filters' (the dashboard's address and port). ``copy``: ask them
        of an in-memory copy of the selected flows when those are few (see Copy)."""
        where, params = filters.where()
        if also is not None:
            where, params = f"({where}) AND ({also[0]})", [*params, *also[1]]
        with self.lock:
            source = self._source(filters)
            if source is None:
                return [question.answer([]) for question in questions]
            if source.dataset is not None:
                self.connection.register("lake_flows", source.dataset)
            try:
                if copy is not None:
                    answers = self._ask_copy(questions, source, (where, params), copy)
                    if answers is not None:
                        return answers
                return [
                    question.answer(
                        self.connection.execute(
                            question.sql.format(flows=source.sql, where=where),
                            params * question.sql.count("{where}"),
                        ).fetchall()
                    )
                    for question in questions
                ]
            finally:
                if source.dataset is not None:
                    self.connection.unregister("lake_flows")

    def _ask_copy(
        self, questions: Sequence[Question[Any]], source: Source, where: Condition, copy: Copy
    ) -> list[Any] | None:
        """The answers from one copy of the selected rows; None when they are too many
        (the copy stops one row past the limit, so a broad selection costs a fraction
        of one scan)."""
        columns = ", ".join(f'"{column}"' for column in copy.columns)
        self.connection.execute(
            f"CREATE OR REPLACE TEMP TABLE {COPIED} AS SELECT {columns} FROM {source.sql} "
            f"WHERE {where[0]} LIMIT {int(copy.most_rows) + 1}",
            where[1],
        )
        try:
            held = self.connection.execute(f"SELECT count(*) FROM {COPIED}").fetchone()
            if held is None or held[0] > copy.most_rows:
                return None
            return [
                question.answer(
                    self.connection.execute(
                        question.sql.format(flows=COPIED, where="TRUE")
                    ).fetchall()
                )
                for question in questions
            ]
        finally:
            self.connection.execute(f"DROP TABLE IF EXISTS {COPIED}")

    def files(self) -> list[pafs.FileInfo]:
        """The lake's Parquet files (of every hour), in path order."""
        selector = pafs.FileSelector(self.root, recursive=True, allow_not_found=True)
        found = [
            info
            for info in self.fs.get_file_info(selector)
            if info.type == pafs.FileType.File
            and info.base_name.endswith(".parquet")
            and not info.base_name.startswith((".", "_"))
        ]
        return sorted(found, key=lambda info: info.path)

    # ---- running ---------------------------------------------------------------------

    def _source(self, filters: Filters) -> Source | None:
        """The files of the hours the range covers (all of them without a range)."""
        paths = self._paths(filters)
        if not paths:
            return None
        if self.local:
            quoted = ", ".join("'" + path.replace("'", "''") + "'" for path in paths)
            return Source(f"read_parquet([{quoted}])")
        dataset = ds.dataset(paths, schema=SCHEMA, format="parquet", filesystem=self.fs)
        return Source("lake_flows", dataset)

    def _paths(self, filters: Filters) -> list[str]:
        # A start past the last hour a date can name (9999-12-31T23:59:59.5 rounded up)
        # selects that hour's files; the SQL range then leaves their flows out.
        low = hour_dir(min(filters.start, LAST_HOUR)) if filters.start is not None else ""
        high = hour_dir(filters.end - 1) if filters.end is not None else "~"
        return [info.path for info in self.files() if low <= info.path.rsplit("/", 2)[-2] <= high]


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
