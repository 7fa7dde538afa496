"""The ClickHouse DDL generated from the schemas is what the ClickHouse engine itself accepts: each
statement runs in chdb (the embedded engine), and the tables it makes have the declared columns,
types, codecs, partitioning, order, TTL, skipping indexes and deduplication window. The committed
SQL files are what the generator prints, and every statement in them parses."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from hftel import schemas
from hftel_exporter import ddl

chdb_session = pytest.importorskip(
    "chdb.session", reason="chdb (the embedded ClickHouse engine) is not installed: pip install 'hftel[exporter]'")

ROOT = Path(__file__).resolve().parents[1]
SQL_FILES = ("schema", "schema-clustered", "roles")
TABLES = schemas.CLICKHOUSE_TABLES
UNITS = {"SECOND": "Second", "MINUTE": "Minute", "HOUR": "Hour", "DAY": "Day", "WEEK": "Week", "MONTH": "Month",
         "QUARTER": "Quarter", "YEAR": "Year"}


@pytest.fixture(scope="module")
def clickhouse(tmp_path_factory):
    """One chdb data path for the module, with every statement of the plain schema applied."""
    session = chdb_session.Session(str(tmp_path_factory.mktemp("chdb")))
    for statement in ddl.statements():
        session.query(statement)
    yield session
    session.close()


def rows(session, sql):
    return [json.loads(line) for line in str(session.query(sql, "JSONEachRow")).splitlines() if line]


def formatted(session, statement):
    """The statement as the engine's own parser reads it back (a syntax error raises)."""
    [row] = rows(session, f"SELECT formatQuery({schemas.sql_string(statement)}) AS sql")
    return row["sql"]


def created(session, table):
    [row] = rows(session, f"SELECT engine, engine_full, partition_key, sorting_key FROM system.tables "
                          f"WHERE database = 'hftel' AND name = '{table.name}'")
    return row


def columns(session, table):
    return rows(session, f"SELECT name, type, compression_codec FROM system.columns WHERE database = 'hftel' "
                         f"AND table = '{table.name}' ORDER BY position")


def committed(kind):
    return (ROOT / "exporter" / "clickhouse" / f"{kind}.sql").read_text()


# -- the tables the engine makes ---------------------------------------------------------------------

@pytest.mark.parametrize("table", TABLES, ids=lambda table: table.name)
def test_the_engine_creates_the_table_as_declared(clickhouse, table):
    """MergeTree, partitioned by month of ts, sorted by the declared key."""
    row = created(clickhouse, table)
    assert {key: row[key] for key in ("engine", "partition_key", "sorting_key")} == {
        "engine": "MergeTree", "partition_key": "toYYYYMM(ts)", "sorting_key": ", ".join(table.order_by)}


@pytest.mark.parametrize("table", TABLES, ids=lambda table: table.name)
def test_the_engine_has_every_column_with_its_declared_type(clickhouse, table):
    """The columns, in order, with the declared ClickHouse types."""
    assert [(c["name"], c["type"]) for c in columns(clickhouse, table)] == [
        (c.name, c.clickhouse_type) for c in table.columns]


@pytest.mark.parametrize("table", TABLES, ids=lambda table: table.name)
def test_every_column_has_its_declared_codec(clickhouse, table):
    """DoubleDelta on timestamps and sequence numbers, Delta on ids, ZSTD on everything (the engine
    spells Delta with its byte width)."""
    engine = [(c["name"], re.sub(r"Delta\(\d+\)", "Delta", c["compression_codec"])) for c in columns(clickhouse, table)]
    assert engine == [(c.name, c.codec) for c in table.columns]


def test_timestamps_and_sequence_numbers_are_delta_coded(clickhouse):
    """Every ts and seq column of every table is stored DoubleDelta then ZSTD."""
    coded = {(t.name, c["name"]): c["compression_codec"] for t in TABLES for c in columns(clickhouse, t)
             if c["name"] in ("ts", "seq")}
    assert set(coded.values()) == {"CODEC(DoubleDelta, ZSTD(1))"}
    assert len(coded) == len(TABLES) + len(schemas.AUDIT_TABLES)


@pytest.mark.parametrize("table", TABLES, ids=lambda table: table.name)
def test_low_cardinality_columns_are_exactly_the_declared_ones(clickhouse, table):
    """LowCardinality(String) where the declaration says low_cardinality, nowhere else."""
    assert {c["name"] for c in columns(clickhouse, table) if c["type"].startswith("LowCardinality")} == {
        c.name for c in table.columns if c.low_cardinality}


@pytest.mark.parametrize("table", TABLES, ids=lambda table: table.name)
def test_rows_expire_after_the_declared_retention(clickhouse, table):
    """TTL toDateTime(ts) + the table's retention: 3 years for audit rows, 30 days for log events."""
    count, unit = table.retention.split()
    assert f"TTL toDateTime(ts) + toInterval{UNITS[unit]}({count}) " in created(clickhouse, table)["engine_full"]
    assert table.retention == ("30 DAY" if table is schemas.LOGS_HFT else "3 YEAR")


@pytest.mark.parametrize("table", TABLES, ids=lambda table: table.name)
def test_the_deduplication_window_is_on(clickhouse, table):
    """A replayed insert (same block, same deduplication token) within the window is dropped."""
    assert f"non_replicated_deduplication_window = {schemas.DEDUPLICATION_WINDOW}" in created(
        clickhouse, table)["engine_full"]


@pytest.mark.parametrize("table", TABLES, ids=lambda table: table.name)
def test_every_correlation_id_has_a_bloom_filter_index(clickhouse, table):
    """intent_id, correlation_id and trace_id, where the table has them, each get a bloom filter."""
    indexes = rows(clickhouse, f"SELECT name, type, expr, granularity FROM system.data_skipping_indices "
                               f"WHERE database = 'hftel' AND table = '{table.name}' ORDER BY name")
    names = [c.name for c in table.columns]
    assert indexes == sorted(({"name": f"idx_{name}", "type": "bloom_filter", "expr": name,
                               "granularity": schemas.SKIP_INDEX_GRANULARITY}
                              for name in schemas.CORRELATION_IDS if name in names), key=lambda index: index["name"])


def test_logs_hft_has_the_columns_the_log_sink_inserts(clickhouse):
    """The log sink inserts rows with exactly these columns, in this order."""
    assert [(c["name"], c["type"]) for c in columns(clickhouse, schemas.LOGS_HFT)] == [
        ("ts", "DateTime64(9, 'UTC')"), ("engine", "LowCardinality(String)"), ("pid", "UInt32"),
        ("level", "LowCardinality(String)"), ("component", "LowCardinality(String)"), ("event", "String"),
        ("intent_id", "UInt64"), ("correlation_id", "UInt64"), ("trace_id", "String"), ("fields", "String")]


def test_the_database_holds_exactly_the_declared_tables_and_schema_migrations(clickhouse):
    """The five audit tables, logs_hft and schema_migrations; nothing else."""
    assert {row["name"] for row in rows(clickhouse, "SELECT name FROM system.tables WHERE database = 'hftel'")} == {
        table.name for table in TABLES} | {"schema_migrations"}


def test_creating_again_changes_nothing(clickhouse):
    """Every statement is IF NOT EXISTS: applying the schema twice leaves the tables as they were."""
    sql = "SELECT name, create_table_query FROM system.tables WHERE database = 'hftel' ORDER BY name"
    before = rows(clickhouse, sql)
    for statement in ddl.statements():
        clickhouse.query(statement)
    assert rows(clickhouse, sql) == before


def test_schemas_ddl_still_makes_one_plain_audit_table():
    """hftel.schemas.clickhouse_ddl(table) keeps its defaults: database hftel, MergeTree, 3 years."""
    sql = schemas.clickhouse_ddl(schemas.AUDIT_ORDERS)
    assert sql.startswith("CREATE TABLE IF NOT EXISTS hftel.audit_orders\n(")
    assert "ENGINE = MergeTree\n" in sql and "TTL toDateTime(ts) + INTERVAL 3 YEAR\n" in sql


# -- the runbook queries ------------------------------------------------------------------------------

def documented_sql():
    """Every ```sql block of docs/clickhouse.md."""
    text = (ROOT / "docs" / "clickhouse.md").read_text()
    return [block.strip().rstrip(";") for block in re.findall(r"```sql\n(.*?)```", text, re.S)]


def test_the_documented_sql_parses(clickhouse):
    """Every SQL example in docs/clickhouse.md is one statement the engine's parser accepts."""
    blocks = documented_sql()
    assert len(blocks) >= 8
    for block in blocks:
        formatted(clickhouse, block)


def test_the_documented_runbook_queries_run_against_the_schema(clickhouse):
    """Every SELECT in docs/clickhouse.md runs against the generated tables (columns and types agree)."""
    queries = [block for block in documented_sql() if re.match(r"(SELECT|WITH)\b", block)]
    assert len(queries) >= 8
    for query in queries:
        clickhouse.query(query)


def explain(session, sql):
    return "\n".join(row["explain"] for row in rows(session, f"EXPLAIN indexes = 1 {sql}"))


def test_the_runbook_queries_read_a_fraction_of_the_table(clickhouse):
    """'Errors of a component in the last hour' narrows by the sorting key; 'everything about one
    intent' skips granules by the intent_id bloom filter."""
    clickhouse.query(
        "INSERT INTO hftel.logs_hft (ts, component, level, event, intent_id) "
        "SELECT now64(9) - toIntervalSecond(number), ['risk_engine', 'market_data', 'execution'][number % 3 + 1], "
        "['info', 'error'][number % 2 + 1], 'tick', number FROM numbers(100000)")
    by_key = explain(clickhouse, "SELECT count() FROM hftel.logs_hft WHERE component = 'risk_engine' "
                                 "AND level = 'error' AND ts > now64(9) - INTERVAL 1 HOUR")
    primary = by_key[by_key.index("PrimaryKey"):]
    read, total = map(int, re.search(r"Granules: (\d+)/(\d+)", primary).groups())
    assert read < total / 4, by_key
    by_intent = explain(clickhouse, "SELECT count() FROM hftel.logs_hft WHERE intent_id = 42")
    assert "Name: idx_intent_id" in by_intent
    read, total = map(int, re.search(r"Name: idx_intent_id\n.*\n.*\n\s*Granules: (\d+)/(\d+)", by_intent).groups())
    assert read < total, by_intent


# -- the committed SQL files --------------------------------------------------------------------------

@pytest.mark.parametrize("kind", SQL_FILES)
def test_committed_sql_is_what_the_generator_prints(kind, capsys):
    """exporter/clickhouse/<kind>.sql equals `python -m hftel_exporter.ddl <kind>`; regenerate it after a change."""
    assert ddl.main([kind]) == 0
    assert committed(kind) == capsys.readouterr().out


@pytest.mark.parametrize("kind", SQL_FILES)
def test_every_statement_of_the_committed_sql_parses(clickhouse, kind):
    """The engine's parser accepts each statement of each committed file, and they are the generator's."""
    statements = ddl.split_statements(committed(kind))
    generated = {"schema": ddl.statements, "schema-clustered": lambda: ddl.statements(cluster="default"),
                 "roles": ddl.roles}
    assert statements == generated[kind]()
    for statement in statements:
        formatted(clickhouse, statement)


@pytest.mark.parametrize("kind", SQL_FILES)
def test_the_committed_sql_says_it_is_generated_and_how(kind):
    """Each file opens with a comment naming the command that wrote it."""
    assert committed(kind).startswith(
        f"-- GENERATED by `python -m hftel_exporter.ddl {kind}` from src/hftel/schemas.py.\n")


def test_every_clustered_statement_is_on_cluster(clickhouse):
    """CREATE DATABASE and every CREATE TABLE of the clustered variant name ON CLUSTER."""
    statements = [formatted(clickhouse, s) for s in ddl.split_statements(committed("schema-clustered"))]
    assert len(statements) == 1 + len(TABLES) + 1
    for statement in statements:
        assert re.match(r"CREATE (DATABASE|TABLE) IF NOT EXISTS hftel(\.\w+)? ON CLUSTER default\b",
                        statement), statement


def test_every_clustered_table_is_replicated_with_the_replicated_deduplication_window(clickhouse):
    """Each table is a ReplicatedMergeTree with a per-shard path and the replicated window, and no
    non-replicated setting."""
    statements = [formatted(clickhouse, s) for s in ddl.split_statements(committed("schema-clustered"))[1:]]
    for statement, table in zip(statements, [t.name for t in TABLES] + ["schema_migrations"]):
        assert f"ENGINE = ReplicatedMergeTree('/clickhouse/tables/{{shard}}/hftel/{table}', '{{replica}}')" in statement
        assert "non_replicated_deduplication_window" not in statement
        if table != "schema_migrations":
            assert f"replicated_deduplication_window = {schemas.DEDUPLICATION_WINDOW}" in statement


def test_a_custom_ttl_reaches_each_kind_of_table():
    """audit_ttl applies to the audit tables, logs_ttl to logs_hft."""
    sql = ddl.statements(audit_ttl="7 year", logs_ttl="90 DAY")
    assert [s.count("INTERVAL 7 YEAR") for s in sql[1:6]] == [1] * 5
    assert "TTL toDateTime(ts) + INTERVAL 90 DAY\n" in sql[6]


@pytest.mark.parametrize("setting, value", [("audit_ttl", "3 years"), ("audit_ttl", "forever"),
                                            ("logs_ttl", "30 DAY; DROP TABLE hftel.audit_orders"),
                                            ("logs_ttl", "0 DAY"), ("logs_ttl", "30 DAY\n")])
def test_a_ttl_that_is_not_an_interval_is_refused_naming_the_setting(setting, value):
    """A TTL must be '<count> <unit>'; anything else raises ValueError naming the setting."""
    with pytest.raises(ValueError, match=f"^{setting}: .*not a TTL interval"):
        ddl.statements(**{setting: value})


@pytest.mark.parametrize("setting, value", [("database", "hftel-prod"), ("database", "hftel; DROP DATABASE x"),
                                            ("database", "1hftel"), ("database", "system"), ("cluster", "my cluster"),
                                            ("cluster", "c`x"), ("cluster", "")])
def test_a_name_that_is_not_an_identifier_is_refused_naming_the_setting(setting, value):
    """Database and cluster names are plain identifiers, never interpolated unchecked."""
    with pytest.raises(ValueError, match=f"^{setting}: "):
        ddl.statements(**{setting: value})
    with pytest.raises(ValueError, match=f"^{setting}: "):
        ddl.roles(**{setting: value})


def test_the_command_refuses_a_bad_setting_with_status_2(capsys):
    """`python -m hftel_exporter.ddl schema --logs-ttl '1 fortnight'` prints the error and exits 2."""
    assert ddl.main(["schema", "--logs-ttl", "1 fortnight"]) == 2
    captured = capsys.readouterr()
    assert (captured.out, captured.err.startswith("error: logs_ttl: '1 fortnight' is not a TTL interval")) == ("", True)


def test_the_command_writes_another_database_and_cluster(capsys):
    """--database and --cluster reach every statement and the header names the command."""
    assert ddl.main(["schema-clustered", "--database", "hft_prod", "--cluster", "trading"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("-- GENERATED by `python -m hftel_exporter.ddl schema-clustered --database hft_prod "
                           "--cluster trading`")
    assert ddl.split_statements(text) == ddl.statements(database="hft_prod", cluster="trading")
