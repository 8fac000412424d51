"""Prometheus config, alert rules and Grafana dashboards of every pipeline, checked offline."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from tests.dashboards.contract import (
    COMPOSE_CONFIG,
    DASHBOARDS,
    DATASOURCE_UID,
    GRAFANA_DIR,
    PIPELINES,
    PROMETHEUS_DIR,
    SEVERITIES,
    WEB_PORT,
    Pipeline,
    each_pipeline,
    load_yaml,
    metric_names,
    promtool,
    with_recorded,
)
from tests.support.prometheus import alert_expressions, iter_panels

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


def test_every_dashboard_and_rule_file_belongs_to_a_pipeline() -> None:
    """Each dashboard, rule file and rule test file is one pipeline's, so it gets every check."""
    assert set(DASHBOARDS) == {pipeline.dashboard for pipeline in PIPELINES}
    assert set((PROMETHEUS_DIR / "rules").glob("*.yml")) == {p.rules for p in PIPELINES}
    assert set((PROMETHEUS_DIR / "tests").glob("*.yml")) == {p.rule_tests for p in PIPELINES}


@each_pipeline
def test_compose_config_discovers_every_job_by_its_service_name(pipeline: Pipeline) -> None:
    """Prometheus finds each job's replicas through Compose's DNS on the web port (a
    pushed job, the launches batch job's, has no service to find)."""
    scrape_configs = {job["job_name"]: job for job in load_yaml(COMPOSE_CONFIG)["scrape_configs"]}

    assert pipeline.scraped_jobs
    for job in pipeline.scraped_jobs:
        [discovery] = scrape_configs[job]["dns_sd_configs"]
        assert (discovery["names"], discovery["type"], discovery["port"]) == ([job], "A", WEB_PORT)


def test_rules_are_valid() -> None:
    """promtool accepts every rule file."""
    rule_files = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))

    result = promtool("check", "rules", *rule_files)

    assert result.returncode == 0, result.stdout + result.stderr


@each_pipeline
def test_rule_unit_tests_pass(pipeline: Pipeline) -> None:
    """Each alert fires on its synthetic series and stays silent on a healthy one."""
    result = promtool("test", "rules", pipeline.rule_tests)

    assert result.returncode == 0, result.stdout + result.stderr


@each_pipeline
def test_every_alert_has_severity_and_annotations(pipeline: Pipeline) -> None:
    """Every alert carries a known severity label and summary and description annotations."""
    groups = load_yaml(pipeline.rules)["groups"]
    rules = [rule for group in groups for rule in group["rules"] if "alert" in rule]

    assert rules
    for rule in rules:
        assert rule.get("labels", {}).get("severity") in SEVERITIES, rule["alert"]
        assert rule.get("annotations", {}).get("summary"), rule["alert"]
        assert rule.get("annotations", {}).get("description"), rule["alert"]


@each_pipeline
def test_every_rule_is_unit_tested(pipeline: Pipeline) -> None:
    """Every alert has a promtool case, and every recording rule is evaluated by one."""
    cases = load_yaml(pipeline.rule_tests)["tests"]
    tested_alerts = {c["alertname"] for case in cases for c in case.get("alert_rule_test", [])}
    alerts = dict(alert_expressions(pipeline.rules))
    tested_exprs = [c["expr"] for case in cases for c in case.get("promql_expr_test", [])]
    tested_exprs += [alerts[name] for name in tested_alerts & alerts.keys()]
    recorded = pipeline.recorded()
    evaluated = {
        name for expr in with_recorded(tested_exprs, recorded) for name in metric_names(expr)
    }

    assert set(alerts) <= tested_alerts
    assert set(recorded) <= evaluated


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


@each_pipeline
def test_dashboard_has_its_rows_and_panels_do_not_overlap(pipeline: Pipeline) -> None:
    """The pipeline's dashboard has its uid, title and rows, on a clean 24-column grid."""
    dashboard = json.loads(pipeline.dashboard.read_text())
    panels = list(iter_panels(dashboard))

    assert (dashboard["uid"], dashboard["title"]) == (pipeline.name, pipeline.title)
    rows = [panel["title"] for panel in panels if panel["type"] == "row"]
    assert rows == list(pipeline.rows)
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
