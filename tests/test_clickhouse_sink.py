"""The server sink, through the real clickhouse-connect against the chdb-backed test endpoint: rows
arrive with their values, failures become retryable errors, a retry never duplicates, and the
password stays secret."""
from __future__ import annotations

import os

import pytest
from structlog.testing import CapturingLogger

import hftel
from hftel_exporter import ddl
from hftel_exporter.drain import Drain
from hftel_exporter.segments import Attachment
from hftel_exporter.sinks import ClickHouseSink, SinkError, read_password
from hftel_exporter.spool import Spool

pytest.importorskip("chdb.session", reason="the test ClickHouse runs on chdb: pip install 'hftel[exporter]'")
pytest.importorskip("clickhouse_connect", reason="the clickhouse sink needs clickhouse-connect")

from tests.clickhouse_endpoint import ClickHouseEndpoint  # noqa: E402

SECRET = "s3cret-Pa55"


@pytest.fixture(scope="module")
def clickhouse(tmp_path_factory):
    with ClickHouseEndpoint(str(tmp_path_factory.mktemp("clickhouse"))) as endpoint:
        sink = ClickHouseSink(endpoint.url, user="default", password="", timeout=5.0)
        ddl.migrate(sink.command, sink.query_rows)
        sink.close()
        yield endpoint


@pytest.fixture
def sink(clickhouse):
    clickhouse.fault("none")
    made = ClickHouseSink(clickhouse.url, user="default", password="", timeout=2.0)
    made.command("TRUNCATE TABLE hftel.audit_orders")
    yield made
    clickhouse.fault("none")
    made.close()


@pytest.fixture
def engine(tmp_path):
    telemetry = hftel.Telemetry.create(str(tmp_path / "hftel-engine"), capacity=16, values_bytes=1 << 12,
                                       audit_ring_bytes=1 << 16, log_ring_bytes=1 << 16)
    yield telemetry
    telemetry.close()


def drain_into(tmp_path, sink, engine):
    drain = Drain(Spool(str(tmp_path / "spool"), 1 << 30), sink, batch_interval=0.0, log=CapturingLogger())
    drain.follow([Attachment.open(engine.path)])
    drain.collect()
    return drain


def test_rows_arrive_with_every_value(tmp_path, sink, engine):
    engine.audit.order(intent_id=7, correlation_id=9, trace_id=bytes(range(16)), strategy="mm", symbol="2330",
                       side="SELL", order_type="LIMIT", time_in_force="IOC", status="REJECTED", quantity=3,
                       price=601.5, reject_code=12, broker_order_id="B-1", reject_reason="price band")
    drain = drain_into(tmp_path, sink, engine)
    assert drain.deliver() == 1
    [row] = sink.query_rows("SELECT intent_id, correlation_id, hex(trace_id) AS trace, strategy, symbol, side, "
                            "time_in_force, status, quantity, price, reject_code, broker_order_id, reject_reason, "
                            "seq, toUnixTimestamp64Nano(ts) > 0 AS stamped FROM hftel.audit_orders")
    assert row == {"intent_id": 7, "correlation_id": 9, "trace": bytes(range(16)).hex().upper(), "strategy": "mm",
                   "symbol": "2330", "side": "SELL", "time_in_force": "IOC", "status": "REJECTED", "quantity": 3,
                   "price": 601.5, "reject_code": 12, "broker_order_id": "B-1", "reject_reason": "price band",
                   "seq": 1, "stamped": 1}


def test_an_insert_applied_before_the_connection_dropped_is_not_duplicated_by_the_retry(tmp_path, sink, clickhouse,
                                                                                       engine):
    for n in range(5):
        engine.audit.order(intent_id=n)
    drain = drain_into(tmp_path, sink, engine)
    [entry] = drain.spool.entries()
    token = entry.manifest["tables"]["audit_orders"]["token"]
    applied_before = len(clickhouse.stats()["tokens"])
    clickhouse.fault("drop-after-apply")
    assert drain.deliver() == 0 and len(drain.spool.entries()) == 1  # the client saw a failure
    clickhouse.fault("none")
    drain._retry_at = 0.0  # skip the backoff
    assert drain.deliver() == 5
    assert sink.query_rows("SELECT count() AS rows, uniqExact(seq) AS seqs FROM hftel.audit_orders") == [
        {"rows": 5, "seqs": 5}]
    # Every attempt (the client's own replay after the drop, and the drain's retry) carried the batch's token.
    retried = clickhouse.stats()["tokens"][applied_before:]
    assert len(retried) >= 2 and set(retried) == {token}


@pytest.mark.parametrize("fault", [("500",), ("refuse",), ("stall", "5")], ids=lambda fault: fault[0])
def test_a_failing_server_is_a_transient_error_and_the_batch_stays_spooled(tmp_path, sink, clickhouse, engine, fault):
    engine.audit.order(intent_id=1)
    drain = drain_into(tmp_path, sink, engine)
    clickhouse.fault(*fault)
    assert drain.deliver() == 0
    assert len(drain.spool.entries()) == 1 and drain.clickhouse_up == 0
    assert drain.write_failures[("audit_orders", "transient")] == 1


def test_a_query_error_names_the_clickhouse_problem(sink):
    with pytest.raises(SinkError, match="UNKNOWN_TABLE|Unknown table") as raised:
        sink.query("SELECT * FROM hftel.no_such_table")
    assert not raised.value.transient


def test_the_password_is_never_in_the_sinks_text_or_its_errors(clickhouse):
    secret_sink = ClickHouseSink(clickhouse.url, user="default", password=SECRET, timeout=2.0)
    clickhouse.fault("refuse")
    try:
        with pytest.raises(SinkError) as raised:
            secret_sink.query("SELECT 1")
    finally:
        clickhouse.fault("none")
    assert SECRET not in repr(secret_sink) and SECRET not in str(raised.value)


def test_the_password_comes_from_the_file_then_the_credential_then_the_environment(tmp_path):
    (tmp_path / "file").write_text("from-file\n")
    (tmp_path / "credentials").mkdir()
    (tmp_path / "credentials" / "clickhouse-password").write_text("from-credential")
    environ = {"CREDENTIALS_DIRECTORY": str(tmp_path / "credentials"), "HFTEL_CLICKHOUSE_PASSWORD": "from-env"}
    assert read_password(str(tmp_path / "file"), environ) == "from-file"
    assert read_password("", environ) == "from-credential"
    assert read_password("", {"HFTEL_CLICKHOUSE_PASSWORD": "from-env"}) == "from-env"


def test_an_unreadable_password_file_is_a_clear_error(tmp_path):
    with pytest.raises(hftel.errors.HftelError, match="cannot read the ClickHouse password file"):
        read_password(os.fspath(tmp_path / "absent"), {})
