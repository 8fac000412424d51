"""Medians over repeated runs, the Markdown tables and bench/results.json."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).with_name("results.json")

LABELS = {
    "a_default": "(a) default settings",
    "b_lake_off": '(b) lake off (`ORDERS_PARQUET_URI=""`)',
    "c_batch_5000": "(c) `ORDERS_BATCH_SIZE=5000`",
}


def median_of(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Field by field: the median of numbers, recursively for dicts, else the first run's."""
    out: dict[str, Any] = {}
    for key, first in runs[0].items():
        values = [run.get(key) for run in runs]
        if isinstance(first, bool) or not all(isinstance(v, int | float) for v in values):
            if isinstance(first, dict) and all(isinstance(v, dict) for v in values):
                out[key] = median_of(values)  # type: ignore[arg-type]
            elif isinstance(first, list) and all(isinstance(v, list) for v in values):
                out[key] = [_median_or_none(column) for column in zip(*values, strict=False)]
            else:
                out[key] = first
        else:
            out[key] = statistics.median(values)  # type: ignore[type-var]
    return out


def _median_or_none(values: Sequence[Any]) -> Any:
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    return statistics.median(numbers) if numbers else None


def _num(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def markdown(results: dict[str, Any]) -> str:
    machine = results["machine"]
    out = [
        f"## Orders benchmarks ({results['date']})",
        "",
        f"{machine['nproc']} CPUs ({machine['cpu']}), {machine['memory_gib']} GiB, "
        f"Python {machine['python']}; code {results['source']['commit']}"
        f"{' + uncommitted changes' if results['source']['dirty'] else ''}; "
        f"{results['orders']:,} orders "
        f"(~{results['data']['mean_value_bytes']:.0f} bytes each), median of "
        f"{results['repeat']} run(s); embedded broker (Tansu), one worker process.",
        "",
    ]
    pipeline = results.get("pipeline")
    if pipeline:
        out += [
            "| pipeline variant | orders/s | steady orders/s | processing s | "
            "view complete s | view lag s | lake complete s | worker CPU | broker CPU |",
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for name, entry in pipeline.items():
            m = entry["median"]
            if m is None:
                reason = entry["errors"][-1].splitlines()[-1] if entry["errors"] else "?"
                out.append(f"| {LABELS.get(name, name)} | failed: {reason} |" + " |" * 7)
                continue
            out.append(
                f"| {LABELS.get(name, name)} | {_num(m['orders_per_s'])} | "
                f"{_num(m['steady_orders_per_s'])} | {_num(m['processing_s'], 1)} | "
                f"{_num(m['view_complete_s'], 1)} | {_num(m['view_lag_after_last_s'], 1)} | "
                f"{_num(m['lake_complete_s'], 1)} | {_pct(m['worker_cpu'])} | "
                f"{_pct(m['broker_cpu'])} |"
            )
        out += ["", "| pipeline variant | orders/s over each tenth of the records, first to last |",
                "|---|---|"]  # fmt: skip
        for name, entry in pipeline.items():
            if entry["median"] is not None:
                tenths = entry["median"].get("orders_per_s_by_tenth") or []
                out.append(f"| {LABELS.get(name, name)} | {' / '.join(_num(r) for r in tenths)} |")
        out += [
            "",
            "orders/s: records counted from the first to the last poll of "
            "`streams_orders_received_total` (every 0.2 s); view/lake complete: from the "
            "first record counted until `/orders/revenue/daily` (the Parquet copy) holds "
            "all of them; view lag: after the last record counted.",
            "",
        ]
    logic = results.get("logic")
    if logic:
        m = logic["median"]
        out += [
            "| pure logic, one process, no Kafka | orders/s |",
            "|---|--:|",
            f"| `orjson.loads` alone | {_num(m['orjson_loads'])} |",
            f"| `parse_order` (decode + pydantic + upgrade) | {_num(m['parse_order'])} |",
            f"| `process_record`, dict-backed `PartitionState`, 2000-record batches | "
            f"{_num(m['process_record'])} |",
            f"| `process_record` + `enrich` + `orjson.dumps` (what `emit` adds before "
            f"sending) | {_num(m['process_record_enrich'])} |",
            "",
        ]
    views = results.get("views")
    if views:
        out += [
            f"| view ({results['orders']:,} orders held) | requests | p50 ms | p99 ms | "
            "max ms | body bytes |",
            "|---|--:|--:|--:|--:|--:|",
        ]
        for path, v in views["median"].items():
            out.append(
                f"| `{path}` | {v['requests']} | {_num(v['p50_ms'], 1)} | "
                f"{_num(v['p99_ms'], 1)} | {_num(v['max_ms'], 1)} | {_num(v['bytes'])} |"
            )
        out.append("")
    return "\n".join(out)


def write(results: dict[str, Any], path: Path = RESULTS) -> None:
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
