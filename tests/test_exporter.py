"""The exporter follows engines' lives without restarting: new segments, new epochs, deaths, deletions,
forgeries. Each scrape scans first, so every test can act and then scrape, with nothing to wait for."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from structlog.testing import CapturingLogger
from prometheus_client.parser import text_string_to_metric_families

import hftel
from hftel_exporter.config import load_config
from hftel_exporter.exporter import Exporter
from test_segment_validation import build_segment, find_descriptor, forge_descriptor, forge_header


def logged(log: CapturingLogger, event: str) -> list[dict]:
    """The fields of every `event` the exporter logged."""
    return [call.kwargs for call in log.calls if call.args == (event,)]


@pytest.fixture
def shm(tmp_path):
    directory = tmp_path / "shm"
    directory.mkdir()
    return directory


@pytest.fixture
def log():
    return CapturingLogger()


@pytest.fixture
def exporter(shm, log):
    config = load_config(None, environ={"HFTEL_SEGMENTS_PATHS": f"{shm}/hftel-*"})
    return Exporter(config, log)


def scrape(exporter) -> dict:
    body, _ = exporter.metrics(None)
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(body.decode()) for sample in family.samples}


def engine(shm, name, **options):
    options.setdefault("capacity", 64)
    options.setdefault("values_bytes", 1 << 16)
    return hftel.Telemetry.create(shm / f"hftel-{name}", **options)


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


def dead_engine(shm, name, orders):
    """An engine process that records and then dies without closing its segment."""
    script = (f"import hftel, os; tel = hftel.Telemetry.create({str(shm / f'hftel-{name}')!r}, capacity=64, "
              f"values_bytes=1 << 16); tel.counter('orders', 'Orders.').inc({orders}); os._exit(0)")
    subprocess.run([sys.executable, "-c", script], check=True)


def test_serves_every_matching_segment(exporter, shm):
    first, second = engine(shm, "a"), engine(shm, "b")
    first.counter("orders", "Orders.").inc(3)
    second.counter("orders", "Orders.").inc(4)
    samples = scrape(exporter)
    assert value(samples, "orders_total", engine="a") == 3
    assert value(samples, "orders_total", engine="b") == 4
    assert value(samples, "hftel_exporter_segments_attached") == 2
    first.close(), second.close()


def test_picks_up_a_segment_created_after_start(exporter, shm):
    assert value(scrape(exporter), "hftel_exporter_segments_attached") == 0
    late = engine(shm, "late")
    late.gauge("depth", "Depth.").set(5)
    assert value(scrape(exporter), "depth", engine="late") == 5
    late.close()


def test_picks_up_series_registered_after_attaching(exporter, shm):
    tel = engine(shm, "a")
    scrape(exporter)
    tel.counter("fills", "Fills.").inc(2)
    assert value(scrape(exporter), "fills_total", engine="a") == 2
    tel.close()


def test_live_engine_is_up_with_a_fresh_heartbeat(exporter, shm):
    tel = engine(shm, "a")
    tel._segment.heartbeat()
    samples = scrape(exporter)
    assert value(samples, "hftel_engine_up", engine="a") == 1
    assert value(samples, "hftel_engine_heartbeat_age_seconds", engine="a") < 2
    tel.close()


def test_dead_engine_is_down_and_its_last_values_stay(exporter, shm):
    dead_engine(shm, "a", orders=9)
    samples = scrape(exporter)
    assert value(samples, "hftel_engine_up", engine="a") == 0
    assert value(samples, "orders_total", engine="a") == 9


def test_closed_engine_is_down(exporter, shm):
    tel = engine(shm, "a")
    tel.close()
    samples = scrape(exporter)
    assert value(samples, "hftel_engine_up", engine="a") == 0
    assert value(samples, "hftel_engine_info", engine="a", epoch=f"{tel.epoch:016x}", pid=str(os.getpid()),
                 status="closed") == 1


def test_recreated_segment_is_reattached_with_its_new_epoch(exporter, shm, log):
    old = engine(shm, "a")
    old.counter("orders", "Orders.").inc(100)
    assert value(scrape(exporter), "orders_total", engine="a") == 100
    old.close()
    new = engine(shm, "a")
    new.counter("orders", "Orders.").inc(1)
    samples = scrape(exporter)
    assert value(samples, "orders_total", engine="a") == 1
    assert value(samples, "hftel_exporter_reattachments_total", engine="a") == 1
    assert [key for key in samples if key[0] == "hftel_engine_info"][0][1][1] == ("epoch", f"{new.epoch:016x}")
    assert len(logged(log, "segment recreated (new epoch), reattaching")) == 1
    new.close()


def test_deleted_segment_is_detached_and_its_series_disappear(exporter, shm):
    tel = engine(shm, "a")
    tel.counter("orders", "Orders.").inc()
    scrape(exporter)
    tel.close()
    os.unlink(tel.path)
    samples = scrape(exporter)
    assert value(samples, "orders_total", engine="a") is None
    assert value(samples, "hftel_exporter_segments_attached") == 0


def test_forged_segment_is_refused_once_and_the_rest_is_served(exporter, shm, log):
    good = engine(shm, "good")
    good.counter("orders", "Orders.").inc(5)
    (shm / "hftel-forged").write_bytes(b"\x00" * 8192)
    for _ in range(3):
        samples = scrape(exporter)
    assert value(samples, "orders_total", engine="good") == 5
    assert value(samples, "hftel_exporter_errors_total", kind="segment_corrupt") == 1
    refusals = logged(log, "segment refused")
    assert len(refusals) == 1 and "bad magic" in refusals[0]["error"]
    assert refusals[0]["path"] == str(shm / "hftel-forged")
    good.close()


def test_newer_layout_version_is_refused_as_such(exporter, shm, log):
    path = build_segment(shm / "hftel-future")
    forge_header(path, "layout_version", hftel.LAYOUT_VERSION + 1)
    samples = scrape(exporter)
    assert value(samples, "hftel_exporter_errors_total", kind="segment_version") == 1
    assert "newer" in logged(log, "segment refused")[0]["error"]


def test_refused_file_is_tried_again_once_it_is_replaced(exporter, shm):
    (shm / "hftel-a").write_bytes(b"\x00" * 8192)
    scrape(exporter)
    os.unlink(shm / "hftel-a")
    tel = engine(shm, "a")
    tel.counter("orders", "Orders.").inc(2)
    assert value(scrape(exporter), "orders_total", engine="a") == 2
    tel.close()


def test_forged_descriptor_is_left_out_and_the_rest_of_its_segment_served(exporter, shm, log):
    path = build_segment(shm / "hftel-a")
    forge_descriptor(path, find_descriptor(path, ("orders", 'side="buy"')), "type", 99)
    for _ in range(2):
        samples = scrape(exporter)
    assert value(samples, "orders_total", engine="a", side="buy") is None
    assert value(samples, "orders_total", engine="a", side="sell") == 1
    assert value(samples, "hftel_exporter_errors_total", kind="descriptor_corrupt") == 1
    assert "unknown type 99" in logged(log, "descriptor refused")[0]["error"]


def test_header_forged_after_attaching_detaches_the_segment(exporter, shm, log):
    path = build_segment(shm / "hftel-a")
    scrape(exporter)
    forge_header(path, "descriptor_capacity", 7)
    samples = scrape(exporter)
    assert value(samples, "hftel_exporter_segments_attached") == 0
    assert value(samples, "hftel_exporter_errors_total", kind="segment_corrupt") == 1
    assert len(logged(log, "segment changed under the exporter, detached")) == 1


@pytest.mark.parametrize("length", [0, 4096, 8192])
def test_segment_truncated_after_attaching_is_detached_not_read(exporter, shm, log, length):
    good = engine(shm, "good")
    good.counter("orders", "Orders.").inc(5)
    path = build_segment(shm / "hftel-a")
    scrape(exporter)
    os.truncate(path, length)
    samples = scrape(exporter)  # reading past the end of the file would have been SIGBUS
    assert value(samples, "hftel_exporter_segments_attached") == 1
    assert value(samples, "orders_total", engine="good") == 5
    assert "truncated" in logged(log, "segment changed under the exporter, detached")[0]["error"]
    good.close()


def test_spill_and_temporary_files_are_not_taken_for_segments(exporter, shm, log):
    (shm / "hftel-a.spill").write_bytes(b"HFTELSPL" + b"\x00" * 56)
    (shm / "hftel-b.tmp-123").write_bytes(b"\x00" * 64)
    (shm / "hftel-a.spill.tmp-123-0x7ffd1234").write_bytes(b"\x00" * 64)  # a spill file being created
    scrape(exporter)
    assert logged(log, "segment refused") == []


def test_ring_counters_are_exposed_per_engine_and_ring(exporter, shm):
    tel = engine(shm, "a", audit_ring_bytes=1 << 16, log_ring_bytes=1 << 16)
    tel.audit.connectivity(gateway="shioaji", session="s1", detail="login")
    samples = scrape(exporter)
    used = value(samples, "hftel_ring_used_bytes", engine="a", ring="audit")
    assert used > 0
    assert value(samples, "hftel_ring_occupancy_ratio", engine="a", ring="audit") == used / (1 << 16)
    for counter in ("full", "spilled", "lost", "skipped_records", "truncated", "violations"):
        assert value(samples, f"hftel_ring_{counter}_total", engine="a", ring="log") == 0
    tel.close()


def test_every_error_kind_is_exposed_from_the_start(exporter):
    samples = scrape(exporter)
    kinds = {dict(labels)["kind"] for name, labels in samples if name == "hftel_exporter_errors_total"}
    assert {"segment_corrupt", "segment_version", "descriptor_corrupt", "type_conflict"} <= kinds


def test_scrape_duration_counts_every_scrape(exporter):
    scrape(exporter), scrape(exporter)
    assert value(scrape(exporter), "hftel_exporter_scrape_duration_seconds_count") == 2


def test_samples_gauge_counts_engine_lines(exporter, shm):
    tel = engine(shm, "a")
    tel.counter("orders", "Orders.").inc()
    tel.histogram("latency_ns", "Latency.", buckets=[10, 100]).observe(5)
    assert value(scrape(exporter), "hftel_exporter_samples") == 1 + 5
    tel.close()


def test_not_ready_until_a_segment_is_attached(exporter, shm):
    exporter.tick()
    ready, text = exporter.readyz()
    assert not ready and str(shm) in text
    tel = engine(shm, "a")
    exporter.tick()
    assert exporter.readyz()[0]
    tel.close()


def test_unhealthy_when_the_main_loop_stops_ticking(exporter, monkeypatch):
    exporter.tick()
    assert exporter.healthz()[0]
    exporter._last_tick -= 10 * exporter.config.segments.scan_interval
    healthy, text = exporter.healthz()
    assert not healthy and "main loop" in text
