"""The exporter's side of the rings: batches of audit rows as numpy arrays, and decoded log events.

    >>> consumer = AuditConsumer("/dev/shm/hftel-engine")
    >>> batch = consumer.poll()
    >>> batch.tables["audit_orders"]["seq"]          # a numpy structured array per table
    >>> consumer.release(batch)                        # only once the rows are safe elsewhere

A consumer is the only writer of its ring's head: run one per ring. poll() reads ahead of the head;
release() publishes it and frees the space. A consumer that restarts resumes at the last released
position, so rows polled but not released are read again (the spool's dedup token covers that).
"""
from __future__ import annotations

import datetime
import json
import struct
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy

from hftel import _core, _rings
from hftel.errors import RingError
from hftel.schemas import TABLES_BY_TYPE, AuditTable
from hftel.telemetry import segment_path

_FRAME = struct.Struct("<IHxxixxxx")
_LOG_HEADER = struct.Struct("<QBxHxxxx")
_LOG_FIELD = struct.Struct("<BBH")
LEVEL_NAMES = {10: "debug", 20: "info", 30: "warning", 40: "error", 50: "critical"}


def framed_dtype(table: AuditTable) -> Any:
    """The dtype of one framed record of `table` in a consumer batch: the frame, then the row."""
    row = table.numpy_dtype()
    return numpy.dtype({"names": ["length", "flags", "pid", "row"], "formats": ["u4", "u2", "i4", row],
                        "offsets": [0, 4, 8, _rings.BATCH_FRAME_LENGTH],
                        "itemsize": _rings.BATCH_FRAME_LENGTH + row.itemsize})


def decode_rows(table: AuditTable, framed: bytes | bytearray) -> Any:
    """The rows of one table from a consumer batch, as a structured array; a record whose length
    is not the table's (a newer or forged writer) raises RingError rather than being misread."""
    records = numpy.frombuffer(framed, dtype=framed_dtype(table))
    wrong = records["length"] != table.record_length
    if wrong.any():
        raise RingError(
            f"{table.name}: {int(wrong.sum())} record(s) of length {int(records['length'][wrong][0])}, "
            f"expected {table.record_length} (a writer from another schema version?)")
    return records["row"].copy()


def check_framed(table: AuditTable, framed: bytes | bytearray) -> int:
    """The number of records of `table` in a consumer batch, after checking every record's length
    (no copy: the lengths are read through a strided view). Raises RingError as decode_rows does."""
    lengths = numpy.frombuffer(framed, dtype=framed_dtype(table))["length"]
    wrong = lengths != table.record_length
    if wrong.any():
        raise RingError(
            f"{table.name}: {int(wrong.sum())} record(s) of length {int(lengths[wrong][0])}, "
            f"expected {table.record_length} (a writer from another schema version?)")
    return len(lengths)


@dataclass
class FramedBatch:
    """Audit rows polled from a ring as the ring framed them (see framed_dtype), per table, undecoded:
    the exporter spools these bytes as they are."""

    tables: dict[str, bytearray]
    rows: dict[str, int]
    count: int
    end: int
    unknown: dict[int, int] = field(default_factory=dict)


@dataclass
class AuditBatch:
    """Audit rows polled from a ring, one structured array per table (absent tables: no rows)."""

    tables: dict[str, Any]
    count: int
    end: int  # the ring position just past the last record polled: release(batch) frees up to it
    unknown: dict[int, int] = field(default_factory=dict)  # record type -> count, for types this hftel lacks


@dataclass
class LogBatch:
    events: list[dict[str, Any]]
    end: int


class _Consumer:
    def __init__(self, segment: str | _core.Segment, kind: int, stall_timeout: float):
        if not isinstance(segment, _core.Segment):
            segment = _core.Segment.attach(segment_path(segment), True)
        self._consumer = _rings.Consumer(segment, kind, stall_timeout)
        self.ring = _rings.Ring(segment, kind)

    @property
    def skipped(self) -> int:
        """Records this consumer skipped because their producer died mid-write (or stalled)."""
        return self._consumer.skipped

    def stats(self) -> dict[str, int]:
        """The ring's positions and counters (full, spilled, lost, skipped_records, ...)."""
        return self.ring.stats()

    def backlog(self) -> int:
        """Bytes claimed by producers and not yet released by this consumer."""
        return self._consumer.backlog()

    @property
    def position(self) -> int:
        """Where the next poll() reads from."""
        return self._consumer.position

    @property
    def released(self) -> int:
        """The ring's head: everything before it is freed."""
        return self._consumer.released

    def seek(self, position: int) -> None:
        """Goes on reading from `position`, the end of a batch polled before (by this consumer or
        one before a restart) and kept elsewhere; the rows in between are not polled again."""
        self._consumer.seek(position)

    def release(self, batch: AuditBatch | LogBatch | None = None) -> None:
        """Frees the ring up to the end of `batch` (default: everything polled so far)."""
        self._consumer.release(None if batch is None else batch.end)


class AuditConsumer(_Consumer):
    """Polls the audit ring of a segment (a path or a name) into numpy batches."""

    def __init__(self, segment: str | _core.Segment, *, stall_timeout: float = 5.0):
        super().__init__(segment, _rings.AUDIT, stall_timeout)

    def poll(self, max_rows: int = 100_000) -> AuditBatch:
        groups, count = self._consumer.poll(max_rows)
        tables, unknown = {}, {}
        for type_id, framed in groups.items():
            table = TABLES_BY_TYPE.get(type_id)
            if table is None:
                unknown[type_id] = _count_frames(framed)
                continue
            tables[table.name] = decode_rows(table, framed)
        return AuditBatch(tables, count, self._consumer.position, unknown)


    def poll_framed(self, max_rows: int = 100_000) -> FramedBatch:
        """Like poll(), without decoding: each table's records stay framed, checked for length."""
        groups, count = self._consumer.poll(max_rows)
        tables, rows, unknown = {}, {}, {}
        for type_id, framed in groups.items():
            table = TABLES_BY_TYPE.get(type_id)
            if table is None:
                unknown[type_id] = _count_frames(framed)
                continue
            rows[table.name] = check_framed(table, framed)
            tables[table.name] = framed
        return FramedBatch(tables, rows, count, self._consumer.position, unknown)


class LogConsumer(_Consumer):
    """Polls the log ring of a segment into decoded events (dicts, structlog's key names)."""

    def __init__(self, segment: str | _core.Segment, *, stall_timeout: float = 5.0):
        super().__init__(segment, _rings.LOG, stall_timeout)

    def poll(self, max_events: int = 100_000) -> LogBatch:
        groups, _ = self._consumer.poll(max_events)
        events = [decode_log_event(payload, flags, pid)
                  for payload, flags, pid in iter_frames(groups.get(_rings.RECORD_LOG_EVENT, b""))]
        return LogBatch(events, self._consumer.position)


def iter_frames(framed: bytes | bytearray) -> Iterator[tuple[bytes, int, int]]:
    """(payload, flags, pid) of each framed record in a consumer batch."""
    view = memoryview(framed)
    at = 0
    while at < len(view):
        length, flags, pid = _FRAME.unpack_from(view, at)
        start = at + _rings.BATCH_FRAME_LENGTH
        yield bytes(view[start:start + length]), flags, pid
        at = start + (length + 7) // 8 * 8


def _count_frames(framed: bytes | bytearray) -> int:
    return sum(1 for _ in iter_frames(framed))


def decode_log_event(payload: bytes, flags: int = 0, pid: int = 0) -> dict[str, Any]:
    """A log event as structlog would have built it: event, level, timestamp (ns), then the fields.

    `timestamp_ns` is the engine's clock; render_json() turns it into structlog's ISO timestamp.
    """
    ts, level, count = _LOG_HEADER.unpack_from(payload, 0)
    event: dict[str, Any] = {}
    at = _LOG_HEADER.size
    for _ in range(count):
        kind, key_length, value_length = _LOG_FIELD.unpack_from(payload, at)
        at += _LOG_FIELD.size
        key = payload[at:at + key_length].decode("utf-8", "replace")
        at += key_length
        raw = payload[at:at + value_length]
        at += value_length
        event[key] = _decode_value(kind, raw)
    event["level"] = LEVEL_NAMES.get(level, str(level))
    event["timestamp_ns"] = ts
    event["pid"] = pid
    if flags & _rings.RECORD_TRUNCATED:
        event["truncated"] = True
    if flags & _rings.RECORD_SCHEMA_VIOLATION:
        event["schema_violation"] = True
    return event


def _decode_value(kind: int, raw: bytes) -> Any:
    if kind == _rings.LOG_STR:
        return raw.decode("utf-8", "replace")
    if kind == _rings.LOG_INT:
        return struct.unpack("<q", raw)[0]
    if kind == _rings.LOG_FLOAT:
        return struct.unpack("<d", raw)[0]
    if kind == _rings.LOG_BOOL:
        return raw != b"\x00"
    if kind == _rings.LOG_NONE:
        return None
    if kind == _rings.LOG_BYTES:
        return raw.hex()
    if kind == _rings.LOG_INT_TEXT:
        return int(raw)
    return raw.decode("utf-8", "replace")


def render_json(event: dict[str, Any]) -> str:
    """One JSON line the way structlog's JSONRenderer writes it after TimeStamper(fmt="iso", utc=True)."""
    rendered = dict(event)
    ts = rendered.pop("timestamp_ns")
    moment = datetime.datetime.fromtimestamp(ts // 1_000_000_000, tz=datetime.timezone.utc).replace(
        microsecond=ts % 1_000_000_000 // 1000)
    # TimeStamper's own formatting: isoformat() leaves out the fraction on a whole second.
    rendered["timestamp"] = moment.isoformat().replace("+00:00", "Z")
    return json.dumps(rendered, ensure_ascii=False, default=repr)

