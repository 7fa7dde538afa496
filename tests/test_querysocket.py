"""The embedded engine's query socket: read-only queries of a data directory another process holds.

A holder subprocess opens the data directory (EmbeddedSink), starts a QueryServer on it and serves
until its stdin closes; the tests speak the socket's protocol from here. The pytest process never
opens a chdb data directory (one process per directory, one directory per process).
"""
from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

pytest.importorskip("chdb", reason="chdb (the embedded ClickHouse engine) is not installed: pip install 'hftel[exporter]'")

from hftel.errors import HftelError  # noqa: E402 - after the skip
from hftel_exporter.querysocket import QueryServer, SocketSink, default_socket_path  # noqa: E402

LIMIT = 4096  # the holder's max_request_bytes
TIMEOUT = 2.0  # the holder's timeout: the engine's max_execution_time and the socket's

# Holds DATA with two rows in hftel.audit_orders and serves SOCKET until stdin closes.
HOLDER = r"""
import sys
from hftel_exporter import ddl
from hftel_exporter.querysocket import QueryServer
from hftel_exporter.sinks import EmbeddedSink
data, path, limit, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
sink = EmbeddedSink(data)
ddl.migrate(sink.command, sink.query_rows, database="hftel")
sink.command("INSERT INTO hftel.audit_orders (ts, seq, source_id) VALUES (now64(9), 1, 7), (now64(9), 2, 7)")
server = QueryServer(path, sink, max_request_bytes=limit, timeout=timeout)
server.start()
print("serving", flush=True)
sys.stdin.read()
server.stop()
sink.close()
"""


class Holder:
    def __init__(self, directory: Path):
        self.data = directory / "chdb"
        self.path = default_socket_path(str(self.data))

    def __enter__(self) -> "Holder":
        environ = {key: value for key, value in os.environ.items() if not key.startswith("HFTEL_")}
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(self.data), self.path, str(LIMIT), str(TIMEOUT)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=environ)
        line = self.process.stdout.readline()
        if line != "serving\n":
            self.process.kill()
            pytest.fail(f"the holder did not start serving (exit {self.process.wait()})")
        return self

    def stop(self) -> int:
        self.process.stdin.close()
        return self.process.wait(timeout=30)

    def __exit__(self, *exc_info: object) -> None:
        if self.process.poll() is None:
            self.stop()


@pytest.fixture(scope="module")
def holder(tmp_path_factory) -> Iterator[Holder]:
    with Holder(tmp_path_factory.mktemp("state")) as serving:
        yield serving


def ask(path: str, payload: bytes) -> tuple[dict, bytes]:
    """Sends one raw request; the answer's header and body."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(30)
        connection.connect(path)
        try:
            connection.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before it was all read; the answer says why
        answer = connection.makefile("rb")
        header = json.loads(answer.readline())
        return header, answer.read(header.get("bytes", 0))


def query(path: str, sql: str, fmt: str = "CSV") -> tuple[dict, bytes]:
    return ask(path, json.dumps({"sql": sql, "format": fmt}).encode() + b"\n")


def count(holder: Holder) -> bytes:
    header, body = query(holder.path, "SELECT count() FROM hftel.audit_orders")
    assert header["ok"], header
    return body


def test_a_query_returns_the_engines_bytes(holder):
    header, body = query(holder.path, "SELECT source_id, seq FROM hftel.audit_orders ORDER BY seq", "CSV")
    assert header == {"ok": True, "bytes": len(body)}
    assert body == b"7,1\n7,2\n"


def test_the_socket_sink_returns_rows(holder):
    rows = SocketSink(holder.path).query_rows("SELECT seq FROM hftel.audit_orders ORDER BY seq")
    assert [int(row["seq"]) for row in rows] == [1, 2]


def test_queries_run_with_readonly_1(holder):
    assert query(holder.path, "SELECT getSetting('readonly')")[1] == b"1\n"


def test_an_insert_is_refused_and_the_data_is_unchanged(holder):
    header, _ = query(holder.path, "INSERT INTO hftel.audit_orders (ts, seq, source_id) VALUES (now64(9), 3, 7)")
    assert header["ok"] is False and "read-only" in header["error"] and "INSERT" in header["error"]
    assert count(holder) == b"2\n"


def test_a_drop_is_refused_and_the_table_remains(holder):
    header, _ = query(holder.path, "DROP TABLE hftel.audit_orders")
    assert header["ok"] is False and "read-only" in header["error"]
    assert count(holder) == b"2\n"


def test_the_engine_refuses_a_select_that_reaches_outside_the_database(holder):
    header, _ = query(holder.path, "SELECT * FROM file('/etc/hostname', 'LineAsString')")
    assert header["ok"] is False
    assert "Code: 164" in header["error"] and "Cannot execute query in readonly mode" in header["error"]


def test_several_statements_in_one_request_are_refused(holder):
    header, _ = query(holder.path, "SELECT 1; INSERT INTO hftel.audit_orders (ts, seq, source_id) VALUES (now64(9), 3, 7)")
    assert header["ok"] is False and "Multi-statements are not allowed" in header["error"]
    assert count(holder) == b"2\n"


def test_into_outfile_is_refused_and_no_file_is_written(holder, tmp_path):
    target = tmp_path / "out.csv"
    header, _ = query(holder.path, f"SELECT * FROM hftel.audit_orders INTO OUTFILE '{target}'")
    assert header["ok"] is False and "INTO OUTFILE" in header["error"]
    assert not target.exists()


def test_bad_sql_is_answered_with_the_clickhouse_message(holder):
    header, _ = query(holder.path, "SELEC 1")
    assert header["ok"] is False and header["error"].startswith("query: Code: 62. DB::Exception: Syntax error")


def test_a_request_larger_than_the_limit_is_refused(holder):
    sql = "SELECT '" + "x" * (1 << 20) + "'"
    header, _ = query(holder.path, sql)
    assert header == {"ok": False, "error": f"request larger than {LIMIT} bytes"}


def test_a_request_that_is_not_a_json_line_is_refused(holder):
    header, _ = ask(holder.path, b"SELECT 1\n")
    assert header["ok"] is False and header["error"].startswith("request is not a JSON line")


def test_a_query_longer_than_the_timeout_is_stopped_by_the_engine(holder):
    header, _ = query(holder.path, "SELECT count() FROM numbers(1000000000000)")
    assert header["ok"] is False and "TIMEOUT_EXCEEDED" in header["error"]


def test_the_socket_file_mode_is_0660(holder):
    mode = os.lstat(holder.path).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o660


def test_the_socket_sits_beside_the_data_directory(holder):
    assert holder.path == str(holder.data.parent / "query.sock")


def test_a_stale_socket_is_replaced(tmp_path):
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(tmp_path / "query.sock"))  # bound, never listening, closed: what a killed process leaves
    stale.close()
    with Holder(tmp_path) as serving:
        assert query(serving.path, "SELECT 1")[1] == b"1\n"


def test_stop_removes_the_socket(tmp_path):
    with Holder(tmp_path) as serving:
        assert serving.stop() == 0
    assert not os.path.lexists(serving.path)


def test_refuses_to_start_when_the_path_is_not_a_socket(tmp_path):
    path = tmp_path / "query.sock"
    path.write_text("not a socket")
    with pytest.raises(HftelError, match="exists and is not a socket"):
        QueryServer(str(path), sink=None).start()  # refused before it opens anything
    assert path.read_text() == "not a socket"


def test_refuses_to_start_when_another_process_serves_the_path(tmp_path):
    path = str(tmp_path / "query.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as other:
        other.bind(path)
        other.listen(1)
        with pytest.raises(HftelError, match="another process already serves queries"):
            QueryServer(path, sink=None).start()
