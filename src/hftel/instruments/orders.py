"""The order_adapter facade: what is sent to the broker and what it answers."""
from __future__ import annotations

from typing import Any

from hftel.catalogue import ORDER_REJECT_REASONS
from hftel.instruments._base import Handles, Intent, component_logger


class OrderAdapter:
    """Order actions, broker acks and rejects, order latency, and the order rate against its limit.

    >>> orders = OrderAdapter(tel)
    >>> orders.submitted(intent)
    >>> orders.acked(intent, latency_ns=2_400_000, broker_order_id="B123")
    >>> orders.rate(current=12.5, limit=25.0)

    Each call writes the intent's next row of audit_orders (SUBMITTED, ACK, REJECTED, CANCELLED)
    and logs it with the intent's ids.
    """

    def __init__(self, telemetry: Any, *, log_level: str = "info"):
        self._audit = telemetry.audit
        self._log = component_logger(telemetry, "order_adapter", log_level)
        handles = Handles(telemetry, "order_adapter", {})
        self._actions = handles["hft_order_actions_total"]
        self._acks = handles["hft_order_acks_total"]
        self._rejects = handles["hft_order_rejects_total"]
        self._latency = handles["hft_order_latency_seconds"]
        self._rate = handles["hft_order_rate"]
        self._rate_limit = handles["hft_order_rate_limit"]

    def submitted(self, intent: Intent) -> None:
        self._action(intent, "submit", "SUBMITTED")

    def cancelled(self, intent: Intent) -> None:
        self._action(intent, "cancel", "CANCELLED")

    def amended(self, intent: Intent) -> None:
        self._action(intent, "amend", "SUBMITTED")

    def _action(self, intent: Intent, action: str, status: str) -> None:
        self._actions[action].inc()
        self._audit.order(status=status, **intent.row)
        self._log.info(f"order_{action}", **intent.log_ids)

    def acked(self, intent: Intent, *, latency_ns: int, broker_order_id: str) -> None:
        """The broker accepted the order, `latency_ns` after submission."""
        intent.acknowledged(broker_order_id)
        self._acks.inc()
        self._latency.observe(latency_ns)
        self._audit.order(status="ACK", latency_ns=latency_ns, **intent.row)
        self._log.info("order_ack", broker_order_id=broker_order_id, latency_ns=latency_ns, **intent.log_ids)

    def rejected(self, intent: Intent, *, reason: str, code: int = 0, detail: str = "", latency_ns: int = 0) -> None:
        """The broker (or a gateway that is down) refused the order; `reason` is one of the catalogue's."""
        self._rejects[reason if reason in ORDER_REJECT_REASONS else "other"].inc()
        self._audit.order(status="REJECTED", latency_ns=latency_ns, reject_code=code,
                          reject_reason=detail or reason, **intent.row)
        self._log.warning("order_rejected", reason=reason, code=code, detail=detail, **intent.log_ids)

    def rate(self, current: float, limit: float) -> None:
        """Order actions per second over the limiter's window, and the rate the broker allows."""
        self._rate.set(current)
        self._rate_limit.set(limit)
