"""The failure drills' declarations and timing override (hftel_drill.plan, hftel_drill.timing) and
the results file they write, checked against the committed rules and routing and the real tools.

The drills themselves run against a real Prometheus and Alertmanager in tests/test_drill_live.py.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from hftel.demo.scenarios import NAMES
from hftel_drill import plan, timing
from hftel_drill.plan import DRILLS, RECEIVERS, Evidence
from hftel_drill.results import Run, render
from hftel_drill.runner import Found, Outcome
from processes import require
from scripts import load_script

ROOT = Path(__file__).resolve().parent.parent
RULES = yaml.safe_load((ROOT / "alerts" / "hftel.rules.yml").read_text())
ROUTING = yaml.safe_load((ROOT / "alerts" / "alertmanager.test.yml").read_text())
RESULTS = ROOT / "docs" / "drills" / "RESULTS.md"

rules = load_script("alerts/rules.py", "hftel_alert_rules")


def all_rules(parsed: dict) -> list[dict]:
    return [rule for group in parsed["groups"] for rule in group["rules"]]


# ---------------------------------------------------------------------------------------------------
# Durations
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, value", [("5s", 5), ("1m", 60), ("1m30s", 90), ("500ms", 0.5), ("1h", 3600)])
def test_prometheus_durations_read_as_seconds_and_back(text, value):
    assert (value, text) == (timing.seconds(text), timing.duration(value))


@pytest.mark.parametrize("text", ["", "5", "5 s", "1.5m", "m5", "5sec"])
def test_a_malformed_duration_is_refused_by_name(text):
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        timing.seconds(text)


def test_scaling_shrinks_a_duration_but_never_below_its_floor_nor_above_itself():
    assert ("30s", "4s", "2s") == (timing.scale_duration("5m", 0.1), timing.scale_duration("10s", 0.1, 4),
                                   timing.scale_duration("2s", 0.1, 4))


def test_scaling_an_expression_touches_only_its_range_windows():
    expr = 'sum by (engine) (increase(x{le="5"}[15m])) >= 3 and rate(y[1m]) > 0.05'
    assert 'sum by (engine) (increase(x{le="5"}[1m30s])) >= 3 and rate(y[6s]) > 0.05' == timing.scale_expr(expr, 0.1)


# ---------------------------------------------------------------------------------------------------
# The rules and routing the drills run
# ---------------------------------------------------------------------------------------------------

def test_scale_1_runs_the_committed_rules_and_routing_unchanged():
    """At production timings the drill loads exactly the committed files (webhook URLs aside)."""
    assert RULES == timing.scale_rules(RULES, 1.0)
    assert ROUTING == timing.scale_routing(ROUTING, 1.0, "http://127.0.0.1:9099")


def test_scaled_rules_keep_every_alert_threshold_label_and_annotation():
    """Only `for`, range windows and group intervals change: with those blanked, the files are equal."""
    def blanked(parsed: dict) -> list[dict]:
        return [{**rule, "for": "-", "expr": re.sub(r"\[[0-9a-z]+\]", "[-]", rule["expr"])}
                for rule in all_rules(parsed)]
    scaled = timing.scale_rules(RULES, 0.1)
    assert blanked(RULES) == blanked(scaled)
    assert [group["name"] for group in RULES["groups"]] == [group["name"] for group in scaled["groups"]]


def test_scaled_rules_shrink_for_windows_and_evaluation_tenfold_with_floors():
    scaled = {rule["alert"] + rule["labels"].get("cause", ""): rule for rule in all_rules(timing.scale_rules(RULES, 0.1))}
    assert "3s" == scaled["OrderRejectSpikeCritical"]["for"]                   # 30s
    assert "1s" == scaled["FeedGapCritical"]["for"]                            # 5s, floored at 1s
    assert "[30s]" in scaled["RecorderFailureCriticalengine-recorder"]["expr"]  # [5m]
    assert "[6s]" in scaled["BusOverflowCriticaloverflow"]["expr"]             # [1m]
    assert {"1s"} == {group["interval"] for group in timing.scale_rules(RULES, 0.1)["groups"]}  # 5s


def test_scaled_rules_pass_promtool(tmp_path):
    promtool = require("promtool")
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(timing.scale_rules(RULES, 0.1)))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_scaled_routing_keeps_the_route_tree_matchers_inhibition_and_receivers():
    def blanked(route: dict) -> dict:
        return {key: blanked(value) if key == "routes" else value for key, value in route.items()
                if key not in ("group_wait", "group_interval", "repeat_interval")} if isinstance(route, dict) else \
            [blanked(child) for child in route]
    scaled = timing.scale_routing(ROUTING, 0.1, "http://127.0.0.1:4321/")
    assert blanked(ROUTING["route"]) == blanked(scaled["route"])
    assert ROUTING["inhibit_rules"] == scaled["inhibit_rules"]
    assert [f"http://127.0.0.1:4321/{receiver['name']}" for receiver in ROUTING["receivers"]] == [
        receiver["webhook_configs"][0]["url"] for receiver in scaled["receivers"]]
    assert ("1s", "6s") == (timing.duration(timing.route_timer(scaled, "critical", "group_wait")),
                            timing.duration(timing.route_timer(scaled, "critical", "group_interval")))


@pytest.mark.parametrize("severity", sorted(RECEIVERS))
def test_scaled_routing_sends_each_severity_to_the_drills_expected_receivers(tmp_path, severity):
    """amtool agrees with the drill's expectation on the routing the drill runs."""
    amtool = require("amtool")
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(timing.scale_routing(ROUTING, 0.1, "http://127.0.0.1:4321")))
    result = subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={path}",
         f"--verify.receivers={','.join(RECEIVERS[severity])}", f"severity={severity}", "alertname=X", "engine=e1",
         "family=feed-gap"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------------------------------------------
# The plan
# ---------------------------------------------------------------------------------------------------

def test_every_demo_scenario_has_a_drill_in_the_demos_order():
    assert NAMES == tuple(DRILLS)


@pytest.mark.parametrize("scenario", NAMES)
def test_each_drill_waits_for_a_critical_alert_of_the_rules(scenario):
    """The seeds' failure scenarios are CRITs: each drill's alert is a declared critical rule."""
    assert {"critical"} == {alert.severity for alert in rules.by_name(DRILLS[scenario].alert)}


@pytest.mark.parametrize("scenario", NAMES)
def test_each_drill_checks_the_failure_and_the_recovery(scenario):
    phases = {evidence.phase for evidence in DRILLS[scenario].evidence}
    assert {plan.FAULT, plan.RECOVERY} == phases


def test_an_evidence_query_must_count_rows_since_the_injection():
    with pytest.raises(ValueError, match="AS n"):
        Evidence("rows", "SELECT count() FROM hftel.audit_orders")
    with pytest.raises(ValueError, match="phase 'later'"):
        Evidence("rows", "SELECT count() AS n FROM t WHERE ts >= {since}", "later")


def test_select_takes_scenarios_in_the_demos_order_or_all():
    assert ("feed-gap", "shioaji-disconnect") == tuple(
        drill.scenario for drill in plan.select(["shioaji-disconnect", "feed-gap"]))
    assert NAMES == tuple(drill.scenario for drill in plan.select(["all"]))
    with pytest.raises(ValueError, match="unknown scenario feed-gaps; known: feed-gap"):
        plan.select(["feed-gaps"])


# ---------------------------------------------------------------------------------------------------
# RESULTS.md
# ---------------------------------------------------------------------------------------------------

def outcome(scenario: str, failures: list[str]) -> Outcome:
    drill = DRILLS[scenario]
    result = Outcome(scenario, drill.alert, "critical", f"https://x/docs/runbooks/{scenario}.md#a", 5.0, 5.0,
                     RECEIVERS["critical"], pending_after=1.2, fired_after=6.5, notified_after=16.6,
                     receivers=RECEIVERS["critical"] if not failures else RECEIVERS["critical"][:1],
                     resolved_after=3.0, failures=failures)
    result.evidence = [Found(evidence, evidence.query("toDateTime64('2026-11-21 10:00:00', 6, 'UTC')"), 2)
                       for evidence in drill.evidence]
    return result


def summary_rows(text: str) -> list[list[str]]:
    table = text.split("| scenario |", 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in table]


def test_results_have_one_row_per_drill_with_its_times_receivers_and_verdict():
    text = render([outcome("feed-gap", []), outcome("bus-overflow", ["BusOverflowCritical did not fire"])],
                  Run("2026-11-21 10:00 UTC", 1.0, "Prometheus 2.42.0", "Alertmanager 0.25.0"))
    assert [["feed-gap", "FeedGapCritical", "1.2 s", "6.5 s", "15 s", "slack-trading-alerts, pagerduty, email-oncall",
             "3.0 s", "-", "2/2", "passed"],
            ["bus-overflow", "BusOverflowCritical", "1.2 s", "6.5 s", "15 s", "slack-trading-alerts", "3.0 s", "-",
             "3/3", "**FAILED**"]] == summary_rows(text)
    assert "- **Failures**:\n  - BusOverflowCritical did not fire" in text
    assert "FROM hftel.logs_hft WHERE event = 'bus_overflow' AND level = 'error' AND ts >= toDateTime64(" in text


def test_committed_results_record_a_passing_drill_of_every_scenario():
    """docs/drills/RESULTS.md is a `hftel drill all --record` run in which every drill passed."""
    text = RESULTS.read_text()
    assert text.startswith("# Failure drill results\n\nWritten by `hftel drill all --record`")
    rows = summary_rows(text)
    assert list(NAMES) == [row[0] for row in rows]
    assert [(DRILLS[row[0]].alert, ", ".join(RECEIVERS["critical"]), "passed") for row in rows] == [
        (row[1], row[5], row[-1]) for row in rows]


def test_drills_readme_lists_the_declared_drills():
    """docs/drills/README.md's table is what the plan declares: run plan_table() after changing a drill."""
    from hftel_drill.results import plan_table

    assert plan_table() in (ROOT / "docs" / "drills" / "README.md").read_text()
