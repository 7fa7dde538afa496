"""Python-level counter increment: hftel against prometheus_client and the OpenTelemetry SDK.

Each round is one loop of N calls, so the harness's per-round overhead is amortised; the empty loop
of the same N is the baseline that bench/report.py subtracts for the net figures.
"""
import prometheus_client
import pytest

N = 100_000
OP = "counter inc()"
TARGET_NS = 25  # net of the loop, per call
FAST = {"rounds": 30, "warmup_rounds": 3}
SLOW = {"rounds": 15, "warmup_rounds": 2}

pytestmark = pytest.mark.benchmark(group="python: " + OP)


def empty_loop(counter, n):
    for _ in range(n):
        pass


def inc_loop(counter, n):
    for _ in range(n):
        counter.inc()


def add_loop(counter, n):
    for _ in range(n):
        counter.add(1)


def info(library, variant, **extra):
    return {"kind": "python", "op": OP, "library": library, "variant": variant, **extra}


def test_empty_loop(benchmark, measure):
    """Baseline: `for _ in range(N): pass`."""
    measure(benchmark, empty_loop, (None, N), n=N, **FAST, **info("baseline", "empty loop", role="baseline"))


def test_hftel_atomic(benchmark, measure, telemetry):
    """hftel Counter.inc(), the default (atomic, any thread or process)."""
    counter = telemetry.counter("bench_py_counter_atomic", "Benchmark.")
    calls = measure(benchmark, inc_loop, (counter, N), n=N, **FAST,
                    **info("hftel", "atomic (default)", target_ns=TARGET_NS))
    assert counter.get() == calls * N


def test_hftel_single_writer(benchmark, measure, telemetry):
    """hftel Counter.inc() registered with single_writer=True."""
    counter = telemetry.counter("bench_py_counter_single", "Benchmark.", single_writer=True)
    calls = measure(benchmark, inc_loop, (counter, N), n=N, **FAST,
                    **info("hftel", "single_writer=True", target_ns=TARGET_NS))
    assert counter.get() == calls * N


def test_prometheus_client(benchmark, measure):
    """prometheus_client Counter.inc(), single process (MutexValue)."""
    counter = prometheus_client.Counter("bench_py_counter", "Benchmark.", registry=None)
    assert not counter._value._multiprocess
    calls = measure(benchmark, inc_loop, (counter, N), n=N, **SLOW,
                    **info("prometheus_client", "single process", role="reference", anchor_ns=226))
    assert counter._value.get() == calls * N


def test_prometheus_client_multiprocess(benchmark, measure, prometheus_multiprocess):
    """prometheus_client Counter.inc() in multiprocess mode (MultiProcessValue, an mmap'd .db file)."""
    counter = prometheus_multiprocess(prometheus_client.Counter, "bench_py_counter_mp", "Benchmark.")
    calls = measure(benchmark, inc_loop, (counter, N), n=N, **SLOW,
                    **info("prometheus_client", "multiprocess", anchor_ns=740))
    assert counter._value.get() == calls * N


def test_opentelemetry_sdk(benchmark, measure, otel):
    """OpenTelemetry SDK Counter.add(1), MeterProvider with an InMemoryMetricReader."""
    counter = otel.meter.create_counter("bench_py_counter")
    calls = measure(benchmark, add_loop, (counter, N), n=N, **SLOW,
                    **info("opentelemetry-sdk", "MeterProvider + InMemoryMetricReader", anchor_ns=2000))
    assert sum(point.value for point in otel.points("bench_py_counter")) == calls * N
