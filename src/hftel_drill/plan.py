"""What each failure drill expects, declared once: the alert a scenario must fire, who must be told,
and the audit rows and log events that must show the failure and the recovery.

A drill injects one of the demo's scenarios (hftel.demo.scenarios), waits for `alert` to fire, checks
that Alertmanager told exactly the receivers of its severity, runs each `Evidence` query until it
finds a row (the failure's while the fault is on, the recovery's after clearing it), clears the fault
and waits for the alert to resolve. The queries are the runbooks' own checks (docs/runbooks/), limited
to rows written since the fault was injected.

    >>> DRILLS["feed-gap"].alert
    'FeedGapCritical'
    >>> RECEIVERS["critical"]
    ('slack-trading-alerts', 'pagerduty', 'email-oncall')
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from hftel.demo.scenarios import NAMES

#: Who an alert of each severity must reach (alerts/alertmanager.py routes it so): CRIT pages Slack
#: #trading-alerts, the pager and email, each once; WARN goes to Slack #trading-warnings only.
RECEIVERS: dict[str, tuple[str, ...]] = {
    "critical": ("slack-trading-alerts", "pagerduty", "email-oncall"),
    "warning": ("slack-trading-warnings",),
}

FAULT, RECOVERY = "fault", "recovery"


@dataclass(frozen=True)
class Evidence:
    """A query that must count at least one row: `sql` returns one number, `n`, for rows at or after
    `{since}` (a DateTime64 literal the drill fills in). `phase` says when: while the fault is on
    (`fault`), or once it is cleared (`recovery`)."""

    what: str
    sql: str
    phase: str = FAULT

    def __post_init__(self) -> None:
        if self.phase not in (FAULT, RECOVERY):
            raise ValueError(f"{self.what}: phase {self.phase!r} is neither {FAULT!r} nor {RECOVERY!r}")
        if "{since}" not in self.sql or " AS n" not in self.sql:
            raise ValueError(f"{self.what}: the query must count rows `AS n` since {{since}}")

    def query(self, since: str) -> str:
        return self.sql.replace("{since}", since)


@dataclass(frozen=True)
class Drill:
    """One scenario's drill: the alert it must fire and what must be recorded."""

    scenario: str
    alert: str
    evidence: tuple[Evidence, ...]


def _log(what: str, where: str, phase: str = FAULT) -> Evidence:
    return Evidence(what, f"SELECT count() AS n FROM hftel.logs_hft WHERE {where} AND ts >= {{since}}", phase)


def _audit(what: str, table: str, where: str, phase: str = FAULT) -> Evidence:
    return Evidence(what, f"SELECT count() AS n FROM hftel.{table} WHERE {where} AND ts >= {{since}}", phase)


def _health(check: str, level: str) -> str:
    return f"event = 'health_check' AND JSONExtractString(fields, 'check') = '{check}' AND level = '{level}'"


DRILLS: dict[str, Drill] = {drill.scenario: drill for drill in (
    Drill("feed-gap", "FeedGapCritical", (
        _log("the monitor logged the feed health check failing", _health("feed", "error")),
        _log("the monitor logged the feed health check passing again", _health("feed", "info"), RECOVERY),
    )),
    Drill("bus-overflow", "BusOverflowCritical", (
        _log("market_data logged the dropped events", "event = 'bus_overflow' AND level = 'error'"),
        _log("the monitor logged the bus health check failing", _health("bus", "error")),
        _log("market_data logged the overflow clearing", "event = 'bus_overflow_cleared'", RECOVERY),
    )),
    Drill("stormguard-halt", "StormGuardHaltCritical", (
        _audit("StormGuard's move of mm to HALT, with its drawdown trigger", "audit_guardrail_transitions",
               "strategy = 'mm' AND to_mode = 'HALT' AND trigger = 'drawdown'"),
        _log("risk_engine logged the HALT at level critical",
             "event = 'stormguard_transition' AND level = 'critical'"),
        _audit("the operator's resume, an audited configuration change", "audit_config_changes",
               "key = 'stormguard.resume.mm'", RECOVERY),
        _audit("mm's return to NORMAL on the operator's resume", "audit_guardrail_transitions",
               "strategy = 'mm' AND from_mode = 'HALT' AND to_mode = 'NORMAL' AND trigger = 'operator_resume'",
               RECOVERY),
    )),
    Drill("reject-spike", "OrderRejectSpikeCritical", (
        _audit("the broker's rejects, with their codes", "audit_orders",
               "status = 'REJECTED' AND reject_code IN (88, 91)"),
        _log("order_adapter logged the rejects", "event = 'order_rejected'"),
        _audit("StormGuard's move on the reject rate", "audit_guardrail_transitions",
               "trigger = 'reject_rate' AND to_mode IN ('WARM', 'STORM')"),
        _audit("StormGuard's return to NORMAL once rejects fell", "audit_guardrail_transitions",
               "to_mode = 'NORMAL' AND trigger = 'recovered'", RECOVERY),
    )),
    Drill("recorder-failure", "RecorderFailureCritical", (
        _log("the recorder logged its failed writes", "event = 'recorder_write_failed' AND level = 'error'"),
        _log("the monitor logged the recorder health check failing", _health("recorder", "error")),
        _log("the recorder logged its recovery", "event = 'recorder_recovered'", RECOVERY),
    )),
    Drill("shioaji-disconnect", "ShioajiDisconnectCritical", (
        _audit("the dropped session", "audit_connectivity", "gateway = 'shioaji' AND event = 'DISCONNECTED'"),
        _audit("the reconnect attempts", "audit_connectivity", "gateway = 'shioaji' AND event = 'RECONNECTING'"),
        _log("market_data logged the drop", "event = 'gateway_disconnected' AND level = 'error'"),
        _audit("the session back up", "audit_connectivity", "gateway = 'shioaji' AND event = 'CONNECTED'", RECOVERY),
    )),
)}

if tuple(DRILLS) != NAMES:  # every scenario the demo can inject has its drill, in the demo's order
    raise RuntimeError(f"drills {tuple(DRILLS)} do not match the demo's scenarios {NAMES}")


def select(names: Sequence[str]) -> tuple[Drill, ...]:
    """The drills `names` stand for, in the demo's order: scenarios, or `all` alone; ValueError naming
    the unknown ones and the known."""
    if list(names) == ["all"]:
        return tuple(DRILLS.values())
    unknown = [name for name in names if name not in DRILLS]
    if unknown:
        raise ValueError(f"unknown scenario {', '.join(unknown)}; known: {', '.join(DRILLS)}, or all alone")
    return tuple(drill for name, drill in DRILLS.items() if name in names)
