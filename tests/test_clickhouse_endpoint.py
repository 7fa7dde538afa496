"""The chdb-backed ClickHouse HTTP endpoint the tests use, driven by the real clickhouse-connect client."""
from __future__ import annotations

import datetime
from pathlib import Path
from typing import Iterator

import pytest

pytest.importorskip("chdb", reason="the test ClickHouse endpoint runs queries in chdb (the exporter extra installs it)")
pytest.importorskip("clickhouse_connect", reason="the endpoint is exercised through clickhouse-connect (the exporter extra)")

from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError  # noqa: E402 - after the skips

from clickhouse_endpoint import ClickHouseEndpoint  # noqa: E402

FILLS = """CREATE TABLE fills (
    seq UInt64, note String, side LowCardinality(String), ts DateTime64(9, 'UTC'),
    state Enum8('new' = 1, 'filled' = 2), order_id FixedString(16), price Float64
) ENGINE = MergeTree ORDER BY seq SETTINGS non_replicated_deduplication_window = 100"""
COLUMNS = ["seq", "note", "side", "ts", "state", "order_id", "price"]
TYPES = ["UInt64", "String", "LowCardinality(String)", "DateTime64(9, 'UTC')", "Enum8('new' = 1, 'filled' = 2)",
         "FixedString(16)", "Float64"]
ROWS = [
    (0, "", "buy", datetime.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=datetime.timezone.utc), "new",
     b"0123456789abcdef", 101.25),
    (2**64 - 1, "tab\there, é", "sell", datetime.datetime(1999, 12, 31, 23, 59, 59, tzinfo=datetime.timezone.utc),
     "filled", bytes(range(16)), -0.5),
]


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[ClickHouseEndpoint]:
    with ClickHouseEndpoint(tmp_path / "clickhouse") as running:
        yield running


@pytest.fixture
def client(endpoint: ClickHouseEndpoint):
    connected = endpoint.client()
    connected.command(FILLS)
    yield connected
    connected.close()


def insert_fills(client, token: str | None = None, rows=ROWS) -> None:
    columns = [list(column) for column in zip(*rows)]
    settings = {"insert_deduplication_token": token} if token else None
    client.insert("fills", columns, column_names=COLUMNS, column_type_names=TYPES, column_oriented=True,
                  settings=settings)


def count(client) -> int:
    return client.command("SELECT count() FROM fills")


def test_a_client_connects_and_learns_the_engine_version(endpoint):
    """get_client runs its connect queries and reports chdb's ClickHouse version."""
    client = endpoint.client()
    assert client.command("SELECT version()") == client.server_version


def test_commands_create_a_database_and_a_table_in_it(endpoint):
    """command() runs DDL; the table is found in the database it was created in."""
    client = endpoint.client()
    client.command("CREATE DATABASE audit")
    client.command("CREATE TABLE audit.events (seq UInt64) ENGINE = MergeTree ORDER BY seq")
    assert 1 == client.command("EXISTS TABLE audit.events")


def test_the_database_setting_is_the_current_database(endpoint):
    """A client created with database= reads and writes unqualified tables there."""
    endpoint.client().command("CREATE DATABASE audit")
    client = endpoint.client(database="audit")
    client.command("CREATE TABLE events (seq UInt64) ENGINE = MergeTree ORDER BY seq")
    client.insert("events", [[7]], column_names=["seq"])
    assert [(7, "audit")] == client.query("SELECT seq, currentDatabase() FROM events").result_rows


def test_inserted_rows_of_each_column_type_come_back_equal(endpoint, client):
    """UInt64, String, LowCardinality, DateTime64(9, UTC), Enum8, FixedString and Float64 round-trip."""
    insert_fills(client)
    aware = endpoint.client(tz_mode="aware")
    assert ROWS == aware.query("SELECT * FROM fills ORDER BY seq").result_rows


def test_the_same_insert_deduplication_token_twice_keeps_one_copy(client):
    """A repeated insert with the same token is dropped by the table's deduplication window."""
    insert_fills(client, token="batch-1")
    insert_fills(client, token="batch-1")
    assert len(ROWS) == count(client)


def test_different_insert_deduplication_tokens_keep_both_copies(client):
    """The same rows under two tokens are two inserts."""
    insert_fills(client, token="batch-1")
    insert_fills(client, token="batch-2")
    assert 2 * len(ROWS) == count(client)


@pytest.mark.parametrize("compression", ["lz4", "zstd", "gzip"])
def test_compressed_inserts_are_applied(endpoint, client, compression):
    """An insert body compressed by the client (Content-Encoding) is decompressed and applied."""
    compressing = endpoint.client(compress=compression)
    insert_fills(compressing)
    assert [(row[0], row[1]) for row in ROWS] == compressing.query("SELECT seq, note FROM fills ORDER BY seq").result_rows


def test_a_chdb_error_raises_a_database_error_with_the_clickhouse_message(client):
    """A failing query raises DatabaseError carrying ClickHouse's code and message."""
    with pytest.raises(DatabaseError) as raised:
        client.query("SELECT * FROM no_such_table")
    assert "Code: 60. DB::Exception: Unknown table expression identifier 'no_such_table'" in str(raised.value)
    assert "(UNKNOWN_TABLE)" in str(raised.value)


def test_the_readonly_setting_refuses_writes(endpoint, client):
    """A client with readonly=1 may read but not write, as on a server."""
    reader = endpoint.client(settings={"readonly": 1})
    with pytest.raises(DatabaseError, match="Code: 164.*readonly mode"):
        reader.command("DROP TABLE fills")
    assert 0 == reader.command("SELECT count() FROM fills")


def test_the_user_of_each_request_is_recorded(endpoint):
    """Any user is let in, and the endpoint records which ones came."""
    endpoint.client().command("SELECT 1")
    endpoint.client(username="exporter", password="secret").command("SELECT 1")
    assert ["default", "exporter"] == endpoint.users


def test_fault_refuse_makes_clients_fail_with_an_operational_error(endpoint, client):
    """With the port closed, a connected client and a new one both fail to connect."""
    endpoint.fault("refuse")
    with pytest.raises(OperationalError, match="Connection refused"):
        client.query("SELECT 1")
    with pytest.raises(OperationalError, match="Connection refused"):
        endpoint.client()


def test_fault_none_after_refuse_serves_again_on_the_same_port(endpoint, client):
    """ClickHouse coming back: the same client works again once the port reopens."""
    endpoint.fault("refuse")
    with pytest.raises(OperationalError):
        client.query("SELECT 1")
    endpoint.fault("none")
    assert 0 == count(client)


def test_fault_500_raises_and_applies_no_insert(endpoint, client):
    """Every request answers 500: queries raise, and an insert that reached the endpoint left no rows."""
    applied = endpoint.stats()["inserts_applied"]
    endpoint.fault("500")
    with pytest.raises(DatabaseError, match="fault 500"):
        client.query("SELECT 1")
    with pytest.raises(DatabaseError, match="fault 500"):
        insert_fills(client)
    endpoint.fault("none")
    assert (0, applied) == (count(client), endpoint.stats()["inserts_applied"])


def test_fault_stall_times_out_a_client_with_a_short_receive_timeout(endpoint):
    """A request held longer than send_receive_timeout fails with a read timeout."""
    impatient = endpoint.client(send_receive_timeout=1)
    endpoint.fault("stall", 3)
    with pytest.raises(OperationalError, match="timed out"):
        impatient.query("SELECT 1")


def test_fault_drop_after_apply_raises_although_the_rows_landed(endpoint, client):
    """The insert is applied, then the connection closes unanswered: the client raises, the rows are there."""
    endpoint.fault("drop-after-apply")
    with pytest.raises(OperationalError, match="Remote end closed connection"):
        insert_fills(client, token="batch-1")
    endpoint.fault("none")
    assert len(ROWS) == count(client)


def test_retrying_a_dropped_insert_with_its_token_does_not_duplicate(endpoint, client):
    """A retry of an insert whose answer was lost, under the same token, leaves one copy."""
    endpoint.fault("drop-after-apply")
    with pytest.raises(OperationalError):
        insert_fills(client, token="batch-1")
    endpoint.fault("none")
    insert_fills(client, token="batch-1")
    assert len(ROWS) == count(client)


def test_the_data_survives_stop_and_start(endpoint, client):
    """Stopped and started on the same data directory, ClickHouse comes back on its port with the rows."""
    insert_fills(client)
    port = endpoint.port
    endpoint.stop()
    endpoint.start()
    assert (port, len(ROWS)) == (endpoint.port, count(client))


def test_the_data_survives_a_kill(endpoint, client):
    """Killed with SIGKILL and started again, the endpoint serves the rows inserted before."""
    insert_fills(client)
    endpoint.kill()
    endpoint.start()
    assert len(ROWS) == count(client)
