"""Instrumentation facades: one per engine component, so engine code records what happened
without knowing metric names, audit columns or log fields.

    >>> from hftel.instruments import MarketData, StrategyRunner, RiskEngine, OrderAdapter, Execution
    >>> strategies = StrategyRunner(tel, strategies=("mm",))
    >>> intent = strategies.intent("mm", "2330", "BUY", quantity=1, price=612.0)   # a new flow
    >>> risk.allow(intent, rule="max_position", limit_value=10, observed_value=1)
    >>> orders.submitted(intent)

Each facade registers its component's metrics from hftel.catalogue (every series of a known label
value exists from the start, at zero), writes the audit rows its events call for, and logs through
the segment's log ring with the fields its component's log schema requires. An Intent carries the
flow's ids (intent_id, correlation_id, trace_id) from the strategy through risk, orders and execution.
"""
from hftel.instruments._base import Intent
from hftel.instruments.execution import Execution
from hftel.instruments.market_data import MarketData
from hftel.instruments.monitor import Monitor
from hftel.instruments.orders import OrderAdapter
from hftel.instruments.recorder import Recorder
from hftel.instruments.risk import RiskEngine
from hftel.instruments.strategy import StrategyRunner

__all__ = ["Execution", "Intent", "MarketData", "Monitor", "OrderAdapter", "Recorder", "RiskEngine",
           "StrategyRunner"]
