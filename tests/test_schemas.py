"""The audit schemas are declared once; the C structs, numpy dtypes, DDL and docs must agree."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy
import pytest

import hftel
from hftel import schemas

ROOT = Path(__file__).resolve().parents[1]


def test_committed_c_header_is_what_the_schemas_generate():
    """cext/hftel_audit.h equals `python -m hftel.schemas header`; regenerate it after a change."""
    assert (ROOT / "cext" / "hftel_audit.h").read_text() == schemas.c_header()


def test_committed_cython_writers_are_what_the_schemas_generate():
    """cext/hftel/_audit_rows.pxi equals `python -m hftel.schemas pyx`; regenerate it after a change."""
    assert (ROOT / "cext" / "hftel" / "_audit_rows.pxi").read_text() == schemas.cython_writers()


def test_every_row_starts_with_the_prefix_the_c_writer_fills():
    """hftel_audit_write stamps ts, seq and source_id as three u64 words at offsets 0, 8 and 16."""
    for table in schemas.AUDIT_TABLES:
        assert [(column.kind, offset) for column, offset in zip(table.columns[:3], table.offsets)] == [
            ("ts", 0), ("u64", 8), ("u64", 16)]


def test_committed_docs_are_what_the_schemas_generate():
    """docs/audit-tables.md equals `python -m hftel.schemas docs`; regenerate it after a change."""
    assert (ROOT / "docs" / "audit-tables.md").read_text() == schemas.markdown()


def test_every_row_carries_time_source_and_sequence_first():
    """ts, seq and source_id lead every table, so a batch can be checked for gaps without its type."""
    for table in schemas.AUDIT_TABLES:
        assert [column.name for column in table.columns[:3]] == ["ts", "seq", "source_id"]


def test_type_ids_are_unique():
    """Each table has its own record type id in the ring."""
    ids = [table.type_id for table in schemas.AUDIT_TABLES]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("table", schemas.AUDIT_TABLES, ids=lambda table: table.name)
def test_ddl_lists_the_dtype_fields_in_order_with_matching_types(table):
    """The CREATE TABLE columns are the dtype's fields, in order, with ClickHouse types of the same width."""
    ddl = schemas.clickhouse_ddl(table)
    declared = re.findall(r"^\s+`(\w+)` (\S+(?:\([^)]*\))?)", ddl, re.M)
    dtype = table.numpy_dtype()
    assert [name for name, _ in declared] == list(dtype.names)
    expected = {"u1": ("UInt8", "Enum8"), "u2": ("UInt16",), "u4": ("UInt32",), "i4": ("Int32",),
                "u8": ("UInt64", "DateTime64"), "i8": ("Int64",), "f8": ("Float64",), "S": ("String", "FixedString",
                                                                                           "LowCardinality")}
    for name, clickhouse_type in declared:
        field = dtype.fields[name][0]
        key = "S" if field.kind == "S" else field.str[1:]
        assert clickhouse_type.startswith(expected[key]), (name, clickhouse_type, field)


def _fill_value(column: schemas.Column, position: int):
    """A distinct value per column, the same one in C and in the check."""
    if column.kind == "text":
        return column.name.encode()[: column.width]
    if column.kind == "bytes":
        return bytes([position + 1]) * column.width
    if column.kind == "enum":
        return len(column.values)
    if column.kind == "f64":
        return position + 0.5
    if column.kind in ("i32", "i64"):
        return -(position + 1)
    return position + 1


def _c_fill(table: schemas.AuditTable) -> str:
    lines = [f"    {table.c_struct_name} row;", "    memset(&row, 0, sizeof row);"]
    for position, column in enumerate(table.columns):
        value = _fill_value(column, position)
        if column.kind == "text":
            lines.append(f'    memcpy(row.{column.name}, "{value.decode()}", {len(value)});')
        elif column.kind == "bytes":
            lines.append(f"    memset(row.{column.name}, {position + 1}, {column.width});")
        else:
            lines.append(f"    row.{column.name} = {value!r};")
    lines.append("    fwrite(&row, sizeof row, 1, stdout);")
    return "    {\n" + "\n".join(lines) + "\n    }"


@pytest.fixture(scope="module")
def c_rows(tmp_path_factory) -> bytes:
    """One row of every table, filled field by field by C code and written out as raw bytes."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler (cc or gcc) on PATH: the C/numpy round trip needs one")
    directory = tmp_path_factory.mktemp("audit")
    source = directory / "rows.c"
    body = "\n".join(_c_fill(table) for table in schemas.AUDIT_TABLES)
    source.write_text('#include "hftel_audit.h"\n#include <stdio.h>\n#include <string.h>\n'
                      f"int main(void)\n{{\n{body}\n    return 0;\n}}\n")
    binary = directory / "rows"
    subprocess.run([compiler, "-std=c11", "-Wall", "-Werror", f"-I{hftel.get_include()}", str(source), "-o",
                    str(binary)], check=True)
    return subprocess.run([str(binary)], check=True, capture_output=True).stdout


def test_c_rows_have_the_dtype_lengths(c_rows):
    """The C structs are exactly as long as the numpy records, table by table."""
    assert len(c_rows) == sum(table.record_length for table in schemas.AUDIT_TABLES)


@pytest.mark.parametrize("table", schemas.AUDIT_TABLES, ids=lambda table: table.name)
def test_numpy_decodes_every_field_the_c_struct_wrote(c_rows, table):
    """Every field a C engine writes reads back through the dtype at the same offset with the same value."""
    start = sum(t.record_length for t in schemas.AUDIT_TABLES[: schemas.AUDIT_TABLES.index(table)])
    row = numpy.frombuffer(c_rows, dtype=table.numpy_dtype(), count=1, offset=start)[0]
    for position, column in enumerate(table.columns):
        expected = _fill_value(column, position)
        assert row[column.name] == expected, column.name
