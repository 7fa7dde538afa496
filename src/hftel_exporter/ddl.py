"""The ClickHouse schema the exporter writes into: DDL, roles, and the migration that applies them.

Everything comes from the table declarations in `hftel.schemas` (the five audit tables and
`logs_hft`), plus the exporter's bookkeeping table `schema_migrations`. Every statement is
`IF NOT EXISTS`, so applying them again changes nothing.

    >>> from hftel_exporter import ddl
    >>> ddl.statements(database="hftel", audit_ttl="3 YEAR", logs_ttl="30 DAY")[0]
    'CREATE DATABASE IF NOT EXISTS hftel'
    >>> ddl.migrate(execute=client.command, query=lambda sql: list(client.query(sql).named_results()))
    1

`python -m hftel_exporter.ddl schema|schema-clustered|roles [--database D] [--cluster C]` prints the
SQL; `exporter/clickhouse/*.sql` are its committed output, for clickhouse-client.

Names (database, cluster) and TTL intervals are checked before they go into any statement: a bad
one raises ValueError naming the setting. The writer role may only INSERT into the audit tables
and logs_hft; the reader role may only SELECT from them and from schema_migrations.
"""
from __future__ import annotations

import argparse
import re
import sys
from typing import Any, Callable, Mapping, Sequence

import hftel
from hftel import schemas
from hftel.errors import HftelError

SCHEMA_VERSION = 1
SCHEMA_HISTORY = {  # version -> what it holds, recorded in schema_migrations.description
    1: "audit_orders, audit_risk_decisions, audit_guardrail_transitions, audit_connectivity, "
       "audit_config_changes and logs_hft",
}
DEFAULT_DATABASE = "hftel"
DEFAULT_CLUSTER = "default"  # what `schema-clustered` names when no --cluster is given
AUDIT_TTL = schemas.AUDIT_ORDERS.retention  # "3 YEAR"
LOGS_TTL = schemas.LOGS_HFT.retention  # "30 DAY"
MIGRATIONS_TABLE = "schema_migrations"
WRITER_ROLE = "hftel_writer"  # the exporter's role: INSERT only
READER_ROLE = "hftel_reader"  # dashboards, `hftel audit query`: SELECT only

# schema_migrations: the exporter records every schema version it applied (migrate runs as an admin).
_MIGRATIONS_COLUMNS = (
    ("version", "UInt32", "The hftel schema version applied."),
    ("applied_at", "DateTime64(3, 'UTC')", "When it was applied."),
    ("hftel_version", "String", "The hftel release that applied it."),
    ("description", "String", "What the schema version holds."),
)

Execute = Callable[[str], None]  # runs one statement
Query = Callable[[str], Sequence[Mapping[str, Any]]]  # runs one SELECT, returns its rows as dicts


class SchemaError(HftelError):
    """The database holds a schema this hftel does not write: a newer version, or tables whose
    columns differ from the declarations. The message names the table and column."""


def statements(database: str = DEFAULT_DATABASE, audit_ttl: str = AUDIT_TTL, logs_ttl: str = LOGS_TTL,
               cluster: str | None = None) -> list[str]:
    """CREATE DATABASE, the audit tables, logs_hft and schema_migrations; ON CLUSTER and replicated
    when `cluster` is given."""
    database = schemas.checked_database(database, "database")
    audit_ttl = schemas.checked_interval(audit_ttl, "audit_ttl")
    logs_ttl = schemas.checked_interval(logs_ttl, "logs_ttl")
    on_cluster = "" if cluster is None else f" ON CLUSTER {schemas.checked_identifier(cluster, 'cluster')}"
    result = [f"CREATE DATABASE IF NOT EXISTS {database}{on_cluster}"]
    for table in schemas.CLICKHOUSE_TABLES:
        ttl = audit_ttl if isinstance(table, schemas.AuditTable) else logs_ttl
        result.append(schemas.clickhouse_ddl(table, database=database, ttl=ttl, cluster=cluster))
    result.append(_migrations_ddl(database, cluster))
    return result


def _migrations_ddl(database: str, cluster: str | None) -> str:
    engine, _ = schemas.clickhouse_storage(database, MIGRATIONS_TABLE, cluster)
    on_cluster = "" if cluster is None else f" ON CLUSTER {cluster}"
    body = ",\n".join(f"    `{name}` {type_} COMMENT {schemas.sql_string(doc)}"
                      for name, type_, doc in _MIGRATIONS_COLUMNS)
    return (f"CREATE TABLE IF NOT EXISTS {database}.{MIGRATIONS_TABLE}{on_cluster}\n(\n{body}\n)\n"
            f"ENGINE = {engine}\n"
            f"ORDER BY version\n"
            f"COMMENT {schemas.sql_string('The hftel schema versions applied to this database (hftel migrate).')}")


def written_tables() -> tuple[str, ...]:
    """The tables the exporter inserts into: the writer role's INSERT grants, one per table."""
    return tuple(table.name for table in schemas.CLICKHOUSE_TABLES)


def read_tables() -> tuple[str, ...]:
    """The tables the reader role may SELECT from: the written ones and schema_migrations."""
    return written_tables() + (MIGRATIONS_TABLE,)


def roles(database: str = DEFAULT_DATABASE, cluster: str | None = None) -> list[str]:
    """CREATE ROLE for the writer and the reader, then one GRANT per table: INSERT for the writer,
    SELECT for the reader, nothing else."""
    database = schemas.checked_database(database, "database")
    on_cluster = "" if cluster is None else f" ON CLUSTER {schemas.checked_identifier(cluster, 'cluster')}"
    result = [f"CREATE ROLE IF NOT EXISTS {role}{on_cluster}" for role in (WRITER_ROLE, READER_ROLE)]
    result += [f"GRANT{on_cluster} INSERT ON {database}.{table} TO {WRITER_ROLE}" for table in written_tables()]
    result += [f"GRANT{on_cluster} SELECT ON {database}.{table} TO {READER_ROLE}" for table in read_tables()]
    return result


# -- migration -------------------------------------------------------------------------------------

def _declared_columns() -> dict[str, list[tuple[str, str]]]:
    declared = {table.name: [(column.name, column.clickhouse_type) for column in table.columns]
                for table in schemas.CLICKHOUSE_TABLES}
    declared[MIGRATIONS_TABLE] = [(name, type_) for name, type_, _ in _MIGRATIONS_COLUMNS]
    return declared


def _table_list(names: Sequence[str]) -> str:
    return ", ".join(schemas.sql_string(name) for name in names)


def drift(query: Query, database: str = DEFAULT_DATABASE) -> list[str]:
    """How the tables in `database` differ from the declarations, one line per difference naming
    the table and column (a missing table, a missing, extra or retyped column); [] when they agree."""
    database = schemas.checked_database(database, "database")
    declared = _declared_columns()
    rows = query(f"SELECT table, name, type FROM system.columns WHERE database = {schemas.sql_string(database)} "
                 f"AND table IN ({_table_list(list(declared))}) ORDER BY table, position")
    found: dict[str, dict[str, str]] = {}
    for row in rows:
        found.setdefault(str(row["table"]), {})[str(row["name"])] = str(row["type"])
    problems = []
    for table, columns in declared.items():
        where = f"{database}.{table}"
        if table not in found:
            problems.append(f"{where}: table is missing")
            continue
        actual = found[table]
        for name, type_ in columns:
            if name not in actual:
                problems.append(f"{where}: column `{name}` is missing (declared {type_})")
            elif actual[name] != type_:
                problems.append(f"{where}: column `{name}` is {actual[name]}, declared {type_}")
        names = {name for name, _ in columns}
        problems += [f"{where}: column `{name}` ({type_}) is not declared"
                     for name, type_ in actual.items() if name not in names]
    return problems


def recorded_versions(query: Query, database: str = DEFAULT_DATABASE) -> list[int]:
    """The schema versions recorded in `database`.schema_migrations, ascending; [] when there is none."""
    database = schemas.checked_database(database, "database")
    exists = query(f"SELECT name FROM system.tables WHERE database = {schemas.sql_string(database)} "
                   f"AND name = {schemas.sql_string(MIGRATIONS_TABLE)}")
    if not exists:
        return []
    rows = query(f"SELECT DISTINCT version FROM {database}.{MIGRATIONS_TABLE} ORDER BY version")
    return [int(row["version"]) for row in rows]


def migrate(execute: Execute, query: Query, database: str = DEFAULT_DATABASE, audit_ttl: str = AUDIT_TTL,
            logs_ttl: str = LOGS_TTL, cluster: str | None = None) -> int:
    """Applies statements() (idempotent), checks the tables against the declarations and records
    SCHEMA_VERSION in schema_migrations unless it is recorded already; returns SCHEMA_VERSION.

    Refuses (SchemaError, nothing executed) a database a newer hftel migrated, and (SchemaError,
    nothing recorded) tables whose columns differ from the declarations."""
    sql = statements(database, audit_ttl, logs_ttl, cluster)
    recorded = recorded_versions(query, database)
    if recorded and recorded[-1] > SCHEMA_VERSION:
        raise SchemaError(
            f"{database}.{MIGRATIONS_TABLE} records schema version {recorded[-1]}, newer than version "
            f"{SCHEMA_VERSION} of this hftel ({hftel.__version__}): a newer hftel migrated this database. "
            f"Upgrade hftel; nothing was changed.")
    for statement in sql:
        execute(statement)
    problems = drift(query, database)
    if problems:
        unrecorded = "" if SCHEMA_VERSION in recorded else "; the version is not recorded"
        raise SchemaError(
            f"{database}: tables differ from schema version {SCHEMA_VERSION} (hftel {hftel.__version__})"
            f"{unrecorded}:\n  " + "\n  ".join(problems) +
            "\nRestore the declared columns (docs/audit-tables.md) or migrate into another database.")
    if SCHEMA_VERSION not in recorded:
        execute(f"INSERT INTO {database}.{MIGRATIONS_TABLE} (version, applied_at, hftel_version, description) "
                f"VALUES ({SCHEMA_VERSION}, now64(3), {schemas.sql_string(hftel.__version__)}, "
                f"{schemas.sql_string(SCHEMA_HISTORY[SCHEMA_VERSION])})")
    return SCHEMA_VERSION


# -- the SQL files ---------------------------------------------------------------------------------

_USERS_EXAMPLE = """\
Attach users to the roles (examples only: choose the names, and keep passwords out of every file):
  CREATE USER IF NOT EXISTS hftel_exporter IDENTIFIED WITH sha256_password BY '<exporter password>';
  GRANT hftel_writer TO hftel_exporter;
  CREATE USER IF NOT EXISTS hftel_dashboards IDENTIFIED WITH sha256_password BY '<reader password>';
  GRANT hftel_reader TO hftel_dashboards;"""


def render(kind: str, database: str = DEFAULT_DATABASE, cluster: str | None = None, audit_ttl: str = AUDIT_TTL,
           logs_ttl: str = LOGS_TTL) -> str:
    """One SQL file: `kind` is schema, schema-clustered or roles. A header comment says what it is
    and how it was generated; statements are separated by blank lines and end with ';'."""
    if kind == "schema-clustered":
        cluster = cluster or DEFAULT_CLUSTER
    elif kind == "schema" and cluster is not None:
        raise ValueError("cluster: the schema kind is for one server; use schema-clustered")
    flags = []
    if database != DEFAULT_DATABASE:
        flags.append(f"--database {database}")
    if cluster is not None and not (kind == "schema-clustered" and cluster == DEFAULT_CLUSTER):
        flags.append(f"--cluster {cluster}")
    if kind == "roles":
        sql = roles(database, cluster)
        header = (
            f"hftel ClickHouse roles for database {database}: {WRITER_ROLE} may only INSERT into the audit tables\n"
            f"and logs_hft; {READER_ROLE} may only SELECT from them and schema_migrations. Neither may ALTER,\n"
            f"DELETE, TRUNCATE or DROP anything.\n"
            f"Apply as a user allowed to manage access: clickhouse-client --multiquery < roles.sql\n\n"
            + _USERS_EXAMPLE)
    elif kind in ("schema", "schema-clustered"):
        sql = statements(database, audit_ttl, logs_ttl, cluster)
        audit_ttl, logs_ttl = audit_ttl.upper(), logs_ttl.upper()  # as statements() accepted them
        flags += [f"{flag} '{value}'" for flag, value, default in (("--audit-ttl", audit_ttl, AUDIT_TTL),
                                                                    ("--logs-ttl", logs_ttl, LOGS_TTL))
                  if value != default]
        header = (
            f"hftel ClickHouse schema version {SCHEMA_VERSION}: database {database}, the five audit tables "
            f"(TTL {audit_ttl}),\nlogs_hft (TTL {logs_ttl}) and schema_migrations"
            + (".\n" if cluster is None else f"; ReplicatedMergeTree tables ON CLUSTER {cluster}.\n") +
            f"Apply as an administrator: clickhouse-client --multiquery < {kind}.sql\n"
            "Every statement is IF NOT EXISTS: applying it again changes nothing. `hftel migrate` applies the\n"
            "same statements, checks existing tables against them and records the version in schema_migrations.")
    else:
        raise ValueError(f"kind: {kind!r} is not one of schema, schema-clustered, roles")
    command = " ".join(["python -m hftel_exporter.ddl", kind] + flags)
    header = (f"GENERATED by `{command}` from src/hftel/schemas.py.\n"
              f"Do not edit: regenerate (a test fails when this file and the generator differ).\n\n" + header)
    comment = "\n".join(f"-- {line}".rstrip() for line in header.splitlines())
    return comment + "\n\n" + ";\n\n".join(sql) + ";\n"


def split_statements(text: str) -> list[str]:
    """The statements of a file render() wrote (or any file of ';'-terminated statements whose
    comments are whole `--` lines), without the comments and the ';'."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    return [statement.strip() for statement in re.split(r";[ \t]*(?:\n|$)", "\n".join(lines)) if statement.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hftel_exporter.ddl",
        description="Print hftel's ClickHouse SQL: the schema, its clustered variant, or the roles.")
    parser.add_argument("kind", choices=("schema", "schema-clustered", "roles"))
    parser.add_argument("--database", default=DEFAULT_DATABASE, help=f"database name (default {DEFAULT_DATABASE})")
    parser.add_argument("--cluster", default=None,
                        help=f"cluster name: ON CLUSTER (schema-clustered: default {DEFAULT_CLUSTER})")
    parser.add_argument("--audit-ttl", default=AUDIT_TTL, help=f"how long audit rows are kept (default {AUDIT_TTL!r})")
    parser.add_argument("--logs-ttl", default=LOGS_TTL, help=f"how long log events are kept (default {LOGS_TTL!r})")
    args = parser.parse_args(argv)
    try:
        text = render(args.kind, args.database, args.cluster, args.audit_ttl, args.logs_ttl)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
