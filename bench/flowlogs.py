"""The flow-logs benchmarks (``python -m bench --only flowlogs``).

(a) Throughput, end to end on the embedded broker: a generated day of objects in a
    local directory, one reader and one worker started together; the clock runs from
    the reader's start until the worker's summary counts every record. Reported: log
    records per second end to end, and per CPU second of each process.
(b) Queries: the worker's lake writer fills a lake with ``--flows`` records parsed from
    generated objects (no Kafka: this measures the query side alone); then each view's
    query, filtered and not, timed warm (median of 7) by the views' own DuckDB code.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from bench.machine import cpu_seconds
from bench.pipeline import BenchError, Worker
from producers.flowlogs import Options, Simulation, write
from streams.common.broker import EmbeddedBroker
from streams.flowlogs.filters import Filters
from streams.flowlogs.lake import FlowLake
from streams.flowlogs.parse import parse_lines
from streams.flowlogs.query import LakeQueries
from streams.flowlogs.rollups import OFFSET_COLUMN

START = datetime(2026, 11, 1, tzinfo=UTC)
PARTITIONS = 6


AGGREGATED = "streams_flowlogs_flows_aggregated_total"


def _counted(worker: Worker) -> int:
    """Records the worker aggregated (its metric: a view's query would load the worker)."""
    return int(worker.metrics(AGGREGATED)[AGGREGATED])


def run_throughput(records: int) -> dict[str, Any]:
    """(a): ``records`` log records over a day, 4 VPCs (two formats), 1,152 objects."""
    with tempfile.TemporaryDirectory(prefix="bench-flowlogs-") as tmp:
        workdir = Path(tmp)
        options = Options(start=START, hours=24, flows_per_hour=records / 24, seed=21)
        written = write(options, str(workdir / "source"))
        broker = EmbeddedBroker(log_path=workdir / "broker.log").start()
        env = {
            "FLOWLOGS_LAKE": str(workdir / "lake"),
            "FLOWLOGS_PARTITIONS": str(PARTITIONS),
            "FLOWLOGS_SOURCE": str(workdir / "source"),
            "FLOWLOGS_POLL_SECONDS": "1",
        }
        worker = Worker(broker.bootstrap, workdir, env, module="streams.flowlogs")
        reader = Worker(broker.bootstrap, workdir, env, module="streams.flowlogs", command="reader")
        try:
            worker.start()
            started = time.monotonic()
            reader.start()
            cpu = {"worker": cpu_seconds(worker.pid), "reader": cpu_seconds(reader.pid)}
            cpu["broker"] = cpu_seconds(broker.pid)
            read_at = None
            deadline = started + 120 + written.flows / 5_000
            while (counted := _counted(worker)) < written.flows:
                if (
                    read_at is None
                    and reader.metrics("streams_flowlogs_records_total")[
                        "streams_flowlogs_records_total"
                    ]
                    >= written.flows
                ):
                    read_at = time.monotonic()
                if time.monotonic() > deadline:
                    raise BenchError(f"{counted:,} of {written.flows:,} records after the deadline")
                worker.check_alive()
                time.sleep(0.2)
            elapsed = time.monotonic() - started
            used = {
                "worker": _used(cpu["worker"], cpu_seconds(worker.pid)),
                "reader": _used(cpu["reader"], cpu_seconds(reader.pid)),
                "broker": _used(cpu["broker"], cpu_seconds(broker.pid)),
            }
            return {
                "records": written.flows,
                "objects": written.objects,
                "gzipped_bytes": written.gzipped_bytes,
                "seconds": elapsed,
                "records_per_s": written.flows / elapsed,
                "reader_done_s": None if read_at is None else read_at - started,
                "cpu_s": used,
                "records_per_cpu_s": {
                    name: written.flows / seconds if seconds else None
                    for name, seconds in used.items()
                },
                "load_1min_after": os.getloadavg()[0],
            }
        finally:
            reader.stop()
            worker.stop()
            broker.stop()


def _used(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


def fill_lake(root: Path, records: int) -> int:
    """A lake holding ``records`` log records of one day, written as the worker writes it
    (per batch of chunks, six partitions); returns the count written."""
    options = Options(start=START, hours=24, flows_per_hour=records / 24, seed=33)
    lake = FlowLake.open(str(root))
    offsets = [0] * PARTITIONS
    pending: list[list[pa.Table]] = [[] for _ in range(PARTITIONS)]
    written = 0
    for n, generated in enumerate(Simulation(options).objects()):
        block = parse_lines(generated.lines, latest_start=2**40)
        partition = n % PARTITIONS
        table = block.flows.append_column(
            OFFSET_COLUMN, pa.array([offsets[partition]] * block.flows.num_rows, pa.int64())
        )
        pending[partition].append(table)
        offsets[partition] += 1
        written += block.flows.num_rows
        if len(pending[partition]) == 40:  # a worker batch: ~40 chunks
            _flush(lake, partition, pending[partition], offsets[partition])
    for partition in range(PARTITIONS):
        _flush(lake, partition, pending[partition], offsets[partition])
    return written


def _flush(lake: FlowLake, partition: int, tables: list[pa.Table], next_offset: int) -> None:
    if tables:
        first = next_offset - len(tables)
        lake.write_batch(partition, first, next_offset - 1, pa.concat_tables(tables))
        tables.clear()


def _timed(call: Any, repeat: int = 7) -> dict[str, float]:
    call()  # warm: the files' footers in the OS cache, DuckDB's plan
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        times.append((time.perf_counter() - began) * 1000)
    return {"median_ms": statistics.median(times), "max_ms": max(times)}


def run_queries(records: int) -> dict[str, Any]:
    """(b): the views' queries over a day of ``records`` log records."""
    with tempfile.TemporaryDirectory(prefix="bench-flowlogs-lake-") as tmp:
        root = Path(tmp)
        began = time.monotonic()
        written = fill_lake(root, records)
        fill_seconds = time.monotonic() - began
        queries = LakeQueries(str(root))
        some = queries.top(Filters(), "vpc_id", "flows", 1)[0]["value"]
        account = queries.top(Filters(), "account_id", "flows", 1)[0]["value"]
        day = int(START.timestamp())
        vpc_reject = Filters(vpc_id=(some,), action=("REJECT",))
        three_hours = Filters(account_id=(account,), start=day + 9 * 3600, end=day + 12 * 3600)
        cases = {
            "top srcaddr by bytes, vpc + action filter, 24 h": lambda: queries.top(
                vpc_reject, "srcaddr", "bytes", 10
            ),
            "top dstaddr by flows, account filter, 3 h": lambda: queries.top(
                three_hours, "dstaddr", "flows", 10
            ),
            "top dstport by flows, no filter, 24 h": lambda: queries.top(
                Filters(), "dstport", "flows", 10
            ),
            "summary, vpc + action filter": lambda: queries.summary(vpc_reject),
            "hourly, no filter": lambda: queries.hourly(Filters()),
        }
        files = len(list((root / "flows").rglob("*.parquet")))
        return {
            "records": written,
            "lake_files": files,
            "lake_bytes": sum(p.stat().st_size for p in (root / "flows").rglob("*.parquet")),
            "fill_s": fill_seconds,
            "queries": {name: _timed(call) for name, call in cases.items()},
        }


def markdown(results: dict[str, Any]) -> str:
    lines = ["| flow logs | figure |", "|---|---|"]
    throughput = results.get("throughput")
    if throughput:
        lines.append(
            f"| end to end, {throughput['records']:,} records, {throughput['objects']:,} "
            f"objects | {throughput['records_per_s']:,.0f} records/s |"
        )
        for name, rate in throughput["records_per_cpu_s"].items():
            if rate:
                lines.append(f"| per {name} CPU second | {rate:,.0f} records |")
    queries = results.get("queries")
    if queries:
        for name, timing in queries["queries"].items():
            lines.append(
                f"| {name} ({queries['records']:,} records) | {timing['median_ms']:.0f} ms "
                f"(max {timing['max_ms']:.0f}) |"
            )
    return "\n".join(lines)
