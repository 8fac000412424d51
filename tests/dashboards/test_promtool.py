"""Prometheus config, alert rules and the Grafana dashboard for the orders pipeline."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from prometheus_client import CollectorRegistry

from tests.dashboards.contract import (
    CONTRACT,
    DASHBOARDS,
    DATASOURCE_UID,
    FAUST_COUNTERS,
    FAUST_GAUGES,
    FAUST_HISTOGRAMS,
    GRAFANA_DIR,
    HISTOGRAM_SERIES,
    ORDERS_DASHBOARD,
    PROMETHEUS_DIR,
    RULE_TESTS,
    RULES,
    SEVERITIES,
    load_yaml,
    metric_family,
    metric_names,
    promtool,
)
from tests.support.prometheus import (
    alert_expressions,
    dashboard_queries,
    iter_panels,
    recording_expressions,
)


def test_metric_name_extraction_sees_through_promql_syntax() -> None:
    """The contract check finds metric names and ignores functions, labels and durations."""
    expr = (
        'sum by (job, le) (rate(a_total{job="orders", x=~"b|c"}[5m] offset 35m))'
        " / on (job) group_left sqrt(clamp_min(b:rec:rate5m, 1e-3 / 300)) > bool 5"
    )

    assert metric_names(expr) == {"a_total", "b:rec:rate5m"}


# --- promtool -----------------------------------------------------------------------


def test_compose_config_is_valid_with_its_rule_files(tmp_path: Path) -> None:
    """The compose Prometheus config passes promtool and finds its rules relative to itself."""
    # Checked on a copy of the directory as Compose mounts it (/etc/prometheus), which
    # proves the relative `rules/*.yml` needs nothing outside that directory.
    mounted = shutil.copytree(PROMETHEUS_DIR, tmp_path / "etc-prometheus")

    result = promtool("check", "config", mounted / "prometheus.yml")

    assert result.returncode == 0, result.stdout + result.stderr
    found = re.search(r"SUCCESS: (\d+) rule files found", result.stdout + result.stderr)
    assert found, result.stdout + result.stderr
    assert int(found.group(1)) == len(list((PROMETHEUS_DIR / "rules").glob("*.yml")))


def test_rules_are_valid() -> None:
    """promtool accepts every rule file."""
    rule_files = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))

    result = promtool("check", "rules", *rule_files)

    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass() -> None:
    """Each alert fires on its synthetic series and stays silent on a healthy one."""
    result = promtool("test", "rules", RULE_TESTS)

    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_severity_and_annotations() -> None:
    """Every alert carries a known severity label and summary and description annotations."""
    rules = [
        rule for group in load_yaml(RULES)["groups"] for rule in group["rules"] if "alert" in rule
    ]

    assert rules
    for rule in rules:
        assert rule.get("labels", {}).get("severity") in SEVERITIES, rule["alert"]
        assert rule.get("annotations", {}).get("summary"), rule["alert"]
        assert rule.get("annotations", {}).get("description"), rule["alert"]


def test_every_alert_is_unit_tested() -> None:
    """Every alert in the rule file appears in the promtool unit tests."""
    tested = {
        case["alertname"]
        for group in load_yaml(RULE_TESTS)["tests"]
        for case in group.get("alert_rule_test", [])
    }

    assert {name for name, _ in alert_expressions(RULES)} <= tested


# --- the dashboard JSON ---------------------------------------------------------------


def test_dashboards_are_well_formed() -> None:
    """Each dashboard has a title, a uid, unique panel ids and queries only our datasource."""
    assert DASHBOARDS
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        assert dashboard.get("title"), path.name
        assert dashboard.get("uid"), path.name
        panels = list(iter_panels(dashboard))
        ids = [panel.get("id") for panel in panels]
        assert None not in ids, path.name
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
        for panel in panels:
            assert panel.get("title"), f"{path.name}: panel {panel['id']} has no title"
            if panel.get("type") == "row":
                continue
            assert panel.get("datasource", {}).get("uid") == DATASOURCE_UID, panel["title"]
            assert panel.get("targets"), panel["title"]
            for target in panel["targets"]:
                assert target.get("datasource", {}).get("uid") == DATASOURCE_UID, panel["title"]
                assert target.get("expr"), panel["title"]


def test_orders_dashboard_has_its_rows_and_panels_do_not_overlap() -> None:
    """The Orders dashboard has the Business, Data quality and Operations rows on a clean grid."""
    dashboard = json.loads(ORDERS_DASHBOARD.read_text())
    panels = list(iter_panels(dashboard))

    assert (dashboard["uid"], dashboard["title"]) == ("orders", "Orders")
    rows = [panel["title"] for panel in panels if panel["type"] == "row"]
    assert rows == ["Business", "Data quality", "Operations"]
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        area = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not area & cells, f"{panel['title']} overlaps another panel"
        cells |= area


def test_grafana_provisioning_points_at_prometheus_and_the_dashboards() -> None:
    """Grafana provisions the default Prometheus datasource and loads the dashboard folder."""
    datasources = load_yaml(GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml")
    providers = load_yaml(GRAFANA_DIR / "provisioning" / "dashboards" / "provider.yml")

    [datasource] = datasources["datasources"]
    assert datasource["uid"] == DATASOURCE_UID
    assert datasource["url"] == "http://prometheus:9090"
    assert datasource["isDefault"] is True
    [provider] = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def test_dashboards_and_rules_use_only_contract_metrics() -> None:
    """Every metric named by a dashboard query or a rule is in the pipeline's metric contract."""
    recorded = {name for name, _ in recording_expressions(RULES)}
    unknown = []
    for path in DASHBOARDS:
        for title, expr in dashboard_queries(path):
            unknown += [(path.name, title, name) for name in metric_names(expr) - CONTRACT]
    for name, expr in recording_expressions(RULES) + alert_expressions(RULES):
        unknown += [
            (RULES.name, name, metric) for metric in metric_names(expr) - CONTRACT - recorded
        ]

    assert not unknown


def test_faust_metric_names_match_faust_sensor() -> None:
    """The Faust names in the contract are exactly those Faust's Prometheus sensor exports."""
    from faust.sensors.prometheus import FaustMetrics

    registry = CollectorRegistry()
    FaustMetrics.create(registry, "faust")
    exported = {
        sample.name
        for family in registry.collect()
        for sample in family.samples
        if not sample.name.endswith("_created")
    }
    expected = {
        *FAUST_COUNTERS,
        *FAUST_GAUGES,
        *(name + suffix for name in FAUST_HISTOGRAMS for suffix in HISTOGRAM_SERIES),
    }

    # Labelled metrics export no sample before their first use: compare family names too.
    families = {family.name for family in registry.collect()}
    assert exported <= expected
    assert {metric_family(name) for name in expected} == families


# --- the queries against a real Prometheus ------------------------------------------
