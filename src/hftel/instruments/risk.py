"""The risk_engine facade: pre-trade decisions and StormGuard, the guardrail state machine."""
from __future__ import annotations

from typing import Any, Iterable

from hftel.catalogue import RISK_REJECT_REASONS, STORMGUARD_MODE_VALUES
from hftel.correlation import Flow
from hftel.instruments._base import Handles, Intent, component_logger


class RiskEngine:
    """Risk decisions by outcome and reject reason, and the StormGuard mode of each strategy.

    >>> risk = RiskEngine(tel, strategies=("mm",))
    >>> risk.allow(intent, rule="max_position", limit_value=10, observed_value=4)
    >>> risk.reject(intent, rule="max_position", reason="max_position", limit_value=10, observed_value=12)
    >>> risk.transition("mm", "WARM", trigger="reject_rate", trigger_value=0.08, threshold=0.05)
    True

    Every decision writes a row of audit_risk_decisions and a log event carrying the intent's ids
    and the strategy's mode; every mode change writes audit_guardrail_transitions.
    """

    def __init__(self, telemetry: Any, *, strategies: Iterable[str], log_level: str = "info"):
        self.strategies = tuple(strategies)
        self._audit = telemetry.audit
        self._log = component_logger(telemetry, "risk_engine", log_level)
        handles = Handles(telemetry, "risk_engine", {"strategy": self.strategies})
        self._checks = handles["hft_risk_checks_total"]
        self._rejects = handles["hft_risk_rejects_total"]
        self._mode_gauge = handles["hft_stormguard_mode"]
        self.modes = {strategy: "NORMAL" for strategy in self.strategies}

    def mode(self, strategy: str) -> str:
        return self.modes[strategy]

    def allow(self, intent: Intent, *, rule: str, limit_value: float = 0.0, observed_value: float = 0.0) -> None:
        self._decide(intent, "ALLOW", rule, limit_value, observed_value, "", "")

    def throttle(self, intent: Intent, *, rule: str, limit_value: float = 0.0, observed_value: float = 0.0,
                 detail: str = "") -> None:
        self._decide(intent, "THROTTLE", rule, limit_value, observed_value, "", detail)

    def reject(self, intent: Intent, *, rule: str, reason: str, limit_value: float = 0.0,
               observed_value: float = 0.0, detail: str = "") -> None:
        """A rejected intent; `reason` is one of the catalogue's reject reasons (others count as other)."""
        self._decide(intent, "REJECT", rule, limit_value, observed_value, reason, detail)

    def _decide(self, intent: Intent, decision: str, rule: str, limit_value: float, observed_value: float,
                reason: str, detail: str) -> None:
        mode = self.modes[intent.strategy]
        self._checks[decision.lower()].inc()
        if decision == "REJECT":
            self._rejects[reason if reason in RISK_REJECT_REASONS else "other"].inc()
        self._audit.risk_decision(
            **intent.flow.audit_ids(), strategy=intent.strategy, symbol=intent.symbol, rule=rule, decision=decision,
            risk_mode=mode, limit_value=limit_value, observed_value=observed_value, reason=detail or reason)
        if decision == "ALLOW":
            self._log.info("risk_decision", risk_mode=mode, decision=decision, rule=rule, **intent.log_ids)
        else:
            self._log.warning("risk_decision", risk_mode=mode, decision=decision, rule=rule, reason=reason,
                              limit_value=limit_value, observed_value=observed_value, **intent.log_ids)

    def transition(self, strategy: str, to_mode: str, *, trigger: str, trigger_value: float = 0.0,
                   threshold: float = 0.0, drawdown: float = 0.0, reject_rate: float = 0.0, detail: str = "",
                   flow: Flow | None = None) -> bool:
        """Moves `strategy` to `to_mode`; False (and nothing written) when it is already there.
        `flow` is the flow that tripped the change, when one did."""
        from_mode = self.modes[strategy]
        if to_mode == from_mode:
            return False
        code = STORMGUARD_MODE_VALUES[to_mode]  # KeyError for a mode StormGuard does not have
        self.modes[strategy] = to_mode
        self._mode_gauge[strategy].set(code)
        ids = flow.link_ids() if flow is not None else {}
        self._audit.guardrail_transition(
            **ids, strategy=strategy, from_mode=from_mode, to_mode=to_mode, trigger=trigger,
            trigger_value=trigger_value, threshold=threshold, drawdown=drawdown, reject_rate=reject_rate,
            detail=detail)
        log = self._log.critical if to_mode == "HALT" else self._log.warning if code > 0 else self._log.info
        log("stormguard_transition", strategy=strategy, risk_mode=to_mode, from_mode=from_mode, trigger=trigger,
            trigger_value=trigger_value, threshold=threshold, intent_id=flow.intent_id if flow else 0,
            **({"correlation_id": flow.correlation_id, "trace_id": flow.trace_id_hex} if flow else {}))
        return True
