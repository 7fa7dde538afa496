"""The strategy_runner facade: decision latency and intents, where a flow's ids are created."""
from __future__ import annotations

from typing import Any, Iterable

from hftel.correlation import Flows
from hftel.instruments._base import Handles, Intent, component_logger


class StrategyRunner:
    """Strategy decision latency by strategy, and order intents: each intent starts a flow.

    >>> strategies = StrategyRunner(tel, strategies=("mm", "momentum"))
    >>> strategies.decided("mm", latency_ns=4_200)
    >>> intent = strategies.intent("mm", "2330", "BUY", quantity=2, price=612.0)
    >>> intent.flow.intent_id > 0
    True

    intent() writes the INTENT row of audit_orders and logs `intent_created`; pass `traceparent`
    when the decision continues a trace from upstream.
    """

    def __init__(self, telemetry: Any, *, strategies: Iterable[str], flows: Flows | None = None,
                 log_level: str = "info"):
        self.strategies = tuple(strategies)
        self._audit = telemetry.audit
        self._log = component_logger(telemetry, "strategy_runner", log_level)
        self._flows = flows if flows is not None else Flows()
        handles = Handles(telemetry, "strategy_runner", {"strategy": self.strategies})
        self._latency = handles["hft_strategy_latency_seconds"]
        self._intents = handles["hft_intents_total"]

    def decided(self, strategy: str, latency_ns: int) -> None:
        """One decision of `strategy`, `latency_ns` after the market event that prompted it."""
        self._latency[strategy].observe(latency_ns)

    def intent(self, strategy: str, symbol: str, side: str, quantity: int, price: float, *,
               order_type: str = "LIMIT", time_in_force: str = "ROD", traceparent: str | None = None) -> Intent:
        """A new order intent of `strategy`, with a new flow (intent id, correlation id, trace id)."""
        intent = Intent(self._flows.start(traceparent), strategy, symbol, side, quantity, price, order_type,
                        time_in_force)
        self._intents[strategy].inc()
        self._audit.order(status="INTENT", **intent.row)
        self._log.info("intent_created", symbol=symbol, side=side, quantity=quantity, price=price, **intent.log_ids)
        return intent
