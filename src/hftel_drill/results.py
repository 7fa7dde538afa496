"""docs/drills/RESULTS.md: what `hftel drill all --record` saw, one row per scenario, then per
scenario the receivers, what else fired, and the SQL of its audit trail with the rows it counted.

    >>> text = render(outcomes, Run("2026-11-21 10:00 UTC", 0.1, "prometheus 2.42.0", "alertmanager 0.25.0"))
    ... # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from hftel_drill import timing
from hftel_drill.plan import DRILLS, FAULT, RECOVERY
from hftel_drill.runner import Outcome
from hftel_drill.stack import RULES_FILE


@dataclass(frozen=True)
class Run:
    """Where and how the drills ran."""

    started: str  # UTC
    scale: float
    prometheus: str
    alertmanager: str


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _runbook(url: str) -> str:
    """A runbook URL as a link relative to docs/drills/."""
    name = url.rsplit("/", 1)[-1]
    return f"[{name.split('#')[0]}](../runbooks/{name})"


def summary_table(outcomes: Sequence[Outcome]) -> list[str]:
    lines = ["| scenario | alert | condition held | fired | fire budget | receivers reached | resolved | "
             "resolved notice | audit trail | result |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for outcome in outcomes:
        found = sum(1 for item in outcome.evidence if item.count)
        lines.append(
            f"| {outcome.scenario} | {outcome.alert} | {_seconds(outcome.pending_after)} | "
            f"{_seconds(outcome.fired_after)} | {outcome.fire_budget:g} s | {', '.join(outcome.receivers) or '-'} | "
            f"{_seconds(outcome.resolved_after)} | {_seconds(outcome.resolve_notified_after)} | "
            f"{found}/{len(outcome.evidence)} | {'passed' if outcome.passed else '**FAILED**'} |")
    return lines


#: How to run an evidence query by hand on a drill's data (the working directory hftel drill printed).
AUDIT_COMMAND = "hftel audit query --config DRILL_DIR/demo/exporter.toml"


def scenario_section(outcome: Outcome) -> list[str]:
    lines = [f"## {outcome.scenario}", "",
             f"- **Alert**: {outcome.alert} ({outcome.severity}), runbook {_runbook(outcome.runbook_url)}; "
             f"`for` {timing.duration(outcome.hold)}, evaluated every {timing.duration(outcome.evaluation)}.",
             f"- **Fired** {_seconds(outcome.fired_after)} after the injection; its condition held from "
             f"{_seconds(outcome.pending_after)} (budget: `for` plus two evaluations, {outcome.fire_budget:g} s).",
             f"- **Notified** {', '.join(outcome.receivers) or 'nobody'} "
             f"{_seconds(outcome.notified_after)} after the injection (expected exactly "
             f"{', '.join(outcome.expected_receivers)}).",
             f"- **Resolved** {_seconds(outcome.resolved_after)} after the clearing; the resolved notice reached "
             f"{', '.join(outcome.resolved_receivers) or 'nobody'} after {_seconds(outcome.resolve_notified_after)}.",
             f"- **Also fired** meanwhile: {', '.join(sorted(outcome.also_fired)) or 'nothing else'}."]
    if outcome.failures:
        lines += ["- **Failures**:"] + [f"  - {failure}" for failure in outcome.failures]
    lines += ["", f"The audit trail, counted in the embedded ClickHouse (`{AUDIT_COMMAND} \"SQL\"`):", "",
              "| when | what | rows |", "| --- | --- | --- |"]
    for found in outcome.evidence:
        when = "while failing" if found.evidence.phase == FAULT else "after clearing"
        lines.append(f"| {when} | {found.evidence.what} | {found.count} |")
    lines += ["", "```sql"] + [found.sql + ";" for found in outcome.evidence] + ["```", ""]
    return lines


def plan_table() -> str:
    """The drills as docs/drills/README.md lists them: scenario, alert, and what the audit trail must show."""
    lines = ["| scenario | alert | while failing | after clearing |", "| --- | --- | --- | --- |"]
    for drill in DRILLS.values():
        phases = [[evidence.what for evidence in drill.evidence if evidence.phase == phase] for phase in (FAULT, RECOVERY)]
        lines.append(f"| `{drill.scenario}` | {drill.alert} | " + " | ".join("; ".join(found) for found in phases) + " |")
    return "\n".join(lines) + "\n"


def render(outcomes: Sequence[Outcome], run: Run) -> str:
    passed = sum(outcome.passed for outcome in outcomes)
    lines = [
        "# Failure drill results", "",
        "Written by `hftel drill all --record`; do not edit by hand. The drills and what they check are "
        "described in [docs/drills/README.md](README.md).", "",
        f"- **Run**: {run.started}, {len(outcomes)} drills, {passed} passed.",
        f"- **Timing**: {timing.describe(run.scale)} of alerts/{RULES_FILE} and alerts/alertmanager.test.yml; "
        "thresholds, expressions, route tree and inhibition as committed.",
        f"- **Parts**: the demo engine and `hftel exporter` (embedded ClickHouse), {run.prometheus} scraping "
        f"every {timing.duration(timing.SCRAPE_INTERVAL)}, {run.alertmanager} delivering to a local webhook "
        "per receiver (standing in for Slack, the pager and email).",
        "- **Columns**: *condition held* and *fired* count from the injection; *fire budget* is the alert's "
        "`for` plus two evaluation intervals, which it must fire within once its condition holds; *resolved* "
        "counts from the clearing; *audit trail* is how many evidence queries found rows.", "",
        *summary_table(outcomes), "",
    ]
    for outcome in outcomes:
        lines += scenario_section(outcome)
    return "\n".join(lines).rstrip() + "\n"
