"""`hftel audit query|verify` and `hftel migrate` as commands, against an embedded data directory.

Every command runs in a subprocess, and so does whatever prepares or holds a data directory: a chdb
data directory is opened by one process at a time, and a process opens one data directory, so the
pytest process never opens one.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from processes import ExporterProcess

pytest.importorskip("chdb", reason="chdb (the embedded ClickHouse engine) is not installed: pip install 'hftel[exporter]'")

from hftel_exporter.audit import AUDIT_TABLE_NAMES, verify_sql  # noqa: E402 - after the skip

ORDERS, RISK, CONFIG = "audit_orders", "audit_risk_decisions", "audit_config_changes"
EPOCH_NS = 1_735_689_600 * 10**9  # 2025-01-01T00:00:00Z; a row's ts is this plus its seq in seconds

# Creates the schema in a data directory and inserts (table, source_id, seq) rows, in one process.
PREPARE = r"""
import json, sys
from hftel_exporter import ddl
from hftel_exporter.sinks import EmbeddedSink
path, rows = sys.argv[1], json.loads(sys.argv[2])
sink = EmbeddedSink(path)
ddl.migrate(sink.command, sink.query_rows, database="hftel")
by_table = {}
for table, source, seq in rows:
    by_table.setdefault(table, []).append(f"(fromUnixTimestamp64Nano(toInt64({EPOCH} + {seq} * 1000000000)), {seq}, {source})")
for table, values in by_table.items():
    sink.command(f"INSERT INTO hftel.{table} (ts, seq, source_id) VALUES " + ", ".join(values))
sink.close()
""".replace("{EPOCH}", str(EPOCH_NS))

# Holds a data directory open (no query socket) until its stdin closes.
HOLD = r"""
import sys
from hftel_exporter.sinks import EmbeddedSink
sink = EmbeddedSink(sys.argv[1])
print("holding", flush=True)
sys.stdin.read()
sink.close()
"""


def environ(tmp_path: Path) -> dict[str, str]:
    """This environment without HFTEL_* settings, with the state directory in tmp_path."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("HFTEL_")}
    return {**clean, "STATE_DIRECTORY": str(tmp_path / "state")}


def run_python(tmp_path: Path, script: str, *arguments: str) -> None:
    subprocess.run([sys.executable, "-c", script, *arguments], check=True, env=environ(tmp_path), timeout=60)


def hftel(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hftel", *arguments], capture_output=True, text=True,
                          env=environ(tmp_path), timeout=60)


def embedded(data: Path) -> tuple[str, ...]:
    return ("--clickhouse.sink", "embedded", "--clickhouse.embedded-path", str(data))


def prepare(tmp_path: Path, rows: list[tuple[str, int, int]]) -> tuple[str, ...]:
    """A data directory holding `rows`; the flags that name it."""
    data = tmp_path / "state" / "chdb"
    run_python(tmp_path, PREPARE, str(data), json.dumps(rows))
    return embedded(data)


def complete(source: int, count: int) -> list[tuple[str, int, int]]:
    """Rows 1..count of one source, spread over three tables as a writer would."""
    tables = (ORDERS, RISK, CONFIG)
    return [(tables[seq % 3], source, seq) for seq in range(1, count + 1)]


# -- hftel audit query -----------------------------------------------------------------------------

def test_query_prints_the_rows_as_tab_separated_with_names(tmp_path):
    flags = prepare(tmp_path, [(ORDERS, 7, 1), (ORDERS, 7, 2)])
    result = hftel(tmp_path, "audit", "query", "SELECT source_id, seq FROM hftel.audit_orders ORDER BY seq", *flags)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "source_id\tseq\n7\t1\n7\t2\n"


def test_query_writes_the_format_asked_for(tmp_path):
    flags = prepare(tmp_path, [(ORDERS, 7, 1)])
    result = hftel(tmp_path, "audit", "query", "SELECT source_id, seq FROM hftel.audit_orders", "--format", "JSONEachRow",
                   *flags)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"source_id": 7, "seq": 1}


def test_bad_sql_exits_1_with_the_clickhouse_message(tmp_path):
    flags = prepare(tmp_path, [])
    result = hftel(tmp_path, "audit", "query", "SELEC 1", *flags)
    assert result.returncode == 1
    assert result.stderr.startswith("hftel audit: query: Code: 62. DB::Exception: Syntax error")
    assert result.stderr.count("\n") == 1 and "formatQuery" not in result.stderr
    assert result.stdout == ""


def test_query_with_the_sink_off_says_no_sink_is_configured(tmp_path):
    result = hftel(tmp_path, "audit", "query", "SELECT 1", "--clickhouse.sink", "off")
    assert result.returncode == 1
    assert "no sink configured" in result.stderr


def test_query_refuses_a_write_when_it_opens_the_data_directory_itself(tmp_path):
    flags = prepare(tmp_path, [(ORDERS, 7, 1)])
    refused = hftel(tmp_path, "audit", "query", "ALTER TABLE hftel.audit_orders DELETE WHERE 1", *flags)
    count = hftel(tmp_path, "audit", "query", "SELECT count() FROM hftel.audit_orders", "--format", "CSV", *flags)
    assert refused.returncode == 1 and "read-only" in refused.stderr
    assert count.stdout == "1\n"


def test_query_of_a_data_directory_held_without_a_socket_says_it_is_in_use(tmp_path):
    data = tmp_path / "state" / "chdb"
    with subprocess.Popen([sys.executable, "-c", HOLD, str(data)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          text=True, env=environ(tmp_path)) as holder:
        assert holder.stdout.readline() == "holding\n"
        result = hftel(tmp_path, "audit", "query", "SELECT 1", *embedded(data))
        holder.stdin.close()
    assert result.returncode == 1
    assert f"the embedded ClickHouse at {data} is in use by another process" in result.stderr


# -- through the exporter's query socket -----------------------------------------------------------

@pytest.fixture
def exporter(tmp_path):
    """The real exporter holding a data directory with one complete source, serving its query socket."""
    flags = prepare(tmp_path, complete(7, 5))
    with ExporterProcess(tmp_path, *flags, "--spool.path", str(tmp_path / "spool"),
                         "--segments.paths", f"{tmp_path}/hftel-*", environ=environ(tmp_path)) as process:
        yield flags
        assert process.stop() == 0
    assert not (tmp_path / "state" / "query.sock").exists()  # removed at stop


def test_query_answers_through_the_socket_while_the_exporter_holds_the_data_directory(tmp_path, exporter):
    result = hftel(tmp_path, "audit", "query",
                   "SELECT count(), max(seq), getSetting('readonly') FROM hftel.audit_orders", "--format", "CSV",
                   *exporter)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "1,3,1\n"  # seq 3 is the one row of the five in audit_orders; readonly=1


def test_verify_runs_through_the_socket_while_the_exporter_holds_the_data_directory(tmp_path, exporter):
    result = hftel(tmp_path, "audit", "verify", *exporter)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "OK: 1 source(s), 5 row(s): every seq present once"


def test_migrate_refuses_while_the_exporter_holds_the_data_directory(tmp_path, exporter):
    result = hftel(tmp_path, "migrate", *exporter)
    assert result.returncode == 1
    assert "the exporter is running with the embedded ClickHouse" in result.stderr
    assert "migrates its database itself at start" in result.stderr


# -- hftel audit verify ----------------------------------------------------------------------------

def test_verify_on_complete_data_exits_0(tmp_path):
    flags = prepare(tmp_path, complete(7, 6) + complete(9, 3))
    result = hftel(tmp_path, "audit", "verify", *flags)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:7] == ["source_id", "rows", "distinct", "min_seq", "max_seq", "duplicates", "missing"]
    assert lines[1].split() == ["7", "6", "6", "1", "6", "0", "0", "-"]
    assert lines[2].split() == ["9", "3", "3", "1", "3", "0", "0", "-"]
    assert lines[3] == "OK: 2 source(s), 9 row(s): every seq present once"


def test_verify_reports_the_source_and_its_missing_ranges_and_exits_1(tmp_path):
    rows = [row for row in complete(7, 10) if row[2] not in (3, 4, 8)] + complete(9, 2)
    result = hftel(tmp_path, "audit", "verify", *prepare(tmp_path, rows))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[1].split() == ["7", "7", "7", "1", "10", "0", "3", "3-4,", "8"]
    assert lines[2].split() == ["9", "2", "2", "1", "2", "0", "0", "-"]
    assert lines[3] == "FAIL: 1 of 2 source(s) incomplete or duplicated: 3 seq(s) missing, 0 duplicate row(s)"


def test_verify_counts_a_missing_first_row(tmp_path):
    result = hftel(tmp_path, "audit", "verify", "--json", *prepare(tmp_path, complete(7, 4)[1:]))
    assert result.returncode == 1
    source = json.loads(result.stdout)
    assert (source["missing"], source["first_missing_ranges"]) == (1, [[1, 1]])


def test_verify_reports_a_duplicate_and_exits_1(tmp_path):
    rows = complete(7, 5) + [(ORDERS, 7, 2)]  # seq 2 twice: once in audit_config_changes, once in audit_orders
    result = hftel(tmp_path, "audit", "verify", *prepare(tmp_path, rows))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[1].split() == ["7", "6", "5", "1", "5", "1", "0", "-"]
    assert lines[2] == "FAIL: 1 of 1 source(s) incomplete or duplicated: 0 seq(s) missing, 1 duplicate row(s)"


def test_verify_json_prints_one_object_per_source(tmp_path):
    big = 2**63 + 5  # source ids are random u64s
    rows = [row for row in complete(7, 9) if row[2] != 5] + complete(big, 2)
    result = hftel(tmp_path, "audit", "verify", "--json", *prepare(tmp_path, rows))
    assert result.returncode == 1
    sources = [json.loads(line) for line in result.stdout.splitlines()]
    assert sources == [
        {"source_id": 7, "rows": 8, "distinct_seqs": 8, "min_seq": 1, "max_seq": 9, "duplicates": 0, "missing": 1,
         "missing_ranges": 1, "first_missing_ranges": [[5, 5]], "ok": False},
        {"source_id": big, "rows": 2, "distinct_seqs": 2, "min_seq": 1, "max_seq": 2, "duplicates": 0, "missing": 0,
         "missing_ranges": 0, "first_missing_ranges": [], "ok": True},
    ]


def test_verify_since_counts_from_the_first_seq_in_the_window(tmp_path):
    rows = [row for row in complete(7, 10) if row[2] != 3]  # the gap lies before the window
    since = "2025-01-01T08:00:05+08:00"  # seq 5's ts: 2025-01-01T00:00:05Z
    result = hftel(tmp_path, "audit", "verify", "--json", "--since", since, *prepare(tmp_path, rows))
    assert result.returncode == 0, result.stdout + result.stderr
    source = json.loads(result.stdout)
    assert (source["min_seq"], source["max_seq"], source["missing"]) == (5, 10, 0)


def test_verify_lists_only_the_first_missing_ranges_and_counts_the_rest(tmp_path):
    rows = [(ORDERS, 7, seq) for seq in range(1, 30, 2)]  # every even seq missing: 14 ranges
    result = hftel(tmp_path, "audit", "verify", *prepare(tmp_path, rows))
    assert result.returncode == 1
    assert result.stdout.splitlines()[1].endswith("2, 4, 6, 8, 10, ... (+9 more)")


def test_verify_sql_reads_the_tables_asked_for():
    sql = verify_sql("hftel", [ORDERS, CONFIG], None)
    assert "FROM hftel.audit_orders" in sql and "FROM hftel.audit_config_changes" in sql
    assert "FROM hftel.audit_risk_decisions" not in sql
    assert all(f"FROM hftel.{table}" in verify_sql("hftel", AUDIT_TABLE_NAMES, None) for table in AUDIT_TABLE_NAMES)


def test_verify_sql_filters_on_since_in_utc():
    sql = verify_sql("hftel", [ORDERS], "2025-01-01T08:00:00+08:00")
    assert "WHERE ts >= toDateTime64('2025-01-01 00:00:00.000000', 6, 'UTC')" in sql


def test_verify_sql_refuses_a_table_that_is_not_an_audit_table():
    with pytest.raises(ValueError, match="logs_hft"):
        verify_sql("hftel", ["logs_hft"], None)


# -- hftel migrate ---------------------------------------------------------------------------------

def test_migrate_on_an_empty_data_directory_prints_the_schema_version(tmp_path):
    data = tmp_path / "state" / "chdb"
    result = hftel(tmp_path, "migrate", *embedded(data))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"schema version 1: database hftel on embedded ClickHouse at {data}\n"


def test_migrate_again_changes_nothing(tmp_path):
    flags = embedded(tmp_path / "state" / "chdb")
    first, second = hftel(tmp_path, "migrate", *flags), hftel(tmp_path, "migrate", *flags)
    recorded = hftel(tmp_path, "audit", "query", "SELECT version FROM hftel.schema_migrations", "--format", "CSV",
                     *flags)
    assert (first.returncode, second.returncode) == (0, 0), second.stderr
    assert first.stdout == second.stdout
    assert recorded.stdout == "1\n"


def test_migrate_print_prints_the_sql_without_touching_anything(tmp_path):
    data = tmp_path / "state" / "chdb"
    result = hftel(tmp_path, "migrate", "--print", *embedded(data))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("CREATE DATABASE IF NOT EXISTS hftel;\n")
    for table in AUDIT_TABLE_NAMES + ("logs_hft", "schema_migrations"):
        assert f"CREATE TABLE IF NOT EXISTS hftel.{table}\n" in result.stdout
    assert not (tmp_path / "state").exists()


def test_migrate_print_does_not_connect_to_a_server(tmp_path):
    result = hftel(tmp_path, "migrate", "--print", "--cluster", "prod", "--clickhouse.url", "http://127.0.0.1:9")
    assert result.returncode == 0, result.stderr
    assert "CREATE DATABASE IF NOT EXISTS hftel ON CLUSTER prod;" in result.stdout
