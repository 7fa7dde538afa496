"""The exporter's JSON log files: engines' log events as JSON lines for fluent-bit or vector, and
their rows for the ClickHouse table ``logs_hft``.

    >>> log = LogFile("/var/log/hftel/engine.json")               # doctest: +SKIP
    >>> batch = consumer.poll()                                    # doctest: +SKIP
    >>> log.write(log_line(event, "engine1") for event in batch.events)   # doctest: +SKIP
    >>> rows = [log_row(event, "engine1") for event in batch.events]      # doctest: +SKIP
    >>> columns = {name: [row[name] for row in rows] for name in LOGS_COLUMNS}  # doctest: +SKIP

A line is what structlog's JSONRenderer writes after TimeStamper(fmt="iso", utc=True) (see
hftel.rings.render_json), plus an ``engine`` key so a shipper can tell engines apart.

LogFile rotates like logging.handlers.RotatingFileHandler, by size and by age: ``engine.json`` is
renamed ``engine.json.1``, ``.1`` becomes ``.2`` and so on, the oldest past ``backups`` is deleted,
and a new ``engine.json`` is created. Shippers tailing ``/var/log/hftel/*.json`` keep reading the
renamed file through the handle they hold (both follow a file by inode or fingerprint, not name).
"""
from __future__ import annotations

import datetime
import errno
import json
import math
import os
import stat
import time
from typing import Any, Callable, Iterable

from hftel.rings import render_json
from hftel.schemas import LOGS_HFT
from hftel_exporter.config import LOG_FILE_NAME

__all__ = ["DEFAULT_PATH", "LOGS_COLUMNS", "LogFile", "log_line", "log_row"]

DEFAULT_PATH = f"/var/log/hftel/{LOG_FILE_NAME}"  # under the unit: LogsDirectory=hftel

# The columns of ClickHouse table logs_hft, in order: build column arrays from log_row() with these.
LOGS_COLUMNS = tuple(column.name for column in LOGS_HFT.columns)

_MIB = 1 << 20
_DIRECTORY_MODE = 0o750
_FIRST_LINE_LIMIT = 1 << 16  # bytes read to find the first line's timestamp when reopening a file
_UINT64_LIMIT = 1 << 64
_HEX = frozenset("0123456789abcdef")
_ZERO_TRACE = "0" * 32


class LogFile:
    """An append-only JSON lines file, rotated by size and age, recreated when moved away.

    write() appends a batch of lines with one os.write() (a batch larger than the room left in the
    file is cut at line boundaries, one write per file), so there is no buffer to flush and a line
    is never split across files. Before writing, the file is rotated when the batch would take it
    past `max_bytes` (a single line larger than `max_bytes` gets a file of its own) or when its age
    reaches `rotate_interval` seconds; an empty file is never rotated.

    The age of a file is counted from its first line's ``timestamp`` (the time of its first
    event), read when the file is opened, so an exporter that restarts every few hours still
    rotates daily. A file whose first line has no readable timestamp counts from its mtime (a lower
    bound on its age); st_ctime is not used because every write updates it, and Linux offers no
    creation time through os.stat. A file that LogFile creates counts from the first write into it.

    Before each batch the path is checked with one stat(): if the file was deleted or moved away
    (logrotate, an operator), it is recreated, so nothing is written to an unreachable file.

    New files get exactly `mode` (fchmod after creation, whatever the umask), missing directories
    exactly 0750; existing files and directories keep theirs. Errors (disk full, permissions)
    raise OSError to the caller; a write that fails midway is cut back (ftruncate) to where it
    began, or, if even that fails, the next batch starts with a newline, so no torn line sits
    among whole ones. There is no fsync: the file is for shippers, logs_hft is the durable copy.
    Not thread-safe: the exporter writes from one thread.
    """

    def __init__(self, path: str | os.PathLike[str], *, max_bytes: int = 100 * _MIB,
                 rotate_interval: float = 86400.0, backups: int = 7, mode: int = 0o640,
                 clock: Callable[[], float] = time.time):
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, not {max_bytes}")
        if not rotate_interval > 0:
            raise ValueError(f"rotate_interval must be positive, not {rotate_interval}")
        if backups < 0:
            raise ValueError(f"backups must be 0 or more, not {backups}")
        self.path = os.fspath(path)
        self.max_bytes = max_bytes
        self.rotate_interval = float(rotate_interval)
        self.backups = backups
        self.mode = mode
        self._clock = clock
        self._fd: int | None = None
        self._identity: tuple[int, int] = (0, 0)  # (st_dev, st_ino) of the open file
        self._size = 0
        self._started: float | None = None  # when the open file's age began; None: empty file
        self._torn = False  # a failed write left a partial line at the end of the file

    # -- public API ------------------------------------------------------------------------------

    def write(self, lines: Iterable[str]) -> int:
        """Appends `lines` (JSON objects without their newline) and returns how many were written.

        Raises OSError; lines of the batch before the failing write may already be in the file(s).
        """
        encoded = [(line + "\n").encode("utf-8") for line in lines]
        if not encoded:
            return 0
        self._ensure_open()
        if self._size and self._clock() - self._started_at() >= self.rotate_interval:
            self._rotate()
        total = sum(map(len, encoded))
        if self._size + total <= self.max_bytes:  # the usual case: the batch fits, one write
            self._append(encoded)
            return len(encoded)
        chunk: list[bytes] = []
        chunk_bytes = 0
        for line in encoded:
            if (self._size or chunk) and self._size + chunk_bytes + len(line) > self.max_bytes:
                self._append(chunk)
                chunk, chunk_bytes = [], 0
                self._rotate()
            chunk.append(line)
            chunk_bytes += len(line)
        self._append(chunk)
        return len(encoded)

    def close(self) -> None:
        """Closes the file; a later write() opens it again."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    @property
    def size(self) -> int:
        """Bytes in the current file, as far as this LogFile knows (0 before the first write)."""
        return self._size

    def __enter__(self) -> "LogFile":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<LogFile {self.path!r} size={self._size} backups={self.backups}>"

    # -- opening -----------------------------------------------------------------------------------

    def _ensure_open(self) -> None:
        """Opens the file, or reopens it when the path no longer leads to the open file."""
        if self._fd is not None:
            try:
                st = os.stat(self.path)
            except FileNotFoundError:
                st = None
            if st is not None and (st.st_dev, st.st_ino) == self._identity:
                return
            self.close()
        self._open()

    def _open(self) -> None:
        _make_directories(os.path.dirname(os.path.abspath(self.path)))
        flags = os.O_WRONLY | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        while True:
            try:
                fd = os.open(self.path, flags | os.O_CREAT | os.O_EXCL, self.mode)
                created = True
            except FileExistsError:
                try:
                    fd = os.open(self.path, flags)
                except FileNotFoundError:  # deleted between the two opens: create it after all
                    continue
                created = False
            break
        try:
            if created:
                os.fchmod(fd, self.mode)
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise OSError(errno.EINVAL, "not a regular file", self.path)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._identity = (st.st_dev, st.st_ino)
        self._size = st.st_size
        self._torn = False
        self._started = None if st.st_size == 0 else self._age_start(st)

    def _age_start(self, st: os.stat_result) -> float:
        """When an existing file's age began: its first line's timestamp, else its mtime."""
        try:
            with open(self.path, "rb") as existing:
                head = existing.read(_FIRST_LINE_LIMIT)
            started = _line_time(head.split(b"\n", 1)[0])
        except OSError:
            started = None
        if started is None:
            started = st.st_mtime
        return min(started, self._clock())

    # -- rotation ----------------------------------------------------------------------------------

    def _started_at(self) -> float:
        return self._clock() if self._started is None else self._started

    def _rotate(self) -> None:
        """engine.json -> engine.json.1 -> ... -> engine.json.<backups>; then a new engine.json."""
        self.close()
        if self.backups == 0:
            _remove(self.path)
        else:
            for index in range(self.backups - 1, 0, -1):
                source = f"{self.path}.{index}"
                if os.path.lexists(source):
                    os.replace(source, f"{self.path}.{index + 1}")  # replaces (deletes) the oldest
            os.replace(self.path, f"{self.path}.1")
        self._open()

    # -- writing -----------------------------------------------------------------------------------

    def _append(self, chunk: list[bytes]) -> None:
        if not chunk:
            return
        assert self._fd is not None
        data = b"".join(chunk)
        if self._torn:
            data = b"\n" + data  # end the partial line a failed write left, then whole lines
        if self._started is None:
            self._started = self._clock()
        start = self._size
        written = 0
        try:
            while written < len(data):
                written += os.write(self._fd, data[written:] if written else data)
        except OSError:
            if written:
                self._cut_back(start, written)
            raise
        self._size = start + written
        self._torn = False

    def _cut_back(self, start: int, written: int) -> None:
        """After a write failed midway: drop the partial batch, or remember a partial line."""
        assert self._fd is not None
        try:
            os.ftruncate(self._fd, start)
            self._size = start
        except OSError:
            self._size = start + written
            self._torn = True


def log_line(event: dict[str, Any], engine: str) -> str:
    """The JSON line of a decoded log event for the file: hftel.rings.render_json() of the event
    (structlog's JSONRenderer after TimeStamper(fmt="iso", utc=True)) with "engine" added."""
    return render_json({**event, "engine": engine})


def log_row(event: dict[str, Any], engine: str) -> dict[str, Any]:
    """The row of table logs_hft (the keys of LOGS_COLUMNS) for a decoded log event.

    Absent columns take their defaults ('' or 0). `fields` is a compact JSON object of every other
    key of the event (truncated, schema_violation, ...), plus any intent_id, correlation_id or
    trace_id whose value does not fit its column (kept there rather than lost). Values json cannot
    encode are written with repr(), as render_json() does; NaN and infinities too, so `fields` is
    always valid JSON.
    """
    fields = {key: value for key, value in event.items() if key not in _ROW_KEYS}
    intent_id = _uint64(event.get("intent_id"))
    correlation_id = _uint64(event.get("correlation_id"))
    trace_id = _trace_id(event.get("trace_id"))
    for key, value in (("intent_id", intent_id), ("correlation_id", correlation_id), ("trace_id", trace_id)):
        if value is None and event.get(key) is not None:
            fields[key] = event[key]
    component = event.get("component")
    return {
        "ts": int(event["timestamp_ns"]),
        "engine": engine,
        "pid": int(event.get("pid") or 0),
        "level": str(event.get("level", "")),
        "component": "" if component is None else str(component),
        "event": str(event.get("event", "")),
        "intent_id": intent_id or 0,
        "correlation_id": correlation_id or 0,
        "trace_id": trace_id or "",
        "fields": json.dumps({key: _finite(value) for key, value in fields.items()},
                             ensure_ascii=False, separators=(",", ":"), default=repr, allow_nan=False),
    }


# Event keys that have a column of their own (timestamp_ns is `ts`).
_ROW_KEYS = frozenset(("timestamp_ns", "pid", "level", "component", "event", "intent_id", "correlation_id",
                       "trace_id"))


def _uint64(value: Any) -> int | None:
    """`value` as a UInt64 when it is one (an int, or a string or float holding one), else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not value.is_integer():
            return None
        number = int(value)
    elif isinstance(value, (str, bytes)):
        try:
            number = int(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if 0 <= number < _UINT64_LIMIT else None


def _trace_id(value: Any) -> str | None:
    """A W3C trace id as 32 lowercase hex digits, None when `value` is not a valid one."""
    if isinstance(value, (bytes, bytearray)) and len(value) == 16:
        text = bytes(value).hex()
    elif isinstance(value, str):
        text = value.strip().lower()
    else:
        return None
    if len(text) != 32 or not _HEX.issuperset(text) or text == _ZERO_TRACE:
        return None
    return text


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value


def _line_time(line: bytes) -> float | None:
    """The epoch seconds of a JSON line's ISO "timestamp", None when it has none."""
    try:
        stamp = json.loads(line)["timestamp"]
        moment = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def _make_directories(directory: str) -> None:
    """Creates `directory` and missing parents with exactly 0750, whatever the umask."""
    if os.path.isdir(directory):
        return
    parent = os.path.dirname(directory)
    if parent and parent != directory:
        _make_directories(parent)
    try:
        os.mkdir(directory, _DIRECTORY_MODE)
    except FileExistsError:
        return  # made meanwhile by someone else: theirs, mode included
    os.chmod(directory, _DIRECTORY_MODE)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
