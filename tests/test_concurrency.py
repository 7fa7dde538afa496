"""Many writers, one reader: exact totals, and histogram snapshots that are always consistent."""
from __future__ import annotations

import threading

import hftel

PROCESSES = 2
THREADS = 4
PER_THREAD = 20_000
VALUES = (50, 100, 1_000, 10_000, 100_000, 10**9, 10**12)  # spread over buckets, including +Inf


def record(path: str, start: "threading.Barrier", threads: int, per_thread: int) -> None:
    """Attaches to the segment and increments from `threads` threads at once."""
    tel = hftel.Telemetry.attach(path)
    counter = tel.counter("hits", "Hits.", labels=("kind",)).labels(kind="shared")
    gauge = tel.gauge("level", "Level.", kind="int")
    fgauge = tel.gauge("flevel", "Float level.")
    histogram = tel.histogram("latency_ns", "Latency.")

    def work() -> None:
        for i in range(per_thread):
            counter.inc()
            gauge.inc(2)
            gauge.dec()
            fgauge.inc(0.5)
            histogram.observe(VALUES[i % len(VALUES)])

    workers = [threading.Thread(target=work) for _ in range(threads)]
    start.wait()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def test_processes_and_threads_sharing_series_lose_no_update(tel, segment_file, spawn):
    """2 processes x 4 threads recording into the same series give exact totals."""
    tel.counter("hits", "Hits.", labels=("kind",)).labels(kind="shared")  # the engine registers first
    start = spawn.Barrier(PROCESSES)
    children = [spawn.Process(target=record, args=(segment_file, start, THREADS, PER_THREAD))
                for _ in range(PROCESSES)]
    for child in children:
        child.start()
    for child in children:
        child.join()
    assert [child.exitcode for child in children] == [0] * PROCESSES

    total = PROCESSES * THREADS * PER_THREAD
    snap = tel.snapshot()
    assert snap.get_sample_value("hits_total", {"kind": "shared"}) == total
    assert snap.get_sample_value("level") == total
    assert snap.get_sample_value("flevel") == total * 0.5
    latency = snap.get("latency_ns")
    assert latency.count == total
    assert latency.sum == PROCESSES * THREADS * sum(VALUES[i % len(VALUES)] for i in range(PER_THREAD))
    assert len([s for s in snap.series if s.name == "hits"]) == 1


def hammer(path: str, start: "threading.Barrier", observations: int) -> None:
    """Observes flat out into one histogram."""
    histogram = hftel.Telemetry.attach(path).histogram("latency_ns", "Latency.")
    start.wait()
    for i in range(observations):
        histogram.observe(VALUES[i % len(VALUES)])


def test_histogram_snapshots_are_consistent_while_writers_run_flat_out(tel, segment_file, spawn):
    """Every snapshot taken during the writes has _count == +Inf and non-decreasing buckets."""
    tel.histogram("latency_ns", "Latency.")
    writers, observations = 2, 300_000
    start = spawn.Barrier(writers + 1)
    children = [spawn.Process(target=hammer, args=(segment_file, start, observations)) for _ in range(writers)]
    for child in children:
        child.start()
    reader = hftel.Reader(segment_file)
    start.wait()
    snapshots, previous = 0, None
    while any(child.is_alive() for child in children) or snapshots == 0:
        series = reader.snapshot().get("latency_ns")
        cumulative = series.cumulative
        assert series.count == cumulative[-1]
        assert all(a <= b for a, b in zip(cumulative, cumulative[1:])), cumulative
        if previous is not None:
            assert all(a <= b for a, b in zip(previous, cumulative)), "a bucket went backwards"
        previous = cumulative
        snapshots += 1
    for child in children:
        child.join()
    assert [child.exitcode for child in children] == [0] * writers
    assert reader.snapshot().get("latency_ns").count == writers * observations
    assert snapshots > 1


def test_label_sets_registered_while_a_reader_is_attached_appear_in_its_next_snapshot(tel, segment_file):
    """A reader attached early discovers series registered after it."""
    orders = tel.counter("orders", "Orders.", labels=("side",))
    orders.labels(side="buy").inc()
    reader = hftel.Reader(segment_file)
    assert reader.snapshot().get_sample_value("orders_total", {"side": "sell"}) is None
    orders.labels(side="sell").inc(3)
    tel.gauge("late", "Registered late.").set(1.0)
    snap = reader.snapshot()
    assert snap.get_sample_value("orders_total", {"side": "sell"}) == 3
    assert snap.get_sample_value("late") == 1.0


def register_many(path: str, start: "threading.Barrier", worker: int) -> None:
    tel = hftel.Telemetry.attach(path)
    family = tel.counter("requests", "Requests.", labels=("n",))
    start.wait()
    for n in range(200):
        family.labels(n=str(n)).inc()  # both processes race to register the same 200 label sets


def test_concurrent_registration_of_the_same_series_yields_one_descriptor_each(tel, segment_file, spawn):
    """Two processes registering the same label sets at once share them: no duplicate series."""
    start = spawn.Barrier(2)
    children = [spawn.Process(target=register_many, args=(segment_file, start, w)) for w in range(2)]
    for child in children:
        child.start()
    for child in children:
        child.join()
    assert [child.exitcode for child in children] == [0, 0]
    snap = tel.snapshot()
    requests = [s for s in snap.series if s.name == "requests"]
    assert len(requests) == 200
    assert {s.value for s in requests} == {2}
