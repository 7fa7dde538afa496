"""alerts/: the Prometheus rules generated from alerts/rules.py, checked and unit-tested by promtool,
reading only contract metrics and linking a runbook heading each."""
from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from hftel import catalogue
from hftel_exporter import selfmetrics
from processes import require
from scripts import load_script

ROOT = Path(__file__).resolve().parent.parent
ALERTS_DIR = ROOT / "alerts"
RULES_FILE = ALERTS_DIR / "hftel.rules.yml"
TESTS_FILE = ALERTS_DIR / "hftel.rules.test.yml"

#: The alert list shared with the Alertmanager routing and the runbooks: name -> (severity, family).
SHARED_LIST = {
    "FeedGapCritical": ("critical", "feed-gap"),
    "FeedGapWarning": ("warning", "feed-gap"),
    "FeedLatencyHigh": ("warning", "feed-gap"),
    "BusOverflowCritical": ("critical", "bus-overflow"),
    "BusOccupancyWarning": ("warning", "bus-overflow"),
    "StormGuardHaltCritical": ("critical", "stormguard"),
    "StormGuardWarning": ("warning", "stormguard"),
    "DrawdownWarning": ("warning", "stormguard"),
    "OrderRejectSpikeCritical": ("critical", "reject-spike"),
    "OrderRejectRateWarning": ("warning", "reject-spike"),
    "OrderRateNearLimit": ("warning", "reject-spike"),
    "ApiUsageNearLimit": ("warning", "reject-spike"),
    "ShioajiDisconnectCritical": ("critical", "disconnect"),
    "ShioajiReconnecting": ("warning", "disconnect"),
    "StrategyLatencyHigh": ("warning", "latency"),
    "OrderLatencyHigh": ("warning", "latency"),
    "ReconciliationDelayed": ("warning", "reconciliation"),
    "RecorderFailureCritical": ("critical", "recorder-failure"),
    "RecorderQueueBacklog": ("warning", "recorder-failure"),
    "ClickHouseDown": ("warning", "clickhouse"),
    "ClickHouseInsertSlow": ("warning", "clickhouse"),
    "SpoolFillingUp": ("warning", "clickhouse"),
    "SpoolFullCritical": ("critical", "clickhouse"),
    "BatchesQuarantined": ("warning", "clickhouse"),
    "AuditLossCritical": ("critical", "engine-and-exporter"),
    "AuditSpilling": ("warning", "engine-and-exporter"),
    "RingFillingUp": ("warning", "engine-and-exporter"),
    "EngineDownCritical": ("critical", "engine-and-exporter"),
    "EngineStalled": ("warning", "engine-and-exporter"),
    "HealthCheckFailing": ("warning", "engine-and-exporter"),
    "ExporterDown": ("critical", "engine-and-exporter"),
    "ExporterErrors": ("warning", "engine-and-exporter"),
    "LogSchemaViolations": ("warning", "engine-and-exporter"),
    # v2: the ClickHouse server's health and the host
    "ClickHouseDiskFullCritical": ("critical", "clickhouse"),
    "ClickHouseDiskNearlyFull": ("warning", "clickhouse"),
    "ClickHouseTooManyParts": ("warning", "clickhouse"),
    "ClickHouseMutationFailed": ("warning", "clickhouse"),
    "ClickHouseHealthUnknown": ("warning", "clickhouse"),
    "HostCpuSaturated": ("warning", "host"),
    "HostDiskNearlyFull": ("warning", "host"),
    "HostMemoryLow": ("warning", "host"),
}

#: The CRIT alerts the seeds' plan names (section 4, Alerting Rules).
SEED_ALERTS = ("FeedGapCritical", "BusOverflowCritical", "StormGuardHaltCritical", "OrderRejectSpikeCritical",
               "ShioajiDisconnectCritical", "RecorderFailureCritical")

RUNBOOK_URL = "https://github.com/hftel/hftel/blob/main/docs/runbooks/{family}.md#{anchor}"


generate = load_script("alerts/generate.py", "hftel_alert_generate")  # it loads alerts/rules.py
rules = generate.rules


def committed_rules() -> list[dict]:
    """Every rule of the committed rule file, with the name of the group holding it."""
    document = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    return [{**rule, "group": group["name"]} for group in document["groups"] for rule in group["rules"]]


def rule_id(alert) -> str:
    return f"{alert.name}-{alert.cause}" if alert.cause else alert.name


def promtool_test(promtool: str, test_file: Path) -> subprocess.CompletedProcess:
    return subprocess.run([promtool, "test", "rules", str(test_file)], capture_output=True, text=True, timeout=120)


# A comparison with a number that no `)` closes: the rule's threshold, not a denominator's `> 0` guard.
THRESHOLD = re.compile(r"(==|>=|<=|>|<)\s*(-?[0-9.]+(?:e[+-]?[0-9]+)?)(?![0-9.e]|\s*\))")
OUT_OF_REACH = {">": "1e12", ">=": "1e12", "==": "12345", "<": "-1e12", "<=": "-1e12"}


def with_threshold_out_of_reach(alert):
    """A copy of `alert` whose threshold no series in its cases can cross."""
    match = THRESHOLD.search(alert.expr)
    assert match, f"{alert.name}: no threshold in {alert.expr}"
    operator = match.group(1)
    expr = alert.expr[:match.start()] + f"{operator} {OUT_OF_REACH[operator]}" + alert.expr[match.end():]
    return dataclasses.replace(alert, expr=expr)


# -- the generated files --------------------------------------------------------------------------------

def test_committed_rule_files_are_what_the_generator_writes():
    """alerts/hftel.rules.yml and alerts/hftel.rules.test.yml equal the generator's output for alerts/rules.py."""
    diff = generate.stale(ALERTS_DIR)
    assert "" == diff, f"the committed rule files are stale: run `{generate.COMMAND}`\n{diff}"


def test_check_exits_1_with_a_diff_when_a_file_is_stale(tmp_path, monkeypatch, capsys):
    """--check exits 0 on up-to-date files, and 1 with a diff naming the changed line when one is stale."""
    generate.write(tmp_path)
    monkeypatch.setattr(generate, "DIRECTORY", tmp_path)
    assert 0 == generate.main(["--check"])
    stale = tmp_path / "hftel.rules.yml"
    stale.write_text(stale.read_text().replace("name: hftel-critical", "name: old-critical"), encoding="utf-8")
    assert 1 == generate.main(["--check"])
    output = capsys.readouterr()
    assert "-- name: old-critical\n+- name: hftel-critical\n" in output.out
    assert generate.COMMAND in output.err


def test_both_groups_and_the_promtool_tests_evaluate_every_5s():
    """The rule file has the groups hftel-critical and hftel-warning at 5 s; the tests evaluate at 5 s too."""
    document = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    tests = yaml.safe_load(TESTS_FILE.read_text(encoding="utf-8"))
    assert [("hftel-critical", "5s"), ("hftel-warning", "5s")] == [(g["name"], g["interval"])
                                                                    for g in document["groups"]]
    assert (["hftel.rules.yml"], "5s") == (tests["rule_files"], tests["evaluation_interval"])


# -- promtool -------------------------------------------------------------------------------------------

def test_promtool_check_rules_accepts_the_rule_file_with_lint_fatal():
    """`promtool check rules` exits 0 on the rule file, with its duplicate-rule lint made fatal."""
    promtool = require("promtool")
    result = subprocess.run([promtool, "check", "rules", "--lint=all", "--lint-fatal", str(RULES_FILE)],
                            capture_output=True, text=True, timeout=60)
    assert 0 == result.returncode, result.stdout + result.stderr


def test_promtool_unit_tests_pass():
    """`promtool test rules alerts/hftel.rules.test.yml` exits 0: every case fires exactly what it expects."""
    promtool = require("promtool")
    result = promtool_test(promtool, TESTS_FILE)
    assert 0 == result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize("alert", rules.ALERTS, ids=rule_id)
def test_a_threshold_out_of_reach_fails_the_rules_firing_case(tmp_path, alert):
    """Generated with its threshold out of reach, a rule's promtool tests fail on its firing case: they bite."""
    promtool = require("promtool")
    generate.write(tmp_path, [with_threshold_out_of_reach(alert)])
    result = promtool_test(promtool, tmp_path / "hftel.rules.test.yml")
    output = result.stdout + result.stderr
    firing = next(case for case in alert.cases if case.fires)
    assert (1, True) == (result.returncode, f"name: {generate.title(alert, firing)}," in output), output


def test_a_lowered_threshold_fails_the_quiet_case_just_under_it(tmp_path):
    """FeedGapCritical generated with `> 0.9` instead of `> 1` fires at a 1 s gap, which its quiet case forbids."""
    promtool = require("promtool")
    alert, = rules.by_name("FeedGapCritical")
    lowered = dataclasses.replace(alert, expr=alert.expr.replace("(hft_feed_gap_seconds) > 1 ",
                                                                 "(hft_feed_gap_seconds) > 0.9 "))
    assert lowered.expr != alert.expr
    generate.write(tmp_path, [lowered])
    result = promtool_test(promtool, tmp_path / "hftel.rules.test.yml")
    output = result.stdout + result.stderr
    quiet = next(case for case in alert.cases if case.doc == "stays quiet at a gap of exactly 1 s")
    assert (1, True) == (result.returncode, f"name: {generate.title(alert, quiet)}," in output), output


# -- the declarations -----------------------------------------------------------------------------------

@pytest.mark.parametrize("alert", rules.ALERTS, ids=rule_id)
def test_every_rule_has_a_firing_and_a_quiet_case(alert):
    """Each rule declares a promtool case where it fires and one where it does not."""
    assert (True, True) == (any(case.fires for case in alert.cases), any(not case.fires for case in alert.cases))


@pytest.mark.parametrize("alert", rules.ALERTS, ids=rule_id)
def test_every_rule_says_why_it_is_quiet_on_a_healthy_engine(alert):
    """Each rule has a quiet_reason: a sentence, not a placeholder."""
    assert len(alert.quiet_reason.split()) >= 4, alert.quiet_reason


def test_the_alerts_are_the_shared_list():
    """The alert names, severities and families are those the routing and the runbooks are written against."""
    assert SHARED_LIST == {rule["alert"]: (rule["labels"]["severity"], rule["labels"]["family"])
                           for rule in committed_rules()}


def test_every_alert_the_seeds_name_exists():
    """The seeds' CRIT alerts are all declared, as critical."""
    declared = {rule["alert"]: rule["labels"]["severity"] for rule in committed_rules()}
    assert {name: "critical" for name in SEED_ALERTS} == {name: declared.get(name) for name in SEED_ALERTS}


@pytest.mark.parametrize("rule", committed_rules(), ids=lambda rule: f"{rule['alert']}-{rule['expr'][:24]}")
def test_every_rule_has_severity_family_and_annotations(rule):
    """A rule has severity (in its group) and family labels, a summary, a description and the runbook_url form."""
    labels, annotations = rule["labels"], rule["annotations"]
    assert labels["severity"] in ("critical", "warning")
    assert f"hftel-{labels['severity']}" == rule["group"]
    assert set(labels) <= {"severity", "family", "cause"}
    assert ["description", "runbook_url", "summary"] == sorted(annotations)
    assert annotations["summary"].strip() and annotations["description"].strip()
    expected = RUNBOOK_URL.format(family=labels["family"], anchor=rule["alert"].lower())
    assert expected == annotations["runbook_url"]


def test_every_runbook_url_points_at_a_heading_of_an_existing_runbook():
    """docs/runbooks/<family>.md exists for every alert and has its `## AlertName` heading."""
    problems = []
    for rule in committed_rules():
        family = re.fullmatch(r".*/docs/runbooks/([a-z-]+)\.md#[a-z]+", rule["annotations"]["runbook_url"]).group(1)
        runbook = ROOT / "docs" / "runbooks" / f"{family}.md"
        if not runbook.exists():
            problems.append(f"{rule['alert']}: {runbook.relative_to(ROOT)} does not exist")
        elif not re.search(rf"^## {rule['alert']}[ \t]*$", runbook.read_text(encoding="utf-8"), re.MULTILINE):
            problems.append(f"{rule['alert']}: {runbook.relative_to(ROOT)} has no `## {rule['alert']}` heading")
    assert [] == problems, "\n".join(problems)


def test_every_metric_an_expression_reads_is_in_the_contract():
    """Expressions read only catalogue metrics, the exporter's own families (counters with _total) and `up`."""
    contract = {metric.name for metric in catalogue.METRICS}
    contract |= {name + "_total" if kind == "counter" else name for name, kind, _ in selfmetrics.FAMILIES}
    contract.add("up")
    unknown = {alert.name: sorted(set(alert.metrics) - contract) for alert in rules.ALERTS
               if set(alert.metrics) - contract}
    assert {} == unknown


def test_metric_names_are_families_not_samples_and_skip_label_values():
    """metric_names strips _bucket/_count/_sum and ignores names inside label values."""
    expr = ('histogram_quantile(0.99, sum by (le) (rate(hft_order_latency_seconds_bucket{job="hft_x_total"}[1m])))'
            ' / hft_order_latency_seconds_count and on () up{job="hftel"}')
    assert ("hft_order_latency_seconds", "up") == rules.metric_names(expr)


def test_by_name_returns_every_rule_of_an_alert():
    """by_name gives both rules of a two-condition alert, told apart by their cause label."""
    assert ["occupancy", "overflow"] == [alert.cause for alert in rules.by_name("BusOverflowCritical")]
