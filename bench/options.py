"""The options of ``python -m bench``: which part runs, and each part's sizes."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench import pipeline, report


def parser(description: str) -> argparse.ArgumentParser:
    """Every option of ``python -m bench``."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=description)
    parser.add_argument("--orders", type=int, default=200_000, help="orders per run")
    parser.add_argument("--repeat", type=int, default=1, help="runs per figure (median)")
    parser.add_argument(
        "--only",
        choices=(
            "pipeline",
            "logic",
            "views",
            "ingest",
            "telemetry",
            "memory",
            "flowlogs",
            "timeseries",
            "launches",
            "dashboard",
            "versus",
            "latency",
            "recovery",
        ),
        help="one part",
    )
    parser.add_argument(
        "--readings",
        type=int,
        default=2_600_000,
        help="telemetry: readings preloaded per throughput run (rounded to whole windows)",
    )
    parser.add_argument(
        "--telemetry-parts",
        default="throughput,latency",
        help="telemetry: comma-separated parts, throughput and/or latency",
    )
    parser.add_argument(
        "--variants",
        default=",".join(pipeline.VARIANTS),
        help="comma-separated pipeline variants (default: all)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="py-spy the worker during variant (a)'s first run (telemetry: the first "
        "throughput run; timeseries: an extra mixed run); collapsed stacks to this file",
    )
    parser.add_argument(
        "--flowlogs-records", type=int, default=2_000_000, help="flow logs: records end to end"
    )
    parser.add_argument(
        "--flowlogs-lake-records",
        type=int,
        default=10_000_000,
        help="flow logs and dashboard: records in the lake the queries read",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="timeseries: shorter runs (15 s of mixed traffic instead of 60)",
    )
    parser.add_argument(
        "--versus-orders",
        type=int,
        default=500_000,
        help="versus: orders per run (Quix commits every 5 s: several commits per run)",
    )
    parser.add_argument(
        "--versus-repeat",
        type=int,
        default=3,
        help="versus: interleaved rounds of the three workloads (medians; at least 3)",
    )
    parser.add_argument(
        "--versus-workloads",
        default="quix,same_work,full",
        help="versus: comma-separated workloads (default: all three)",
    )
    parser.add_argument(
        "--quix-python",
        type=Path,
        default=None,
        help="versus: the interpreter with Quix Streams (default .venv/bench-quix/bin/python)",
    )
    parser.add_argument(
        "--quix-commit-interval",
        type=float,
        default=5.0,
        help="versus: Quix's commit_interval in s (default 5, Quix's own default)",
    )
    parser.add_argument(
        "--latency-rate", type=float, default=1_000.0, help="latency: orders/s sent"
    )
    parser.add_argument(
        "--latency-seconds", type=float, default=60.0, help="latency: seconds of sending"
    )
    parser.add_argument(
        "--latency-poll", type=float, default=0.02, help="latency: s between view polls"
    )
    parser.add_argument(
        "--recovery-orders",
        type=int,
        default=640_000,
        help="recovery: orders that fill the table (~1.6 keys each)",
    )
    parser.add_argument(
        "--memory-per-day",
        type=int,
        default=4_000,
        help="memory: orders on each day of event time (evenly spaced, in time order)",
    )
    parser.add_argument(
        "--memory-days",
        type=int,
        default=180,
        help="memory: days of event time fed to the worker, sampled every 10 days",
    )
    parser.add_argument("--output", type=Path, default=report.RESULTS, help="results JSON")
    return parser
