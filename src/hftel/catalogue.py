"""The metric catalogue: every `hft_` metric an engine records, declared once.

The instrumentation facades (hftel.instruments) register exactly these; contracts/observability.md
is generated from them (`contracts/generate.py`), and so will the dashboards and alert rules be.
A test fails when the facades, the catalogue and the committed contract disagree.

Labels are kept to small, known sets. A label either has its values declared here (`type` is tick
or bidask) or takes them from the engine's own configuration, named when the facade is built (the
curated strategy names, the symbols traded). The facades create every declared series up front, at
zero, so a dashboard or an alert sees a series before its first event.

Histograms record integer nanoseconds and are named `*_seconds`: the exporter exposes them in
seconds, as Prometheus wants base units.

    >>> metric("hft_feed_events_total").labels
    ('type',)
    >>> [m.name for m in METRICS if m.component == "monitor"][:2]
    ['hft_process_uptime_seconds', 'hft_health_check_status']
"""
from __future__ import annotations

from dataclasses import dataclass

from hftel.schemas import RISK_MODES

COMPONENTS = ("market_data", "strategy_runner", "risk_engine", "order_adapter", "execution", "recorder", "monitor")

#: A label whose values come from the engine's configuration rather than from this catalogue.
CONFIGURED = ()


@dataclass(frozen=True)
class Label:
    """A label and its values: declared here, or CONFIGURED (named when the facade is built)."""

    name: str
    values: tuple[str, ...] = CONFIGURED
    doc: str = ""

    @property
    def configured(self) -> bool:
        return not self.values


@dataclass(frozen=True)
class Metric:
    """One metric family as Prometheus sees it.

    `name` is the exposed family name (counters end in `_total`); `kind` is counter, gauge or
    histogram; `gauge_kind` is "int" for gauges that hold whole numbers (modes, counts, flags);
    `buckets` are a histogram's inclusive upper bounds in nanoseconds.
    """

    name: str
    kind: str
    component: str
    unit: str
    help: str
    labels: tuple[Label, ...] = ()
    buckets: tuple[int, ...] = ()
    gauge_kind: str = "float"

    def __post_init__(self) -> None:
        if not self.name.startswith("hft_"):
            raise ValueError(f"{self.name}: engine metrics carry the hft_ prefix")
        if self.component not in COMPONENTS:
            raise ValueError(f"{self.name}: unknown component {self.component!r}")
        if (self.kind == "counter") != self.name.endswith("_total"):
            raise ValueError(f"{self.name}: counters, and only counters, end in _total")
        if (self.kind == "histogram") != bool(self.buckets):
            raise ValueError(f"{self.name}: histograms, and only histograms, have buckets")
        if self.kind == "histogram" and not self.name.endswith("_seconds"):
            raise ValueError(f"{self.name}: histograms record nanoseconds and are named *_seconds")

    @property
    def label_names(self) -> tuple[str, ...]:
        return tuple(label.name for label in self.labels)

    @property
    def registered_name(self) -> str:
        """The name given to Telemetry.counter/gauge/histogram."""
        return self.name


def _ns(*seconds: float) -> tuple[int, ...]:
    return tuple(round(value * 1e9) for value in seconds)


# Bucket layouts, in nanoseconds: where the decisions about each latency are made.
FEED_LATENCY_BUCKETS = _ns(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
STRATEGY_LATENCY_BUCKETS = _ns(0.000001, 0.0000025, 0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025,
                               0.0005, 0.001, 0.0025, 0.005, 0.01)
ORDER_LATENCY_BUCKETS = _ns(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
RECORDER_LATENCY_BUCKETS = _ns(0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1)
#: A young collection takes tens of microseconds; a full one of a large heap, tens to hundreds of ms.
GC_PAUSE_BUCKETS = _ns(0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                       0.05, 0.1, 0.25, 0.5, 1)

STRATEGY = Label("strategy", doc="A curated strategy name from the engine's configuration.")
SYMBOL = Label("symbol", doc="A traded symbol from the engine's configuration (tens, not thousands).")
SINK = Label("sink", doc="What the recorder writes to, from the engine's configuration.")

FEED_EVENT_TYPES = ("tick", "bidask")
API_KINDS = ("subscriptions", "orders", "queries")
RISK_REJECT_REASONS = ("max_position", "max_notional", "order_rate", "price_band", "drawdown", "halted", "other")
ORDER_ACTIONS = ("submit", "cancel", "amend")
ORDER_REJECT_REASONS = ("price_limit", "insufficient_margin", "rate_limit", "market_closed", "disconnected", "other")
EXPOSURE_KINDS = ("gross", "long", "short")
FILL_SIDES = ("buy", "sell")
HEALTH_CHECKS = ("feed", "gateway", "bus", "recorder")
GC_GENERATIONS = ("0", "1", "2")
GENERATION = Label("generation", GC_GENERATIONS,
                   "The garbage collector's generation: 0 the youngest objects, 2 a full collection.")

#: hft_stormguard_mode's values: the StormGuard mode's index in RISK_MODES.
STORMGUARD_MODE_VALUES = {mode: index for index, mode in enumerate(RISK_MODES)}

METRICS: tuple[Metric, ...] = (
    # -- market_data: the feed, the broker gateway (Shioaji) and the event bus ------------------------
    Metric("hft_feed_events_total", "counter", "market_data", "events",
           "Market data events received from the feed, by type.",
           (Label("type", FEED_EVENT_TYPES, "tick: a trade; bidask: a quote update."),)),
    Metric("hft_feed_gap_seconds", "gauge", "market_data", "seconds",
           "Seconds since the last market data event: grows while the feed is silent."),
    Metric("hft_market_open", "gauge", "market_data", "boolean",
           "1 while the exchange session the feed serves is open (feed gaps matter only then), else 0.",
           gauge_kind="int"),
    Metric("hft_feed_latency_seconds", "histogram", "market_data", "seconds",
           "Exchange timestamp to receipt in the engine.", buckets=FEED_LATENCY_BUCKETS),
    Metric("hft_shioaji_connected", "gauge", "market_data", "boolean",
           "1 while the Shioaji session is connected and logged in, else 0.", gauge_kind="int"),
    Metric("hft_shioaji_reconnects_total", "counter", "market_data", "reconnects",
           "Reconnections of the Shioaji session."),
    Metric("hft_api_usage", "gauge", "market_data", "requests",
           "Broker API usage in its current limit window, by API.",
           (Label("api", API_KINDS, "subscriptions held, orders or queries sent in the window."),),
           gauge_kind="int"),
    Metric("hft_api_limit", "gauge", "market_data", "requests",
           "The broker's limit for that API in the same window (compare with hft_api_usage).",
           (Label("api", API_KINDS),), gauge_kind="int"),
    Metric("hft_bus_occupancy_ratio", "gauge", "market_data", "ratio",
           "How full the event bus from the feed to the strategies is, 0 to 1."),
    Metric("hft_bus_overflow_total", "counter", "market_data", "events",
           "Events the bus had no room for and dropped."),
    # -- strategy_runner ------------------------------------------------------------------------------
    Metric("hft_strategy_latency_seconds", "histogram", "strategy_runner", "seconds",
           "Market event to strategy decision, by strategy.", (STRATEGY,), STRATEGY_LATENCY_BUCKETS),
    Metric("hft_intents_total", "counter", "strategy_runner", "intents",
           "Order intents the strategy emitted (rate(): intents per second).", (STRATEGY,)),
    # -- risk_engine and StormGuard -------------------------------------------------------------------
    Metric("hft_risk_checks_total", "counter", "risk_engine", "checks",
           "Pre-trade risk decisions, by outcome.",
           (Label("decision", ("allow", "reject", "throttle")),)),
    Metric("hft_risk_rejects_total", "counter", "risk_engine", "rejects",
           "Intents the risk engine rejected, by reason.", (Label("reason", RISK_REJECT_REASONS),)),
    Metric("hft_stormguard_mode", "gauge", "risk_engine", "mode",
           "StormGuard mode by strategy: 0 NORMAL, 1 WARM, 2 STORM, 3 HALT.", (STRATEGY,), gauge_kind="int"),
    # -- order_adapter --------------------------------------------------------------------------------
    Metric("hft_order_actions_total", "counter", "order_adapter", "actions",
           "Order actions sent to the broker, by action.", (Label("action", ORDER_ACTIONS),)),
    Metric("hft_order_acks_total", "counter", "order_adapter", "acks",
           "Broker acknowledgements of order actions."),
    Metric("hft_order_rejects_total", "counter", "order_adapter", "rejects",
           "Order actions the broker (or a down gateway) rejected, by reason.",
           (Label("reason", ORDER_REJECT_REASONS),)),
    Metric("hft_order_latency_seconds", "histogram", "order_adapter", "seconds",
           "Order submission to the broker's acknowledgement.", buckets=ORDER_LATENCY_BUCKETS),
    Metric("hft_order_rate", "gauge", "order_adapter", "orders per second",
           "Order actions per second over the rate limiter's window."),
    Metric("hft_order_rate_limit", "gauge", "order_adapter", "orders per second",
           "The order rate the broker allows (compare with hft_order_rate)."),
    # -- execution: fills, PnL, positions and exposure ------------------------------------------------
    Metric("hft_fills_total", "counter", "execution", "fills",
           "Fills received, by side.", (Label("side", FILL_SIDES),)),
    Metric("hft_pnl_realized", "gauge", "execution", "account currency",
           "Realised PnL since the session start, by strategy.", (STRATEGY,)),
    Metric("hft_pnl_unrealized", "gauge", "execution", "account currency",
           "Unrealised PnL of open positions at the last price, by strategy.", (STRATEGY,)),
    Metric("hft_drawdown", "gauge", "execution", "account currency",
           "Drop of total PnL from its session peak, by strategy (0 at a new peak).", (STRATEGY,)),
    Metric("hft_drawdown_limit", "gauge", "execution", "account currency",
           "The drawdown at which StormGuard halts the strategy.", (STRATEGY,)),
    Metric("hft_exposure", "gauge", "execution", "account currency",
           "Notional exposure: gross (long + short), long, short.", (Label("kind", EXPOSURE_KINDS),)),
    Metric("hft_leverage_ratio", "gauge", "execution", "ratio", "Gross exposure divided by account equity."),
    Metric("hft_position", "gauge", "execution", "lots",
           "Net position by symbol (positive long, negative short).", (SYMBOL,), gauge_kind="int"),
    Metric("hft_reconciliation_delay_seconds", "gauge", "execution", "seconds",
           "Seconds since positions were last reconciled with the broker."),
    # -- recorder: the engine's own writers (tick capture and the like) -------------------------------
    Metric("hft_recorder_writes_total", "counter", "recorder", "writes",
           "Batches the recorder wrote, by sink.", (SINK,)),
    Metric("hft_recorder_write_failures_total", "counter", "recorder", "writes",
           "Batches the recorder failed to write, by sink.", (SINK,)),
    Metric("hft_recorder_write_latency_seconds", "histogram", "recorder", "seconds",
           "Time to write one batch, by sink.", (SINK,), RECORDER_LATENCY_BUCKETS),
    Metric("hft_recorder_queue_depth", "gauge", "recorder", "records",
           "Records queued for the recorder, not yet written, by sink.", (SINK,), gauge_kind="int"),
    # -- monitor --------------------------------------------------------------------------------------
    Metric("hft_process_uptime_seconds", "gauge", "monitor", "seconds",
           "Seconds since the engine process started (a watchdog: it stops rising when the loop stalls)."),
    Metric("hft_health_check_status", "gauge", "monitor", "boolean",
           "1 while the engine's own health check passes, 0 while it fails.",
           (Label("check", HEALTH_CHECKS),), gauge_kind="int"),
    Metric("hft_python_gc_collections_total", "counter", "monitor", "collections",
           "Collections of Python's garbage collector in the engine process, by generation.", (GENERATION,)),
    Metric("hft_python_gc_collected_objects_total", "counter", "monitor", "objects",
           "Unreachable objects the garbage collector freed, by generation.", (GENERATION,)),
    Metric("hft_python_gc_uncollectable_objects_total", "counter", "monitor", "objects",
           "Unreachable objects the garbage collector could not free (gc.garbage), by generation.", (GENERATION,)),
    Metric("hft_python_gc_pause_seconds", "histogram", "monitor", "seconds",
           "Time of each garbage collection, by generation: every thread of the engine holding the GIL waits.",
           (GENERATION,), GC_PAUSE_BUCKETS),
)

_BY_NAME = {metric.name: metric for metric in METRICS}


def metric(name: str) -> Metric:
    """The declaration of `name`, or KeyError naming the known metrics of that component."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"{name!r} is not in the metric catalogue (hftel.catalogue.METRICS)") from None


def for_component(component: str) -> tuple[Metric, ...]:
    return tuple(m for m in METRICS if m.component == component)


def _check_catalogue() -> None:
    if len(_BY_NAME) != len(METRICS):
        raise ValueError("a metric is declared twice in the catalogue")


_check_catalogue()
