"""How spooled rows reach ClickHouse: the audit tables' raw records and log rows, mapped to columns.

An audit batch is spooled as the ring's consumer framed it (a frame header, then the fixed-size C
record), LZ4-compressed. ClickHouse reads such a file as `RowBinary` given a structure that spells
the record out, frame and padding included (`raw_structure`), and `select_list` turns the raw fields
into the table's columns: nanoseconds into DateTime64, NUL-padded text into String, enum codes into
Enum8. The embedded engine inserts a spooled file with one `INSERT ... SELECT ... FROM file()`, with
no Python per row; a server gets the same rows as clickhouse-connect columns (`audit_columns`). All
of it is derived from the schemas.

    >>> from hftel.schemas import AUDIT_CONNECTIVITY
    >>> raw_structure(AUDIT_CONNECTIVITY).split(", ")[:3]
    ['ts UInt64', 'seq UInt64', 'source_id UInt64']
    >>> raw_structure(AUDIT_CONNECTIVITY, framed=True).split(", ")[0]
    '_frame FixedString(16)'
"""
from __future__ import annotations

import json
from typing import Any, Sequence

from hftel._rings import BATCH_FRAME_LENGTH
from hftel.schemas import LOGS_HFT, AuditTable, Column

__all__ = ["raw_structure", "select_list", "read_rows", "read_file", "audit_columns", "log_structure",
           "log_select_list", "log_columns", "column_types"]

_RAW_NUMBERS = {"u8": "UInt8", "u16": "UInt16", "u32": "UInt32", "i32": "Int32", "u64": "UInt64", "i64": "Int64",
                "f64": "Float64", "ts": "UInt64", "enum": "UInt8"}


def _raw_type(column: Column) -> str:
    if column.kind in ("text", "bytes"):
        return f"FixedString({column.width})"
    return _RAW_NUMBERS[column.kind]


def raw_structure(table: AuditTable, framed: bool = False) -> str:
    """The record as a ClickHouse structure, with `_padN` fields for the C struct's padding; framed,
    each record is led by the consumer's frame (rings.framed_dtype), read as one opaque field."""
    fields, at = ([f"_frame FixedString({BATCH_FRAME_LENGTH})"] if framed else []), 0
    for column, offset in zip(table.columns, table.offsets):
        if offset > at:
            fields.append(f"_pad{len(fields)} FixedString({offset - at})")
        fields.append(f"{column.name} {_raw_type(column)}")
        at = offset + column.size
    if table.record_length > at:
        fields.append(f"_pad{len(fields)} FixedString({table.record_length - at})")
    return ", ".join(fields)


def _expression(column: Column) -> str:
    name = f"`{column.name}`"
    if column.kind == "ts":
        return f"fromUnixTimestamp64Nano(toInt64({name}), 'UTC')"
    if column.kind == "text":
        return f"toStringCutToZero({name})"
    if column.kind == "enum":
        # An unknown code (a newer writer) becomes '' rather than failing the whole batch.
        return f"CAST(if({name} <= {len(column.values)}, {name}, 0) AS {column.clickhouse_type})"
    return name


def select_list(table: AuditTable) -> str:
    """The SELECT list that turns raw records (`raw_structure`) into the table's columns."""
    return ", ".join(f"{_expression(column)} AS `{column.name}`" for column in table.columns)


def column_types(columns: Sequence[Column]) -> list[str]:
    return [column.clickhouse_type for column in columns]


def read_rows(table: AuditTable, path: str, framed: bool) -> Any:
    """A spooled audit file as a structured array of the table's records."""
    import numpy

    from hftel.rings import framed_dtype

    data = read_file(path)
    if framed:
        return numpy.frombuffer(data, dtype=framed_dtype(table))["row"]
    return numpy.frombuffer(data, dtype=table.numpy_dtype())


def read_file(path: str) -> bytes:
    """A spooled file's bytes, decompressed when it is an LZ4 frame (`.lz4`)."""
    with open(path, "rb") as file:
        data = file.read()
    if path.endswith(".lz4"):
        import lz4.frame

        data = lz4.frame.decompress(data)
    return data


def audit_columns(table: AuditTable, rows: Any) -> list[Any]:
    """The rows (a structured array of the table's records) as clickhouse-connect columns."""
    out = []
    for column in table.columns:
        values = rows[column.name]
        if column.kind == "text":
            # numpy drops the NUL padding when it hands out bytes; ClickHouse's String takes bytes.
            out.append([value.decode("utf-8", "replace") for value in values.tolist()])
        elif column.kind == "bytes":
            out.append([value.ljust(column.width, b"\0") for value in values.tolist()])
        elif column.kind == "enum":
            names = ("",) + column.values
            out.append([names[code] if code < len(names) else "" for code in values.tolist()])
        else:
            out.append(values.tolist())
    return out


def log_structure() -> str:
    """Spooled log rows are JSON lines; `ts` is an integer count of nanoseconds."""
    return ", ".join(f"{column.name} {'UInt64' if column.kind == 'ts' else column.clickhouse_type}"
                     for column in LOGS_HFT.columns)


def log_select_list() -> str:
    return ", ".join(f"{_expression(column)} AS `{column.name}`" if column.kind == "ts" else f"`{column.name}`"
                     for column in LOGS_HFT.columns)


def log_columns(lines: Sequence[bytes]) -> list[list[Any]]:
    """Spooled JSON lines as clickhouse-connect columns, in LOGS_HFT's order."""
    rows = [json.loads(line) for line in lines]
    return [[row[column.name] for row in rows] for column in LOGS_HFT.columns]
