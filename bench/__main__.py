"""``python -m bench [--orders N] [--repeat K] [--only PART]`` (PART: see --help)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

from bench import data, logic, machine, options, pipeline, profile, report
from producers.orders import Record

log = logging.getLogger("bench")


def _pipeline(args: argparse.Namespace, records: list[Record], partitions: int) -> dict[str, Any]:
    """Pipeline runs (and view latencies from variant (a)'s runs)."""
    want_pipeline = args.only in (None, "pipeline")
    want_views = args.only in (None, "views")
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = set(names) - set(pipeline.VARIANTS)
    if unknown:
        raise SystemExit(f"unknown variants {sorted(unknown)}; known: {list(pipeline.VARIANTS)}")
    if not want_pipeline:
        names = ["a_default"]
    out: dict[str, Any] = {}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    views: list[dict[str, Any]] = []
    errors: dict[str, list[str]] = {}
    profiled = False
    for repeat in range(args.repeat if want_pipeline else 1):
        for name in names:
            measure_views = want_views and name == "a_default"
            profile_to = None
            if args.profile is not None and name == "a_default" and not profiled:
                profile_to, profiled = args.profile, True
            log.info("pipeline %s, run %d/%d", name, repeat + 1, args.repeat)
            try:
                result = pipeline.run_variant(
                    name, records, partitions, views=200 if measure_views else 0, profile=profile_to
                )
            except pipeline.BenchError as exc:
                # One broken variant (say, a worker that does not start) keeps the others.
                log.error("pipeline %s failed: %s", name, exc)
                errors.setdefault(name, []).append(str(exc)[-2000:])
                continue
            if "views" in result:
                views.append(result.pop("views"))
            log.info(
                "  %s orders/s, view complete after %.1f s",
                f"{result['orders_per_s']:,.0f}",
                result["view_complete_s"],
            )
            runs[name].append(result)
            if profile_to is not None and profile_to.exists():
                summary = profile.summarize(profile_to)
                text = profile.render(summary, result.pop("profile_seconds", 0.0))
                profile_to.with_suffix(".txt").write_text(text + "\n")
                out["profile"] = {"raw": str(profile_to), **summary}
                log.info("profile summary in %s", profile_to.with_suffix(".txt"))
    if want_pipeline:
        out["pipeline"] = {
            name: {
                "median": report.median_of(r) if r else None,
                "runs": r,
                "errors": errors.get(name, []),
            }
            for name, r in runs.items()
        }
    if views:
        out["views"] = {"median": report.median_of(views), "runs": views}
    return out


def _write_part(args: argparse.Namespace, part: str, figures: Any, table: str) -> int:
    """Results of one part in their own file (``results-<part>.json``, so the orders
    figures stay), and its table on standard output."""
    results = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine.describe(),
        "source": machine.source(),
        part: figures,
    }
    output = args.output
    if output == report.RESULTS or args.only is None:
        output = report.RESULTS.with_name(f"results-{part}.json")
    report.write(results, output)
    sys.stdout.write(table + "\n")
    log.info("results in %s", output)
    return 0


def _memory(args: argparse.Namespace) -> int:
    """An orders worker's memory over 90 days of event time (bench/memory.py)."""
    from bench import memory

    log.info("memory: %d orders a day for %d days", args.memory_per_day, args.memory_days)
    figures = memory.run(args.memory_per_day, args.memory_days)
    return _write_part(args, "memory", figures, memory.markdown(figures))


def _flowlogs(args: argparse.Namespace) -> int:
    """The flow-logs pipeline end to end and its queries (bench/flowlogs.py)."""
    from bench import flowlogs

    runs = []
    for repeat in range(args.repeat):
        log.info("flow logs end to end, run %d/%d", repeat + 1, args.repeat)
        runs.append(flowlogs.run_throughput(args.flowlogs_records))
    log.info("flow logs queries over %d records", args.flowlogs_lake_records)
    figures = {
        "throughput": report.median_of(runs),
        "throughput_runs": runs,
        "queries": flowlogs.run_queries(args.flowlogs_lake_records),
    }
    return _write_part(args, "flowlogs", figures, flowlogs.markdown(figures))


def _dashboard(args: argparse.Namespace) -> int:
    """The flow-logs dashboard's render over a day of records (bench/dashboard.py)."""
    from bench import dashboard

    log.info("dashboard over %d records", args.flowlogs_lake_records)
    figures = dashboard.run(args.flowlogs_lake_records, repeat=max(args.repeat, 7))
    return _write_part(args, "dashboard", figures, dashboard.markdown(figures))


def _ingest(args: argparse.Namespace) -> int:
    """The telemetry ingest service alone (bench/ingest.py)."""
    from bench import ingest

    figures = ingest.run()
    return _write_part(args, "ingest", figures, ingest.markdown(figures))


def _timeseries(args: argparse.Namespace) -> int:
    """The time-series API on two workers (bench/timeseries.py): ``--repeat`` runs, each
    on a fresh broker; with --profile, the first run has one extra mixed run under
    py-spy (kept out of the figures)."""
    from bench import timeseries, timeseries_report

    runs = []
    profiled: dict[str, Any] | None = None
    for repeat in range(args.repeat):
        log.info("timeseries, run %d/%d", repeat + 1, args.repeat)
        run = timeseries.run(quick=args.quick, profile_to=args.profile if repeat == 0 else None)
        profiled = run.pop("profile", profiled)
        runs.append(run)
    figures: dict[str, Any] = {**timeseries_report.median_runs(runs), "runs": runs}
    if profiled is not None:
        figures["profile"] = profiled
    return _write_part(args, "timeseries", figures, timeseries_report.markdown(figures))


def _launches(args: argparse.Namespace) -> int:
    """The launches batch job, process start to exit (bench/launches.py)."""
    from bench import launches

    figures = launches.run()
    return _write_part(args, "launches", figures, launches.markdown(figures))


def _versus(args: argparse.Namespace, records: list[Record] | None = None) -> int:
    """Our platform against Quix Streams (bench/versus.py); results-versus.json, at the
    top level: quix, same_work, full, ratio_same_work, ratio_full."""
    from bench import versus, versus_report

    names = tuple(w.strip() for w in args.versus_workloads.split(",") if w.strip())
    unknown = set(names) - set(versus.WORKLOADS)
    if unknown:
        raise SystemExit(f"unknown workloads {sorted(unknown)}; known: {list(versus.WORKLOADS)}")
    partitions = int(os.environ.get("ORDERS_PARTITIONS", "4"))
    if records is None or len(records) != args.versus_orders:
        log.info("generating %d orders", args.versus_orders)
        records = data.generate(args.versus_orders)
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine.describe(),
        "source": machine.source(),
    }
    results.update(
        versus.run(
            records,
            partitions,
            args.versus_repeat,
            args.quix_python or versus.QUIX_PYTHON,
            names,
            args.quix_commit_interval,
        )
    )
    results["source_after"] = machine.source()
    output = args.output
    if output == report.RESULTS or args.only is None:
        output = report.RESULTS.with_name("results-versus.json")
    report.write(results, output)
    sys.stdout.write(versus_report.markdown(results) + "\n")
    log.info("results in %s", output)
    return 0


def _latency(args: argparse.Namespace) -> int:
    """Order produced to its daily figure in the view, at a steady rate (bench/latency.py)."""
    from bench import latency

    log.info("latency: %.0f orders/s for %.0f s", args.latency_rate, args.latency_seconds)
    figures = latency.run(args.latency_rate, args.latency_seconds, args.latency_poll)
    return _write_part(args, "latency", figures, latency.markdown(figures))


def _recovery(args: argparse.Namespace) -> int:
    """A worker with ~1M table keys killed and replaced (bench/recovery.py)."""
    from bench import recovery

    log.info("recovery: filling the table with %d orders", args.recovery_orders)
    figures = recovery.run(args.recovery_orders)
    return _write_part(args, "recovery", figures, recovery.markdown(figures))


def _telemetry_throughput(args: argparse.Namespace) -> dict[str, Any]:
    """(a) per variant, ``--repeat`` runs; with --profile, one extra run of the first
    variant under py-spy, kept out of the medians (sampling costs the worker CPU)."""
    from bench import telemetry

    out: dict[str, Any] = {"throughput": {}}
    for index, (name, (interfaces, polls, request)) in enumerate(telemetry.VARIANTS.items()):
        log.info("telemetry %s: generating ~%d readings", name, args.readings)
        data = telemetry.poll_records(
            interfaces, args.readings, polls_per_record=polls, request_readings=request
        )
        if index == 0 and args.profile is not None:
            log.info("telemetry throughput %s under py-spy (not in the medians)", name)
            run = telemetry.run_throughput(data, profile=args.profile)
            summary = profile.summarize(args.profile)
            text = profile.render(summary, run["profile_seconds"] or 0.0)
            args.profile.with_suffix(".txt").write_text(text + "\n")
            out["profile"] = {"raw": str(args.profile), "variant": name, "run": run, **summary}
            log.info("profile summary in %s", args.profile.with_suffix(".txt"))
        runs, errors = [], []
        for repeat in range(args.repeat):
            log.info("telemetry throughput %s, run %d/%d", name, repeat + 1, args.repeat)
            try:
                run = telemetry.run_throughput(data)
            except pipeline.BenchError as exc:
                log.error("telemetry %s failed: %s", name, exc)
                errors.append(str(exc)[-2000:])
                continue
            log.info("  %s readings/s steady", f"{run['steady_readings_per_s'] or 0:,.0f}")
            runs.append(run)
        median = report.median_of(runs) if runs else None
        out["throughput"][name] = {"median": median, "runs": runs, "errors": errors}
    return out


def _telemetry(args: argparse.Namespace) -> int:
    """The telemetry workers (bench/telemetry.py); results-telemetry.json."""
    from bench import telemetry

    started = time.monotonic()
    parts = {part.strip() for part in args.telemetry_parts.split(",") if part.strip()}
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine.describe(),
        "source": machine.source(),
        "repeat": args.repeat,
    }
    if "throughput" in parts:
        results.update(_telemetry_throughput(args))
    if "latency" in parts:
        log.info("telemetry window latency, live (~%d s)", telemetry.LIVE["seconds"])
        results["latency"] = telemetry.run_latency()
    results["source_after"] = machine.source()
    results["bench_seconds"] = time.monotonic() - started
    output = args.output
    if output == report.RESULTS:  # keep the orders figures
        output = report.RESULTS.with_name("results-telemetry.json")
    report.write(results, output)
    sys.stdout.write(telemetry.markdown(results) + "\n")
    if "profile" in results:
        sys.stdout.write(f"profile of the worker: {args.profile.with_suffix('.txt')}\n")
    log.info("done in %.0f s; results in %s", results["bench_seconds"], output)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = options.parser(__doc__).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    if args.only == "ingest":
        return _ingest(args)
    if args.only == "telemetry":
        return _telemetry(args)
    if args.only == "memory":
        return _memory(args)
    if args.only == "flowlogs":
        return _flowlogs(args)
    if args.only == "timeseries":
        return _timeseries(args)
    if args.only == "launches":
        return _launches(args)
    if args.only == "dashboard":
        return _dashboard(args)
    if args.only == "versus":
        return _versus(args)
    if args.only == "latency":
        return _latency(args)
    if args.only == "recovery":
        return _recovery(args)
    started = time.monotonic()
    partitions = int(os.environ.get("ORDERS_PARTITIONS", "4"))
    batch_size = int(os.environ.get("ORDERS_BATCH_SIZE", "2000"))
    log.info("generating %d orders", args.orders)
    records = data.generate(args.orders)
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine.describe(),
        "source": machine.source(),
        "orders": args.orders,
        "repeat": args.repeat,
        "partitions": partitions,
        "data": data.summary(records),
    }
    if args.only in (None, "logic"):
        log.info("pure logic")
        runs = [logic.measure(records, partitions, batch_size) for _ in range(args.repeat)]
        results["logic"] = {"median": report.median_of(runs), "runs": runs}
    if args.only in (None, "pipeline", "views"):
        results.update(_pipeline(args, records, partitions))
    results["bench_seconds"] = time.monotonic() - started
    report.write(results, args.output)
    sys.stdout.write(report.markdown(results) + "\n")
    if "profile" in results:
        sys.stdout.write(f"\nprofile of the worker: {args.profile.with_suffix('.txt')}\n")
    log.info("done in %.0f s; results in %s", results["bench_seconds"], args.output)
    if args.only is None:
        # The comparison with Quix Streams, on the same orders, in the same invocation;
        # then the orders worker's latency and recovery (issue 14).
        return _versus(args, records) or _latency(args) or _recovery(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
