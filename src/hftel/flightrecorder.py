"""`hftel inspect SEGMENT`: what a segment says about its engine, readable after a crash.

Prints the header, the engine's liveness, each ring's counters and the last N audit rows and log
events still in the rings (consumed or not: records are stamped with their position, so whatever
a later lap has not overwritten is still there), then the spill file, if any. Maps the segment
read-only and changes nothing.

    >>> print(report("/dev/shm/hftel-engine", limit=5))
"""
from __future__ import annotations

import datetime
import os
import time
from typing import Any

from hftel import _core, _rings
from hftel.reader import Reader
from hftel.rings import decode_log_event, render_json
from hftel.schemas import TABLES_BY_TYPE, AuditTable
from hftel.telemetry import segment_path, spill_path



def report(name_or_path: str, limit: int = 10, *, now_ns: int | None = None) -> str:
    path = segment_path(name_or_path)
    reader = Reader(path)
    info = reader.info()
    segment = _core.Segment.attach(path, False)
    header = segment.header()
    status = reader.status(now_ns=now_ns)
    now = now_ns if now_ns is not None else time.time_ns()
    lines = [
        f"segment {path}",
        f"  layout version {header['layout_version']}, epoch {info.epoch:#018x}, "
        f"created {_iso(header['start_time_ns'])} by pid {header['creator_pid']}",
        f"  engine {status.name.lower()}: heartbeat {(now - header['heartbeat_ns']) / 1e9:.1f} s ago",
        f"  series {header['descriptor_count']} of {header['descriptor_capacity']}, "
        f"values {header['values_used']} of {header['values_length']} bytes",
    ]
    for kind, title in ((_rings.AUDIT, "audit"), (_rings.LOG, "log")):
        lines += _ring_section(segment, kind, title, limit)
    lines += _spill_section(spill_path(path))
    return "\n".join(lines) + "\n"


def _iso(ns: int) -> str:
    moment = datetime.datetime.fromtimestamp(ns / 1e9, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _ring_section(segment: _core.Segment, kind: int, title: str, limit: int) -> list[str]:
    ring = _rings.Ring(segment, kind)
    stats = ring.stats()
    if stats is None:
        return [f"{title} ring: none"]
    pending = stats["tail"] - stats["head"]
    lines = [
        f"{title} ring: {stats['capacity']} bytes, {pending} pending (head {stats['head']}, tail {stats['tail']}); "
        f"full {stats['full']}, spilled {stats['spilled']}, lost {stats['lost']}, "
        f"skipped {stats['skipped_records']}, truncated {stats['truncated']}, violations {stats['violations']}",
    ]
    records = ring.recent()[-limit:] if limit > 0 else []
    what = "audit rows" if kind == _rings.AUDIT else "log events"
    lines.append(f"  last {len(records)} {what} (* = not yet consumed):")
    for position, type_id, flags, pid, payload in records:
        mark = "*" if position >= stats["head"] else " "
        if kind == _rings.LOG:
            text = render_json(decode_log_event(payload, flags, pid))
        else:
            text = _describe_row(type_id, payload)
        lines.append(f"  {mark} {text}")
    return lines


def _describe_row(type_id: int, payload: bytes) -> str:
    table = TABLES_BY_TYPE.get(type_id)
    if table is None or len(payload) != table.record_length:
        return f"record type {type_id}, {len(payload)} bytes (not an audit table this hftel knows)"
    import numpy

    row = numpy.frombuffer(payload, dtype=table.numpy_dtype())[0]
    return f"{table.name} " + " ".join(f"{name}={value}" for name, value in _row_fields(table, row))


def _row_fields(table: AuditTable, row: Any) -> list[tuple[str, str]]:
    """The row's set columns, readable: enums by name, text decoded, bytes in hex, ts in ISO."""
    fields = []
    for column in table.columns:
        value = row[column.name]
        if column.kind == "ts":
            fields.append((column.name, _iso(int(value))))
        elif column.kind == "enum":
            if value:
                fields.append((column.name, column.values[int(value) - 1] if value <= len(column.values) else str(value)))
        elif column.kind == "text":
            if value:
                fields.append((column.name, repr(bytes(value).decode("utf-8", "replace"))))
        elif column.kind == "bytes":
            if any(bytes(value)):
                fields.append((column.name, bytes(value).hex()))
        elif value or column.name in ("seq", "source_id"):
            fields.append((column.name, str(value)))
    return fields


def _spill_section(path: str) -> list[str]:
    if not os.path.exists(path):
        return ["spill file: none"]
    from hftel.spill import SpillReader

    batch = SpillReader(path).read()
    counts = ", ".join(f"{name} {len(rows)}" for name, rows in batch.tables.items()) or "no rows"
    problems = f"; problems: {'; '.join(batch.corrupt)}" if batch.corrupt else ""
    return [f"spill file: {path}: {os.path.getsize(path)} bytes, {counts}{problems}"]

