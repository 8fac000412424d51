"""The launches metrics: one set of names for both ways to run, labels from fixed sets."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from streams.common.batches import PROCESSING_ERROR
from streams.launches import metrics


def test_the_batch_job_s_reason_is_the_kit_s() -> None:
    """The worker dead-letters a record that fails alone under the kit's reason, and the
    counter is exported at 0 under that very label (the batch job cannot import the kit)."""
    assert metrics.PROCESSING_ERROR == PROCESSING_ERROR
    text = generate_latest(_registry()).decode()
    assert f'streams_launches_records_rejected_total{{reason="{PROCESSING_ERROR}"}} 0.0' in text


def test_every_label_is_exported_at_zero_from_the_start() -> None:
    """An alert on increase() sees the first rejection, load or failure."""
    text = generate_latest(_registry()).decode()
    for reason in metrics.REJECTION_REASONS:
        assert f'records_rejected_total{{reason="{reason}"}} 0.0' in text
    for result in (metrics.WRITTEN, metrics.UNCHANGED):
        assert f'loads_total{{result="{result}"}} 0.0' in text
    assert 'task_failures_total{task="rewrite"} 0.0' in text


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    metrics.Metrics.create(registry)
    return registry
