"""The telemetry workers' speed: one worker process on a fresh embedded broker.

(a) throughput: telemetry.readings preloaded, event time in the past, with device-keyed
    records of one or more polls of a device, or with the records the ingest publishes
    for requests of whole polls (one per partition per request: see VARIANTS); then ONE
    worker starts. Readings/s is the steady rate of streams_telemetry_readings_total
    (polled like the orders bench); "all closed" is when every (device, window) was
    emitted, checked against the sum of series counts in telemetry.aggregates.
(b) window latency, live: simulator -> ingest -> worker with 10 s windows and 2 s grace.
    Per window record: its Kafka timestamp (set when the worker sends it) minus
    (window end + grace), split into waiting for the device's next poll, simulator +
    ingest (to the readings record's Kafka timestamp), and the worker.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from itertools import groupby, islice
from pathlib import Path
from typing import Any

import orjson

from bench.machine import cpu_seconds, fingerprint
from bench.pipeline import (
    BenchError,
    Profiler,
    Worker,
    count_until,
    rate_by_tenth,
    steady_rate,
    stop_all,
)
from bench.pipeline import wait_for as wait
from bench.telemetry_latency import groups, histogram, latencies
from producers.send import Record, paced, send_all
from producers.telemetry import TelemetryGenerator, series_per_device
from streams.common.broker import EmbeddedBroker, stop_process
from streams.common.topic_reader import read_topic
from streams.common.topics import declare_topics
from streams.telemetry.batch import AGGREGATES
from streams.telemetry.ingest_parse import partition_records
from streams.telemetry.runtime import READINGS
from streams.telemetry.topology import topic_specs

PARTITIONS = 6
METRIC = "streams_telemetry_"
READ, RECORDS, CLOSED = (f"{METRIC}{m}_total" for m in ("readings", "records", "windows_closed"))
DEAD, DELAY = f"{METRIC}dead_letters_total", f"{METRIC}window_close_delay_seconds"
BATCH = f"{METRIC}batch_readings"
#: name -> (interfaces per device, polls per record). 24 interfaces: 98 readings per
#: poll; 8: 34. A record of several polls is what the ingest publishes when a collector
#: sends a device's polls in one request (30 s of 10 s polls here). The third: readings
#: per ingest request, when the records are what the ingest publishes for requests of
#: that size (one record per partition, many devices' polls in it: see models.py); a
#: collector batching 5,000 readings is Telegraf's default of 1,000 metrics of ~5 fields.
VARIANTS: dict[str, tuple[int, int, int | None]] = {
    "i24": (24, 1, None),
    "i8": (8, 1, None),
    "i24x3": (24, 3, None),
    "i24r5k": (24, 1, 5000),
}
DEVICES, INTERVAL_S, WINDOW_S = 500, 10.0, 60
LIVE = {"devices": 200, "interval_s": 1.0, "seconds": 75, "window_s": 10, "grace_s": 2}
TELEMETRY = ("-m", "streams.telemetry")


def poll_records(
    interfaces: int,
    readings: int,
    devices: int = DEVICES,
    polls_per_record: int = 1,
    request_readings: int | None = None,
) -> dict[str, Any]:
    """One ReadingGroup record per device and ``polls_per_record`` polls (a divisor of
    the polls per window), ~``readings`` readings in whole windows; or, with
    ``request_readings``, the ingest's records for requests of whole polls of about that
    many readings.

    Event time starts on a window boundary and ends at least two windows before now.
    """
    per_window = round(WINDOW_S / INTERVAL_S)
    per_poll = devices * series_per_device(interfaces)
    polls = max(1, round(readings / per_poll / per_window)) * per_window
    window_ms = WINDOW_S * 1000
    now_ms = int(time.time() * 1000)
    start_ms = (now_ms - int(polls * INTERVAL_S * 1000)) // window_ms * window_ms - 2 * window_ms
    generator = TelemetryGenerator(
        devices=devices,
        interfaces=interfaces,
        interval=INTERVAL_S,
        start=datetime.fromtimestamp(start_ms / 1000, UTC),
    )
    records: list[Record] = []
    pending: dict[str, list[list[Any]]] = defaultdict(list)
    request: dict[str, list[Any]] = {}
    in_request = 0
    for (device, ts), polled in groupby(
        islice(generator, per_poll * polls), key=lambda e: (e.device_id, e.ts_ms)
    ):
        batch = pending[device]
        batch.append(
            [(r["interface"], r["metric"], r["value"], ts, r["seq"]) for _, r, _, _ in polled]
        )
        if request_readings is not None:
            request[device] = batch.pop()
            in_request += len(request[device])
            if in_request >= request_readings:
                records.extend((None, v, n) for n, v in partition_records(request, PARTITIONS))
                request, in_request = {}, 0
        elif len(batch) == polls_per_record:
            rows = [row for poll in batch for row in poll]
            records.append((device.encode(), orjson.dumps({"device_id": device, "readings": rows})))
            batch.clear()
    if request:
        records.extend((None, v, n) for n, v in partition_records(request, PARTITIONS))
    return {
        "records": records,
        "readings": per_poll * polls,
        "windows": devices * polls // per_window,
        "devices": devices,
        "interfaces": interfaces,
        "readings_per_record": per_poll * polls / len(records),
        "request_readings": request_readings,
        "polls": polls,
        "mean_value_bytes": statistics.fmean(len(r[1]) for r in records),
    }


def _fresh_broker(workdir: Path) -> EmbeddedBroker:
    broker = EmbeddedBroker(log_path=workdir / "broker.log").start()
    try:
        asyncio.run(declare_topics(broker.bootstrap, topic_specs(PARTITIONS)))
    except BaseException:
        broker.stop()
        raise
    return broker


def run_throughput(data: dict[str, Any], profile: Path | None = None) -> dict[str, Any]:
    """One measured run of (a) on a fresh broker and worker."""
    n = data["readings"]
    with tempfile.TemporaryDirectory(prefix="bench-telemetry-") as tmp:
        workdir = Path(tmp)
        broker = _fresh_broker(workdir)
        worker: Worker | None = None
        profiler: Profiler | None = None
        try:
            sent = time.perf_counter()
            records = paced(data["records"], None)
            asyncio.run(send_all(broker.bootstrap, READINGS, records, label=READINGS, quiet=True))
            produce_rate = len(data["records"]) / (time.perf_counter() - sent)
            load, code = os.getloadavg()[0], fingerprint()
            started = time.monotonic()
            env = {"TELEMETRY_PARTITIONS": str(PARTITIONS)}
            worker = running = Worker(broker.bootstrap, workdir, env, module="streams.telemetry")
            running.start()
            healthy = time.monotonic()
            count = count_until(running, broker.pid, READ, n, 120 + n / 20_000, profile)
            profiler = count.profiler
            if profiler is not None:
                profiler.stop()
            closed = wait(
                lambda: running.metrics(CLOSED)[CLOSED] >= data["windows"],
                running,
                300,
                f"{data['windows']:,} windows closed",
            )
            cpu_closed = cpu_seconds(running.pid)
            counts = running.metrics(RECORDS, DEAD, CLOSED)
            batches = histogram(running.raw("/metrics").decode(), BATCH)
            found = read_topic(broker.bootstrap, AGGREGATES)
            aggregates = [orjson.loads(r.value) for r in found if r.value is not None]
            elapsed = count.last - count.first
            steady = steady_rate(count.samples)
            cpu_w = _delta(count.cpu_first[0], count.cpu_last[0])
            return {
                **{k: v for k, v in data.items() if k != "records"},
                "code": code,
                "produce_records_per_s": produce_rate,
                "load_1min_before": load,
                "load_1min_after": os.getloadavg()[0],
                "startup_s": healthy - started,
                "processing_s": elapsed,
                "readings_per_s": (n - count.first_count) / elapsed if elapsed > 0 else None,
                "steady_readings_per_s": steady,
                "steady_records_per_s": None
                if steady is None
                else steady / data["readings_per_record"],
                "readings_per_s_by_tenth": rate_by_tenth(count.samples, n),
                "all_closed_s": closed - count.first,
                "close_lag_after_last_s": closed - count.last,
                "worker_cpu_s": cpu_w,
                "worker_cpu_us_per_reading": None
                if cpu_w is None
                else 1e6 * cpu_w / (n - count.first_count),
                "readings_per_worker_cpu_s": None if not cpu_w else (n - count.first_count) / cpu_w,
                "worker_cpu_s_to_all_closed": _delta(count.cpu_first[0], cpu_closed),
                "worker_cpu": _share(count.cpu_first[0], count.cpu_last[0], elapsed),
                "broker_cpu": _share(count.cpu_first[1], count.cpu_last[1], elapsed),
                "records_counted": counts[RECORDS],
                "batches": batches.get("count"),
                "mean_batch_records": counts[RECORDS] / max(batches.get("count", 0), 1),
                "dead_letters": counts[DEAD],
                "windows_closed": counts[CLOSED],
                "aggregate_records": len(aggregates),
                "aggregate_readings": sum(s["count"] for a in aggregates for s in a["series"]),
                "profile_seconds": profiler.seconds if profiler is not None else None,
            }
        finally:
            stop_all(profiler, worker, broker)


def _delta(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


def _share(before: float | None, after: float | None, seconds: float) -> float | None:
    used = _delta(before, after)
    return None if used is None or seconds <= 0 else used / seconds


def run_latency() -> dict[str, Any]:
    """(b): simulator -> ingest -> worker, live, on a fresh broker."""
    spec = LIVE
    with tempfile.TemporaryDirectory(prefix="bench-telemetry-live-") as tmp:
        workdir = Path(tmp)
        broker = _fresh_broker(workdir)
        started: list[Worker] = []
        code = fingerprint()
        try:
            ingest = Worker(broker.bootstrap, workdir, module="streams.telemetry", command="ingest")
            started.append(ingest.start())
            env = {
                "TELEMETRY_WINDOW_SECONDS": str(spec["window_s"]),
                "TELEMETRY_GRACE_SECONDS": str(spec["grace_s"]),
            }
            worker = Worker(broker.bootstrap, workdir, env, module="streams.telemetry")
            started.append(worker.start())
            # The views answer 503 until the worker has read its configuration (wait_for
            # takes an HTTP error as "not yet").
            wait(lambda: bool(worker.get("/telemetry/config")), worker, 60, "the config view")
            config = worker.get("/telemetry/config")
            # One record read proves the worker has its partitions before the clock starts.
            probe = orjson.dumps({"device_id": "probe", "readings": [["x", "y", 0.0, _now(), 0]]})
            records = paced([(b"probe", probe)], None)
            asyncio.run(send_all(broker.bootstrap, READINGS, records, label="probe", quiet=True))
            wait(lambda: worker.metrics(RECORDS)[RECORDS] >= 1, worker, 120, "the probe read")
            pids = {"worker": worker.pid, "ingest": ingest.pid, "broker": broker.pid}
            cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
            load, began = os.getloadavg()[0], time.monotonic()
            simulator = _simulate(ingest.url + "/telemetry", workdir, spec)
            seconds = time.monotonic() - began
            load_after = os.getloadavg()[0]
            shares = {f"{k}_cpu": _share(cpu[k], cpu_seconds(p), seconds) for k, p in pids.items()}
            readings = read_topic(broker.bootstrap, READINGS)
            window_ms = config["window_seconds"] * 1000
            expected = {
                (device, row[3] - row[3] % window_ms)
                for r in readings
                for device, rows in groups(r.value)
                for row in rows
            }
            wait(
                lambda: worker.metrics(CLOSED)[CLOSED] >= len(expected),
                worker,
                120,
                f"{len(expected):,} windows closed",
            )
            aggregates = read_topic(broker.bootstrap, AGGREGATES)
            delays = histogram(worker.raw("/metrics").decode(), DELAY)
        finally:
            for process in reversed(started):
                process.stop()
            broker.stop()
    grace_ms = config["grace_seconds"] * 1000
    return {
        **spec,
        "code": code,
        "config": {k: config[k] for k in ("window_seconds", "grace_seconds", "version")},
        "simulator": simulator,
        "load_1min_before": load,
        "load_1min_after": load_after,
        "run_s": seconds,
        **shares,
        "windows_expected": len(expected),
        **latencies(aggregates, readings, grace_ms),
        "worker_histogram": delays,
    }


def _now() -> int:
    return int(time.time() * 1000)


def _simulate(url: str, workdir: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """Run ``python -m producers telemetry`` live to its end; its --report's stats."""
    report = workdir / "simulator.json"
    command = [sys.executable, "-m", "producers", "telemetry", "--url", url,
               "--devices", str(spec["devices"]), "--interval-seconds", str(spec["interval_s"]),
               "--duration", str(spec["seconds"]), "--report", str(report)]  # fmt: skip
    with (workdir / "simulator.log").open("ab") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            code = proc.wait(timeout=spec["seconds"] + 120)
        except subprocess.TimeoutExpired:
            stop_process(proc)
            raise BenchError("the simulator did not finish") from None
    if code != 0 or not report.exists():
        tail = (workdir / "simulator.log").read_text(errors="replace")[-2000:]
        raise BenchError(f"the simulator failed ({code}):\n{tail}")
    stats: dict[str, Any] = orjson.loads(report.read_bytes())["stats"]
    keep = ("accepted", "requests", "rejected", "retries", "backpressure", "seconds")
    return {k: stats[k] for k in keep}


def markdown(results: dict[str, Any]) -> str:
    def num(value: Any, digits: int = 0) -> str:
        return "-" if value is None else f"{value:,.{digits}f}"

    def pct(value: Any) -> str:
        return "-" if value is None else f"{100 * value:.0f}%"

    machine, source = results["machine"], results["source"]
    lines = [
        f"## Telemetry worker benchmarks ({results['date']})",
        "",
        f"{machine['nproc']} CPUs ({machine['cpu']}), Python {machine['python']}; code "
        f"{source['commit']}{' + uncommitted changes' if source['dirty'] else ''}; embedded "
        f"broker (Tansu); median of {results['repeat']} run(s); load 1 min = the machine's "
        "load average as each run started (other jobs shared it).",
        "",
    ]
    throughput = results.get("throughput", {})
    if throughput:
        lines += [
            "| (a) one worker, preloaded | readings/record | readings | steady readings/s | "
            "steady records/s | all windows closed s | worker CPU s (µs/reading) | "
            "readings per worker CPU s | worker / broker CPU | records/batch | load 1 min |",
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for name, entry in throughput.items():
            m = entry["median"]
            if m is None:
                lines.append(f"| {name} | failed: {entry['errors'][-1].splitlines()[-1]} |")
                continue
            lines.append(
                f"| {m['devices']} devices x {m['interfaces']} interfaces | "
                f"{num(m['readings_per_record'])} | {num(m['readings'])} | "
                f"{num(m['steady_readings_per_s'])} | {num(m['steady_records_per_s'])} | "
                f"{num(m['all_closed_s'], 1)} | {num(m['worker_cpu_s'], 1)} "
                f"({num(m['worker_cpu_us_per_reading'], 2)}) | "
                f"{num(m['readings_per_worker_cpu_s'])} | "
                f"{pct(m['worker_cpu'])} / {pct(m['broker_cpu'])} | "
                f"{num(m['mean_batch_records'])} | {num(m['load_1min_before'], 1)} |"
            )
        lines.append("")
    live = results.get("latency")
    if live:
        lat, hist = live["latency_s"], live["worker_histogram"]
        lines += [
            f"| (b) live: {live['devices']} devices every {live['interval_s']:g} s, "
            f"{live['window_s']} s windows, {live['grace_s']} s grace | windows | p50 s | "
            "p99 s | max s |",
            "|---|--:|--:|--:|--:|",
            f"| emission - (window end + grace), all | {lat['count']} | {num(lat['p50'], 2)} | "
            f"{num(lat['p99'], 2)} | {num(lat['max'], 2)} |",
        ]
        for kind, figures in [
            *(("closed by " + k, v) for k, v in live["latency_s_by_trigger"].items()),
            *(("event-time windows: " + k, v) for k, v in live["event_time_breakdown_s"].items()),
        ]:
            lines.append(
                f"| {kind} | {figures['count']} | {num(figures['p50'], 2)} | "
                f"{num(figures['p99'], 2)} | {num(figures['max'], 2)} |"
            )
        lines += [
            "",
            f"worker's {DELAY}: {num(hist.get('count'))} windows, mean "
            f"{num(hist.get('sum', 0) / max(hist.get('count', 0), 1), 2)} s, p50 <= "
            f"{hist.get('p50_at_most')} s, p99 <= {hist.get('p99_at_most')} s; load 1 min "
            f"{num(live['load_1min_before'], 1)} -> {num(live['load_1min_after'], 1)}; CPU "
            f"worker {pct(live['worker_cpu'])}, ingest {pct(live['ingest_cpu'])}, "
            f"broker {pct(live['broker_cpu'])}.",
            "",
        ]
    return "\n".join(lines)
