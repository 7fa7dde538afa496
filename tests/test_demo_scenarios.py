"""Each failure scenario of the demo engine moves the metrics it should, and clearing it brings them back.

The engine runs in this process on a simulated clock, so seconds of engine time take milliseconds.
"""
from __future__ import annotations

import copy
import json

import pytest
import structlog

from hftel import logs
from hftel.configchange import change_config
from hftel.demo.engine import DEFAULT_CONFIG, DemoEngine, SimulatedClock
from hftel.demo.scenarios import NAMES, Faults, check_names


@pytest.fixture
def engine(tel, tmp_path):
    config_path = tmp_path / "engine.json"
    config_path.write_text(json.dumps(DEFAULT_CONFIG))
    logs.configure(tel)
    engine = DemoEngine(tel, copy.deepcopy(DEFAULT_CONFIG), tmp_path, Faults.local(), clock=SimulatedClock(),
                        seed=7, config_path=config_path)
    engine.run_simulated(3.0)
    yield engine
    structlog.reset_defaults()


def value(tel, name, **labels):
    return tel.snapshot().get_sample_value(name, labels or None)


def test_without_a_scenario_the_engine_trades_calmly(tel, engine):
    assert value(tel, "hft_feed_events_total", type="tick") > 1000
    assert value(tel, "hft_fills_total", side="buy") + value(tel, "hft_fills_total", side="sell") > 0
    assert value(tel, "hft_feed_gap_seconds") < 0.1
    assert value(tel, "hft_shioaji_connected") == 1
    assert engine.risk.modes == {"mm": "NORMAL", "momentum": "NORMAL"}


def test_feed_gap_makes_the_gap_grow_and_fails_the_feed_check(tel, engine):
    engine.faults.inject("feed-gap")
    engine.run_simulated(3.0)
    assert value(tel, "hft_feed_gap_seconds") >= 2.5
    assert value(tel, "hft_health_check_status", check="feed") == 0
    engine.faults.clear("feed-gap")
    engine.run_simulated(0.5)
    assert value(tel, "hft_feed_gap_seconds") < 0.1
    assert value(tel, "hft_health_check_status", check="feed") == 1


def test_bus_overflow_fills_the_bus_and_counts_dropped_events(tel, engine):
    engine.faults.inject("bus-overflow")
    engine.run_simulated(2.0)
    assert value(tel, "hft_bus_occupancy_ratio") > 0.9
    assert value(tel, "hft_bus_overflow_total") > 100
    engine.faults.clear("bus-overflow")
    engine.run_simulated(0.5)
    dropped = value(tel, "hft_bus_overflow_total")
    engine.run_simulated(1.0)
    assert value(tel, "hft_bus_overflow_total") == dropped
    assert value(tel, "hft_bus_occupancy_ratio") < 0.5


def test_stormguard_halt_walks_mm_to_halt_and_the_operators_resume_brings_it_back(tel, engine, tmp_path):
    engine.faults.inject("stormguard-halt")
    engine.run_simulated(4.0)
    assert value(tel, "hft_stormguard_mode", strategy="mm") == 3
    assert value(tel, "hft_drawdown", strategy="mm") >= value(tel, "hft_drawdown_limit", strategy="mm")
    assert value(tel, "hft_risk_rejects_total", reason="halted") > 0
    engine.faults.clear("stormguard-halt")
    engine.run_simulated(1.0)
    assert value(tel, "hft_stormguard_mode", strategy="mm") == 3, "HALT holds until the operator resumes"
    change_config(tel.path, tmp_path / "engine.json", "stormguard.resume.mm", 1, operator_id="ops")
    engine.run_simulated(1.0)
    assert value(tel, "hft_stormguard_mode", strategy="mm") == 0
    assert value(tel, "hft_drawdown", strategy="mm") < value(tel, "hft_drawdown_limit", strategy="mm") / 2


def test_reject_spike_raises_broker_rejects_and_stormguard_leaves_normal(tel, engine):
    before = sum(value(tel, "hft_order_rejects_total", reason=r) for r in ("price_limit", "insufficient_margin"))
    engine.faults.inject("reject-spike")
    engine.run_simulated(6.0)
    after = sum(value(tel, "hft_order_rejects_total", reason=r) for r in ("price_limit", "insufficient_margin"))
    submitted = value(tel, "hft_order_actions_total", action="submit")
    assert after - before > 0.15 * submitted / 2
    assert max(value(tel, "hft_stormguard_mode", strategy=s) for s in ("mm", "momentum")) >= 1
    engine.faults.clear("reject-spike")
    engine.run_simulated(15.0)
    assert engine.risk.modes == {"mm": "NORMAL", "momentum": "NORMAL"}


def test_recorder_failure_counts_failures_and_grows_the_queue_until_it_recovers(tel, engine):
    engine.faults.inject("recorder-failure")
    engine.run_simulated(2.0)
    assert value(tel, "hft_recorder_write_failures_total", sink="ticks") >= 5
    assert value(tel, "hft_recorder_queue_depth", sink="ticks") > 500
    assert value(tel, "hft_health_check_status", check="recorder") == 0
    engine.faults.clear("recorder-failure")
    engine.run_simulated(1.0)
    assert value(tel, "hft_recorder_queue_depth", sink="ticks") < 500
    assert engine.tick_path.is_file()
    assert value(tel, "hft_health_check_status", check="recorder") == 1


def test_shioaji_disconnect_drops_the_session_and_reconnects_once_cleared(tel, engine):
    engine.faults.inject("shioaji-disconnect")
    engine.run_simulated(3.0)
    assert value(tel, "hft_shioaji_connected") == 0
    assert value(tel, "hft_feed_gap_seconds") > 1.5
    assert engine.risk.modes == {"mm": "STORM", "momentum": "STORM"}
    assert engine.stranded, "an acknowledged order was in flight when the session dropped"
    engine.faults.clear("shioaji-disconnect")
    engine.run_simulated(1.0)
    assert value(tel, "hft_shioaji_connected") == 1
    assert value(tel, "hft_shioaji_reconnects_total") == 1
    assert not engine.stranded, "the stranded fill is delivered after the reconnect"


def test_every_scenario_is_tested_here():
    tested = {name.split("_")[1] for name in globals() if name.startswith("test_") and name.count("_") > 1}
    assert {name.split("-")[0] for name in NAMES} <= tested


def test_an_unknown_scenario_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="unknown scenario feed-gag; known: feed-gap"):
        check_names(["feed-gag"])


def test_every_scenario_is_documented_with_the_demo():
    from pathlib import Path

    docs = (Path(__file__).parents[1] / "docs" / "instrumentation.md").read_text()
    assert all(f"| `{name}` |" in docs for name in NAMES)
