"""Every metric of the orders pipeline, built in one place with the registry passed in."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from streams.orders.logic import REASONS

PREFIX = "streams_orders"
#: The periodic and background work that runs guarded (streams/common/background.py).
#: ``after_clock``: a record its batch had settled before a later step of it failed.
TASKS = ("close_and_detect", "refresh_gauges", "mirror", "after_clock")
ALERT_KINDS = ("low_stock", "orders_spike", "orders_drop", "revenue_spike", "revenue_drop")


@dataclass(frozen=True)
class OrdersMetrics:
    received: Counter
    accepted: Counter
    revenue: Counter
    duplicates: Counter
    replayed: Counter
    dead_letters: Counter
    late_accepted: Counter
    quality_issues: Counter
    latency: Histogram
    batch_size: Histogram
    batch_failures: Counter
    task_failures: Counter
    stream_time: Gauge
    reports: Counter
    alerts: Counter
    low_stock: Gauge
    view_records: Gauge
    zscore: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> OrdersMetrics:
        def name(thing: str) -> str:
            return f"{PREFIX}_{thing}"

        metrics = cls(
            received=Counter(name("received"), "Records read from orders.raw", registry=registry),
            accepted=Counter(
                name("accepted"),
                "Valid, first-seen orders counted",
                ["channel", "status"],
                registry=registry,
            ),
            revenue=Counter(
                name("revenue_usd"),
                "Revenue of orders whose status counts as revenue (USD)",
                ["channel"],
                registry=registry,
            ),
            duplicates=Counter(name("duplicates"), "Repeated order ids", registry=registry),
            replayed=Counter(
                name("replayed"), "Records seen again after a restart", registry=registry
            ),
            dead_letters=Counter(
                name("dead_letters"), "Records sent to orders.dlq", ["reason"], registry=registry
            ),
            late_accepted=Counter(
                name("late_accepted"),
                "Orders that arrived after their day closed and revise it",
                registry=registry,
            ),
            quality_issues=Counter(
                name("quality_issues"),
                "Non-fatal data-quality findings",
                ["check"],
                registry=registry,
            ),
            latency=Histogram(
                name("processing_latency_seconds"),
                "From the record's produce time to its result being written",
                buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
                registry=registry,
            ),
            batch_size=Histogram(
                name("batch_size"),
                "Records per processed batch",
                buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000),
                registry=registry,
            ),
            batch_failures=Counter(
                name("batch_failures"),
                "Batches that failed and were tried again (none of a failed batch is committed)",
                registry=registry,
            ),
            task_failures=Counter(
                name("task_failures"),
                "Timer and background task runs that failed (logged; tried again next tick)",
                ["task"],
                registry=registry,
            ),
            stream_time=Gauge(
                name("stream_time_seconds"), "Event-time high mark (unix s)", registry=registry
            ),
            reports=Counter(name("reports"), "Daily reports emitted", ["kind"], registry=registry),
            alerts=Counter(name("alerts"), "Alerts emitted", ["kind"], registry=registry),
            low_stock=Gauge(
                name("low_stock_products"), "Products below the stock threshold", registry=registry
            ),
            view_records=Gauge(
                name("view_records"),
                "Records the worker holds for its views (tables mirrored, reports, alerts)",
                registry=registry,
            ),
            zscore=Gauge(
                name("anomaly_zscore"),
                "z-score of the last closed hour against its EWMA",
                ["channel", "measure"],
                registry=registry,
            ),
        )
        # Series that exist from the start let rate() and increase() see the first event.
        for reason in REASONS:
            metrics.dead_letters.labels(reason)
        for kind in ALERT_KINDS:
            metrics.alerts.labels(kind)
        for kind in ("final", "revision"):
            metrics.reports.labels(kind)
        for task in TASKS:
            metrics.task_failures.labels(task)
        return metrics
