"""The instrumentation facades: they register the catalogue, and carry an intent's ids into rows and logs."""
from __future__ import annotations

import pytest

from hftel import catalogue
from hftel.instruments import Execution, MarketData, Monitor, OrderAdapter, Recorder, RiskEngine, StrategyRunner
from hftel.rings import AuditConsumer, LogConsumer

STRATEGIES, SYMBOLS, SINKS = ("mm", "momentum"), ("2330", "2317"), ("ticks",)


@pytest.fixture(autouse=True)
def strict_logs(monkeypatch):
    """A facade event missing a field its component requires raises instead of being flagged."""
    monkeypatch.setenv("HFTEL_LOG_STRICT", "1")


class Clock:
    def __init__(self):
        self.now_ns = 10**9

    def __call__(self):
        return self.now_ns


def every_facade(tel, clock=None):
    return {
        "market_data": MarketData(tel, **({"clock": clock} if clock else {})),
        "strategy_runner": StrategyRunner(tel, strategies=STRATEGIES),
        "risk_engine": RiskEngine(tel, strategies=STRATEGIES),
        "order_adapter": OrderAdapter(tel),
        "execution": Execution(tel, strategies=STRATEGIES, symbols=SYMBOLS, drawdown_limits={"mm": 5e5}),
        "recorder": Recorder(tel, sinks=SINKS),
        "monitor": Monitor(tel),
    }


def audit_rows(tel):
    return AuditConsumer(tel.path).poll().tables


def log_events(tel):
    return LogConsumer(tel.path).poll().events


def test_the_facades_register_exactly_the_catalogue(tel):
    every_facade(tel)
    registered = {(series.name, series.kind) for series in tel.snapshot().series}
    expected = {(metric.name.removesuffix("_total"), metric.kind) for metric in catalogue.METRICS}
    assert registered == expected


@pytest.mark.parametrize("metric", catalogue.METRICS, ids=lambda metric: metric.name)
def test_every_series_of_a_known_label_value_exists_at_zero_from_the_start(tel, metric):
    every_facade(tel)
    configured = {"strategy": STRATEGIES, "symbol": SYMBOLS, "sink": SINKS}
    series = [s for s in tel.snapshot().series if s.name == metric.name.removesuffix("_total")]
    if not metric.labels:
        assert len(series) == 1
        return
    label = metric.labels[0]
    values = configured[label.name] if label.configured else label.values
    assert sorted(s.labels[label.name] for s in series) == sorted(values)


@pytest.mark.parametrize("metric", [m for m in catalogue.METRICS if m.kind == "histogram"], ids=lambda m: m.name)
def test_histograms_get_the_catalogue_buckets(tel, metric):
    every_facade(tel)
    series = next(s for s in tel.snapshot().series if s.name == metric.name)
    assert tuple(series.bounds) == metric.buckets


def test_an_intent_carries_its_ids_into_every_order_row_and_log_event(tel):
    facades = every_facade(tel)
    intent = facades["strategy_runner"].intent("mm", "2330", "BUY", 2, 612.0)
    facades["risk_engine"].allow(intent, rule="max_position", limit_value=20, observed_value=2)
    facades["order_adapter"].submitted(intent)
    facades["order_adapter"].acked(intent, latency_ns=2_000_000, broker_order_id="B1")
    facades["execution"].filled(intent, quantity=2, price=612.5)
    tables = audit_rows(tel)
    flow = intent.flow
    orders = tables["audit_orders"]
    assert list(orders["status"]) == [1, 2, 3, 5]  # INTENT, SUBMITTED, ACK, FILLED
    for rows in (orders, tables["audit_risk_decisions"]):
        assert set(rows["intent_id"]) == {flow.intent_id}
        assert set(rows["correlation_id"]) == {flow.correlation_id}
        assert {bytes(t) for t in rows["trace_id"]} == {flow.trace_id}
    events = [e for e in log_events(tel) if e.get("intent_id") == flow.intent_id]
    assert [e["component"] for e in events] == ["strategy_runner", "risk_engine", "order_adapter", "order_adapter",
                                                "execution"]
    assert {e["trace_id"] for e in events} == {flow.trace_id_hex}
    assert events[-1]["broker_order_id"] == "B1"


def test_each_intent_starts_a_new_flow(tel):
    runner = StrategyRunner(tel, strategies=STRATEGIES)
    first, second = (runner.intent("mm", "2330", "BUY", 1, 1.0) for _ in range(2))
    assert first.flow.intent_id != second.flow.intent_id
    assert first.flow.trace_id != second.flow.trace_id


def test_an_intent_continues_an_upstream_trace(tel):
    upstream = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    intent = StrategyRunner(tel, strategies=STRATEGIES).intent("mm", "2330", "BUY", 1, 1.0, traceparent=upstream)
    assert intent.flow.trace_id_hex == "0af7651916cd43dd8448eb211c80319c"


def test_a_risk_reject_counts_its_reason_and_an_unknown_reason_as_other(tel):
    facades = every_facade(tel)
    risk, intent = facades["risk_engine"], facades["strategy_runner"].intent("mm", "2330", "BUY", 1, 1.0)
    risk.reject(intent, rule="max_position", reason="max_position")
    risk.reject(intent, rule="odd", reason="cosmic_rays")
    snapshot = tel.snapshot()
    assert snapshot.get_sample_value("hft_risk_rejects_total", {"reason": "max_position"}) == 1
    assert snapshot.get_sample_value("hft_risk_rejects_total", {"reason": "other"}) == 1
    assert snapshot.get_sample_value("hft_risk_checks_total", {"decision": "reject"}) == 2
    assert [bytes(r) for r in audit_rows(tel)["audit_risk_decisions"]["reason"]] == [b"max_position", b"cosmic_rays"]


def test_a_stormguard_transition_sets_the_mode_and_writes_one_row_linked_to_its_flow(tel):
    facades = every_facade(tel)
    risk, intent = facades["risk_engine"], facades["strategy_runner"].intent("mm", "2330", "BUY", 1, 1.0)
    assert risk.transition("mm", "HALT", trigger="drawdown", trigger_value=6e5, threshold=5e5, flow=intent.flow)
    assert not risk.transition("mm", "HALT", trigger="drawdown")
    assert tel.snapshot().get_sample_value("hft_stormguard_mode", {"strategy": "mm"}) == 3
    rows = audit_rows(tel)["audit_guardrail_transitions"]
    assert len(rows) == 1
    assert (rows["from_mode"][0], rows["to_mode"][0]) == (1, 4)  # NORMAL -> HALT (enum codes start at 1)
    assert rows["correlation_id"][0] == intent.flow.correlation_id
    halted = [e for e in log_events(tel) if e["event"] == "stormguard_transition"]
    assert halted[0]["level"] == "critical" and halted[0]["risk_mode"] == "HALT"


def test_a_mode_stormguard_does_not_have_is_refused(tel):
    risk = RiskEngine(tel, strategies=STRATEGIES)
    with pytest.raises(KeyError):
        risk.transition("mm", "PANIC", trigger="x")
    assert risk.mode("mm") == "NORMAL"


def test_the_feed_gap_is_the_time_since_the_last_event(tel):
    clock = Clock()
    feed = MarketData(tel, clock=clock)
    feed.event("tick", latency_ns=100_000)
    clock.now_ns += 2_500_000_000
    assert feed.refresh() == 2.5
    assert tel.snapshot().get_sample_value("hft_feed_gap_seconds") == 2.5


def test_a_session_that_comes_back_counts_one_reconnect_and_writes_connectivity_rows(tel):
    feed = MarketData(tel)
    feed.connected(session="s1")
    feed.disconnected("reset by peer", session="s1")
    feed.connected(session="s1")
    snapshot = tel.snapshot()
    assert snapshot.get_sample_value("hft_shioaji_reconnects_total") == 1
    assert snapshot.get_sample_value("hft_shioaji_connected") == 1
    assert list(audit_rows(tel)["audit_connectivity"]["event"]) == [1, 2, 1]  # CONNECTED, DISCONNECTED, CONNECTED


def test_bus_overflow_is_counted_every_time_and_logged_when_it_starts_and_stops(tel):
    feed = MarketData(tel)
    feed.bus(0.97, overflowed=10)
    feed.bus(0.98, overflowed=5)
    feed.bus(0.10)
    assert tel.snapshot().get_sample_value("hft_bus_overflow_total") == 15
    assert [e["event"] for e in log_events(tel)] == ["bus_overflow", "bus_overflow_cleared"]


def test_order_rejects_count_by_reason_and_write_the_rejection(tel):
    facades = every_facade(tel)
    intent = facades["strategy_runner"].intent("mm", "2330", "BUY", 1, 1.0)
    facades["order_adapter"].submitted(intent)
    facades["order_adapter"].rejected(intent, reason="price_limit", code=88, detail="outside the price band")
    snapshot = tel.snapshot()
    assert snapshot.get_sample_value("hft_order_rejects_total", {"reason": "price_limit"}) == 1
    assert snapshot.get_sample_value("hft_order_actions_total", {"action": "submit"}) == 1
    rejected = audit_rows(tel)["audit_orders"][-1]
    assert (rejected["status"], rejected["reject_code"], bytes(rejected["reject_reason"])) == (
        7, 88, b"outside the price band")


def test_pnl_sets_drawdown_from_the_session_peak(tel):
    execution = Execution(tel, strategies=STRATEGIES, symbols=SYMBOLS)
    execution.pnl("mm", realized=1000.0, unrealized=500.0)
    assert execution.pnl("mm", realized=1000.0, unrealized=-700.0) == 1200.0
    execution.reset_peak("mm", 300.0)
    assert execution.pnl("mm", realized=300.0, unrealized=0.0) == 0.0


def test_exposure_sums_gross_and_divides_leverage_by_equity(tel):
    Execution(tel, strategies=STRATEGIES, symbols=SYMBOLS).exposure(long=3e6, short=1e6, equity=2e6)
    snapshot = tel.snapshot()
    assert snapshot.get_sample_value("hft_exposure", {"kind": "gross"}) == 4e6
    assert snapshot.get_sample_value("hft_leverage_ratio") == 2.0


def test_a_recorder_failure_is_counted_each_time_and_logged_once_per_episode(tel):
    recorder = Recorder(tel, sinks=SINKS)
    recorder.failed("ticks", "disk full")
    recorder.failed("ticks", "disk full")
    recorder.written("ticks", latency_ns=1000)
    assert tel.snapshot().get_sample_value("hft_recorder_write_failures_total", {"sink": "ticks"}) == 2
    assert [e["event"] for e in log_events(tel)] == ["recorder_write_failed", "recorder_recovered"]


def test_a_health_check_is_logged_when_it_changes(tel):
    monitor = Monitor(tel)
    monitor.check("feed", ok=False, detail="silent")
    monitor.check("feed", ok=False, detail="silent")
    monitor.check("feed", ok=True)
    assert [(e["event"], e["ok"]) for e in log_events(tel)] == [("health_check", False), ("health_check", True)]


def test_a_configured_label_without_values_is_an_error_naming_it(tel):
    with pytest.raises(ValueError, match="strategy"):
        StrategyRunner(tel, strategies=())
