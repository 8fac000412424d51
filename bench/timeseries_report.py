"""The time-series bench's figures: medians of its runs, the targets met, and the
Markdown table the README quotes (bench/timeseries.py measures them)."""

from __future__ import annotations

from typing import Any

from bench.timeseries_load import MIX, THROUGHPUT_SERIES

RATE = 200.0
#: The issue's targets: p99 in ms.
TARGET_P99_MS = {"reads": 20.0, "writes": 100.0}
TARGET_POINTS_PER_S = 50_000


def conclusions(results: dict[str, Any]) -> dict[str, Any]:
    """The best append run and whether each target was met (computed again on medians)."""
    mixed = results["mixed"]
    reads, writes = mixed["reads"]["p99_ms"], mixed["writes"]["p99_ms"]
    best = max(results["appends"].values(), key=lambda a: a["points_per_s"])
    return {
        "appends_best": {k: best[k] for k in ("batch", "times", "connections", "points_per_s")},
        "verdict": {
            "mixed_rate_met": mixed["achieved_per_s"] >= 0.98 * RATE and mixed["errors"] == 0,
            "reads_p99_met": reads is not None and reads < TARGET_P99_MS["reads"],
            "writes_p99_met": writes is not None and writes < TARGET_P99_MS["writes"],
            "appends_points_per_s_met": best["points_per_s"] >= TARGET_POINTS_PER_S,
        },
    }


# -- the table --------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _mixed_table(mixed: dict[str, Any]) -> list[str]:
    share = mixed["cpu_share"]
    lines = [
        f"{mixed['rate']:.0f} requests/s scheduled for {mixed['seconds']:.0f} s: "
        f"{mixed['achieved_per_s']:.1f}/s sent and answered ({mixed['ok_per_s']:.1f}/s 2xx), "
        f"{mixed['errors']} errors, {mixed['forwarded_reads']:.0f} reads forwarded, "
        f"{mixed['writes_awaited_from_the_owner']:.0f} writes awaited from the other worker; "
        f"load average {mixed['load_1min_before']:.2f} before; CPU of a core: worker 0 "
        f"{_pct(share['worker_0'])}, worker 1 {_pct(share['worker_1'])}, broker "
        f"{_pct(share['broker'])}; client p99 lateness "
        f"{_ms(mixed['client_lateness']['p99_ms'])} ms.",
        "",
        "CPU seconds by thread: "
        + "; ".join(
            f"{worker} " + ", ".join(f"{t} {s:.1f}" for t, s in threads.items())
            for worker, threads in mixed["worker_cpu_s_by_thread"].items()
        )
        + ".",
        "",
        "| kind | share | requests | p50 ms | p90 ms | p99 ms | max ms | errors |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for kind, k in mixed["kinds"].items():
        lines.append(
            f"| {kind} | {MIX[kind]:.0%} | {k['count']:,} | {_ms(k['p50_ms'])} | "
            f"{_ms(k['p90_ms'])} | {_ms(k['p99_ms'])} | {_ms(k['max_ms'])} | {k['errors']} |"
        )
    for name in ("reads", "writes"):
        p = mixed[name]
        lines.append(
            f"| all {name} (target p99 < {TARGET_P99_MS[name]:.0f} ms) | | {p['count']:,} | "
            f"{_ms(p['p50_ms'])} | {_ms(p['p90_ms'])} | **{_ms(p['p99_ms'])}** | "
            f"{_ms(p['max_ms'])} | |"
        )
    return lines


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"Time-series API, two workers, {results['series']} series of "
        f"{results['points_per_series']:,} points ({results['mode']} mode).",
        "",
        "Mixed traffic, open loop (latency from each request's scheduled time):",
        "",
        *_mixed_table(results["mixed"]),
    ]
    for mixed in results.get("mixed_at", {}).values():
        lines += ["", *_mixed_table(mixed)]
    lines += [
        "",
        f"Appends, one client process, {THROUGHPUT_SERIES} series "
        f"(target {TARGET_POINTS_PER_S:,} points/s):",
        "",
        "| points per request | times | connections | points/s | requests/s | p50 / p99 ms | "
        "errors | worker 0 CPU | worker 1 CPU | broker CPU | load before |",
        "|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for a in results["appends"].values():
        share = a["cpu_share"]
        lines.append(
            f"| {a['batch']:,} | {a['times']} | {a['connections']} | "
            f"{a['points_per_s']:,.0f} | {a['requests_per_s']:.1f} | "
            f"{_ms(a['latency']['p50_ms'])} / {_ms(a['latency']['p99_ms'])} | {a['errors']} | "
            f"{_pct(share['worker_0'])} | {_pct(share['worker_1'])} | "
            f"{_pct(share['broker'])} | {a['load_1min_before']:.2f} |"
        )
    verdict = results["verdict"]
    lines += ["", "Targets met: " + ", ".join(f"{k} {v}" for k, v in verdict.items())]
    return "\n".join([*lines, ""])


def median_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of repeated runs, field by field (bench.report.median_of)."""
    from bench.report import median_of

    median = median_of(runs)
    median.update(conclusions(median))
    return median
