"""The roles ship as SQL (exporter/clickhouse/roles.sql). Every statement parses with the ClickHouse
engine's own parser, and the parsed grants are exactly these: hftel_writer may INSERT into the five
audit tables and logs_hft, hftel_reader may SELECT from those and schema_migrations, and nothing
else is granted to anyone. chdb runs every query as `default`, so enforcement is not tested here;
the statements are."""
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
WRITTEN = [table.name for table in schemas.AUDIT_TABLES] + ["logs_hft"]
EXPECTED = ({("INSERT", f"hftel.{table}", "hftel_writer") for table in WRITTEN}
            | {("SELECT", f"hftel.{table}", "hftel_reader") for table in WRITTEN + ["schema_migrations"]})
GRANT = re.compile(
    r"GRANT (?:ON CLUSTER (?P<cluster>\w+) )?(?P<privileges>.+?) ON (?P<target>\S+) TO (?P<roles>[\w, ]+)")
CREATE_ROLE = re.compile(r"CREATE ROLE IF NOT EXISTS (?P<role>\w+)(?: ON CLUSTER (?P<cluster>\w+))?")


@pytest.fixture(scope="module")
def clickhouse(tmp_path_factory):
    """One chdb data path for the module: only its parser is used."""
    session = chdb_session.Session(str(tmp_path_factory.mktemp("chdb")))
    yield session
    session.close()


def formatted(session, statement):
    """The statement as the engine's parser reads it back, on one line (a syntax error raises)."""
    result = str(session.query(f"SELECT formatQuerySingleLine({schemas.sql_string(statement)}) AS sql", "JSONEachRow"))
    return json.loads(result)["sql"]


def committed_roles():
    return ddl.split_statements((ROOT / "exporter" / "clickhouse" / "roles.sql").read_text())


def grants(session, statements, cluster=None):
    """(privilege, target, role) for every GRANT, after the engine parsed it; every statement must
    be a CREATE ROLE or a GRANT of privileges on one table, without a grant option."""
    triples = set()
    for statement in statements:
        text = formatted(session, statement)
        if text.startswith("CREATE ROLE"):
            match = CREATE_ROLE.fullmatch(text)
            assert match and match["cluster"] == cluster, text
            continue
        match = GRANT.fullmatch(text)
        assert match and match["cluster"] == cluster, text
        privileges = re.split(r",\s*(?![^()]*\))", match["privileges"])
        triples |= {(privilege, match["target"], role)
                    for privilege in privileges for role in match["roles"].split(", ")}
    return triples


def test_every_statement_of_roles_sql_is_what_the_engine_reads_back(clickhouse):
    """The parser accepts each statement and formats it exactly as written: nothing hides in it."""
    statements = committed_roles()
    assert statements == ddl.roles()
    assert [formatted(clickhouse, statement) for statement in statements] == statements


def test_roles_sql_creates_exactly_the_writer_and_the_reader(clickhouse):
    """Two roles, created IF NOT EXISTS so the file can be applied again."""
    created = [CREATE_ROLE.fullmatch(formatted(clickhouse, s)) for s in committed_roles() if s.startswith("CREATE")]
    assert [match["role"] for match in created if match] == ["hftel_writer", "hftel_reader"]


def test_the_grants_are_exactly_insert_for_the_writer_and_select_for_the_reader(clickhouse):
    """Parsed into (privilege, table, role), the grants are exactly the expected set, nothing more."""
    assert grants(clickhouse, committed_roles()) == EXPECTED


def test_the_writer_may_only_insert_into_the_audit_tables_and_logs_hft(clickhouse):
    """Writer: INSERT on the six tables it fills; not on schema_migrations, no other privilege."""
    writer = {(privilege, target) for privilege, target, role in grants(clickhouse, committed_roles())
              if role == "hftel_writer"}
    assert writer == {("INSERT", f"hftel.{table}") for table in WRITTEN}


def test_the_reader_may_only_select(clickhouse):
    """Reader: SELECT on the six tables and schema_migrations, no other privilege."""
    reader = {(privilege, target) for privilege, target, role in grants(clickhouse, committed_roles())
              if role == "hftel_reader"}
    assert reader == {("SELECT", f"hftel.{table}") for table in WRITTEN + ["schema_migrations"]}


def test_nothing_grants_alter_delete_truncate_drop_or_all(clickhouse):
    """No statement, as parsed, names ALTER, DELETE, TRUNCATE, DROP, ALL, a wildcard or a grant option."""
    forbidden = {"ALTER", "DELETE", "TRUNCATE", "DROP", "ALL", "OPTION", "ADMIN", "CREATE TABLE", "*"}
    for statement in committed_roles():
        text = formatted(clickhouse, statement)
        words = set(re.findall(r"[A-Z]+|\*", text)) | ({"CREATE TABLE"} if "CREATE TABLE" in text else set())
        assert not words & forbidden, text


def test_the_clustered_roles_name_on_cluster_and_grant_the_same(clickhouse):
    """roles(cluster=...) puts ON CLUSTER on every statement and grants exactly the same."""
    assert grants(clickhouse, ddl.roles(cluster="trading"), cluster="trading") == EXPECTED


def test_roles_for_another_database_grant_on_that_database_only(clickhouse):
    """roles(database='hft_prod') grants the same privileges on hft_prod's tables."""
    assert grants(clickhouse, ddl.roles(database="hft_prod")) == {
        (privilege, target.replace("hftel.", "hft_prod."), role) for privilege, target, role in EXPECTED}


def test_the_user_examples_parse_once_uncommented_and_hold_no_password(clickhouse):
    """The commented CREATE USER and GRANT lines are valid SQL with a placeholder, not a password."""
    text = (ROOT / "exporter" / "clickhouse" / "roles.sql").read_text()
    examples = [line[len("--   "):].rstrip(";") for line in text.splitlines()
                if re.match(r"--   (CREATE USER|GRANT) ", line)]
    assert [example.split()[0] for example in examples] == ["CREATE", "GRANT", "CREATE", "GRANT"]
    for example in examples:
        formatted(clickhouse, example)
    passwords = re.findall(r"BY '([^']*)'", text)
    assert passwords and all(re.fullmatch(r"<[a-z ]+>", password) for password in passwords)
    assert {match for match in re.findall(r"GRANT (hftel_\w+) TO", text)} == {"hftel_writer", "hftel_reader"}
