"""The reference engine of the overhead benchmark (bench/test_engine_overhead.py): one market-data
loop, fixed work per event, run at a fixed event rate, with each telemetry variant.

    >>> worker = EngineWorker("hftel", "/dev/shm/hftel-bench-x/hftel-overhead", "/tmp/x")  # doctest: +SKIP
    >>> worker.run(events=80_000, rate=20_000)    # a RunResult: the engine process's CPU time  # doctest: +SKIP

The work per event (ReferenceBook.on_tick) is deterministic pure Python of about 10 us on the bench
machine: a 10-level order book takes one update, then depth, imbalance, microprice, two moving
averages and a z-score over the last 64 mids make a signal. Nothing in it sleeps or does I/O.

The telemetry per event, the same in every instrumented variant (the loops below, side by side):

- a counter inc (events), a latency histogram observe (the tick's own work, timed with the clock), a
  gauge set (the mid price);
- every 10th event an order intent: a counter inc and an audit row of audit_orders (ten fields);
- every 100th event a log event of the strategy_runner component (two bound and three call fields).

Variants (VARIANTS):

- `bare`: the loop with no telemetry code at all, the baseline every overhead is measured against;
- `noop`: hftel's loop with handles whose methods do nothing: what the calls, the clock reads and
  the every-10th/100th branches cost by themselves, whatever the library;
- `hftel`: hftel's handles, tel.audit.order() and the RingLogger (hftel.logs);
- `prometheus_structlog`: prometheus_client's Counter, Histogram and Gauge in a CollectorRegistry
  served by its own start_http_server, as an engine would expose them, and structlog's fast JSON
  set-up (bench/conftest.py) writing the audit rows and log events as JSON lines to a file.

Each variant runs in a process of its own (EngineWorker, a `spawn`ed child), so the CPU time
measured is exactly that engine's: its loop, and its threads (hftel's heartbeat, prometheus_client's
HTTP server answering the scrapes). Pacing is what an engine's input does: the loop handles the
events due by now in one batch, then sleeps PACING_TICK until more are due.
"""
from __future__ import annotations

import multiprocessing
import os
import time
from collections import deque
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from time import perf_counter, perf_counter_ns
from typing import Any, Callable

VARIANTS = ("bare", "noop", "hftel", "prometheus_structlog")
LABELS = {
    "bare": "no telemetry (bare loop)",
    "noop": "no-op handles (same calls, nothing recorded)",
    "hftel": "hftel",
    "prometheus_structlog": "prometheus_client + structlog",
}
AUDIT_EVERY = 10   # an order intent, so an audit row, every 10th event
LOG_EVERY = 100    # a log event every 100th event (a multiple of AUDIT_EVERY: see the loops)
PACING_TICK = 0.001  # seconds slept while no event is due
DEPTH = 10         # price levels per side of the book
WINDOW = 64        # mids in the z-score window: most of the work per event
MASK64 = (1 << 64) - 1

Loop = Callable[[int, int], None]  # (first event index, count) -> handles events first .. first+count-1


class ReferenceBook:
    """The fixed work per event: a small order book and the signal a strategy reads off it.

    >>> book = ReferenceBook()
    >>> for _ in range(1000):
    ...     book.on_tick()
    >>> book.mid, round(book.signal, 3)
    (10023.5, 0.983)

    The event stream comes from a 64-bit LCG, so every run does exactly the same work. A quote update
    changes one level's quantity; one event in four moves the whole book one tick up or down (the
    mid random-walks, the spread stays one tick).
    """

    def __init__(self, seed: int = 0x9E3779B97F4A7C15):
        self.state = seed
        self.best_bid = 10_000
        self.bids = [10 + level for level in range(DEPTH)]  # quantities; level k is at best_bid - k
        self.asks = [10 + level for level in range(DEPTH)]  # level k is at best_bid + 1 + k
        self.mids: deque[float] = deque([10_000.5] * WINDOW, maxlen=WINDOW)
        self.fast = self.slow = self.mid = 10_000.5
        self.signal = 0.0

    def on_tick(self) -> None:
        """Applies the next quote event and recomputes the mid and the signal."""
        state = self.state = (self.state * 6364136223846793005 + 1442695040888963407) & MASK64
        bids, asks = self.bids, self.asks
        move = state >> 61
        if move == 0:  # the book moves up a tick: a new best bid, the best ask is taken out
            self.best_bid += 1
            bids.insert(0, 1 + (state & 31))
            bids.pop()
            asks.pop(0)
            asks.append(10 + (state >> 8 & 31))
        elif move == 1:  # and down
            self.best_bid -= 1
            asks.insert(0, 1 + (state & 31))
            asks.pop()
            bids.pop(0)
            bids.append(10 + (state >> 8 & 31))
        else:  # a quantity update at one level of one side
            side = bids if state >> 60 & 1 else asks
            side[(state >> 40) % DEPTH] = 1 + (state >> 20) % 50
        best_bid = self.best_bid
        bid_qty = bid_value = ask_qty = ask_value = 0
        for level in range(DEPTH):
            quantity = bids[level]
            bid_qty += quantity
            bid_value += (best_bid - level) * quantity
            quantity = asks[level]
            ask_qty += quantity
            ask_value += (best_bid + 1 + level) * quantity
        mid = self.mid = best_bid + 0.5
        micro = (best_bid * asks[0] + (best_bid + 1) * bids[0]) / (asks[0] + bids[0])
        imbalance = (bid_qty - ask_qty) / (bid_qty + ask_qty)
        vwap = (bid_value + ask_value) / (bid_qty + ask_qty)
        self.fast += 0.2 * (mid - self.fast)
        self.slow += 0.02 * (mid - self.slow)
        mids = self.mids
        mids.append(mid)
        mean = sum(mids) / WINDOW
        variance = sum((x - mean) ** 2 for x in mids) / WINDOW
        z = (mid - mean) / variance ** 0.5 if variance > 0 else 0.0
        self.signal = 0.5 * z + 0.3 * imbalance + 0.2 * (self.fast - self.slow) + 0.001 * (micro - vwap)


# -- the loops: everything after book.on_tick() is telemetry -------------------------------------------


def bare_loop(book: ReferenceBook) -> Loop:
    on_tick = book.on_tick

    def loop(first: int, count: int) -> None:
        for i in range(first, first + count):
            on_tick()

    return loop


def hftel_loop(book: ReferenceBook, events: Any, orders: Any, latency: Any, mid: Any, audit: Any, log: Any) -> Loop:
    """hftel's API: observe() takes integer ns, audit.order() writes a row, log is a RingLogger.
    The `noop` variant runs this same loop with NoOp handles."""
    on_tick = book.on_tick

    def loop(first: int, count: int) -> None:
        for i in range(first, first + count):
            started = perf_counter_ns()
            on_tick()
            events.inc()
            latency.observe(perf_counter_ns() - started)
            mid.set(book.mid)
            if i % AUDIT_EVERY == 0:
                orders.inc()
                audit.order(intent_id=i, correlation_id=i, strategy="mm", symbol="2330", side="BUY",
                            order_type="LIMIT", time_in_force="ROD", status="INTENT", quantity=1, price=book.mid)
                if i % LOG_EVERY == 0:
                    log.info("signal", intent_id=i, signal=book.signal, mid=book.mid)

    return loop


def prometheus_structlog_loop(book: ReferenceBook, events: Any, orders: Any, latency: Any, mid: Any, audit: Any,
                              log: Any) -> Loop:
    """prometheus_client's API: observe() takes float seconds; the audit row is a structlog event."""
    on_tick = book.on_tick

    def loop(first: int, count: int) -> None:
        for i in range(first, first + count):
            started = perf_counter()
            on_tick()
            events.inc()
            latency.observe(perf_counter() - started)
            mid.set(book.mid)
            if i % AUDIT_EVERY == 0:
                orders.inc()
                audit.info("order", intent_id=i, correlation_id=i, strategy="mm", symbol="2330", side="BUY",
                           order_type="LIMIT", time_in_force="ROD", status="INTENT", quantity=1, price=book.mid)
                if i % LOG_EVERY == 0:
                    log.info("signal", intent_id=i, signal=book.signal, mid=book.mid)

    return loop


class NoOp:
    """Stands for every handle of the `noop` variant: each call returns at once."""

    def inc(self, amount: int = 1) -> None:
        pass

    def observe(self, value: float) -> None:
        pass

    def set(self, value: float) -> None:
        pass

    def order(self, **fields: Any) -> None:
        pass

    def info(self, event: str, **fields: Any) -> None:
        pass


# -- pacing --------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    """One paced run of one variant, measured inside the engine process."""

    variant: str
    events: int
    rate: int
    wall_seconds: float        # first event due to the last one handled
    cpu_seconds: float         # the process's CPU time (every thread, user + system) over the run
    loop_cpu_seconds: float    # of which the loop's own thread
    max_backlog: int           # the most events found due at once (rate * PACING_TICK when keeping up)
    audit_rows: int            # audit rows (hftel) or audit events (structlog) written in the run
    log_events: int


def run_paced(loop: Loop, first: int, events: int, rate: int) -> tuple[float, float, float, int]:
    """Handles `events` events, numbered from `first`, at `rate` a second: each wake-up handles the
    events due by then in one batch, then the loop sleeps. Returns (wall, process CPU, thread CPU,
    the largest batch)."""
    cpu, thread_cpu = time.process_time(), time.thread_time()
    started = perf_counter()
    done = max_backlog = 0
    while done < events:
        due = min(events, int((perf_counter() - started) * rate) + 1) - done
        if due > 0:
            loop(first + done, due)
            done += due
            max_backlog = max(max_backlog, due)
        else:
            time.sleep(PACING_TICK)
    return (perf_counter() - started, time.process_time() - cpu, time.thread_time() - thread_cpu, max_backlog)


def multiples(first: int, count: int, every: int) -> int:
    """How many of first .. first+count-1 are multiples of `every`."""
    return (first + count - 1) // every - (first - 1) // every


# -- one variant in its own process ---------------------------------------------------------------------


class Engine:
    """The engine of one variant, inside its process: the book, the telemetry and the loop."""

    def __init__(self, variant: str, segment: str, workdir: str):
        self.variant = variant
        self.book = ReferenceBook()
        self.next_event = 1  # event 0 would be a multiple of everything
        self.info: dict[str, Any] = {}
        self.closers: list[Callable[[], None]] = []
        setup = getattr(self, f"_setup_{variant}")
        self.loop: Loop = setup(segment, workdir)

    def _setup_bare(self, segment: str, workdir: str) -> Loop:
        return bare_loop(self.book)

    def _setup_noop(self, segment: str, workdir: str) -> Loop:
        noop = NoOp()
        return hftel_loop(self.book, noop, noop, noop, noop, noop, noop)

    def _setup_hftel(self, segment: str, workdir: str) -> Loop:
        import structlog

        import hftel
        from hftel import logs

        tel = hftel.Telemetry.create(segment)  # default sizes and heartbeat (a thread, every 0.1 s)
        logs.configure(tel)
        self.closers += [tel.close, structlog.reset_defaults]
        self.info["segment"] = tel.path
        return hftel_loop(
            self.book,
            tel.counter("bench_events_total", "Market-data events handled."),
            tel.counter("bench_orders_total", "Order intents sent."),
            tel.histogram("bench_tick_seconds", "Work per market-data event."),
            tel.gauge("bench_mid_price", "Mid price of the book."),
            tel.audit,
            logs.get_logger(component="strategy_runner", strategy="mm"),
        )

    def _setup_prometheus_structlog(self, segment: str, workdir: str) -> Loop:
        import structlog
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

        from conftest import configure_structlog_fast_json  # bench/ is on sys.path: the spawn copies it

        registry = CollectorRegistry()
        server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
        path = os.path.join(workdir, "prometheus_structlog.jsonl")
        file = open(path, "wb")
        configure_structlog_fast_json(file)
        self.closers += [server.shutdown, server.server_close, file.close, structlog.reset_defaults]
        self.info.update(metrics_url=f"http://127.0.0.1:{server.server_port}/metrics", log_file=path)
        return prometheus_structlog_loop(
            self.book,
            Counter("bench_events", "Market-data events handled.", registry=registry),
            Counter("bench_orders", "Order intents sent.", registry=registry),
            Histogram("bench_tick_seconds", "Work per market-data event.", registry=registry),
            Gauge("bench_mid_price", "Mid price of the book.", registry=registry),
            structlog.get_logger().bind(),
            structlog.get_logger(component="strategy_runner", strategy="mm").bind(),
        )

    def run(self, events: int, rate: int) -> RunResult:
        first = self.next_event
        wall, cpu, loop_cpu, backlog = run_paced(self.loop, first, events, rate)
        self.next_event += events
        instrumented = self.variant != "bare"
        return RunResult(self.variant, events, rate, wall, cpu, loop_cpu, backlog,
                         multiples(first, events, AUDIT_EVERY) if instrumented else 0,
                         multiples(first, events, LOG_EVERY) if instrumented else 0)

    def close(self) -> None:
        for close in self.closers:
            close()


def _worker_main(connection: Connection, variant: str, segment: str, workdir: str) -> None:
    """The child process: sets the engine up, then runs what the parent asks until told to stop."""
    engine = Engine(variant, segment, workdir)
    connection.send(engine.info)
    try:
        while True:
            command, *arguments = connection.recv()
            if command == "stop":
                break
            connection.send(asdict(engine.run(*arguments)))
    finally:
        engine.close()
        connection.close()


class EngineWorker:
    """One variant's engine in a child process of its own (spawned: a fresh interpreter).

    Only one worker runs events at a time; the others wait on their pipe and cost nothing. `info`
    holds what the engine exposes: the hftel segment's path, prometheus_client's metrics URL.
    """

    def __init__(self, variant: str, segment: str, workdir: str):
        context = multiprocessing.get_context("spawn")
        self.variant = variant
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child, variant, segment, workdir),
                                       name=f"reference-engine-{variant}", daemon=True)
        self.process.start()
        child.close()
        try:
            if not self.connection.poll(60):
                raise RuntimeError(f"the {variant} engine did not start within 60 s")
            self.info: dict[str, Any] = self.connection.recv()
        except EOFError:  # it died setting up; its traceback is on stderr
            self.process.join(5)
            raise RuntimeError(f"the {variant} engine exited while starting ({self.process.exitcode})") from None

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def run(self, events: int, rate: int) -> RunResult:
        """Runs `events` events at `rate` a second in the child; waits for it and returns what it measured."""
        self.connection.send(("run", events, rate))
        return RunResult(**self.connection.recv())

    def stop(self) -> None:
        if self.process.is_alive():
            self.connection.send(("stop",))
            self.process.join(30)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.connection.close()
