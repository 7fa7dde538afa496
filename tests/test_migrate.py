"""`hftel migrate` (hftel_exporter.ddl.migrate) against the ClickHouse engine (chdb): it creates
everything in an empty database and records the schema version once; running it again changes
nothing; it refuses a database a newer hftel migrated, and tables whose columns drifted from the
declarations, naming the table and column."""
from __future__ import annotations

import itertools
import json

import pytest

import hftel
from hftel import schemas
from hftel_exporter import ddl

chdb_session = pytest.importorskip(
    "chdb.session", reason="chdb (the embedded ClickHouse engine) is not installed: pip install 'hftel[exporter]'")

_names = itertools.count()


@pytest.fixture(scope="module")
def clickhouse(tmp_path_factory):
    """One chdb data path for the module; each test migrates a database of its own."""
    session = chdb_session.Session(str(tmp_path_factory.mktemp("chdb")))
    yield session
    session.close()


class Sink:
    """execute and query over a chdb session, remembering what was executed."""

    def __init__(self, session):
        self.session = session
        self.executed: list[str] = []

    def execute(self, sql: str) -> None:
        self.executed.append(sql)
        self.session.query(sql)

    def query(self, sql: str) -> list[dict]:
        return [json.loads(line) for line in str(self.session.query(sql, "JSONEachRow")).splitlines() if line]

    def migrate(self, database: str, **settings) -> int:
        return ddl.migrate(self.execute, self.query, database=database, **settings)


@pytest.fixture
def sink(clickhouse):
    return Sink(clickhouse)


@pytest.fixture
def database():
    """A database name no other test uses."""
    return f"hftel_migrate_{next(_names)}"


def tables(sink, database):
    return sink.query(f"SELECT name, create_table_query FROM system.tables WHERE database = '{database}' ORDER BY name")


def recorded(sink, database):
    return sink.query(f"SELECT version, hftel_version, description FROM {database}.schema_migrations")


def test_migrate_creates_every_table_in_an_empty_database(sink, database):
    """The audit tables, logs_hft and schema_migrations appear; migrate returns the version."""
    assert sink.migrate(database) == ddl.SCHEMA_VERSION == 1
    assert [row["name"] for row in tables(sink, database)] == sorted(
        [table.name for table in schemas.CLICKHOUSE_TABLES] + ["schema_migrations"])


def test_migrate_records_the_version_it_applied(sink, database):
    """One schema_migrations row: version 1, this hftel's version and what the version holds."""
    sink.migrate(database)
    assert recorded(sink, database) == [
        {"version": 1, "hftel_version": hftel.__version__, "description": ddl.SCHEMA_HISTORY[1]}]


def test_migrate_applies_the_schema_statements_with_the_settings_given(sink, database):
    """What migrate executes is statements(...) for its settings, then the one INSERT of the version."""
    sink.migrate(database, audit_ttl="5 YEAR", logs_ttl="7 DAY")
    assert sink.executed[:-1] == ddl.statements(database, audit_ttl="5 YEAR", logs_ttl="7 DAY")
    assert sink.executed[-1].startswith(f"INSERT INTO {database}.schema_migrations ")
    [logs] = sink.query(f"SELECT engine_full FROM system.tables WHERE database = '{database}' AND name = 'logs_hft'")
    assert "TTL toDateTime(ts) + toIntervalDay(7) " in logs["engine_full"]


def test_migrate_twice_records_one_row_and_changes_nothing(sink, database):
    """The second run finds the version recorded and the tables as declared: no new row, no change."""
    sink.migrate(database)
    before = tables(sink, database)
    sink.executed.clear()
    assert sink.migrate(database) == 1
    assert (tables(sink, database), len(recorded(sink, database))) == (before, 1)
    assert not any(statement.startswith("INSERT") for statement in sink.executed)


def test_migrate_refuses_a_database_a_newer_hftel_migrated(sink, database):
    """A recorded version above SCHEMA_VERSION raises SchemaError naming both versions; nothing is executed."""
    sink.migrate(database)
    sink.execute(f"INSERT INTO {database}.schema_migrations (version, hftel_version) VALUES (2, '9.0.0')")
    sink.executed.clear()
    with pytest.raises(ddl.SchemaError, match=rf"{database}\.schema_migrations records schema version 2, newer than "
                                              rf"version 1 .*a newer hftel migrated this database"):
        sink.migrate(database)
    assert sink.executed == []


def test_a_dropped_column_is_reported_naming_table_and_column(sink, database):
    """ALTER TABLE ... DROP COLUMN behind hftel's back: migrate raises, naming table and column."""
    sink.migrate(database)
    sink.execute(f"ALTER TABLE {database}.audit_orders DROP COLUMN reject_reason")
    with pytest.raises(ddl.SchemaError, match=rf"{database}\.audit_orders: column `reject_reason` is missing "
                                              rf"\(declared String\)"):
        sink.migrate(database)


def test_drift_names_every_difference(sink, database):
    """A retyped, an extra and a missing column, and a missing table, each get a line."""
    sink.migrate(database)
    sink.execute(f"ALTER TABLE {database}.logs_hft MODIFY COLUMN pid UInt64")
    sink.execute(f"ALTER TABLE {database}.audit_connectivity ADD COLUMN note String")
    sink.execute(f"ALTER TABLE {database}.audit_risk_decisions DROP COLUMN reason")
    sink.execute(f"DROP TABLE {database}.audit_config_changes")
    assert sorted(ddl.drift(sink.query, database)) == sorted([
        f"{database}.logs_hft: column `pid` is UInt64, declared UInt32",
        f"{database}.audit_connectivity: column `note` (String) is not declared",
        f"{database}.audit_risk_decisions: column `reason` is missing (declared String)",
        f"{database}.audit_config_changes: table is missing",
    ])


def test_drift_is_empty_for_a_migrated_database(sink, database):
    """Right after migrate, the tables are exactly as declared."""
    sink.migrate(database)
    assert ddl.drift(sink.query, database) == []


def test_an_old_layout_is_not_recorded_as_the_current_version(sink, database):
    """Tables made by hand with a different layout: migrate raises and records no version."""
    sink.execute(f"CREATE DATABASE {database}")
    sink.execute(f"CREATE TABLE {database}.audit_orders (ts DateTime64(9, 'UTC'), seq UInt64) "
                 f"ENGINE = MergeTree ORDER BY ts")
    with pytest.raises(ddl.SchemaError, match=r"the version is not recorded"):
        sink.migrate(database)
    assert recorded(sink, database) == []


@pytest.mark.parametrize("setting, value", [("audit_ttl", "3 years"), ("logs_ttl", "30 DAY; DROP TABLE x"),
                                            ("database", "hftel-prod"), ("cluster", "a b")])
def test_a_bad_setting_is_refused_before_anything_runs(sink, setting, value):
    """A bad TTL or name raises ValueError naming the setting, and no statement is executed."""
    settings = {"database": "hftel_never_made", setting: value}
    with pytest.raises(ValueError, match=f"^{setting}: "):
        ddl.migrate(sink.execute, sink.query, **settings)
    assert sink.executed == []
