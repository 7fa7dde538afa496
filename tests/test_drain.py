"""The drain moves audit rows, spilled rows and log events through the spool into ClickHouse (the
embedded engine here), exactly once, and keeps them when ClickHouse fails."""
from __future__ import annotations

import json
import os

import pytest
import structlog
from structlog.testing import CapturingLogger

import hftel
import hftel.logs
from hftel_exporter import rowformat
from hftel_exporter.drain import QUARANTINE_AFTER, Drain
from hftel_exporter.segments import Attachment
from hftel_exporter.sinks import SinkError
from hftel_exporter.spool import Spool

pytest.importorskip("chdb.session", reason="chdb (the embedded ClickHouse engine) is not installed: "
                                           "pip install 'hftel[exporter]'")

from hftel_exporter import ddl  # noqa: E402
from hftel_exporter.sinks import EmbeddedSink  # noqa: E402


@pytest.fixture
def sink(tmp_path):
    embedded = EmbeddedSink(str(tmp_path / "chdb"))
    ddl.migrate(embedded.command, embedded.query_rows)
    yield embedded
    embedded.close()


@pytest.fixture
def engine(tmp_path):
    telemetry = hftel.Telemetry.create(str(tmp_path / "hftel-engine"), capacity=64, values_bytes=1 << 16,
                                       audit_ring_bytes=1 << 20, log_ring_bytes=1 << 18)
    yield telemetry
    telemetry.close()


def make_drain(tmp_path, sink, *, max_bytes=1 << 30, log_file=None):
    return Drain(Spool(str(tmp_path / "spool"), max_bytes), sink, batch_rows=100_000, batch_interval=0.0,
                 log=CapturingLogger(), log_file=log_file)


def attach(drain, engine):
    drain.follow([Attachment.open(engine.path)])


def seqs(sink, table="audit_orders"):
    return [row["seq"] for row in sink.query_rows(f"SELECT seq FROM hftel.{table} ORDER BY seq")]


def write_orders(engine, count):
    for n in range(count):
        engine.audit.order(intent_id=n + 1, strategy="mm", symbol="2330", side="BUY", order_type="LIMIT",
                           status="INTENT", quantity=1, price=600.5, reject_reason="")


def test_audit_rows_reach_clickhouse_with_their_values(tmp_path, sink, engine):
    engine.audit.order(intent_id=7, correlation_id=9, strategy="mm", symbol="2330", side="SELL",
                       order_type="LIMIT", status="REJECTED", quantity=3, price=601.5, reject_code=12,
                       reject_reason="price band")
    drain = make_drain(tmp_path, sink)
    attach(drain, engine)
    assert drain.collect() == 1 and drain.deliver() == 1
    [row] = sink.query_rows("SELECT intent_id, correlation_id, strategy, symbol, side, status, quantity, price, "
                            "reject_code, reject_reason, seq FROM hftel.audit_orders")
    assert row == {"intent_id": 7, "correlation_id": 9, "strategy": "mm", "symbol": "2330", "side": "SELL",
                   "status": "REJECTED", "quantity": 3, "price": 601.5, "reject_code": 12,
                   "reject_reason": "price band", "seq": 1}


def test_rows_of_every_table_land_in_their_own_table(tmp_path, sink, engine):
    engine.audit.order(strategy="mm")
    engine.audit.risk_decision(strategy="mm", rule="max_qty", decision="REJECT")
    engine.audit.guardrail_transition(strategy="mm", from_mode="NORMAL", to_mode="HALT")
    engine.audit.connectivity(gateway="shioaji", event="DISCONNECTED")
    engine.audit.config_change(operator_id="ops1", source="CLI", key="risk.max_qty")
    drain = make_drain(tmp_path, sink)
    attach(drain, engine)
    drain.collect()
    drain.deliver()
    counts = {table: len(seqs(sink, table)) for table in ("audit_orders", "audit_risk_decisions",
                                                          "audit_guardrail_transitions", "audit_connectivity",
                                                          "audit_config_changes")}
    assert counts == dict.fromkeys(counts, 1)


def test_the_ring_is_freed_once_the_batch_is_spooled(tmp_path, sink, engine):
    write_orders(engine, 10)
    drain = make_drain(tmp_path, sink)
    attach(drain, engine)
    drain.collect()
    stats = Attachment.open(engine.path).ring_stats()["audit"]
    assert stats["head"] == stats["tail"] and len(drain.spool.entries()) == 1


def test_a_delivered_batch_is_retired_from_the_spool(tmp_path, sink, engine):
    write_orders(engine, 10)
    drain = make_drain(tmp_path, sink)
    attach(drain, engine)
    drain.collect()
    drain.deliver()
    assert drain.spool.entries() == [] and drain.rows_inserted["audit_orders"] == 10


def test_a_batch_inserted_but_not_retired_before_a_crash_is_not_duplicated_by_the_replay(tmp_path, sink, engine):
    write_orders(engine, 50)
    first = make_drain(tmp_path, sink)
    attach(first, engine)
    first.collect()
    first.spool.retire = lambda entry: None  # the crash: inserted, the entry still on disk
    first.deliver()
    second = make_drain(tmp_path, sink)
    assert len(second.spool.entries()) == 1
    attach(second, engine)
    assert second.collect() == 0  # the ring was freed up to the spooled end before the insert
    second.deliver()
    assert seqs(sink) == list(range(1, 51)) and second.spool.entries() == []


def test_rows_spooled_but_not_freed_before_a_crash_are_not_read_again(tmp_path, sink, engine):
    write_orders(engine, 20)
    first = make_drain(tmp_path, sink)
    attach(first, engine)
    source = next(iter(first.sources.values()))
    release = source.audit.release
    source.audit.release = lambda *args: None  # the crash: spooled, the ring not yet freed
    first.collect()
    source.audit.release = release
    second = make_drain(tmp_path, sink)
    attach(second, engine)  # a new exporter: the ring's head is still at 0
    write_orders(engine, 5)
    second.collect()
    second.deliver()
    assert seqs(sink) == list(range(1, 26))


def test_spilled_rows_are_ingested_once(tmp_path, sink):
    small = hftel.Telemetry.create(str(tmp_path / "hftel-small"), capacity=16, values_bytes=1 << 12,
                                   audit_ring_bytes=1 << 16, log_ring_bytes=1 << 16)
    try:
        write_orders(small, 1000)  # the ring holds a few; the rest spill
        assert small.audit is not None and os.path.getsize(str(tmp_path / "hftel-small.spill")) > 0
        drain = make_drain(tmp_path, sink)
        drain.follow([Attachment.open(small.path)])
        drain.collect()
        drain.deliver()
        again = make_drain(tmp_path, sink)  # a restart reads on from the remembered offset
        again.follow([Attachment.open(small.path)])
        again.collect()
        again.deliver()
        assert seqs(sink) == list(range(1, 1001))
        assert drain.rows_spooled[("small", "spill")] > 0
    finally:
        small.close()


def test_log_events_reach_logs_hft_and_the_log_file(tmp_path, sink, engine):
    from hftel_exporter.logfiles import LogFile

    hftel.logs.configure(engine, strict=True)
    try:
        structlog.get_logger(component="risk_engine", strategy="mm").warning(
            "order_rejected", intent_id=42, risk_mode="NORMAL", reason="max_qty")
    finally:
        structlog.reset_defaults()
    log_file = LogFile(str(tmp_path / "logs" / "engine.json"))
    drain = make_drain(tmp_path, sink, log_file=log_file)
    attach(drain, engine)
    drain.collect()
    drain.deliver()
    log_file.close()
    [row] = sink.query_rows("SELECT engine, level, component, event, intent_id, fields FROM hftel.logs_hft")
    assert row["engine"] == "engine" and row["level"] == "warning" and row["component"] == "risk_engine"
    assert row["event"] == "order_rejected" and row["intent_id"] == 42
    assert json.loads(row["fields"])["reason"] == "max_qty"
    [line] = (tmp_path / "logs" / "engine.json").read_text().splitlines()
    assert json.loads(line)["event"] == "order_rejected"


class FailingSink:
    """Wraps a sink; fails the next `failures` inserts with the given error."""

    def __init__(self, sink, failures, transient=True):
        self.sink, self.failures, self.transient = sink, failures, transient
        self.name, self.database = sink.name, sink.database

    def insert_audit(self, *args, **kwargs):
        if self.failures:
            self.failures -= 1
            raise SinkError("Code: 210. connection refused" if self.transient else "Code: 16. no such column",
                            transient=self.transient)
        return self.sink.insert_audit(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.sink, name)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_a_failed_insert_keeps_the_batch_and_retries_after_a_backoff(tmp_path, sink, engine):
    write_orders(engine, 10)
    clock = Clock()
    drain = Drain(Spool(str(tmp_path / "spool"), 1 << 30), FailingSink(sink, failures=2), batch_rows=1000,
                  batch_interval=0.0, log=CapturingLogger(), clock=clock)
    attach(drain, engine)
    drain.collect()
    assert drain.deliver() == 0 and len(drain.spool.entries()) == 1 and drain.clickhouse_up == 0
    assert drain.deliver() == 0  # still backing off: not even tried
    assert drain.write_failures[("audit_orders", "transient")] == 1
    clock.now += 60
    drain.deliver()
    clock.now += 60
    assert drain.deliver() == 10 and drain.clickhouse_up == 1 and seqs(sink) == list(range(1, 11))


def test_a_batch_clickhouse_refuses_for_good_is_quarantined_not_dropped(tmp_path, sink, engine):
    write_orders(engine, 3)
    clock = Clock()
    drain = Drain(Spool(str(tmp_path / "spool"), 1 << 30), FailingSink(sink, failures=99, transient=False),
                  batch_rows=1000, batch_interval=0.0, log=CapturingLogger(), clock=clock)
    attach(drain, engine)
    drain.collect()
    for _ in range(QUARANTINE_AFTER):
        drain.deliver()
        clock.now += 60
    assert drain.spool.entries() == [] and drain.quarantined == 1
    [kept] = os.listdir(tmp_path / "spool" / "quarantine")
    assert os.path.getsize(tmp_path / "spool" / "quarantine" / kept / "audit_orders.rows.lz4") > 0


def test_a_full_spool_stops_collection_and_the_ring_keeps_the_rows(tmp_path, sink, engine):
    write_orders(engine, 10)
    drain = make_drain(tmp_path, sink, max_bytes=1)
    attach(drain, engine)
    drain.collect()  # the first batch is let in even past the cap (an empty spool never blocks) ...
    write_orders(engine, 10)
    drain.collect()  # ... the second is not
    assert len(drain.spool.entries()) == 1 and drain.spool.full
    stats = Attachment.open(engine.path).ring_stats()["audit"]
    assert stats["tail"] > stats["head"]  # the second ten still in the ring
    drain.deliver()
    drain.collect()
    drain.deliver()
    assert seqs(sink) == list(range(1, 21))


def test_rows_polled_in_several_parts_are_spooled_record_by_record(tmp_path, sink, engine):
    drain = make_drain(tmp_path, sink)
    drain.batch_interval = 3600.0  # keep the batch open across polls
    attach(drain, engine)
    write_orders(engine, 3)
    drain.collect()
    write_orders(engine, 4)
    drain.collect()
    source = next(iter(drain.sources.values()))
    drain._flush(source, force=True)
    [entry] = drain.spool.entries()
    assert len(rowformat.read_file(entry.file("audit_orders.rows.lz4"))) == 7 * (16 + hftel.schemas.AUDIT_ORDERS.record_length)
    drain.deliver()
    assert seqs(sink) == list(range(1, 8))


def drain_exposition(drain):
    from collections import Counter

    from hftel_exporter.selfmetrics import TEXT, SelfMetrics

    return SelfMetrics().render(TEXT, [], Counter(), Counter(), 0, drain=drain).decode()


def test_a_full_spool_says_so_in_a_metric_meant_for_a_critical_alert(tmp_path, sink, engine):
    write_orders(engine, 10)
    drain = make_drain(tmp_path, sink, max_bytes=1)
    attach(drain, engine)
    drain.collect()
    text = drain_exposition(drain)
    assert "\nhftel_spool_full 1\n" in text and "\nhftel_spool_batches 1\n" in text
    drain.deliver()
    assert "\nhftel_spool_full 0\n" in drain_exposition(drain)


def test_the_drain_metrics_pass_promtool(tmp_path, sink, engine):
    import subprocess

    from tests.processes import require

    promtool = require("promtool")
    write_orders(engine, 10)
    drain = make_drain(tmp_path, sink)
    attach(drain, engine)
    drain.collect()
    drain.deliver()
    text = drain_exposition(drain)
    assert 'hftel_clickhouse_rows_inserted_total{table="audit_orders"} 10' in text
    checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_log_events_refused_by_a_full_spool_are_read_again_later(tmp_path, sink, engine):
    hftel.logs.configure(engine, strict=True)
    try:
        log = structlog.get_logger(component="monitor", check="feed")
        log.info("first")
        drain = make_drain(tmp_path, sink, max_bytes=1)
        attach(drain, engine)
        drain.collect()  # the first batch goes in (an empty spool takes one batch past its cap)
        log.info("second")
        drain.collect()  # refused: the spool is full
    finally:
        structlog.reset_defaults()
    drain.deliver()
    drain.collect()
    drain.deliver()
    events = [row["event"] for row in sink.query_rows("SELECT event FROM hftel.logs_hft ORDER BY ts")]
    assert events == ["first", "second"] and drain.spool_refusals == 1


def test_log_events_wait_for_the_batch_interval_and_go_to_the_spool_as_one_entry(tmp_path, sink, engine):
    """Like audit rows, log events are spooled (and inserted) once per batch_interval, not once per poll:
    a drain polling every 20 ms would otherwise make an insert of a few events each time."""
    now = [1000.0]
    drain = Drain(Spool(str(tmp_path / "spool"), 1 << 30), sink, batch_interval=1.0, log=CapturingLogger(),
                  clock=lambda: now[0])
    attach(drain, engine)
    hftel.logs.configure(engine, strict=True)
    try:
        log = structlog.get_logger(component="monitor", check="feed")
        log.info("first")
        assert drain.collect() == 0  # seen, waiting
        now[0] += 0.5
        log.info("second")
        assert (drain.collect(), drain.spool.entries()) == (0, [])
        now[0] += 0.5
        assert drain.collect() == 2 and len(drain.spool.entries()) == 1
    finally:
        structlog.reset_defaults()


def test_log_events_are_spooled_at_once_when_the_ring_is_half_full(tmp_path, sink, engine):
    drain = Drain(Spool(str(tmp_path / "spool"), 1 << 30), sink, batch_interval=3600.0, log=CapturingLogger())
    attach(drain, engine)
    hftel.logs.configure(engine, strict=True)
    try:
        log = structlog.get_logger(component="monitor", check="feed")
        while Attachment.open(engine.path).ring_stats()["log"]["tail"] * 2 < (1 << 18):
            log.info("filler", detail="x" * 200)
    finally:
        structlog.reset_defaults()
    assert drain.collect() > 0 and len(drain.spool.entries()) == 1


def test_log_events_still_waiting_are_spooled_when_the_drain_stops(tmp_path, sink, engine):
    drain = Drain(Spool(str(tmp_path / "spool"), 1 << 30), sink, batch_interval=3600.0, log=CapturingLogger())
    attach(drain, engine)
    hftel.logs.configure(engine, strict=True)
    try:
        structlog.get_logger(component="monitor", check="feed").info("last words")
    finally:
        structlog.reset_defaults()
    assert drain.collect() == 0
    drain.stop()
    [entry] = drain.spool.entries()
    assert entry.manifest["origin"] == "logs"
