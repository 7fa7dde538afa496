"""A simulated trading engine, instrumented only through hftel's public API.

Synthetic market data -> strategies -> risk with StormGuard -> order adapter -> a simulated broker
-> execution, plus a tick recorder and a monitor. Time is sliced (10 ms) so the same engine runs
paced in real time for the demo and unpaced on a simulated clock in the tests.

    >>> engine = DemoEngine(tel, config, workdir, Faults.local(), clock=SimulatedClock())
    >>> engine.run_simulated(seconds=2.0)
"""
from __future__ import annotations

import collections
import json
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from hftel import logs, tracing
from hftel.configchange import config_hash
from hftel.demo.scenarios import Faults
from hftel.instruments import (Execution, Intent, MarketData, Monitor, OrderAdapter, Recorder, RiskEngine,
                               StrategyRunner)

SLICE = 0.010  # seconds of engine time per step
HOUSEKEEPING = 0.100  # seconds between gauge updates and StormGuard evaluations
LOT = 1000  # shares per lot, for exposure
EQUITY = 50_000_000.0  # account equity, for leverage

DEFAULT_CONFIG: dict[str, Any] = {
    "strategies": {
        "mm": {"max_position": 20, "drawdown_limit": 500_000.0},
        "momentum": {"max_position": 10, "drawdown_limit": 300_000.0},
    },
    "symbols": {"2330": 612.0, "2317": 104.5, "2454": 1105.0, "2603": 187.0},
    "feed": {"events_per_second": 2000},
    "orders": {"intent_probability": 0.006, "rate_limit": 25.0, "api_order_limit": 250},
    "stormguard": {"reject_rate_warm": 0.05, "reject_rate_storm": 0.20, "drawdown_warm": 0.5, "drawdown_storm": 0.8,
                   "resume": {"mm": 0, "momentum": 0}},
}


class SimulatedClock:
    """Nanoseconds that move only when the engine says so (tests run minutes of engine time in seconds)."""

    def __init__(self, start_ns: int = 1_000_000_000):
        self.now_ns = start_ns

    def __call__(self) -> int:
        return self.now_ns

    def advance(self, seconds: float) -> None:
        self.now_ns += int(seconds * 1e9)


@dataclass
class Book:
    """One strategy's positions, average prices and PnL."""

    positions: dict[str, int] = field(default_factory=dict)
    average: dict[str, float] = field(default_factory=dict)
    realized: float = 0.0

    def fill(self, symbol: str, signed_quantity: int, price: float) -> None:
        held = self.positions.get(symbol, 0)
        if held and (held > 0) != (signed_quantity > 0):  # closing part or all of the position
            closed = min(abs(held), abs(signed_quantity))
            self.realized += closed * LOT * (price - self.average[symbol]) * (1 if held > 0 else -1)
        total = held + signed_quantity
        if total == 0:
            self.average.pop(symbol, None)
        elif not held or (held > 0) != (total > 0):
            self.average[symbol] = price
        elif (held > 0) == (signed_quantity > 0):
            self.average[symbol] = (self.average[symbol] * abs(held) + price * abs(signed_quantity)) / abs(total)
        self.positions[symbol] = total

    def unrealized(self, prices: dict[str, float]) -> float:
        return sum(lots * LOT * (prices[s] - self.average[s]) for s, lots in self.positions.items() if lots)


class DemoEngine:
    """The simulated engine: call run_paced() in the engine process, or run_simulated() in tests."""

    def __init__(self, telemetry: Any, config: dict[str, Any], workdir: Path, faults: Faults,
                 *, clock: Callable[[], int] = time.monotonic_ns, seed: int | None = None,
                 config_path: Path | None = None):
        self.config = config
        self.faults = faults
        self.clock = clock
        self.rng = random.Random(seed)
        self.config_path = config_path
        self._config_mtime = config_path.stat().st_mtime_ns if config_path else 0
        strategies, symbols = tuple(config["strategies"]), tuple(config["symbols"])
        self.prices = dict(config["symbols"])
        self.feed = MarketData(telemetry, clock=clock)
        self.strategies = StrategyRunner(telemetry, strategies=strategies)
        self.risk = RiskEngine(telemetry, strategies=strategies)
        self.orders = OrderAdapter(telemetry)
        self.execution = Execution(telemetry, strategies=strategies, symbols=symbols,
                                   drawdown_limits={s: c["drawdown_limit"] for s, c in config["strategies"].items()})
        self.recorder = Recorder(telemetry, sinks=("ticks",))
        self.monitor = Monitor(telemetry)
        self.log = logs.get_logger(component="monitor", check="engine")  # needs hftel.logs.configure(telemetry)
        self.books = {strategy: Book() for strategy in strategies}
        self.order_times: collections.deque[int] = collections.deque()
        self.outcomes = {strategy: collections.deque() for strategy in strategies}  # (ns, rejected)
        self.last_flow: dict[str, Any] = {strategy: None for strategy in strategies}
        self.stranded: list[tuple[Intent, float]] = []  # acked orders whose fills wait for a reconnect
        self.disconnect_pending = False
        self._disconnect_deadline = 0
        self.reconnect_attempts = 0
        self.tick_path = workdir / "recorder" / "ticks.csv"
        self.tick_path.parent.mkdir(parents=True, exist_ok=True)
        self.tick_queue: list[str] = []
        self.bus_overflowed = 0
        self.last_reconciled_ns = clock()
        self._next_housekeeping_ns = clock()
        self._next_recorder_ns = clock()
        self._next_reconnect_ns = 0
        self.events = 0
        self.feed.market_open(True)  # the simulated exchange never closes
        self.feed.connected(session="demo-session")
        self.feed.api_usage("subscriptions", 2 * len(symbols), 200)
        self.log.info("engine_started", strategies=list(strategies), symbols=list(symbols),
                      config_sha256=config_hash(config).hex())

    # -- running --------------------------------------------------------------------------------------

    def run_paced(self, should_stop: Callable[[], bool]) -> None:
        """Steps in real time until `should_stop()`; sleeps to the next slice's deadline."""
        deadline = time.monotonic()
        while not should_stop():
            self.step()
            deadline += SLICE
            pause = deadline - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            elif pause < -1.0:  # fell far behind (a stopped process): do not try to catch up
                deadline = time.monotonic()

    def run_simulated(self, seconds: float) -> None:
        """Steps a SimulatedClock through `seconds` of engine time as fast as it can."""
        for _ in range(round(seconds / SLICE)):
            self.clock.advance(SLICE)  # type: ignore[attr-defined]
            self.step()

    def step(self) -> None:
        """One slice: market events through the strategies, then housekeeping when it is due."""
        now = self.clock()
        if self.feed_running():
            for _ in range(int(self.config["feed"]["events_per_second"] * SLICE)):
                self.market_event()
        if now >= self._next_housekeeping_ns:
            self._next_housekeeping_ns = now + int(HOUSEKEEPING * 1e9)
            self.housekeeping(now)

    def feed_running(self) -> bool:
        return not self.faults.active("feed-gap") and self.feed.is_connected

    # -- the trading path -------------------------------------------------------------------------------

    def market_event(self) -> None:
        rng = self.rng
        symbol = rng.choice(tuple(self.prices))
        self.prices[symbol] = round(self.prices[symbol] * (1 + rng.gauss(0, 0.00003)), 2)
        kind = "tick" if rng.random() < 0.3 else "bidask"
        self.feed.event(kind, latency_ns=int(rng.lognormvariate(12.3, 0.5)))  # ~220 us
        self.events += 1
        if kind == "tick":
            self.tick_queue.append(f"{self.clock()},{symbol},{self.prices[symbol]}\n")
        if self.faults.active("bus-overflow") and rng.random() < 0.3:
            self.bus_overflowed += 1  # the strategies never see this event
            return
        strategy = "mm" if kind == "bidask" else "momentum"
        self.strategies.decided(strategy, int(rng.lognormvariate(8.5 if strategy == "mm" else 9.3, 0.4)))
        if rng.random() < self.config["orders"]["intent_probability"]:
            self.trade(strategy, symbol)

    def trade(self, strategy: str, symbol: str) -> None:
        rng, book = self.rng, self.books[strategy]
        held = book.positions.get(symbol, 0)
        side = "SELL" if held > 0 and rng.random() < 0.6 else "BUY" if held < 0 and rng.random() < 0.6 else \
            rng.choice(("BUY", "SELL"))
        quantity = rng.randint(1, 3)
        intent = self.strategies.intent(strategy, symbol, side, quantity, self.prices[symbol])
        self.last_flow[strategy] = intent.flow
        with tracing.span("risk.check", intent.flow):
            allowed = self.check_risk(intent, held)
        if allowed:
            with tracing.span("order.submit", intent.flow):
                self.submit(intent)

    def check_risk(self, intent: Intent, held: int) -> bool:
        mode = self.risk.mode(intent.strategy)
        limits = self.config["strategies"][intent.strategy]
        signed = intent.quantity if intent.side == "BUY" else -intent.quantity
        window_start = self.clock() - 1_000_000_000
        while self.order_times and self.order_times[0] < window_start:
            self.order_times.popleft()
        if mode == "HALT":
            self.risk.reject(intent, rule="stormguard", reason="halted", detail="strategy halted by StormGuard")
        elif abs(held + signed) > limits["max_position"]:
            self.risk.reject(intent, rule="max_position", reason="max_position", limit_value=limits["max_position"],
                             observed_value=abs(held + signed))
        elif len(self.order_times) >= self.config["orders"]["rate_limit"]:
            self.risk.reject(intent, rule="order_rate", reason="order_rate",
                             limit_value=self.config["orders"]["rate_limit"], observed_value=len(self.order_times))
        elif mode == "STORM" and abs(held + signed) > abs(held):
            self.risk.throttle(intent, rule="stormguard", detail="STORM: only orders that reduce risk")
        else:
            self.risk.allow(intent, rule="max_position", limit_value=limits["max_position"],
                            observed_value=abs(held + signed))
            return True
        return False

    def submit(self, intent: Intent) -> None:
        rng = self.rng
        self.order_times.append(self.clock())
        self.orders.submitted(intent)
        if not self.feed.is_connected:
            self.orders.rejected(intent, reason="disconnected", code=-1, detail="Shioaji session down")
            self.outcome(intent.strategy, rejected=True)
            return
        reject_probability = 0.35 if self.faults.active("reject-spike") else 0.005
        if rng.random() < reject_probability:
            reason = rng.choice(("price_limit", "insufficient_margin"))
            self.orders.rejected(intent, reason=reason, code=88 if reason == "price_limit" else 91,
                                 latency_ns=int(rng.lognormvariate(14.5, 0.4)))
            self.outcome(intent.strategy, rejected=True)
            return
        self.orders.acked(intent, latency_ns=int(rng.lognormvariate(14.5, 0.4)),  # ~2 ms
                          broker_order_id=f"B{intent.flow.intent_id & 0xFFFFFFFFFF:010x}")
        self.outcome(intent.strategy, rejected=False)
        price = intent.price
        if self.disconnect_pending:
            self.disconnect(intent)  # the session drops with this order in flight
            self.stranded.append((intent, price))
            return
        if rng.random() < 0.7:
            self.fill(intent, price)

    def fill(self, intent: Intent, price: float) -> None:
        with tracing.span("execution.fill", intent.flow):
            self.execution.filled(intent, quantity=intent.quantity, price=price,
                                  latency_ns=int(self.rng.lognormvariate(15.0, 0.5)))
        signed = intent.quantity if intent.side == "BUY" else -intent.quantity
        self.books[intent.strategy].fill(intent.symbol, signed, price)
        self.last_flow[intent.strategy] = intent.flow

    def outcome(self, strategy: str, rejected: bool) -> None:
        self.outcomes[strategy].append((self.clock(), rejected))

    # -- the gateway ----------------------------------------------------------------------------------

    def disconnect(self, intent: Intent | None) -> None:
        self.disconnect_pending = False
        flow = intent.flow if intent is not None else None
        self.feed.disconnected("connection reset by peer (injected)", session="demo-session", flow=flow)
        self._next_reconnect_ns = self.clock() + 1_000_000_000
        self.reconnect_attempts = 0
        for strategy in self.books:
            self.risk.transition(strategy, "STORM", trigger="gateway_disconnected", detail="Shioaji session down",
                                 flow=flow)

    def gateway(self, now: int) -> None:
        down = self.faults.active("shioaji-disconnect")
        if down and self.feed.is_connected and not self.disconnect_pending:
            self.disconnect_pending = True  # the next acknowledged order is in flight when it drops
            self._disconnect_deadline = now + 500_000_000
        elif self.disconnect_pending and (not down or now >= self._disconnect_deadline):
            if down:
                self.disconnect(None)  # no order came along to be caught in flight
            else:
                self.disconnect_pending = False
        elif not down and not self.feed.is_connected:
            self.feed.connected(session="demo-session", detail=f"after {self.reconnect_attempts} attempts")
            for intent, price in self.stranded:
                self.fill(intent, price)
            self.stranded.clear()
            self.last_reconciled_ns = now
        elif down and not self.feed.is_connected and now >= self._next_reconnect_ns:
            self.reconnect_attempts += 1
            self.feed.reconnecting(self.reconnect_attempts, session="demo-session")
            self._next_reconnect_ns = now + 1_000_000_000

    # -- housekeeping -----------------------------------------------------------------------------------

    def housekeeping(self, now: int) -> None:
        self.gateway(now)
        gap = self.feed.refresh(now)
        overflowing = self.faults.active("bus-overflow")
        occupancy = 0.96 + self.rng.random() * 0.03 if overflowing else 0.05 + self.rng.random() * 0.1
        self.feed.bus(occupancy, overflowed=self.bus_overflowed)
        self.bus_overflowed = 0
        self.feed.api_usage("orders", len(self.order_times) * 10, self.config["orders"]["api_order_limit"])
        self.feed.api_usage("queries", 2 if self.feed.is_connected else 0, 50)
        self.orders.rate(float(len(self.order_times)), float(self.config["orders"]["rate_limit"]))
        if self.feed.is_connected and now - self.last_reconciled_ns >= 5_000_000_000:
            self.last_reconciled_ns = now
        self.execution.reconciliation_delay((now - self.last_reconciled_ns) / 1e9)
        if self.faults.active("stormguard-halt"):  # mm bleeds 4 % of its drawdown limit every 100 ms
            self.books["mm"].realized -= 0.04 * self.config["strategies"]["mm"]["drawdown_limit"]
        drawdowns = self.account()
        for strategy in self.books:
            self.stormguard(strategy, drawdowns[strategy], now)
        if now >= self._next_recorder_ns:
            self._next_recorder_ns = now + 250_000_000
            self.record_ticks()
        self.monitor.tick()
        self.monitor.check("feed", gap < 1.0, f"no market data for {gap:.1f} s")
        self.monitor.check("gateway", self.feed.is_connected, "Shioaji session down")
        self.monitor.check("bus", occupancy < 0.8, f"bus {occupancy:.0%} full")
        self.reload_config()

    def account(self) -> dict[str, float]:
        """Sets PnL, positions and exposure; returns each strategy's drawdown."""
        long = short = 0.0
        net: dict[str, int] = collections.Counter()
        drawdowns = {}
        for strategy, book in self.books.items():
            drawdowns[strategy] = self.execution.pnl(strategy, realized=book.realized,
                                                     unrealized=book.unrealized(self.prices))
            for symbol, lots in book.positions.items():
                net[symbol] += lots
        for symbol in self.prices:
            lots = net.get(symbol, 0)
            self.execution.position(symbol, lots)
            notional = abs(lots) * LOT * self.prices[symbol]
            long, short = (long + notional, short) if lots > 0 else (long, short + notional)
        self.execution.exposure(long=long, short=short, equity=EQUITY)
        return drawdowns

    def stormguard(self, strategy: str, drawdown: float, now: int) -> None:
        """Moves the strategy to the mode its drawdown, reject rate and the gateway call for."""
        guard, limit = self.config["stormguard"], self.config["strategies"][strategy]["drawdown_limit"]
        outcomes = self.outcomes[strategy]
        while outcomes and outcomes[0][0] < now - 10_000_000_000:
            outcomes.popleft()
        rejects = sum(rejected for _, rejected in outcomes)
        rate = rejects / len(outcomes) if len(outcomes) >= 10 else 0.0
        wanted, trigger, value, threshold = "NORMAL", "recovered", 0.0, 0.0
        for mode, hit, name, observed, bound in (
                ("WARM", rate >= guard["reject_rate_warm"], "reject_rate", rate, guard["reject_rate_warm"]),
                ("WARM", drawdown >= guard["drawdown_warm"] * limit, "drawdown", drawdown, guard["drawdown_warm"] * limit),
                ("STORM", rate >= guard["reject_rate_storm"], "reject_rate", rate, guard["reject_rate_storm"]),
                ("STORM", drawdown >= guard["drawdown_storm"] * limit, "drawdown", drawdown,
                 guard["drawdown_storm"] * limit),
                ("STORM", not self.feed.is_connected, "gateway_disconnected", 1.0, 1.0),
                ("HALT", drawdown >= limit, "drawdown", drawdown, limit)):
            if hit and _RANK[mode] >= _RANK[wanted]:
                wanted, trigger, value, threshold = mode, name, observed, bound
        if self.risk.mode(strategy) == "HALT":
            return  # HALT holds until the operator resumes the strategy
        cause = None if trigger == "recovered" else self.last_flow[strategy]  # the flow that tipped it
        self.risk.transition(strategy, wanted, trigger=trigger, trigger_value=value, threshold=threshold,
                             drawdown=drawdown, reject_rate=rate, flow=cause)

    def resume(self, strategy: str) -> None:
        """The operator's resume of a halted strategy: a new drawdown window starts now."""
        if self.risk.mode(strategy) != "HALT":
            return
        book = self.books[strategy]
        self.execution.reset_peak(strategy, book.realized + book.unrealized(self.prices))
        self.risk.transition(strategy, "NORMAL", trigger="operator_resume", detail="resumed by configuration change")

    # -- the tick recorder --------------------------------------------------------------------------------

    def record_ticks(self) -> None:
        broken = self.faults.active("recorder-failure")
        if broken and not self.tick_path.is_dir():
            if self.tick_path.exists():
                self.tick_path.rename(self.tick_path.with_suffix(".csv.1"))
            self.tick_path.mkdir()  # the injected fault: the file's path is now a directory
        elif not broken and self.tick_path.is_dir():
            shutil.rmtree(self.tick_path)
        started = time.perf_counter_ns()
        try:
            with open(self.tick_path, "a") as ticks:
                ticks.writelines(self.tick_queue)
        except OSError as error:
            self.recorder.failed("ticks", f"{type(error).__name__}: {error.strerror}")
            del self.tick_queue[:-100_000]  # bounded: the oldest ticks go first
        else:
            self.recorder.written("ticks", time.perf_counter_ns() - started)
            self.tick_queue.clear()
        self.recorder.queue_depth("ticks", len(self.tick_queue))
        self.monitor.check("recorder", not broken, "tick recorder failing")

    # -- configuration ----------------------------------------------------------------------------------

    def reload_config(self) -> None:
        """Applies the configuration file when it changed (`hftel config set` audits each change)."""
        if self.config_path is None:
            return
        try:
            mtime = self.config_path.stat().st_mtime_ns
            if mtime == self._config_mtime:
                return
            self._config_mtime = mtime
            config = json.loads(self.config_path.read_text())
        except (OSError, ValueError) as error:
            self.log.error("config_reload_failed", error=str(error))
            return
        resumed = [strategy for strategy in self.books if _resumes(config, strategy) != _resumes(self.config, strategy)]
        self.config = config
        for strategy, settings in config["strategies"].items():
            if strategy in self.books:
                self.execution.drawdown_limit(strategy, settings["drawdown_limit"])
        self.log.info("config_reloaded", config_sha256=config_hash(config).hex())
        for strategy in resumed:
            self.resume(strategy)


_RANK = {"NORMAL": 0, "WARM": 1, "STORM": 2, "HALT": 3}


def _resumes(config: dict[str, Any], strategy: str) -> int:
    """How many times the operator has resumed `strategy`: bumping stormguard.resume.<strategy> resumes it."""
    return config["stormguard"].get("resume", {}).get(strategy, 0)


def load_config(path: Path) -> dict[str, Any]:
    """The engine's JSON configuration, written with the defaults (0600) when the file is missing."""
    if not path.exists():
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            json.dump(DEFAULT_CONFIG, out, indent=2)
            out.write("\n")
    return json.loads(path.read_text())
