"""The exposition: families, sample lines and values, as Prometheus and OpenMetrics parsers read them."""
from __future__ import annotations

import math
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import CapturingLogger
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

import hftel
from hftel.errors import SegmentError
from hftel_exporter._exposition import COUNTER, RenderPlan, format_double
from hftel_exporter.exposition import OPENMETRICS, TEXT, build_plan, negotiate
from hftel_exporter.segments import Attachment
from hftel_exporter.selfmetrics import RESERVED_SAMPLES

PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                     "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


def attach(path, engine=None):
    attachment = Attachment.open(str(path), engine)
    attachment.discover(CapturingLogger(), Counter())
    return attachment


def render(*attachments, fmt=TEXT, engine_label="engine"):
    sources = [source for attachment in attachments for source in attachment.sources]
    plan, conflicts = build_plan(sources, fmt, engine_label, RESERVED_SAMPLES)
    tail = b"# EOF\n" if fmt.openmetrics else b""
    return plan.render(tail).decode(), conflicts


def samples(text, parser=parse_text):
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in parser(text) for sample in family.samples}


@pytest.fixture
def engine(tmp_path):
    tel = hftel.Telemetry.create(tmp_path / "hftel-e1", capacity=256, values_bytes=1 << 20)
    yield tel
    tel.close()


def test_counter_is_written_with_total_in_text_format(engine):
    engine.counter("orders", "Orders sent.").inc(7)
    text, _ = render(attach(engine.path))
    assert "# HELP orders_total Orders sent.\n# TYPE orders_total counter\norders_total{engine=\"e1\"} 7\n" in text


def test_counter_family_has_no_total_suffix_in_openmetrics(engine):
    engine.counter("orders", "Orders sent.").inc(7)
    text, _ = render(attach(engine.path), fmt=OPENMETRICS)
    assert "# TYPE orders counter\n" in text
    assert samples(text, parse_openmetrics)[("orders_total", (("engine", "e1"),))] == 7


def test_openmetrics_ends_with_eof(engine):
    engine.gauge("depth", "Depth.").set(1)
    text, _ = render(attach(engine.path), fmt=OPENMETRICS)
    assert text.endswith("# EOF\n")


def test_series_of_one_family_are_contiguous_whatever_the_registration_order(engine):
    orders = engine.counter("orders", "Orders.", labels=("side",))
    orders.labels(side="buy").inc()
    engine.gauge("depth", "Depth.").set(1)
    orders.labels(side="sell").inc(2)
    text, _ = render(attach(engine.path))
    families = {family.name: family for family in parse_text(text)}  # the parser refuses split families
    assert [s.labels["side"] for s in families["orders"].samples] == ["buy", "sell"]
    assert text.count("# TYPE orders_total") == 1


def test_histogram_buckets_are_cumulative_and_count_equals_inf_bucket(engine):
    latency = engine.histogram("latency_ns", "Latency.", buckets=[100, 1_000])
    for value in (50, 500, 500, 5_000):
        latency.observe(value)
    values = samples(render(attach(engine.path))[0])
    bucket = lambda le: values[("latency_ns_bucket", (("engine", "e1"), ("le", le)))]  # noqa: E731
    assert (bucket("100"), bucket("1000"), bucket("+Inf")) == (1, 3, 4)
    assert values[("latency_ns_count", (("engine", "e1"),))] == 4
    assert values[("latency_ns_sum", (("engine", "e1"),))] == 6_050


def test_histogram_named_seconds_records_nanoseconds_and_is_exposed_in_seconds(engine):
    latency = engine.histogram("order_latency_seconds", "Latency.", buckets=[1_000, 250_000])
    latency.observe(500)
    latency.observe(1_500_000_000)
    values = samples(render(attach(engine.path))[0])
    labels = (("engine", "e1"),)
    assert values[("order_latency_seconds_bucket", labels + (("le", "1e-06"),))] == 1
    assert values[("order_latency_seconds_bucket", labels + (("le", "0.00025"),))] == 1
    assert values[("order_latency_seconds_sum", labels)] == 1.5000005


def test_histogram_with_another_name_is_exposed_as_recorded(engine):
    engine.histogram("fill_size", "Fill size.", buckets=[10]).observe(7)
    values = samples(render(attach(engine.path))[0])
    assert values[("fill_size_bucket", (("engine", "e1"), ("le", "10")))] == 1
    assert values[("fill_size_sum", (("engine", "e1"),))] == 7


@pytest.mark.parametrize("value, written", [(math.nan, "NaN"), (math.inf, "+Inf"), (-math.inf, "-Inf"),
                                            (2.0, "2"), (0.1, "0.1"), (-2.5, "-2.5"), (1e22, "1e+22")])
def test_float_gauge_values_are_written_as_prometheus_reads_them(engine, value, written):
    engine.gauge("ratio", "A ratio.").set(value)
    assert f'ratio{{engine="e1"}} {written}\n' in render(attach(engine.path))[0]


def test_int_gauge_keeps_its_sign(engine):
    engine.gauge("position", "Net position.", kind="int").set(-9_223_372_036_854_775_808)
    assert 'position{engine="e1"} -9223372036854775808\n' in render(attach(engine.path))[0]


@given(st.floats(allow_nan=False))
def test_format_double_reads_back_as_the_same_double(value):
    assert float(format_double(value)) == value


@given(st.lists(st.integers(0, 2**64 - 2), min_size=1, max_size=20),
       st.lists(st.floats(allow_nan=False), min_size=1, max_size=20))
def test_parsed_values_equal_recorded_values(tmp_path_factory, counts, levels):
    path = tmp_path_factory.mktemp("property") / "hftel-p"
    tel = hftel.Telemetry.create(path, capacity=128, values_bytes=1 << 20, audit_ring_bytes=0, log_ring_bytes=0)
    try:
        counters = tel.counter("events", "Events.", labels=("n",))
        gauges = tel.gauge("level", "Level.", labels=("n",))
        for index, count in enumerate(counts):
            counters.labels(n=str(index)).inc(count // 2)  # inc() takes at most 2**63 - 1
            counters.labels(n=str(index)).inc(count - count // 2)
        for index, level in enumerate(levels):
            gauges.labels(n=str(index)).set(level)
        values = samples(render(attach(path))[0])
        for index, count in enumerate(counts):
            assert values[("events_total", (("engine", "p"), ("n", str(index))))] == count
        for index, level in enumerate(levels):
            assert values[("level", (("engine", "p"), ("n", str(index))))] == level
    finally:
        tel.close()


def test_help_escapes_backslash_and_newline_in_text(engine):
    engine.gauge("g", "a \\ b\nc \"q\"").set(1)
    assert '# HELP g a \\\\ b\\nc "q"\n' in render(attach(engine.path))[0]


def test_help_escapes_quotes_too_in_openmetrics(engine):
    engine.gauge("g", 'say "hi"').set(1)
    assert '# HELP g say \\"hi\\"\n' in render(attach(engine.path), fmt=OPENMETRICS)[0]


def test_label_values_round_trip_through_the_parser(engine):
    engine.counter("odd", "Odd labels.", labels=("text",)).labels(text='a"b\\c\nd').inc()
    values = samples(render(attach(engine.path))[0])
    assert values[("odd_total", (("engine", "e1"), ("text", 'a"b\\c\nd')))] == 1


def test_engine_label_names_the_segment(engine):
    engine.gauge("g", "G.").set(1)
    assert 'g{engine="e1"} 1\n' in render(attach(engine.path))[0]


def test_no_engine_label_when_it_is_turned_off(engine):
    engine.gauge("g", "G.").set(1)
    assert "\ng 1\n" in render(attach(engine.path), engine_label="")[0]


def test_a_series_own_engine_label_is_kept_as_exported_engine(engine):
    engine.gauge("g", "G.", labels=("engine",)).labels(engine="inner").set(1)
    values = samples(render(attach(engine.path))[0])
    assert values[("g", (("engine", "e1"), ("exported_engine", "inner")))] == 1


def test_families_from_two_engines_merge_under_one_header(tmp_path):
    first = hftel.Telemetry.create(tmp_path / "hftel-a", capacity=16, values_bytes=1 << 16)
    second = hftel.Telemetry.create(tmp_path / "hftel-b", capacity=16, values_bytes=1 << 16)
    first.counter("orders", "Orders.").inc(1)
    second.counter("orders", "Orders.").inc(2)
    text, conflicts = render(attach(first.path), attach(second.path))
    assert not conflicts and text.count("# TYPE orders_total counter") == 1
    assert [s.value for s in next(parse_text(text)).samples] == [1, 2]
    first.close(), second.close()


def test_a_family_with_another_type_elsewhere_is_left_out(tmp_path):
    first = hftel.Telemetry.create(tmp_path / "hftel-a", capacity=16, values_bytes=1 << 16)
    second = hftel.Telemetry.create(tmp_path / "hftel-b", capacity=16, values_bytes=1 << 16)
    first.counter("orders", "Orders.").inc(1)
    second.gauge("orders", "Orders, as a gauge.").set(2)
    text, conflicts = render(attach(first.path), attach(second.path))
    assert [(c.source.engine, c.source.name) for c in conflicts] == [("b", "orders")]
    assert "orders{" not in text
    first.close(), second.close()


def test_an_engine_series_cannot_shadow_an_exporter_metric(engine):
    engine.gauge("hftel_engine_up", "Forged liveness.").set(1)
    text, conflicts = render(attach(engine.path))
    assert [c.source.name for c in conflicts] == ["hftel_engine_up"] and "hftel_engine_up" not in text


def test_sample_names_of_two_families_cannot_collide(engine):
    engine.counter("x", "Counter x.").inc()
    engine.gauge("x_total", "Gauge x_total.").set(1)
    _, conflicts = render(attach(engine.path))
    assert [c.source.name for c in conflicts] == ["x_total"]


def test_render_plan_refuses_a_value_offset_outside_the_segment(engine):
    with pytest.raises(SegmentError, match="outside the values area"):
        RenderPlan([(COUNTER, engine._segment, 1 << 40, [b"x "])])


def test_render_plan_refuses_a_misaligned_value_offset(engine):
    with pytest.raises(SegmentError, match="outside the values area"):
        RenderPlan([(COUNTER, engine._segment, 8, [b"x "])])


def test_values_are_read_at_render_time_not_when_the_plan_is_built(engine):
    orders = engine.counter("orders", "Orders.")
    plan, _ = build_plan(attach(engine.path).sources, TEXT)
    orders.inc(41)
    orders.inc()
    assert 'orders_total{engine="e1"} 42\n' in plan.render().decode()


@pytest.mark.parametrize("accept, expected", [
    (PROMETHEUS_ACCEPT, "openmetrics"),
    ("application/openmetrics-text; version=1.0.0; charset=utf-8", "openmetrics"),
    ("text/plain;version=0.0.4", "text"),
    (None, "text"),
    ("", "text"),
    ("*/*", "text"),
    ("application/openmetrics-text;version=1.0.0;q=0", "text"),
    ("application/openmetrics-text;version=2.0.0", "text"),
    ("text/plain;q=0.9,application/openmetrics-text;q=0.5", "text"),
])
def test_format_is_negotiated_from_the_accept_header(accept, expected):
    assert negotiate(accept).name == expected
