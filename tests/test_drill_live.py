"""`hftel drill` run as an operator runs it, against a real Prometheus 2.42 with the project's rules
and a real Alertmanager 0.25 with its routing, every duration shortened tenfold (`--time-scale 0.1`).

One run drills all six scenarios. A second run, with FeedGapCritical's threshold moved out of reach
and the pager left out of the CRIT route, shows a drill fails, and says why, when an alert does not
fire or reaches the wrong receivers.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hftel.demo.scenarios import NAMES
from hftel_drill.plan import DRILLS, RECEIVERS
from processes import require

ROOT = Path(__file__).resolve().parent.parent
SCALE = "0.1"


def drill(directory: Path, *arguments: str) -> subprocess.CompletedProcess:
    require("prometheus")
    require("prometheus-alertmanager")
    return subprocess.run([sys.executable, "-m", "hftel", "drill", *arguments, "--time-scale", SCALE,
                           "--dir", str(directory / "work")], capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def drilled(tmp_path_factory):
    """`hftel drill all --time-scale 0.1 --record`: its output and the results file."""
    directory = tmp_path_factory.mktemp("drill")
    result = drill(directory, "all", "--record", str(directory / "RESULTS.md"))
    results = directory / "RESULTS.md"
    return result, results.read_text() if results.exists() else ""


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    """`hftel drill feed-gap shioaji-disconnect` on rules where FeedGapCritical cannot fire and a
    routing whose CRIT route lost the pager."""
    directory = tmp_path_factory.mktemp("broken")
    alerts = directory / "alerts"
    alerts.mkdir()
    rules = (ROOT / "alerts" / "hftel.rules.yml").read_text()
    unreachable = rules.replace("max by (engine) (hft_feed_gap_seconds) > 1 and", "max by (engine) (hft_feed_gap_seconds) > 1e9 and")
    assert unreachable != rules
    (alerts / "hftel.rules.yml").write_text(unreachable)
    routing = yaml.safe_load((ROOT / "alerts" / "alertmanager.test.yml").read_text())
    critical = routing["route"]["routes"][0]
    critical["routes"] = [route for route in critical["routes"] if route["receiver"] != "pagerduty"]
    (alerts / "alertmanager.test.yml").write_text(yaml.safe_dump(routing))
    return drill(directory, "feed-gap", "shioaji-disconnect", "--alerts", str(alerts))


def test_every_drill_passes(drilled):
    result, _ = drilled
    assert (0, f"{len(NAMES)} of {len(NAMES)} drills passed") == (
        result.returncode, next(line for line in result.stdout.splitlines() if "drills passed" in line)), \
        result.stdout[-4000:] + result.stderr[-2000:]


@pytest.mark.parametrize("scenario", NAMES)
def test_the_scenarios_alert_fires_within_for_plus_two_evaluations(drilled, scenario):
    """The drill says when the alert fired and within what budget; a late alert fails the drill."""
    result, _ = drilled
    alert = DRILLS[scenario].alert
    fired = [line for line in result.stdout.splitlines() if line.startswith(f"{scenario}: {alert} firing ")]
    assert len(fired) == 1, result.stdout[-3000:]
    took, budget = (float(part.split(" s")[0]) for part in fired[0].split("(")[1].split("; budget "))
    assert took <= budget + 0.5, fired[0]


@pytest.mark.parametrize("scenario", NAMES)
def test_the_alert_reaches_exactly_the_pager_slack_and_email_then_resolves(drilled, scenario):
    result, results = drilled
    receivers = ", ".join(RECEIVERS["critical"])
    lines = result.stdout.splitlines()
    assert any(line.startswith(f"{scenario}: firing notification reached {receivers} ") for line in lines)
    assert any(line.startswith(f"{scenario}: {DRILLS[scenario].alert} resolved ") for line in lines)
    assert any(line.startswith(f"{scenario}: resolved notification reached {receivers} ") for line in lines)
    assert f"{scenario}: PASSED" in lines


@pytest.mark.parametrize("scenario", NAMES)
def test_the_audit_trail_shows_the_failure_and_the_recovery(drilled, scenario):
    result, _ = drilled
    recorded = {line.split(": recorded: ", 1)[1].rsplit(" (", 1)[0] for line in result.stdout.splitlines()
                if line.startswith(f"{scenario}: recorded: ")}
    assert {evidence.what for evidence in DRILLS[scenario].evidence} == recorded


def test_progress_is_shown_while_the_drill_waits(drilled):
    result, _ = drilled
    assert "  ... waiting for FeedGapCritical to fire (" in result.stdout


def test_record_writes_a_row_per_scenario(drilled):
    _, results = drilled
    rows = [line for line in results.splitlines() if line.startswith("| ") and line.endswith(" | passed |")]
    assert list(NAMES) == [row.split(" | ")[0].lstrip("| ") for row in rows]
    assert "- **Timing**: every duration x0.1 (test override)" in results


def test_a_drill_whose_alert_never_fires_fails_naming_it(broken):
    assert 1 == broken.returncode, broken.stdout[-3000:] + broken.stderr[-2000:]
    assert "feed-gap: FAILED: FeedGapCritical did not fire within " in broken.stdout


def test_a_drill_whose_alert_misses_a_receiver_fails_naming_both(broken):
    assert ("shioaji-disconnect: FAILED: ShioajiDisconnectCritical firing reached slack-trading-alerts, "
            "email-oncall, expected exactly slack-trading-alerts, pagerduty, email-oncall") in broken.stdout


def test_an_unknown_scenario_is_refused_with_the_known_ones():
    result = subprocess.run([sys.executable, "-m", "hftel", "drill", "feed-gaps"], capture_output=True, text=True,
                            timeout=60)
    assert 2 == result.returncode
    assert "hftel drill: unknown scenario feed-gaps; known: feed-gap, bus-overflow" in result.stderr
