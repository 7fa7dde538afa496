"""The durable spool: batches drained from the rings wait here, on disk, until ClickHouse has them.

    >>> spool = Spool("/var/lib/hftel-exporter/spool", max_bytes=1 << 30)
    >>> entry = spool.put("engine1-0001-ring-0-4096", {"audit_orders.rows": data}, {"rows": {...}})
    >>> for entry in spool.entries(): ...   # oldest first: insert, then
    >>> spool.retire(entry)

The drain writes every batch here before it frees the ring, and deletes it only after the insert
succeeded, so a batch lives in the ring or in the spool (or, briefly, in both) until ClickHouse holds
it. An entry is a directory made under a temporary name, its files written and fsynced, then renamed
into place and the spool directory fsynced: after a crash an entry is either whole or absent (a
leftover temporary directory is removed at start). Entries are never modified; new ones are added at
the end and old ones retired from the front, so the spool behaves as an append-only log.

Each entry's manifest says where its rows came from and which deduplication token each insert
carries, so a replay after a crash inserts exactly what the first attempt did and ClickHouse drops
the copy it may already hold.
"""
from __future__ import annotations

import json
import os
import shutil
import threading
import time
from dataclasses import dataclass
from typing import Any, Mapping

MANIFEST = "manifest.json"
QUARANTINE = "quarantine"
_TEMPORARY = ".tmp-"


@dataclass(frozen=True)
class SpoolEntry:
    """One spooled batch: its directory, its manifest and its size on disk."""

    path: str
    name: str
    manifest: dict[str, Any]
    bytes: int

    @property
    def created(self) -> float:
        return float(self.manifest["created"])

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)


class SpoolFullError(OSError):
    """The spool is at its size cap: the drain must stop taking rows from the rings."""


class Spool:
    """A directory of spooled batches, oldest first, with a size cap.

    >>> spool = Spool(tmpdir, max_bytes=64 << 20)
    >>> spool.bytes, spool.full
    (0, False)
    """

    def __init__(self, directory: str, max_bytes: int):
        self.directory = directory
        self.max_bytes = max_bytes
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self._lock = threading.Lock()  # the drain spools on one thread and retires on another
        self._remove_leftovers()
        self.damaged: list[str] = []  # entries found damaged at start, and where they were moved
        self._entries = {entry.name: entry for entry in self._load()}
        self._next = 1 + max((int(name.split("-", 1)[0]) for name in self._entries), default=0)

    def _remove_leftovers(self) -> None:
        for name in os.listdir(self.directory):
            if name.startswith(_TEMPORARY):
                shutil.rmtree(os.path.join(self.directory, name), ignore_errors=True)

    def _load(self) -> list[SpoolEntry]:
        entries = []
        for name in sorted(os.listdir(self.directory)):
            path = os.path.join(self.directory, name)
            if not os.path.isdir(path) or not name.split("-", 1)[0].isdigit():
                continue
            try:
                with open(os.path.join(path, MANIFEST), "rb") as file:
                    manifest = json.load(file)
                if not isinstance(manifest, dict) or not isinstance(manifest.get("tables"), dict):
                    raise ValueError("no tables in the manifest")
            except (OSError, ValueError) as error:
                # Entries are renamed into place whole, so this one was damaged after the fact: keep it
                # for a person to look at, out of the way of the replay.
                self.damaged.append(f"{name}: {error}; moved to {self._move_aside(path, name)}")
                continue
            entries.append(SpoolEntry(path, name, manifest, _size(path)))
        return entries

    def _move_aside(self, path: str, name: str) -> str:
        aside = os.path.join(self.directory, QUARANTINE)
        os.makedirs(aside, mode=0o700, exist_ok=True)
        target = os.path.join(aside, name)
        os.rename(path, target)
        _fsync_directory(self.directory)
        return target

    @property
    def bytes(self) -> int:
        with self._lock:
            return sum(entry.bytes for entry in self._entries.values())

    @property
    def usage_ratio(self) -> float:
        return self.bytes / self.max_bytes

    @property
    def full(self) -> bool:
        return self.bytes >= self.max_bytes

    def entries(self) -> list[SpoolEntry]:
        """Every entry, oldest first."""
        with self._lock:
            return [self._entries[name] for name in sorted(self._entries)]

    def oldest_age(self, now: float | None = None) -> float:
        """Seconds since the oldest entry was spooled (0 when empty)."""
        entries = self.entries()
        return max(0.0, (now or time.time()) - entries[0].created) if entries else 0.0

    def put(self, key: str, files: Mapping[str, bytes | memoryview], manifest: Mapping[str, Any]) -> SpoolEntry:
        """Writes one batch durably and returns its entry. Raises SpoolFullError at the cap (nothing
        written) and OSError when the disk refuses (nothing left behind)."""
        size = sum(len(data) for data in files.values())
        if self.bytes + size > self.max_bytes and self._entries:
            raise SpoolFullError(f"spool {self.directory} holds {self.bytes} bytes; a {size}-byte batch would pass "
                                 f"its cap of {self.max_bytes}")
        with self._lock:
            name = f"{self._next:012d}-{key}"
            self._next += 1
        temporary = os.path.join(self.directory, f"{_TEMPORARY}{name}")
        final = os.path.join(self.directory, name)
        document = dict(manifest, created=time.time(), key=key, files=sorted(files))
        try:
            os.mkdir(temporary, 0o700)
            for file_name, data in files.items():
                _write_synced(os.path.join(temporary, file_name), data)
            _write_synced(os.path.join(temporary, MANIFEST), json.dumps(document).encode())
            _fsync_directory(temporary)
            os.rename(temporary, final)
            _fsync_directory(self.directory)
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
        entry = SpoolEntry(final, name, document, _size(final))
        with self._lock:
            self._entries[name] = entry
        return entry

    def retire(self, entry: SpoolEntry) -> None:
        """Deletes an entry once its rows are in ClickHouse."""
        shutil.rmtree(entry.path)
        _fsync_directory(self.directory)
        with self._lock:
            self._entries.pop(entry.name, None)

    def quarantine(self, entry: SpoolEntry) -> str:
        """Moves an entry ClickHouse will not take out of the replay, into quarantine/; returns where."""
        with self._lock:
            self._entries.pop(entry.name, None)
        return self._move_aside(entry.path, entry.name)


def _write_synced(path: str, data: bytes | memoryview) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data).cast("B")
        while view:
            written = os.write(descriptor, view)
            view = view[written:]
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_directory(path: str) -> None:
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _size(path: str) -> int:
    return sum(os.path.getsize(os.path.join(path, name)) for name in os.listdir(path))
