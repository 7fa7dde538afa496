"""A small engine loop recording into a segment while this process prints live snapshots.

It stands in for the full demo engine (synthetic market data through strategy, risk and orders)
until that exists. The engine runs in a child process, as a real engine would, and this process
only reads, as the exporter does.
"""
from __future__ import annotations

import multiprocessing
import random
import time

from hftel.reader import Reader, Snapshot
from hftel.telemetry import Telemetry, segment_path


def engine_loop(path: str, ready: "multiprocessing.synchronize.Event", stop: "multiprocessing.synchronize.Event") -> None:
    tel = Telemetry.create(path)
    events = tel.counter("demo_feed_events_total", "Market data events handled.", labels=("type",))
    trades, quotes = events.labels(type="trade"), events.labels(type="quote")
    latency = tel.histogram("demo_strategy_latency_ns", "Time from event to decision.", labels=("strategy",))
    mm = latency.labels(strategy="mm")
    occupancy = tel.gauge("demo_bus_occupancy_ratio", "Event bus fill level.")
    position = tel.gauge("demo_position", "Net position, lots.", kind="int")
    ready.set()
    rng = random.Random(7)
    while not stop.is_set():
        for _ in range(1000):
            (trades if rng.random() < 0.2 else quotes).inc()
            mm.observe(int(rng.lognormvariate(8.5, 0.6)))
        occupancy.set(rng.random() * 0.3)
        position.inc(rng.choice((-1, 1)))
        time.sleep(0.001)
    tel.close()


def describe(snapshot: Snapshot, previous: Snapshot | None, elapsed: float) -> str:
    lines = [f"epoch {snapshot.info.epoch:#018x}  pid {snapshot.info.creator_pid}  series {snapshot.info.series}"]
    for series in snapshot.series:
        labels = ",".join(f'{k}="{v}"' for k, v in series.labels.items())
        sample = f"{series.name}_total" if series.kind == "counter" else series.name
        name = f"{sample}{{{labels}}}" if labels else sample
        if series.kind == "histogram":
            lines.append(f"  {name:48s} count {series.count:>10,}  p50 {series.quantile(0.5):>9,.0f} ns  "
                         f"p99 {series.quantile(0.99):>9,.0f} ns")
            continue
        rate = ""
        if series.kind == "counter" and previous is not None:
            before = previous.get(series.name, series.labels)
            if before is not None:
                rate = f"  {(series.value - before.value) / elapsed:>12,.0f}/s"
        value = f"{series.value:,.3f}" if isinstance(series.value, float) else f"{series.value:,}"
        lines.append(f"  {name:48s} {value:>16s}{rate}")
    return "\n".join(lines)


def run(segment: str = "demo", duration: float = 10.0, interval: float = 1.0) -> int:
    path = segment_path(segment)
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Event(), context.Event()
    engine = context.Process(target=engine_loop, args=(path, ready, stop), name="hftel-demo-engine")
    engine.start()
    try:
        if not ready.wait(30):
            print("the demo engine did not start")
            return 1
        reader = Reader(path)
        print(f"segment {path}: engine pid {engine.pid}; reading a snapshot every {interval:g} s (Ctrl-C stops)")
        started, previous, last = time.monotonic(), None, time.monotonic()
        while duration <= 0 or time.monotonic() - started < duration:
            time.sleep(interval)
            now = time.monotonic()
            snapshot = reader.snapshot()
            print(f"\n[{now - started:5.1f} s] engine {reader.status().value}  " + describe(snapshot, previous, now - last))
            previous, last = snapshot, now
    finally:
        stop.set()
        engine.join(10)
    print(f"\nengine stopped; status now {Reader(path).status().value}")
    return 0
