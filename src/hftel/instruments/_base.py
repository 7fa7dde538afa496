"""What every facade shares: registering its catalogue metrics, its logger, and the order intent.

A facade registers the metrics of its component from the catalogue, creates every series of a
declared or configured label value up front (at zero), and keeps the handles; the engine then
calls a method named for what happened, never a metric name.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from hftel import catalogue
from hftel.correlation import Flow
from hftel.logs import LEVELS, RingLogger, RingSink, strict_from_environment


class Handles:
    """The registered handles of one component's metrics, by catalogue name.

    A metric without labels maps to its handle; a metric with a label maps to a dict from the
    label's value to the handle.
    """

    def __init__(self, telemetry: Any, component: str, configured: Mapping[str, Iterable[str]]):
        self._handles: dict[str, Any] = {}
        for metric in catalogue.for_component(component):
            self._handles[metric.name] = _register(telemetry, metric, configured)

    def __getitem__(self, name: str) -> Any:
        return self._handles[name]


def _register(telemetry: Any, metric: catalogue.Metric, configured: Mapping[str, Iterable[str]]) -> Any:
    if metric.kind == "counter":
        family = telemetry.counter(metric.name, metric.help, metric.label_names)
    elif metric.kind == "gauge":
        family = telemetry.gauge(metric.name, metric.help, metric.label_names, kind=metric.gauge_kind)
    else:
        family = telemetry.histogram(metric.name, metric.help, metric.label_names, buckets=metric.buckets)
    if not metric.labels:
        return family
    if len(metric.labels) != 1:
        raise ValueError(f"{metric.name}: the facades handle at most one label per metric")
    label = metric.labels[0]
    values = tuple(configured.get(label.name, ())) if label.configured else label.values
    if not values:
        raise ValueError(f"{metric.name}: label {label.name!r} takes its values from the engine's configuration; "
                         f"pass {label.name}s=(...) to the facade")
    return {value: family.labels(value) for value in values}


def component_logger(telemetry: Any, component: str, level: str | int = "info",
                     strict: bool | None = None) -> RingLogger:
    """A logger bound to `component`, writing to the segment's log ring, without touching structlog's
    global configuration (the engine may configure structlog for its own loggers as it likes)."""
    numeric = LEVELS[level.lower()] if isinstance(level, str) else int(level)
    sink = RingSink(telemetry.log_writer, numeric, strict_from_environment() if strict is None else strict)
    return RingLogger(sink, (), {"component": component})


@dataclass(slots=True)
class Intent:
    """One order intent and the flow that carries its ids from the strategy to execution.

    >>> intent = strategies.intent("mm", "2330", "BUY", 2, 612.0)      # doctest: +SKIP
    >>> risk.allow(intent, rule="max_position", limit_value=10, observed_value=4)  # doctest: +SKIP
    >>> orders.submitted(intent)                                          # doctest: +SKIP
    """

    flow: Flow
    strategy: str
    symbol: str
    side: str  # BUY or SELL
    quantity: int
    price: float
    order_type: str = "LIMIT"
    time_in_force: str = "ROD"
    broker_order_id: str = ""
    row: dict[str, Any] = field(init=False, repr=False)  # the audit_orders columns its every row repeats
    log_ids: dict[str, Any] = field(init=False, repr=False)  # strategy and the flow's ids, for its log events

    def __post_init__(self) -> None:
        # Built once per intent: every later hop only adds what changed (status, latency, fill).
        self.row = {**self.flow.audit_ids(), "strategy": self.strategy, "symbol": self.symbol, "side": self.side,
                    "order_type": self.order_type, "time_in_force": self.time_in_force, "quantity": self.quantity,
                    "price": self.price, "broker_order_id": self.broker_order_id}
        self.log_ids = {"strategy": self.strategy, **self.flow.log_fields()}

    def acknowledged(self, broker_order_id: str) -> None:
        """The broker's id for the order, carried on every later row."""
        self.broker_order_id = self.row["broker_order_id"] = broker_order_id
