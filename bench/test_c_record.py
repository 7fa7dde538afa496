"""C-level record calls from Cython (bench/cloops.pyx), N per `with nogil` loop, against two baselines.

Every loop returns what it left in the segment, and each test checks it against the number of calls,
so a loop the compiler hoisted or folded would fail here rather than report a fantasy.
"""
from array import array

import pytest

N = 4_000_000
VALUES = 4096  # the histogram loops cycle through this many observations (a power of two)
ROUNDS = {"rounds": 30, "warmup_rounds": 3}

pytestmark = pytest.mark.benchmark(group="c: record in a nogil loop")


@pytest.fixture(scope="module")
def values(observations):
    return array("Q", observations(VALUES))


def expected_sum(values, calls):
    """The sum of values[i % len(values)] for i < N, `calls` times over."""
    whole, rest = divmod(N, len(values))
    return calls * (whole * sum(values) + sum(values[:rest]))


def info(op, variant, **extra):
    return {"kind": "c", "op": op, "library": "hftel", "variant": variant, **extra}


def test_plain_store(benchmark, measure, cloops, telemetry):
    """Baseline: a volatile plain store (one `mov`) into a counter's word per iteration."""
    counter = telemetry.counter("bench_c_plain_store", "Benchmark.")
    measure(benchmark, cloops.plain_store, (counter, N), n=N, **ROUNDS,
            **info("baseline: plain store", "volatile store", role="baseline"))
    assert counter.get() == N


def test_relaxed_atomic_add(benchmark, measure, cloops):
    """Baseline: a bare __atomic_fetch_add(relaxed) (LOCK ADD) on a private word."""
    before = cloops.relaxed_atomic_add(0)
    calls = measure(benchmark, cloops.relaxed_atomic_add, (N,), n=N, **ROUNDS,
                    **info("baseline: relaxed atomic add", "__atomic_fetch_add", role="baseline"))
    assert cloops.relaxed_atomic_add(0) - before == calls * N


def test_counter_add_single_writer(benchmark, measure, cloops, telemetry):
    """hftel_counter_add: single writer, a plain load and a release store."""
    counter = telemetry.counter("bench_c_counter_single", "Benchmark.", single_writer=True)
    calls = measure(benchmark, cloops.counter_add_single_writer, (counter, N), n=N, **ROUNDS,
                    **info("counter add", "single writer", target_ns=1))
    assert counter.get() == calls * N


def test_counter_add_atomic(benchmark, measure, cloops, telemetry):
    """hftel_counter_add_atomic: any thread or process, LOCK XADD."""
    counter = telemetry.counter("bench_c_counter_atomic", "Benchmark.")
    calls = measure(benchmark, cloops.counter_add_atomic, (counter, N), n=N, **ROUNDS,
                    **info("counter add", "atomic", target_ns=6))
    assert counter.get() == calls * N


def test_histogram_observe_single_writer(benchmark, measure, cloops, telemetry, values):
    """hftel_histogram_observe: single writer, default log-linear buckets, varying values."""
    histogram = telemetry.histogram("bench_c_histogram_single_ns", "Benchmark.", single_writer=True)
    calls = measure(benchmark, cloops.histogram_observe_single_writer, (histogram, values, N), n=N, **ROUNDS,
                    **info("histogram observe", "single writer", target_ns=4))
    assert cloops.histogram_totals(histogram) == (calls * N, expected_sum(values, calls))


def test_histogram_observe_atomic(benchmark, measure, cloops, telemetry, values):
    """hftel_histogram_observe_atomic: any thread or process, default log-linear buckets, varying values."""
    histogram = telemetry.histogram("bench_c_histogram_atomic_ns", "Benchmark.")
    calls = measure(benchmark, cloops.histogram_observe_atomic, (histogram, values, N), n=N, **ROUNDS,
                    **info("histogram observe", "atomic"))
    assert cloops.histogram_totals(histogram) == (calls * N, expected_sum(values, calls))
