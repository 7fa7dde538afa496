"""Histograms: fixed buckets, integer nanosecond values, consistent snapshots."""
import time

import pytest

import hftel


def test_default_layout_is_log_linear_64ns_to_17s(tel):
    """The default buckets run from 64 ns to 2**34 ns, two steps per octave, plus +Inf."""
    tel.histogram("latency_ns", "Latency.")
    series = tel.snapshot().get("latency_ns")
    assert series.bounds[:5] == (64, 96, 128, 192, 256)
    assert series.bounds[-1] == 2**34
    assert len(series.bounds) == 57
    assert len(series.cumulative) == 58


def test_observe_counts_values_with_le_semantics(tel):
    """A value equal to a bound falls in that bound's bucket (Prometheus' `le`)."""
    latency = tel.histogram("latency_ns", "Latency.", buckets=[100, 200, 300])
    for value in (100, 101, 200, 250, 300, 301):
        latency.observe(value)
    snap = tel.snapshot()
    assert snap.get_sample_value("latency_ns_bucket", {"le": "100"}) == 1
    assert snap.get_sample_value("latency_ns_bucket", {"le": "200"}) == 3
    assert snap.get_sample_value("latency_ns_bucket", {"le": "300"}) == 5
    assert snap.get_sample_value("latency_ns_bucket", {"le": "+Inf"}) == 6
    assert snap.get_sample_value("latency_ns_count") == 6
    assert snap.get_sample_value("latency_ns_sum") == 100 + 101 + 200 + 250 + 300 + 301


def test_negative_observation_counts_as_zero(tel):
    """A negative value (a clock stepping back) lands in the first bucket and adds 0 to the sum."""
    latency = tel.histogram("latency_ns", "Latency.", buckets=[10])
    latency.observe(-5)
    snap = tel.snapshot()
    assert snap.get_sample_value("latency_ns_bucket", {"le": "10"}) == 1
    assert snap.get_sample_value("latency_ns_sum") == 0


def test_time_context_manager_observes_elapsed_nanoseconds(tel):
    """`with h.time():` observes the monotonic nanoseconds spent inside the block."""
    latency = tel.histogram("latency_ns", "Latency.", buckets=[1_000_000_000])
    before = time.monotonic_ns()
    with latency.time():
        entered = time.monotonic_ns()
        while time.monotonic_ns() - entered < 2_000_000:  # 2 ms of work inside the block
            pass
    after = time.monotonic_ns()
    series = tel.snapshot().get("latency_ns")
    assert series.count == 1
    assert 2_000_000 <= series.sum <= after - before


def test_custom_log_linear_layout(tel):
    """log_linear_buckets() gives other ranges and precisions."""
    layout = hftel.log_linear_buckets(low_ns=1024, high_ns=4096, steps_per_octave=4)
    tel.histogram("latency_ns", "Latency.", buckets=layout)
    assert tel.snapshot().get("latency_ns").bounds == (1024, 1280, 1536, 1792, 2048, 2560, 3072, 3584, 4096)


@pytest.mark.parametrize("bounds, problem", [
    ([], "at least one"),
    ([10, 10], "strictly increase"),
    ([0.5, 1], "integers"),
    ([-1, 5], ">= 0"),
    (list(range(1, 300)), "at most"),
])
def test_bad_bucket_bounds_are_refused(tel, bounds, problem):
    """Bounds must be increasing non-negative integers, at most 256 of them."""
    with pytest.raises(hftel.RegistrationError, match=problem):
        tel.histogram("latency_ns", "Latency.", buckets=bounds)


def test_trailing_infinity_is_accepted_and_implied(tel):
    """A prometheus_client-style trailing +Inf bound is allowed; +Inf is always there."""
    tel.histogram("latency_ns", "Latency.", buckets=[10, 20, float("inf")])
    assert tel.snapshot().get("latency_ns").bounds == (10, 20)


def test_le_is_not_a_label_name_for_histograms(tel):
    """'le' is reserved for buckets."""
    with pytest.raises(hftel.RegistrationError, match="reserved"):
        tel.histogram("latency_ns", "Latency.", labels=("le",))


def test_same_histogram_with_other_buckets_conflicts(tel):
    """Re-registering a histogram name with different buckets is refused."""
    tel.histogram("latency_ns", "Latency.", buckets=[10, 20])
    with pytest.raises(hftel.RegistrationError, match="other buckets"):
        tel.histogram("latency_ns", "Latency.", buckets=[10, 30])


def test_quantile_interpolates_inside_the_bucket(tel):
    """Series.quantile estimates like PromQL's histogram_quantile."""
    latency = tel.histogram("latency_ns", "Latency.", buckets=[100, 200])
    for value in [50] * 50 + [150] * 50:
        latency.observe(value)
    series = tel.snapshot().get("latency_ns")
    assert series.quantile(0.5) == 100.0
    assert series.quantile(0.75) == 150.0


def test_float_observation_is_refused_rather_than_truncated(tel):
    """observe(0.0012) (seconds, prometheus_client style) raises TypeError instead of recording 0 ns."""
    latency = tel.histogram("latency_ns", "Latency.")
    with pytest.raises(TypeError):
        latency.observe(0.0012)
    assert tel.snapshot().get("latency_ns").count == 0


def test_integer_like_values_are_accepted(tel):
    """Objects with __index__ (numpy integers, for one) record like ints."""
    class Nanos:
        def __index__(self):
            return 150

    latency = tel.histogram("latency_ns", "Latency.", buckets=[100, 200])
    latency.observe(Nanos())
    assert tel.snapshot().get_sample_value("latency_ns_bucket", {"le": "200"}) == 1
