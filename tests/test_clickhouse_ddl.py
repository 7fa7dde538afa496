"""The audit tables' DDL, generated from the schemas, is what the ClickHouse engine itself accepts:
each statement runs in chdb (the embedded engine) and the table it makes has the declared columns,
types, partitioning and order."""
from __future__ import annotations

import json

import pytest

from hftel import schemas

chdb_session = pytest.importorskip(
    "chdb.session", reason="chdb (the embedded ClickHouse engine) is not installed: pip install 'hftel[exporter]'")


@pytest.fixture(scope="module")
def clickhouse(tmp_path_factory):
    session = chdb_session.Session(str(tmp_path_factory.mktemp("chdb")))
    session.query("CREATE DATABASE IF NOT EXISTS hftel")
    for table in schemas.AUDIT_TABLES:
        session.query(schemas.clickhouse_ddl(table))
    yield session
    session.close()


def rows(session, sql):
    return [json.loads(line) for line in str(session.query(sql, "JSONEachRow")).splitlines() if line]


@pytest.mark.parametrize("table", schemas.AUDIT_TABLES, ids=lambda table: table.name)
def test_the_engine_creates_the_table_as_declared(clickhouse, table):
    [created] = rows(clickhouse, f"SELECT engine, partition_key, sorting_key FROM system.tables "
                                 f"WHERE database = 'hftel' AND name = '{table.name}'")
    assert created == {"engine": "MergeTree", "partition_key": "toYYYYMM(ts)",
                       "sorting_key": ", ".join(table.order_by)}


@pytest.mark.parametrize("table", schemas.AUDIT_TABLES, ids=lambda table: table.name)
def test_the_engine_has_every_column_with_its_declared_type(clickhouse, table):
    columns = rows(clickhouse, f"SELECT name, type FROM system.columns WHERE database = 'hftel' "
                               f"AND table = '{table.name}' ORDER BY position")
    assert [(c["name"], c["type"]) for c in columns] == [(c.name, c.clickhouse_type) for c in table.columns]


def test_creating_again_changes_nothing(clickhouse):
    for table in schemas.AUDIT_TABLES:
        clickhouse.query(schemas.clickhouse_ddl(table))  # IF NOT EXISTS: idempotent
    assert len(rows(clickhouse, "SELECT name FROM system.tables WHERE database = 'hftel'")) == len(schemas.AUDIT_TABLES)
