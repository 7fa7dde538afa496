"""One failure drill, step by step, against a running `Stack`:

1. the stack is quiet: no alert pending or firing;
2. inject the scenario; wait for its alert to fire, and check it fired within its `for` plus two
   evaluation intervals of its condition becoming true (Prometheus's activeAt);
3. wait for Alertmanager's notifications: the alert must reach exactly its severity's receivers;
4. run the failure's evidence queries until each finds a row;
5. clear the fault; wait for the alert to resolve, for the resolved notifications to reach the same
   receivers, and for the recovery's evidence.

A check that fails is written down and the drill goes on to clear the fault, so one broken alert
does not leave the engine failing for the next drill. Every wait has a deadline and says what it
waits for while it waits.

    >>> outcome = run_drill(stack, DRILLS["feed-gap"], Progress(sys.stdout))   # doctest: +SKIP
    >>> outcome.passed, outcome.fired_after                                    # doctest: +SKIP
    (True, 3.4)
"""
from __future__ import annotations

import datetime
import time
from dataclasses import dataclass, field
from typing import Any, Callable, TextIO

from hftel_drill import timing
from hftel_drill.plan import FAULT, RECEIVERS, RECOVERY, Drill, Evidence
from hftel_drill.servers import DrillError
from hftel_drill.stack import Stack, now

POLL = 0.2  # seconds between looks at Prometheus, the receiver and ClickHouse
#: How late after its deadline the drill may see a firing alert: one poll, and the HTTP round trip.
OBSERVATION_SLACK = 0.5
EVIDENCE_TIMEOUT = 30.0  # the drain delivers every 0.5 s; a row later than this is missing
#: How long after the injection a scenario's condition may take to show, on top of the alert's
#: longest range window: every demo fault moves its metric within 3 s, and a scrape follows within 1 s.
ONSET = 10.0


class Progress:
    """Says what the drill does and, while it waits, what it waits for: a line rewritten in place on a
    terminal, a line every few seconds elsewhere."""

    def __init__(self, stream: TextIO, every: float = 5.0) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.every = every
        self._last = 0.0
        self._open = False

    def say(self, text: str) -> None:
        self._end_line()
        self.stream.write(text + "\n")
        self.stream.flush()

    def waiting(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + text)
            self._open = True
        elif time.monotonic() - self._last >= self.every:
            self._last = time.monotonic()
            self.stream.write(text + "\n")
        self.stream.flush()

    def _end_line(self) -> None:
        if self._open:
            self.stream.write("\n")
            self._open = False
        self._last = 0.0


@dataclass
class Found:
    """One evidence query as run: its SQL with the window filled in, and the rows it counted."""

    evidence: Evidence
    sql: str
    count: int


@dataclass
class Outcome:
    """What one drill saw; times are seconds after the injection (firing) or the clearing (resolving)."""

    scenario: str
    alert: str
    severity: str
    runbook_url: str
    hold: float  # the alert's `for`
    evaluation: float  # its group's evaluation interval
    expected_receivers: tuple[str, ...]
    injected_at: float = 0.0
    cleared_at: float = 0.0
    pending_after: float | None = None
    fired_after: float | None = None
    notified_after: float | None = None
    receivers: tuple[str, ...] = ()
    resolved_after: float | None = None
    resolve_notified_after: float | None = None
    resolved_receivers: tuple[str, ...] = ()
    also_fired: set[str] = field(default_factory=set)
    evidence: list[Found] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def fire_budget(self) -> float:
        """How long the alert may take to fire once its condition holds: `for` plus two evaluations."""
        return self.hold + 2 * self.evaluation


def _stamp(at: float) -> str:
    return datetime.datetime.fromtimestamp(at, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def since_literal(at: float) -> str:
    """A ClickHouse DateTime64 literal for the wall-clock time `at`, in UTC."""
    return f"toDateTime64('{_stamp(at)}', 6, 'UTC')"


def _active_at(alert: dict) -> float:
    return datetime.datetime.fromisoformat(alert["activeAt"].replace("Z", "+00:00")).timestamp()


def _firing(alerts: list[dict], name: str) -> list[dict]:
    return [alert for alert in alerts if alert["labels"]["alertname"] == name and alert["state"] == "firing"]


def _waiting(progress: Progress, what: str, started: float, deadline: float,
             look: Callable[[], Any], interval: float = POLL) -> Any:
    """Polls `look` until it returns something truthy (returned) or `deadline` passes (None)."""
    while True:
        result = look()
        if result:
            return result
        current = now()
        if current > deadline:
            return None
        progress.waiting(f"  ... {what} ({current - started:4.1f} s)")
        time.sleep(interval)


def wait_quiet(stack: Stack, progress: Progress, timeout: float) -> None:
    """Waits until Prometheus holds no pending or firing alert; DrillError naming those left."""
    started = now()
    left: list[str] = []

    def quiet() -> bool:
        left[:] = sorted({f"{alert['labels']['alertname']} ({alert['state']})" for alert in stack.alerts()})
        return not left

    if _waiting(progress, "waiting for every alert to clear", started, started + timeout, quiet) is None:
        raise DrillError(f"alerts still active after {timeout:.0f} s: {', '.join(left)}; the next drill would "
                         f"not start from a healthy engine")


def rule_of(stack: Stack, name: str) -> tuple[str, str, float, float]:
    """(severity, runbook_url, `for`, evaluation interval) of alert `name` in the stack's rules."""
    for group in stack.rules["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == name:
                hold, evaluation = timing.rule_timings(stack.rules)[name]
                return rule["labels"]["severity"], rule["annotations"]["runbook_url"], hold, evaluation
    raise DrillError(f"the rules hold no alert {name!r}")


def _longest_window(stack: Stack, name: str) -> float:
    windows = [timing.seconds(window) for group in stack.rules["groups"] for rule in group["rules"]
               if rule.get("alert") == name for window in timing.windows(rule["expr"])]
    return max(windows, default=0.0)


def run_drill(stack: Stack, drill: Drill, progress: Progress) -> Outcome:
    """Runs `drill` on `stack` (quiet when called) and returns what it saw."""
    severity, runbook_url, hold, evaluation = rule_of(stack, drill.alert)
    outcome = Outcome(drill.scenario, drill.alert, severity, runbook_url, hold, evaluation,
                      RECEIVERS.get(severity, ()))
    group_wait = timing.route_timer(stack.routing, severity, "group_wait")
    group_interval = timing.route_timer(stack.routing, severity, "group_interval")
    window = _longest_window(stack, drill.alert)

    progress.say(f"{drill.scenario}: injecting; expecting {drill.alert} ({severity}, for {timing.duration(hold)}, "
                 f"evaluated every {timing.duration(evaluation)})")
    outcome.injected_at = now()
    stack.inject(drill.scenario)
    try:
        _fire(stack, drill, outcome, progress, deadline=outcome.injected_at + ONSET + window + outcome.fire_budget)
        if outcome.fired_after is not None:
            _notify(stack, outcome, progress, "firing", outcome.injected_at, group_wait + group_interval + 10)
        _evidence(stack, drill, outcome, progress, FAULT, outcome.injected_at)
    finally:
        progress.say(f"{drill.scenario}: clearing the fault")
        outcome.cleared_at = now()
        stack.clear(drill.scenario)
    _resolve(stack, drill, outcome, progress, deadline=outcome.cleared_at + ONSET + window + 2 * evaluation)
    if outcome.resolved_after is not None and outcome.fired_after is not None:
        _notify(stack, outcome, progress, "resolved", outcome.cleared_at, group_interval + 10)
    _evidence(stack, drill, outcome, progress, RECOVERY, outcome.cleared_at)
    progress.say(f"{drill.scenario}: {'PASSED' if outcome.passed else 'FAILED: ' + '; '.join(outcome.failures)}")
    return outcome


def _fire(stack: Stack, drill: Drill, outcome: Outcome, progress: Progress, deadline: float) -> None:
    def look() -> list[dict]:
        alerts = stack.alerts()
        outcome.also_fired |= {alert["labels"]["alertname"] for alert in alerts
                               if alert["state"] == "firing" and alert["labels"]["alertname"] != drill.alert}
        pending = [alert for alert in alerts if alert["labels"]["alertname"] == drill.alert]
        if pending and outcome.pending_after is None:
            outcome.pending_after = min(_active_at(alert) for alert in pending) - outcome.injected_at
        return _firing(alerts, drill.alert)

    firing = _waiting(progress, f"waiting for {drill.alert} to fire", outcome.injected_at, deadline, look)
    if not firing:
        outcome.failures.append(f"{drill.alert} did not fire within {deadline - outcome.injected_at:.0f} s of the "
                                f"injection")
        return
    seen = now()
    outcome.fired_after = seen - outcome.injected_at
    active = min(_active_at(alert) for alert in firing)
    outcome.pending_after = active - outcome.injected_at
    took = seen - active
    progress.say(f"{drill.scenario}: {drill.alert} firing {outcome.fired_after:.1f} s after the injection "
                 f"({took:.1f} s after its condition held; budget {outcome.fire_budget:g} s)")
    if took > outcome.fire_budget + OBSERVATION_SLACK:
        outcome.failures.append(f"{drill.alert} fired {took:.1f} s after its condition held, later than its for "
                                f"plus two evaluation intervals ({outcome.fire_budget:g} s)")


def _notify(stack: Stack, outcome: Outcome, progress: Progress, status: str, since: float, timeout: float) -> None:
    """Waits for `status` notifications of the alert at its expected receivers; checks it reached no other."""
    expected = set(outcome.expected_receivers)
    reached = _waiting(progress, f"waiting for the {status} notifications at {', '.join(outcome.expected_receivers)}",
                       since, now() + timeout,
                       lambda: expected <= stack.webhook.receivers_of(outcome.alert, status, since))
    got = stack.webhook.receivers_of(outcome.alert, status, since)
    # the expected ones in their declared order, then any other
    receivers = tuple(name for name in outcome.expected_receivers if name in got) + tuple(sorted(got - expected))
    first = stack.webhook.first(outcome.alert, status, since)
    after = None if first is None else first - since
    if status == "firing":
        outcome.receivers, outcome.notified_after = receivers, after
    else:
        outcome.resolved_receivers, outcome.resolve_notified_after = receivers, after
    if not reached or set(receivers) != expected:
        outcome.failures.append(f"{outcome.alert} {status} reached {', '.join(receivers) or 'no receiver'}, "
                                f"expected exactly {', '.join(outcome.expected_receivers)}")
    else:
        progress.say(f"{outcome.scenario}: {status} notification reached {', '.join(receivers)} "
                     f"{after:.1f} s after the {'injection' if status == 'firing' else 'clearing'}")


def _evidence(stack: Stack, drill: Drill, outcome: Outcome, progress: Progress, phase: str, since: float) -> None:
    for evidence in (item for item in drill.evidence if item.phase == phase):
        sql = evidence.query(since_literal(since))
        started = now()
        count = _waiting(progress, f"looking for {evidence.what}", started, started + EVIDENCE_TIMEOUT,
                         lambda: stack.count(sql), interval=0.5)
        outcome.evidence.append(Found(evidence, sql, count or 0))
        if not count:
            outcome.failures.append(f"no row shows {evidence.what} within {EVIDENCE_TIMEOUT:.0f} s: {sql}")
        else:
            progress.say(f"{drill.scenario}: recorded: {evidence.what} ({count} rows)")


def _resolve(stack: Stack, drill: Drill, outcome: Outcome, progress: Progress, deadline: float) -> None:
    def gone() -> bool:
        alerts = stack.alerts()
        outcome.also_fired |= {alert["labels"]["alertname"] for alert in alerts
                               if alert["state"] == "firing" and alert["labels"]["alertname"] != drill.alert}
        return not [alert for alert in alerts if alert["labels"]["alertname"] == drill.alert]

    if not _waiting(progress, f"waiting for {drill.alert} to resolve", outcome.cleared_at, deadline, gone):
        outcome.failures.append(f"{drill.alert} still active {deadline - outcome.cleared_at:.0f} s after clearing")
        return
    outcome.resolved_after = now() - outcome.cleared_at
    progress.say(f"{drill.scenario}: {drill.alert} resolved {outcome.resolved_after:.1f} s after the clearing")
