"""The views' answers, computed by DuckDB over the lake's Parquet files (exact).

Why the lake and not the rollup tables: the views take any combination of six filters
and any time range, over every partition. The rollups (rollups.py) hold exact figures
per 5-minute window and filter combination, but each worker holds only its own
partitions' keys, and top talkers need addresses, which no key can hold. Every worker
reads the same lake (a shared directory or bucket), so any worker answers for all
of them, whatever the number of workers; DuckDB scans the columns a question needs
and skips the hours outside its range (``hour=`` directories).

Answers, as the issue fixes them: counts are integers; ``value``, ``hour`` are strings.

What is read: the files ``files()`` lists (``flows/hour=<a real hour>/*.parquet``), rows
whose ``start`` an hour directory can name (lake_paths.py; a row past year 9999 is left
out). A read that fails is tried once more, over a new listing (a compaction or a
retention delete may have removed a file meanwhile) without the files whose footer
cannot be read or whose columns are not the lake's: those are checked one by one only
then, remembered by path, size and time, skipped from then on, logged once, and named
in ``Reading.skipped``. A healthy lake costs no footer read.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar, cast

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from streams.common.storage import open_filesystem
from streams.flowlogs.fields import SCHEMA
from streams.flowlogs.filters import Filters
from streams.flowlogs.lake_paths import (
    EARLIEST_START,
    FLOWS,
    LATEST_START,
    hour_dir,
    is_hour_dir,
)

log = logging.getLogger(__name__)

TOP_FIELDS = (
    "srcaddr", "dstaddr", "srcport", "dstport", "protocol", "account_id", "vpc_id",
    "subnet_id", "interface_id",
)  # fmt: skip
TOP_BY = ("bytes", "packets", "flows")
FLOW = "log_status = 'OK'"
#: What reading the lake raises when it is unreachable, a file is broken or gone.
READ_ERRORS = (OSError, duckdb.Error, pa.ArrowException)
#: Characters DuckDB reads as a pattern in a path (it has no escape for them).
GLOB = frozenset("*?[]")
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
    SELECT "start" - ("start" % 3600 + 3600) % 3600 AS hour_start, count(*) AS flows,
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


@dataclass(frozen=True)
class Reading:
    """The answers of one read, and the files in its range it left out (unreadable)."""

    answers: list[Any]
    skipped: tuple[str, ...] = ()


#: A file as a listing shows it: path, size, modification time.
FileKey = tuple[str, int | None, int | None]


class LakeQueries:
    """Runs the views' questions; one DuckDB connection, used by one thread at a time."""

    def __init__(self, uri: str, *, threads: int = 2, region: str | None = None) -> None:
        self.fs, root = open_filesystem(uri, region=region)
        self.root = f"{root}/{FLOWS}"
        self.local = isinstance(self.fs, pafs.LocalFileSystem)
        self.connection = duckdb.connect(config={"threads": threads})
        self.lock = threading.Lock()
        #: Files found unreadable, with why: left out of every read while unchanged.
        self.unreadable: dict[FileKey, str] = {}
        #: Files whose footer was found readable (checked after a failed read).
        self.readable: set[FileKey] = set()

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
        """The answers to ``questions`` (see ``read``)."""
        return self.read(questions, filters, also, copy).answers

    def read(
        self,
        questions: Sequence[Question[Any]],
        filters: Filters,
        also: Condition | None = None,
        copy: Copy | None = None,
    ) -> Reading:
        """The answers to ``questions``, all over one listing of the lake: figures drawn
        together agree with each other while workers add files. ``also``: a condition
        ANDed with the filters' (the dashboard's address and port). ``copy``: ask them
        of an in-memory copy of the selected flows when those are few (see Copy)."""
        held = _held(filters)
        where, params = held.where()
        if also is not None:
            where, params = f"({where}) AND ({also[0]})", [*params, *also[1]]
        with self.lock:
            paths, skipped = self._listing(held, check=False)
            try:
                return Reading(self._answer(questions, paths, (where, params), copy), skipped)
            except READ_ERRORS as exc:
                log.info("lake read failed, listing and reading again: %s", exc)
            paths, skipped = self._listing(held, check=True)
            return Reading(self._answer(questions, paths, (where, params), copy), skipped)

    def _answer(
        self,
        questions: Sequence[Question[Any]],
        paths: list[str],
        where: Condition,
        copy: Copy | None,
    ) -> list[Any]:
        if not paths:
            return [question.answer([]) for question in questions]
        source = self._source(paths)
        if source.dataset is not None:
            self.connection.register("lake_flows", source.dataset)
        try:
            if copy is not None:
                answers = self._ask_copy(questions, source, where, copy)
                if answers is not None:
                    return answers
            return [
                question.answer(
                    self.connection.execute(
                        question.sql.format(flows=source.sql, where=where[0]),
                        where[1] * question.sql.count("{where}"),
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
        """The lake's Parquet files, in path order: ``hour=<a real hour>/<name>.parquet``
        under ``flows/``, as the writer puts them (others are not the writer's: left out)."""
        selector = pafs.FileSelector(self.root, recursive=True, allow_not_found=True)
        found = []
        for info in self.fs.get_file_info(selector):
            if info.type != pafs.FileType.File or not info.path.startswith(f"{self.root}/"):
                continue
            hour, _, name = info.path[len(self.root) + 1 :].partition("/")
            if (
                is_hour_dir(hour)
                and "/" not in name
                and name.endswith(".parquet")
                and not name.startswith((".", "_"))
            ):
                found.append(info)
        return sorted(found, key=lambda info: info.path)

    # ---- running ---------------------------------------------------------------------

    def _source(self, paths: list[str]) -> Source:
        """The files as a SQL table: DuckDB's own reader for local paths (fastest), an
        Arrow dataset for S3 and for a path DuckDB would read as a pattern."""
        if self.local and not any(GLOB.intersection(path) for path in paths):
            quoted = ", ".join("'" + path.replace("'", "''") + "'" for path in paths)
            return Source(f"read_parquet([{quoted}])")
        dataset = ds.dataset(paths, schema=SCHEMA, format="parquet", filesystem=self.fs)
        return Source("lake_flows", dataset)

    def _listing(self, filters: Filters, *, check: bool) -> tuple[list[str], tuple[str, ...]]:
        """The paths of the hours ``filters`` cover (their start and end are set), and
        those left out as unreadable; ``check``: read the footers not checked yet."""
        assert filters.start is not None and filters.end is not None
        if filters.start >= filters.end:
            return [], ()
        low, high = hour_dir(filters.start), hour_dir(filters.end - 1)
        infos = self.files()
        if check:
            listed = {_key(info) for info in infos}
            self.readable &= listed
            self.unreadable = {k: v for k, v in self.unreadable.items() if k in listed}
        paths: list[str] = []
        skipped: list[str] = []
        for info in infos:
            if not low <= info.path[len(self.root) + 1 :].partition("/")[0] <= high:
                continue
            key = _key(info)
            if check and key not in self.readable and key not in self.unreadable:
                problem = self._problem(info)
                if problem is None:
                    self.readable.add(key)
                elif problem:
                    log.warning("lake file left out: %s: %s", info.path, problem)
                    self.unreadable[key] = problem
                else:  # gone since the listing
                    continue
            (skipped if key in self.unreadable else paths).append(info.path)
        return paths, tuple(skipped)

    def _problem(self, info: pafs.FileInfo) -> str | None:
        """Why the file cannot be read with the others (None: it can; "": it is gone)."""
        try:
            with self.fs.open_input_file(info.path) as stream:
                schema = pq.ParquetFile(stream).schema_arrow
        except FileNotFoundError:
            return ""
        except OSError:
            raise  # the store failed, not the file (S3 down, access denied): the read fails
        except pa.ArrowException as exc:
            return f"not a readable Parquet file ({exc})"
        for field in SCHEMA:
            index = schema.get_field_index(field.name)
            if index < 0:
                return f"no column {field.name}"
            found = schema.field(index).type
            if not (
                found == field.type or pa.types.is_null(found) or _same_kind(found, field.type)
            ):
                return f"column {field.name} is {found}, not {field.type}"
        return None


def _held(filters: Filters) -> Filters:
    """``filters`` within the starts a lake can hold (lake_paths.py), both ends set."""
    start = EARLIEST_START if filters.start is None else max(filters.start, EARLIEST_START)
    end = LATEST_START + 1 if filters.end is None else min(filters.end, LATEST_START + 1)
    return replace(filters, start=start, end=end)


def _key(info: pafs.FileInfo) -> FileKey:
    return info.path, info.size, info.mtime_ns


def _same_kind(found: pa.DataType, wanted: pa.DataType) -> bool:
    """Integers of any width, or strings of either offset size: DuckDB reads them as one."""
    if pa.types.is_integer(wanted):
        return bool(pa.types.is_integer(found))
    return bool(pa.types.is_string(found) or pa.types.is_large_string(found))


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
