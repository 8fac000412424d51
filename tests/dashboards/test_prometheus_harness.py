"""The Prometheus test harness works against the real `prometheus` binary."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.prometheus import (
    Prometheus,
    PrometheusError,
    alert_expressions,
    dashboard_queries,
    free_port,
    recording_expressions,
    running_prometheus,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def self_scraping(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    port = free_port()
    with running_prometheus(
        {"prometheus": [f"127.0.0.1:{port}"]}, None, tmp_path_factory.mktemp("harness"), port=port
    ) as prom:
        yield prom


def test_prometheus_scrapes_itself(self_scraping: Prometheus) -> None:
    """A harness-started Prometheus scraping its own address reports itself up."""
    result = self_scraping.wait_for('up{job="prometheus"} == 1')

    assert [float(sample["value"][1]) for sample in result] == [1.0]
    assert self_scraping.value('up{job="prometheus"}') == 1.0


def test_invalid_promql_raises_with_http_400(self_scraping: Prometheus) -> None:
    """A query Prometheus cannot parse raises PrometheusError carrying HTTP 400."""
    with pytest.raises(PrometheusError) as error:
        self_scraping.query("sum(rate(up[1m])")

    assert error.value.http_status == 400
    assert error.value.error_type == "bad_data"


def test_query_without_data_returns_empty_list(self_scraping: Prometheus) -> None:
    """A valid query over a metric nobody exports returns no samples rather than failing."""
    assert self_scraping.query("no_such_metric_total") == []


def test_process_stops_when_context_exits(tmp_path: Path) -> None:
    """Leaving running_prometheus stops the server process it started."""
    with running_prometheus({}, None, tmp_path) as prom:
        assert prom.process.poll() is None

    assert prom.process.poll() is not None


def test_dashboard_queries_walk_collapsed_rows_and_replace_grafana_variables(
    tmp_path: Path,
) -> None:
    """dashboard_queries finds targets inside collapsed rows and makes them plain PromQL."""
    dashboard = {
        "panels": [
            {"type": "timeseries", "title": "top", "targets": [{"expr": "up"}]},
            {
                "type": "row",
                "title": "folded",
                "collapsed": True,
                "panels": [
                    {
                        "type": "timeseries",
                        "title": "inner",
                        "targets": [
                            {"expr": "rate(x_total[$__rate_interval])"},
                            {"expr": ""},
                        ],
                    }
                ],
            },
        ]
    }
    path = tmp_path / "dashboard.json"
    path.write_text(json.dumps(dashboard))

    assert dashboard_queries(path) == [("top", "up"), ("inner", "rate(x_total[1m])")]


def test_rule_readers_split_alerts_from_recording_rules(tmp_path: Path) -> None:
    """alert_expressions lists only alerting rules and recording_expressions only records."""
    path = tmp_path / "rules.yml"
    path.write_text(
        "groups:\n"
        "  - name: g\n"
        "    rules:\n"
        "      - record: job:x:rate5m\n"
        "        expr: sum by (job) (rate(x_total[5m]))\n"
        "      - alert: XHigh\n"
        "        expr: >\n"
        "          job:x:rate5m > 1\n"
    )

    assert alert_expressions(path) == [("XHigh", "job:x:rate5m > 1")]
    assert recording_expressions(path) == [("job:x:rate5m", "sum by (job) (rate(x_total[5m]))")]
