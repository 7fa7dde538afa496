"""The engine's Python garbage collector, recorded by the monitor facade into hft_python_gc_*.

CPython's own counters (gc.get_stats()) are the reference: what the segment says must match them.
Automatic collections are switched off while a test forces its own, so the counts are exact.
"""
from __future__ import annotations

import copy
import gc
import os
import sys
from typing import Iterator

import pytest
import structlog

import hftel
from hftel import logs
from hftel.catalogue import GC_GENERATIONS
from hftel.demo.engine import DEFAULT_CONFIG, DemoEngine, SimulatedClock
from hftel.demo.scenarios import Faults
from hftel.instruments import Monitor

COUNTERS = {"collections": "hft_python_gc_collections_total", "collected": "hft_python_gc_collected_objects_total",
            "uncollectable": "hft_python_gc_uncollectable_objects_total"}


@pytest.fixture
def quiet_gc() -> Iterator[None]:
    """No automatic collection during the test: only the ones it forces."""
    was_enabled = gc.isenabled()
    gc.disable()
    yield
    if was_enabled:
        gc.enable()


@pytest.fixture
def monitor(tel) -> Iterator[Monitor]:
    monitor = Monitor(tel)
    yield monitor
    monitor.close()


def recorded(tel: hftel.Telemetry) -> dict[str, dict[str, float]]:
    """Per generation: collections, collected, uncollectable, pauses (histogram count) and pause_seconds (sum)."""
    snapshot = tel.snapshot()
    out = {}
    for generation in GC_GENERATIONS:
        labels = {"generation": generation}
        out[generation] = {key: snapshot.get_sample_value(name, labels) for key, name in COUNTERS.items()}
        out[generation]["pauses"] = snapshot.get_sample_value("hft_python_gc_pause_seconds_count", labels)
        out[generation]["pause_seconds"] = snapshot.get_sample_value("hft_python_gc_pause_seconds_sum", labels)
    return out


def both(tel: hftel.Telemetry) -> tuple[list[dict], dict[str, dict[str, float]]]:
    """CPython's gc.get_stats() and what the segment recorded, read with no collection in between."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return gc.get_stats(), recorded(tel)
    finally:
        if was_enabled:
            gc.enable()


def moved_alike(before: tuple[list[dict], dict], after: tuple[list[dict], dict]) -> list[tuple[str, str]]:
    """The (generation, counter) pairs whose change in the segment differs from CPython's."""
    return [(generation, key) for generation in GC_GENERATIONS for key in COUNTERS
            if after[0][int(generation)][key] - before[0][int(generation)][key]
            != after[1][generation][key] - before[1][generation][key]]


def make_cycles(count: int) -> None:
    """`count` lists that refer to themselves: garbage only a collection frees."""
    for _ in range(count):
        cycle: list = []
        cycle.append(cycle)


@pytest.mark.parametrize("generation", [0, 1, 2])
def test_a_collection_counts_in_its_generation_and_its_pause_is_observed(tel, monitor, quiet_gc, generation):
    """gc.collect(N) adds one collection and one pause to generation N, and the cycles it freed."""
    before = recorded(tel)
    make_cycles(100)
    gc.collect(generation)
    after = recorded(tel)
    key = str(generation)
    assert after[key]["collections"] - before[key]["collections"] == 1
    assert after[key]["pauses"] - before[key]["pauses"] == 1
    assert after[key]["pause_seconds"] > before[key]["pause_seconds"]
    assert after[key]["collected"] - before[key]["collected"] >= 100
    assert all(after[other] == before[other] for other in GC_GENERATIONS if other != key)


def test_the_counts_are_cpythons_own(tel, monitor):
    """Over a run with automatic collections, each generation's counters move as gc.get_stats() does."""
    before = both(tel)
    for _ in range(200):
        make_cycles(100)  # 20,000 container allocations: young collections happen by themselves
    gc.collect(1)
    after = both(tel)
    assert [] == moved_alike(before, after)
    assert after[1]["0"]["collections"] - before[1]["0"]["collections"] >= 2


def test_close_stops_recording(tel, monitor, quiet_gc):
    """After monitor.close() a collection changes nothing, and the hook is gone from gc.callbacks."""
    monitor.close()
    before = recorded(tel)
    gc.collect(0)
    assert before == recorded(tel)
    assert not monitor.gc_stats.installed
    monitor.close()  # twice is fine


def test_dropping_the_monitor_removes_the_hook(tel):
    """The hook does not outlive its Monitor: it holds the handles, never the Monitor."""
    stats = Monitor(tel).gc_stats
    gc.collect()  # the Monitor is garbage now, whatever referred to it
    assert not stats.installed


def test_gc_stats_false_installs_nothing(tel, quiet_gc):
    """Monitor(gc_stats=False) registers the series at zero and records no collection."""
    monitor = Monitor(tel, gc_stats=False)
    gc.collect(2)
    assert not monitor.gc_stats.installed
    assert recorded(tel)["2"]["collections"] == 0


def test_nothing_raised_inside_the_hook_leaves_it(tel, monitor, quiet_gc, monkeypatch):
    """A failure inside the hook is counted in gc_stats.errors; CPython never sees an exception."""
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)

    class Broken:
        def inc(self, amount: int = 1) -> None:
            raise RuntimeError("the segment is gone")

        observe = inc

    monkeypatch.setitem(monitor.gc_stats._by_generation, 0, (Broken(),) * 4)
    gc.collect(0)
    monitor.gc_stats("stop", {})           # an info dict without the keys CPython sends today
    monitor.gc_stats("stop", None)         # or none at all
    assert unraisable == []
    assert monitor.gc_stats.errors == 3


def test_a_forked_child_does_not_count_into_its_parents_series(tmp_path, quiet_gc):
    """After fork the child's collections are its own: the hook is removed in the child."""
    tel = hftel.Telemetry.create(tmp_path / "forking", capacity=64, values_bytes=1 << 16, heartbeat_interval=None)
    monitor = Monitor(tel)
    try:
        before = recorded(tel)
        pid = os.fork()
        if pid == 0:  # the child: collect, and say whether the hook was still there
            gc.collect(2)
            os._exit(1 if monitor.gc_stats.installed else 0)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert before == recorded(tel)
        assert monitor.gc_stats.installed
    finally:
        monitor.close()
        tel.close()


def test_the_demo_engine_records_its_collections(tel, tmp_path):
    """The demo engine's monitor records every collection made while it trades, as CPython counts them."""
    logs.configure(tel)
    engine = DemoEngine(tel, copy.deepcopy(DEFAULT_CONFIG), tmp_path, Faults.local(), clock=SimulatedClock(), seed=7)
    try:
        before = both(tel)
        engine.run_simulated(2.0)
        gc.collect(1)
        after = both(tel)
        assert [] == moved_alike(before, after)
        assert after[1]["1"]["pauses"] - before[1]["1"]["pauses"] >= 1
    finally:
        engine.monitor.close()
        structlog.reset_defaults()
