"""The scrape path: rendering 10,000 series, hftel's compiled plan against prometheus_client.

The same series go to both libraries: 4,000 labelled counters, 1,000 int and 1,000 float gauges, and
250 histograms with 13 explicit buckets (16 sample lines each): 10,000 sample lines. hftel renders
them from a live segment with the plan the exporter builds (`RenderPlan.render`), and also through the
whole scrape the HTTP server calls (`Exporter.metrics`: rescan, self-metrics, render).
prometheus_client renders its registry with `generate_latest`, `_created` series turned off so that
both write the same lines. One render per round.
"""
import random

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PCounter
from prometheus_client import Gauge as PGauge
from prometheus_client import Histogram as PHistogram
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import CapturingLogger

import hftel
from hftel_exporter.config import load_config
from hftel_exporter.exporter import Exporter
from hftel_exporter.exposition import TEXT, build_plan

OP = "render 10,000 series"
TARGET_MS = 2.0
ROUNDS = {"rounds": 200, "warmup_rounds": 5}
COUNTERS, INT_GAUGES, FLOAT_GAUGES, HISTOGRAMS = 4_000, 1_000, 1_000, 250
BOUNDS = [1_000 * 2**i for i in range(13)]
SAMPLES = COUNTERS + INT_GAUGES + FLOAT_GAUGES + HISTOGRAMS * (len(BOUNDS) + 3)

pytestmark = pytest.mark.benchmark(group="exporter: " + OP)


def fill(make_counter, make_int_gauge, make_float_gauge, make_histogram):
    """Registers the series with one library and records the same values into them."""
    rng = random.Random(7)
    for family in range(40):
        counter = make_counter(f"orders_{family}", "Orders sent, by venue.", ("venue",))
        for venue in range(COUNTERS // 40):
            counter.labels(f"v{venue}").inc(rng.randrange(1, 10**9))
    for index in range(INT_GAUGES):
        make_int_gauge(f"position_{index}", "Net position.").set(rng.randrange(-10**6, 10**6))
    for index in range(FLOAT_GAUGES):
        make_float_gauge(f"exposure_{index}", "Gross exposure.").set(rng.random() * 1e7)
    histogram = make_histogram("latency_ns", "Latency.", ("stage",))
    for stage in range(HISTOGRAMS):
        child = histogram.labels(f"s{stage}")
        for _ in range(20):
            child.observe(rng.randrange(0, 10**7))


@pytest.fixture(scope="module")
def segment(tmp_path_factory):
    path = tmp_path_factory.mktemp("render") / "hftel-bench"
    tel = hftel.Telemetry.create(path, capacity=8_192, values_bytes=16 << 20, audit_ring_bytes=1 << 16,
                                 log_ring_bytes=1 << 16)
    fill(lambda name, text, labels: tel.counter(name, text, labels=labels),
         lambda name, text: tel.gauge(name, text, kind="int"),
         lambda name, text: tel.gauge(name, text),
         lambda name, text, labels: tel.histogram(name, text, labels=labels, buckets=BOUNDS))
    yield path
    tel.close()


@pytest.fixture(scope="module")
def registry():
    prometheus_client.disable_created_metrics()
    registry = CollectorRegistry()
    fill(lambda name, text, labels: PCounter(name, text, labels, registry=registry),
         lambda name, text: PGauge(name, text, registry=registry),
         lambda name, text: PGauge(name, text, registry=registry),
         lambda name, text, labels: PHistogram(name, text, labels, registry=registry, buckets=BOUNDS))
    return registry


def info(library, variant, **extra):
    return {"kind": "render", "op": OP, "library": library, "variant": variant, "samples": SAMPLES, **extra}


def sample_count(text):
    return sum(len(family.samples) for family in text_string_to_metric_families(text))


def test_prometheus_client_generate_latest(benchmark, measure, registry):
    """prometheus_client's own renderer over the same series."""
    measure(benchmark, prometheus_client.generate_latest, (registry,), n=1, **ROUNDS,
            **info("prometheus_client", "generate_latest()", role="reference"))
    assert sample_count(prometheus_client.generate_latest(registry).decode()) == SAMPLES


def test_hftel_render_plan(benchmark, measure, segment):
    """hftel's compiled render over the plan the exporter builds once."""
    config = load_config(None, environ={"HFTEL_SEGMENTS_PATHS": str(segment)})
    exporter = Exporter(config, CapturingLogger())
    exporter.tick()
    plan, conflicts = build_plan(exporter.segments.sources(), TEXT, engine_label="")
    assert not conflicts and plan.samples == SAMPLES
    measure(benchmark, plan.render, (), n=1, **ROUNDS,
            **info("hftel", "RenderPlan.render()", target_ms=TARGET_MS, versus="prometheus_client, generate_latest()"))
    assert sample_count(plan.render().decode()) == SAMPLES


def test_hftel_exporter_scrape(benchmark, measure, segment):
    """The whole scrape: rescan the segments, render the plan and the exporter's own metrics."""
    config = load_config(None, environ={"HFTEL_SEGMENTS_PATHS": str(segment)})
    exporter = Exporter(config, CapturingLogger())
    exporter.tick()
    measure(benchmark, exporter.metrics, (None,), n=1, **ROUNDS,
            **info("hftel", "Exporter.metrics()", versus="prometheus_client, generate_latest()"))
    assert sample_count(exporter.metrics(None)[0].decode()) > SAMPLES
