"""Reading the spill file: the audit rows writers appended there because the audit ring was full.

    >>> batch = SpillReader("/dev/shm/hftel-engine.spill").read(offset=0)
    >>> batch.tables["audit_orders"]["seq"], batch.next_offset

The file is append-only and shared by every writer to one segment (format: cext/hftel_writer.h).
The exporter keeps its own offset into it (in its spool directory) and reads on from there. It never
deletes the file: an engine restarting at the same path could be appending to it at that moment.
Remove it by hand once `hftel_drain_rows_spooled_total{origin="spill"}` has caught up and the engine
is stopped. A frame torn by a crash at the
end of the file is left alone (a writer may still be appending it); a bad frame anywhere else is
reported in `corrupt` and skipped by scanning for the next sync word, so nothing after it is lost.
"""
from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

from hftel import _rings
from hftel.errors import SpillError
from hftel.schemas import TABLES_BY_TYPE

_HEADER = struct.Struct("<QII")
_FRAME = struct.Struct("<IIHHI")
_SYNC = struct.pack("<I", _rings.SPILL_FRAME_SYNC)
_MAX_FRAME = 1 << 16  # no audit row comes near it


@dataclass
class SpillBatch:
    tables: dict[str, Any]  # table name -> numpy structured array of its rows, in file order
    count: int
    next_offset: int  # where the next read starts: just past the last whole frame
    corrupt: list[str] = field(default_factory=list)  # what was skipped, and where
    unknown: dict[int, int] = field(default_factory=dict)  # record type -> count, for types this hftel lacks


class SpillReader:
    """Reads a spill file from an offset; never modifies it.

    >>> SpillReader(path).read().count
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = os.fspath(path)

    def check_header(self) -> None:
        """Raises SpillError naming the problem if the file does not start with a spill header."""
        with open(self.path, "rb") as file:
            head = file.read(_rings.SPILL_HEADER_LENGTH)
        if len(head) < _rings.SPILL_HEADER_LENGTH:
            raise SpillError(f"truncated spill file: {len(head)} bytes, the header alone is "
                             f"{_rings.SPILL_HEADER_LENGTH}: {self.path}")
        magic, version, header_length = _HEADER.unpack_from(head)
        if magic != _rings.SPILL_MAGIC:
            raise SpillError(f"not an hftel spill file (bad magic {magic:#018x}): {self.path}")
        if version != _rings.SPILL_VERSION or header_length != _rings.SPILL_HEADER_LENGTH:
            raise SpillError(f"spill file version {version} (header {header_length} bytes) is not the version "
                             f"{_rings.SPILL_VERSION} this hftel reads: {self.path}")

    def read(self, offset: int = 0, max_bytes: int = 256 << 20) -> SpillBatch:
        """The rows from `offset` (0: the start) up to about `max_bytes` further."""
        import numpy

        self.check_header()
        offset = max(offset, _rings.SPILL_HEADER_LENGTH)
        with open(self.path, "rb") as file:
            file.seek(offset)
            data = file.read(max_bytes)
        rows: dict[int, list[bytes]] = {}
        corrupt: list[str] = []
        at = 0
        while at + _FRAME.size <= len(data):
            sync, length, type_id, _flags, crc = _FRAME.unpack_from(data, at)
            end = at + _FRAME.size + length
            if sync != _rings.SPILL_FRAME_SYNC:
                at = self._resync(data, at, offset, "no frame sync word", corrupt)
                continue
            if length > _MAX_FRAME:
                at = self._resync(data, at, offset, f"a frame length of {length} bytes", corrupt)
                continue
            if end > len(data):
                if not self._whole_frame_after(data, at):
                    break  # the last frame is not all there yet (or the read stopped inside it)
                # Appends follow it, so it will never be whole: its length is damaged.
                at = self._resync(data, at, offset, f"a {length}-byte frame cut short by the frames after it",
                                  corrupt)
                continue
            payload = data[at + _FRAME.size:end]
            if zlib.crc32(payload) != crc:
                at = self._resync(data, at, offset, f"CRC mismatch in a {length}-byte frame", corrupt)
                continue
            rows.setdefault(type_id, []).append(payload)
            at = end
        tables, unknown = {}, {}
        for type_id, payloads in rows.items():
            table = TABLES_BY_TYPE.get(type_id)
            if table is None:
                unknown[type_id] = len(payloads)
                continue
            good = [payload for payload in payloads if len(payload) == table.record_length]
            if len(good) != len(payloads):
                corrupt.append(f"{len(payloads) - len(good)} {table.name} frame(s) of the wrong length")
            tables[table.name] = numpy.frombuffer(b"".join(good), dtype=table.numpy_dtype()).copy()
        count = sum(len(array) for array in tables.values())
        return SpillBatch(tables, count, offset + at, corrupt, unknown)

    @staticmethod
    def _whole_frame_after(data: bytes, at: int) -> bool:
        """Whether an intact frame starts somewhere after `at`: then the frame at `at` is not a
        torn tail still being appended (appends are whole and in order) but a damaged one."""
        found = data.find(_SYNC, at + 1)
        while found >= 0 and found + _FRAME.size <= len(data):
            _sync, length, _type, _flags, crc = _FRAME.unpack_from(data, found)
            end = found + _FRAME.size + length
            if length <= _MAX_FRAME and end <= len(data) and zlib.crc32(data[found + _FRAME.size:end]) == crc:
                return True
            found = data.find(_SYNC, found + 1)
        return False

    def _resync(self, data: bytes, at: int, offset: int, problem: str, corrupt: list[str]) -> int:
        found = data.find(_SYNC, at + 1)
        resume = found if found >= 0 else len(data)
        corrupt.append(f"{problem} at byte {offset + at}; skipped {resume - at} bytes")
        return resume
