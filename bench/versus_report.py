"""The side-by-side figures: medians per workload, the two ratios against the goals,
and the Markdown the README quotes (bench/versus.py runs the workloads)."""

from __future__ import annotations

import statistics
from typing import Any

LABELS = {
    "quix": "1. Quix Streams, peer workload",
    "same_work": "2. our platform, same work",
    "full": "3. our full orders pipeline",
}
#: The issue's goals: same work at least 1.5x Quix's rate, the full pipeline at least 1x.
GOALS = {"ratio_same_work": 1.5, "ratio_full": 1.0}


def summarize(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Medians per workload and the two ratios (pure: the runs' figures in, JSON out)."""
    out: dict[str, Any] = {}
    for name, done in runs.items():
        rates = [r["orders_per_s"] for r in done]
        cpus = [r["cpu_s_per_100k"] for r in done if r["cpu_s_per_100k"] is not None]
        out[name] = {
            "orders_per_s": statistics.median(rates) if rates else None,
            "cpu_s_per_100k": statistics.median(cpus) if cpus else None,
            "runs_orders_per_s": rates,
            "runs_cpu_s_per_100k": cpus,
            "runs": done,
        }

    def ratio(name: str) -> float | None:
        ours = out.get(name, {}).get("orders_per_s")
        quix = out.get("quix", {}).get("orders_per_s")
        return None if ours is None or not quix else ours / quix

    out["ratio_same_work"] = ratio("same_work")
    out["ratio_full"] = ratio("full")
    out["goals"] = {
        key: {"goal": goal, "met": None if out[key] is None else out[key] >= goal}
        for key, goal in GOALS.items()
    }
    return out


def _num(value: Any, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def markdown(results: dict[str, Any]) -> str:
    """The comparison as the README and docs/orders.md show it."""
    m = results["machine"]
    out = [
        f"## Versus Quix Streams ({results['date']})",
        "",
        f"{m['nproc']} CPUs ({m['cpu']}), Python {m['python']}; "
        f"{results['orders']:,} orders, {results['partitions']} partitions, median of "
        f"{results['repeat']} interleaved runs; load average {results['load_before'][0]:.2f} "
        f"before, {results['load_after'][0]:.2f} after.",
        "",
        "| workload | orders/s | CPU s per 100k orders | runs (orders/s) |",
        "|---|--:|--:|---|",
    ]
    for name in results["order"]:
        entry = results[name]
        runs = " / ".join(_num(r) for r in entry["runs_orders_per_s"])
        out.append(
            f"| {LABELS.get(name, name)} | {_num(entry['orders_per_s'])} | "
            f"{_num(entry['cpu_s_per_100k'], 1)} | {runs} |"
        )
    out.append("")
    for key, label in (("ratio_same_work", "2/1"), ("ratio_full", "3/1")):
        goal = results["goals"][key]
        met = {True: "met", False: "NOT met", None: "-"}[goal["met"]]
        out.append(f"- ratio {label}: {_num(results[key], 2)} (goal >= {goal['goal']}: {met})")
    return "\n".join(out)
