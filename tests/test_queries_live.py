"""Every dashboard query and every alert expression, evaluated by a real Prometheus that scrapes the demo.

One healthy demo run and one Prometheus (1 s scrapes, the project's rule file loaded) serve every test
here. A dashboard query must return data; an alert expression must either return data or be empty
for the reason its declaration gives, and every metric it reads must be there.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from processes import DemoProcess, PrometheusServer, require, wait_until
from scripts import load_script

ROOT = Path(__file__).resolve().parents[1]


dashboards = load_script("dashboards/generate.py", "hftel_dashboards_generate")
rules = load_script("alerts/rules.py", "hftel_alert_rules")


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    require("prometheus")
    directory = tmp_path_factory.mktemp("live")
    demo = DemoProcess(directory, "--seed", "5").start()
    try:
        scrape = [{"job_name": "hftel", "static_configs": [{"targets": [f"127.0.0.1:{demo.port}"]}]}]
        with PrometheusServer(directory, scrape, rule_files=[str(ROOT / "alerts" / "hftel.rules.yml")]) as server:
            # Rates and quantiles over [1m] need two scrapes of a series; 15 give every window data.
            wait_until(lambda: server.query('count_over_time(up{job="hftel"}[1m]) >= 15'),
                       "15 scrapes of the demo", timeout=90)
            yield server
    finally:
        demo.kill()


def test_prometheus_loaded_every_alert_of_the_rule_file(prometheus):
    loaded = {rule["name"] for rule in prometheus.rules() if rule["type"] == "alerting"}
    assert loaded == {alert.name for alert in rules.ALERTS}


def test_every_rule_evaluates_without_error(prometheus):
    wait_until(lambda: all(rule.get("lastEvaluation", "").startswith("20") for rule in prometheus.rules()),
               "every rule to be evaluated once", timeout=30)
    broken = {rule["name"]: rule.get("lastError") for rule in prometheus.rules() if rule["health"] != "ok"}
    assert not broken


@pytest.mark.parametrize("query", dashboards.queries(), ids=lambda q: f"{q[0]}:{q[1]}")
def test_every_dashboard_query_returns_data(prometheus, query):
    uid, title, expr = query
    assert prometheus.query(dashboards.concrete(expr)), f"{uid} / {title}: {expr} returned nothing"


@pytest.mark.parametrize("alert", rules.ALERTS, ids=lambda alert: alert.name)
def test_every_alert_expression_is_quiet_on_a_healthy_engine_for_its_stated_reason(prometheus, alert):
    assert alert.quiet_reason, f"{alert.name}: no reason given for being empty on a healthy engine"
    if alert.machine_dependent:  # the disks, memory and load of whatever machine runs the tests
        pytest.skip(f"{alert.name} is quiet when {alert.quiet_reason}: a property of this machine, not of the "
                    f"engine; its expression is evaluated by test_every_rule_evaluates_without_error")
    assert prometheus.query(alert.expr) == [], f"{alert.name} fires on the healthy demo: {alert.expr}"


@pytest.mark.parametrize("alert", rules.ALERTS, ids=lambda alert: alert.name)
def test_every_metric_an_alert_reads_is_scraped(prometheus, alert):
    def scraped(name: str) -> bool:  # a histogram is scraped as its _count, _sum and _bucket series
        return any(prometheus.query(f'{{__name__="{series}"}}') for series in (name, f"{name}_count"))

    missing = [name for name in alert.metrics if not scraped(name)]
    assert not missing, f"{alert.name} reads {missing}, which the demo's scrape does not have"
