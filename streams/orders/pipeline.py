"""The orders pipeline's names and what its agents, views and reporter share on a worker."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import faust

from streams.common.mirror import TopicMirror
from streams.common.topics import COMPACTED, TopicSpec, changelog
from streams.orders.analytics import AggregateIndex
from streams.orders.lake import Lake
from streams.orders.logic import Rejected, Rules, reference_record
from streams.orders.metrics import OrdersMetrics
from streams.orders.models import CatalogEntry, InventoryRow
from streams.orders.reports import HeldReports
from streams.orders.settings import OrdersSettings

RAW = "orders.raw"
CATALOG = "orders.catalog"
INVENTORY = "orders.inventory"
ENRICHED = "orders.enriched"
DLQ = "orders.dlq"
REPORTS = "orders.reports.daily"
ALERTS = "orders.alerts"
AGGREGATES = "aggregates"
#: The workers' app id: their consumer group and the prefix of their changelogs.
APP_ID = "orders"


def topic_specs(partitions: int) -> dict[str, TopicSpec]:
    """Every topic of the pipeline. Orders, their results and dead letters, inventory
    rows and the aggregates' changelog share the partitions of orders.raw (keyed by
    customer or product); reference data and results of the whole product are small
    and keep their order in one partition. Compacted topics hold the newest value per
    key: the catalog and stock per product, reports and alerts per id (a re-send after
    a crash replaces its twin)."""
    return {
        RAW: TopicSpec(partitions),
        ENRICHED: TopicSpec(partitions),
        DLQ: TopicSpec(partitions),
        INVENTORY: TopicSpec(partitions, COMPACTED),
        CATALOG: TopicSpec(1, COMPACTED),
        REPORTS: TopicSpec(1, COMPACTED),
        ALERTS: TopicSpec(1, COMPACTED),
        changelog(APP_ID, AGGREGATES): TopicSpec(partitions, COMPACTED),
    }


@dataclass
class OrdersPipeline:
    """What the views, the reporter and the tests need from a registered pipeline."""

    app: faust.App
    settings: OrdersSettings
    rules: Rules
    metrics: OrdersMetrics
    mirror: TopicMirror
    index: AggregateIndex = field(default_factory=AggregateIndex)
    catalog: dict[str, CatalogEntry] = field(default_factory=dict)
    #: Valid inventory rows by product, as JSON-able dicts.
    stock: dict[str, dict[str, Any]] = field(default_factory=dict)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    topics: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, Any] = field(default_factory=dict)
    lake: Lake | None = None
    #: Channels exported as metric labels as they are; any other is ``other``.
    channels: frozenset[str] = frozenset()
    #: The daily reports of the last ``ORDERS_HISTORY_DAYS`` dates (the mirror passes
    #: them on unstored): for the view and the reporter.
    reports: HeldReports = field(init=False)

    def __post_init__(self) -> None:
        self.reports = HeldReports(self.settings.history_days)

    @property
    def aggregates_changelog(self) -> str:
        return changelog(self.app.conf.id, AGGREGATES)

    def inventory(self) -> dict[str, dict[str, Any]]:
        return self.stock

    def view_records(self) -> int:
        """Records held for the views: what bounds a worker's memory as history grows."""
        mirrored = sum(len(records) for records in self.mirror.data.values())
        indexed = sum(len(records) for records in self.index.by_kind.values())
        held = len(self.catalog) + len(self.stock) + len(self.reports.by_id)
        return mirrored + indexed + held

    def on_mirrored(self, topic: str, key: Any, value: Any) -> None:
        if topic == self.aggregates_changelog:
            self.index.on_record(topic, key, value)
        elif topic == REPORTS:
            # Only the reporter writes this topic: any other key or value is no report.
            if isinstance(key, str) and (value is None or isinstance(value, dict)):
                self.reports.on_record(key, value)
        elif topic == CATALOG:
            self._on_reference(self.catalog, CatalogEntry, key, value)
        elif topic == INVENTORY:
            self._on_reference(self.stock, InventoryRow, key, value, as_json=True)

    def _on_reference(
        self, into: dict[str, Any], model: Any, key: Any, value: Any, *, as_json: bool = False
    ) -> None:
        """Keep a checked copy of a catalog or inventory record. A rejected one (the
        agent dead-letters it) leaves the last valid value of its product in force."""
        if value is None:
            into.pop(key, None)
            return
        try:
            row = reference_record(model, key, value)
        except Rejected:
            return
        into[row.product_id] = row.model_dump(mode="json") if as_json else row
