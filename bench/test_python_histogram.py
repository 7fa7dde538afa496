"""Python-level histogram observation: hftel against prometheus_client and the OpenTelemetry SDK.

Each round is one loop over the same N latencies (log-uniform, 1 us to 1 s): integer nanoseconds
for hftel and OpenTelemetry, float seconds for prometheus_client (its convention). The baseline is
the empty loop over the same list, which bench/report.py subtracts for the net figures.
"""
import prometheus_client
import pytest

N = 100_000
OP = "histogram observe()"
TARGET_NS = 35  # net of the loop, per call
FAST = {"rounds": 30, "warmup_rounds": 3}
SLOW = {"rounds": 15, "warmup_rounds": 2}

pytestmark = pytest.mark.benchmark(group="python: " + OP)


@pytest.fixture(scope="module")
def nanoseconds(observations):
    return observations(N)


@pytest.fixture(scope="module")
def seconds(nanoseconds):
    return [value / 1e9 for value in nanoseconds]


def empty_loop(histogram, values):
    for value in values:
        pass


def observe_loop(histogram, values):
    for value in values:
        histogram.observe(value)


def record_loop(histogram, values):
    for value in values:
        histogram.record(value)


def info(library, variant, **extra):
    return {"kind": "python", "op": OP, "library": library, "variant": variant, **extra}


def test_empty_loop(benchmark, measure, nanoseconds):
    """Baseline: `for value in values: pass`."""
    measure(benchmark, empty_loop, (None, nanoseconds), n=N, **FAST,
            **info("baseline", "empty loop", role="baseline"))


def test_hftel_atomic(benchmark, measure, telemetry, nanoseconds):
    """hftel Histogram.observe(int ns), the default (atomic), default log-linear buckets."""
    histogram = telemetry.histogram("bench_py_histogram_atomic_ns", "Benchmark.")
    calls = measure(benchmark, observe_loop, (histogram, nanoseconds), n=N, **FAST,
                    **info("hftel", "atomic (default)", target_ns=TARGET_NS))
    snapshot = telemetry.snapshot()
    assert snapshot.get_sample_value("bench_py_histogram_atomic_ns_count") == calls * N
    assert snapshot.get_sample_value("bench_py_histogram_atomic_ns_sum") == calls * sum(nanoseconds)


def test_hftel_single_writer(benchmark, measure, telemetry, nanoseconds):
    """hftel Histogram.observe(int ns) registered with single_writer=True."""
    histogram = telemetry.histogram("bench_py_histogram_single_ns", "Benchmark.", single_writer=True)
    calls = measure(benchmark, observe_loop, (histogram, nanoseconds), n=N, **FAST,
                    **info("hftel", "single_writer=True", target_ns=TARGET_NS))
    assert telemetry.snapshot().get_sample_value("bench_py_histogram_single_ns_count") == calls * N


def test_prometheus_client(benchmark, measure, seconds):
    """prometheus_client Histogram.observe(float s), default buckets, single process."""
    histogram = prometheus_client.Histogram("bench_py_histogram_seconds", "Benchmark.", registry=None)
    calls = measure(benchmark, observe_loop, (histogram, seconds), n=N, **SLOW,
                    **info("prometheus_client", "single process", role="reference", anchor_ns=540))
    assert sum(bucket.get() for bucket in histogram._buckets) == calls * N


def test_prometheus_client_multiprocess(benchmark, measure, prometheus_multiprocess, seconds):
    """prometheus_client Histogram.observe(float s) in multiprocess mode (MultiProcessValue)."""
    histogram = prometheus_multiprocess(prometheus_client.Histogram, "bench_py_histogram_mp_seconds", "Benchmark.")
    calls = measure(benchmark, observe_loop, (histogram, seconds), n=N, **SLOW,
                    **info("prometheus_client", "multiprocess", anchor_ns=1618))
    assert sum(bucket.get() for bucket in histogram._buckets) == calls * N


def test_opentelemetry_sdk(benchmark, measure, otel, nanoseconds):
    """OpenTelemetry SDK Histogram.record(int ns), default explicit buckets, in-memory reader."""
    histogram = otel.meter.create_histogram("bench_py_histogram", unit="ns")
    calls = measure(benchmark, record_loop, (histogram, nanoseconds), n=N, **SLOW,
                    **info("opentelemetry-sdk", "MeterProvider + InMemoryMetricReader", anchor_ns=1995))
    assert sum(point.count for point in otel.points("bench_py_histogram")) == calls * N
