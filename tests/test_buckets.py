"""Bucket lookup, checked against the definition: the first bound >= value, else +Inf."""
import bisect

from hypothesis import given, strategies as st

import hftel
from hftel import _core

values = st.one_of(st.integers(0, 2**64 - 1), st.integers(0, 2**20))


def expected_index(bounds, value):
    return bisect.bisect_left(bounds, value)


@given(value=values)
def test_default_log_linear_lookup_matches_its_bounds(value):
    """The C log-linear lookup picks the first default bound >= value."""
    layout = hftel.DEFAULT_BUCKETS
    index = _core.log_linear_index(value, layout.low_exponent, layout.high_exponent, layout.sub_bucket_bits)
    assert index == expected_index(layout.bounds, value)


@given(
    low=st.integers(0, 20),
    span=st.integers(1, 20),
    sub_bits=st.integers(0, 4),
    value=values,
)
def test_any_log_linear_layout_lookup_matches_its_bounds(low, span, sub_bits, value):
    """For any valid (low, high, sub-bucket bits), lookup agrees with the derived bounds."""
    low = max(low, sub_bits)
    span = min(span, 255 >> sub_bits)  # at most 256 finite buckets
    layout = hftel.log_linear_buckets(2**low, 2 ** (low + span), 2**sub_bits)
    index = _core.log_linear_index(value, layout.low_exponent, layout.high_exponent, layout.sub_bucket_bits)
    assert index == expected_index(layout.bounds, value)


@given(
    bounds=st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=256, unique=True).map(sorted),
    value=values,
)
def test_explicit_lookup_is_the_first_bound_not_below_the_value(bounds, value):
    """The C binary search over explicit bounds agrees with bisect_left."""
    assert _core.explicit_index(value, bounds) == expected_index(bounds, value)


@given(value=st.integers(0, 2**40))
def test_observed_value_lands_in_exactly_one_bucket(tmp_path_factory, value):
    """Through the public API, one observation makes exactly the expected cumulative step."""
    path = str(tmp_path_factory.mktemp("b") / "seg")
    with hftel.Telemetry.create(path, capacity=4, values_bytes=4096, heartbeat_interval=None) as tel:
        tel.histogram("h_ns", "H.").observe(value)
        series = tel.snapshot().get("h_ns")
    first = expected_index(series.bounds, value)
    assert series.cumulative == tuple([0] * first + [1] * (len(series.bounds) + 1 - first))
    assert series.sum == value
