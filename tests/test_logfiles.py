"""The exporter's JSON log files: lines, rotation by size and time, modes, logrotate, and logs_hft rows."""
from __future__ import annotations

import datetime
import errno
import json
import math
import os
import types
from pathlib import Path
from typing import Any, Iterator

import pytest
import structlog

import hftel
import hftel.logs
from hftel.rings import LogConsumer, render_json
from hftel_exporter import logfiles
from hftel_exporter.logfiles import LOGS_COLUMNS, LogFile, log_line, log_row

T0 = 1_714_555_800  # 2024-05-01T09:30:00Z, in seconds


class Clock:
    """An injected time.time: tests move it by hand."""

    def __init__(self, now: float = T0):
        self.now = float(now)

    def __call__(self) -> float:
        return self.now


def event(index: int = 0, *, at_ns: int = T0 * 1_000_000_000 + 123_456_000, **fields: Any) -> dict[str, Any]:
    """A decoded log event, as LogConsumer.poll() returns them."""
    return {"event": "order_checked", "component": "risk_engine", "strategy": "mm", "intent_id": 1000 + index,
            "risk_mode": "NORMAL", "level": "info", "timestamp_ns": at_ns, "pid": 4242, **fields}


def lines(count: int, start: int = 0) -> list[str]:
    """`count` log lines of the same length, numbered from `start` (field "n")."""
    return [log_line(event(n, n=f"{n:06d}"), "engine1") for n in range(start, start + count)]


def read_lines(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n"), "a file must end with a whole line"
    return [json.loads(line) for line in text.splitlines()]


def numbers(path: Path) -> list[int]:
    return [int(line["n"]) for line in read_lines(path)]


def line_bytes() -> int:
    return len(lines(1)[0].encode()) + 1


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "hftel" / "engine.json"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def umask() -> Iterator[Any]:
    """Sets the process umask for the test and restores it after."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield os.umask
    os.umask(previous)


# -- lines -------------------------------------------------------------------------------------------

def test_written_lines_are_json_objects_that_round_trip(path):
    events = [event(0), event(1, note="ünïcode ✓", ratio=0.25, ok=True, nothing=None)]
    with LogFile(path) as log:
        log.write(log_line(e, "engine1") for e in events)
    assert read_lines(path) == [json.loads(render_json({**e, "engine": "engine1"})) for e in events]


def test_write_returns_the_number_of_lines_written(path):
    with LogFile(path) as log:
        assert log.write(lines(3)) == 3
        assert log.write([]) == 0


def test_an_empty_batch_creates_no_file(path):
    with LogFile(path) as log:
        log.write([])
    assert not path.exists()


def test_batches_append_to_an_existing_file_from_an_earlier_run(path, clock):
    with LogFile(path, clock=clock) as log:
        log.write(lines(2))
    with LogFile(path, clock=clock) as log:
        log.write(lines(2, start=2))
    assert numbers(path) == [0, 1, 2, 3]
    assert not Path(f"{path}.1").exists()


# -- rotation by size ----------------------------------------------------------------------------------

def test_size_rotation_never_loses_or_splits_a_line_while_no_backup_is_deleted(path):
    per_file = 10
    with LogFile(path, max_bytes=per_file * line_bytes(), backups=10) as log:
        for start in range(0, 48, 3):  # 16 batches of 3 lines: 48 lines, five files
            log.write(lines(3, start=start))
    files = [path] + [Path(f"{path}.{index}") for index in range(1, 5)]
    assert not Path(f"{path}.5").exists()
    assert all(file.stat().st_size <= per_file * line_bytes() for file in files)
    in_order = [n for file in reversed(files) for n in numbers(file)]  # .4 holds the oldest lines
    assert in_order == list(range(48))


def test_size_rotation_keeps_exactly_backups_old_files_and_deletes_the_oldest(path):
    per_file = 4
    with LogFile(path, max_bytes=per_file * line_bytes(), backups=2) as log:
        for n in range(40):
            log.write(lines(1, start=n))
    assert sorted(p.name for p in path.parent.iterdir()) == ["engine.json", "engine.json.1", "engine.json.2"]
    kept = numbers(Path(f"{path}.2")) + numbers(Path(f"{path}.1")) + numbers(path)
    assert kept == list(range(40 - 3 * per_file, 40))  # the newest lines, whole and in order


def test_a_batch_larger_than_the_room_left_is_cut_between_lines(path):
    per_file = 10
    with LogFile(path, max_bytes=per_file * line_bytes(), backups=5) as log:
        log.write(lines(4))
        log.write(lines(20, start=4))
    assert numbers(Path(f"{path}.2")) == list(range(0, 10))
    assert numbers(Path(f"{path}.1")) == list(range(10, 20))
    assert numbers(path) == list(range(20, 24))


def test_a_line_longer_than_max_bytes_gets_a_file_of_its_own(path):
    long_line = log_line(event(1, n="000001", blob="x" * 500), "engine1")
    with LogFile(path, max_bytes=300, backups=5) as log:
        log.write(lines(1))
        log.write([long_line])
        log.write(lines(1, start=2))
    assert numbers(Path(f"{path}.2")) == [0]
    assert numbers(Path(f"{path}.1")) == [1]
    assert numbers(path) == [2]


# -- rotation by time ----------------------------------------------------------------------------------

def test_time_rotation_happens_once_the_file_is_rotate_interval_old(path, clock):
    with LogFile(path, rotate_interval=3600.0, clock=clock) as log:
        log.write(lines(1))
        clock.now += 3599.0
        log.write(lines(1, start=1))
        assert not Path(f"{path}.1").exists()
        clock.now += 1.0
        log.write(lines(1, start=2))
    assert numbers(Path(f"{path}.1")) == [0, 1]
    assert numbers(path) == [2]


def test_time_rotation_counts_from_the_first_line_not_from_the_last(path, clock):
    with LogFile(path, rotate_interval=3600.0, clock=clock) as log:
        log.write(lines(1))
        for n in range(1, 5):  # a write every 20 minutes: the file still turns an hour old
            clock.now += 1200.0
            log.write(lines(1, start=n))
    assert numbers(Path(f"{path}.1")) == [0, 1, 2]
    assert numbers(path) == [3, 4]


def test_a_files_age_survives_a_restart_through_its_first_lines_timestamp(path, clock):
    first = log_line(event(0, n="000000", at_ns=T0 * 1_000_000_000), "engine1")
    with LogFile(path, rotate_interval=3600.0, clock=clock) as log:
        log.write([first])
    clock.now = T0 + 3599.0
    with LogFile(path, rotate_interval=3600.0, clock=clock) as log:  # the exporter restarted
        log.write(lines(1, start=1))
    assert not Path(f"{path}.1").exists()
    clock.now = T0 + 3600.0
    with LogFile(path, rotate_interval=3600.0, clock=clock) as log:
        log.write(lines(1, start=2))
    assert numbers(Path(f"{path}.1")) == [0, 1]
    assert numbers(path) == [2]


def test_a_file_without_a_readable_first_timestamp_counts_its_age_from_its_mtime(path, clock):
    path.parent.mkdir()
    path.write_text("not json\n")
    os.utime(path, (T0, T0))
    clock.now = T0 + 3600.0
    with LogFile(path, rotate_interval=3600.0, clock=clock) as log:
        log.write(lines(1))
    assert Path(f"{path}.1").read_text() == "not json\n"


# -- modes, directories, logrotate -------------------------------------------------------------------------

@pytest.mark.parametrize("mask", [0o000, 0o022, 0o077])
def test_a_new_file_has_exactly_mode_0640_whatever_the_umask(path, umask, mask):
    umask(mask)
    with LogFile(path, max_bytes=line_bytes(), backups=1) as log:
        log.write(lines(1))
        log.write(lines(1, start=1))  # rotates: the second file is new too
    assert os.stat(path).st_mode & 0o7777 == 0o640
    assert os.stat(f"{path}.1").st_mode & 0o7777 == 0o640


@pytest.mark.parametrize("mask", [0o000, 0o077])
def test_missing_directories_are_created_with_exactly_mode_0750(tmp_path, umask, mask):
    umask(mask)
    path = tmp_path / "var" / "log" / "hftel" / "engine.json"
    with LogFile(path) as log:
        log.write(lines(1))
    for directory in (tmp_path / "var", tmp_path / "var" / "log", tmp_path / "var" / "log" / "hftel"):
        assert os.stat(directory).st_mode & 0o7777 == 0o750


def test_the_mode_argument_is_used_for_new_files(path, umask):
    umask(0o077)
    with LogFile(path, mode=0o644) as log:
        log.write(lines(1))
    assert os.stat(path).st_mode & 0o7777 == 0o644


def test_a_file_moved_away_is_recreated_by_the_next_write(path):
    with LogFile(path) as log:
        log.write(lines(1))
        moved = path.with_name("engine.json-20240501")
        os.rename(path, moved)  # logrotate without copytruncate
        log.write(lines(1, start=1))
    assert numbers(moved) == [0]
    assert numbers(path) == [1]
    assert os.stat(path).st_mode & 0o7777 == 0o640


def test_a_file_deleted_is_recreated_by_the_next_write(path):
    with LogFile(path) as log:
        log.write(lines(1))
        path.unlink()
        log.write(lines(1, start=1))
    assert numbers(path) == [1]


def test_a_file_recreated_by_someone_else_is_reopened(path):
    with LogFile(path) as log:
        log.write(lines(1))
        path.unlink()
        path.write_text("")  # logrotate's create: a new empty file at the path
        log.write(lines(1, start=1))
    assert numbers(path) == [1]


# -- errors ------------------------------------------------------------------------------------------------

def test_an_unwritable_path_raises_oserror(tmp_path):
    (tmp_path / "file").write_text("")
    with LogFile(tmp_path / "file" / "engine.json") as log:
        with pytest.raises(OSError):
            log.write(lines(1))


def test_a_write_failing_midway_leaves_no_partial_line(path, monkeypatch):
    real_write = os.write
    with LogFile(path) as log:
        log.write(lines(2))
        before = path.read_bytes()

        def disk_full_after_half(fd: int, data: bytes) -> int:
            monkeypatch.setattr(logfiles.os, "write", failing)
            return real_write(fd, data[:len(data) // 2 + 7])

        def failing(fd: int, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(logfiles.os, "write", disk_full_after_half)
        with pytest.raises(OSError) as failure:
            log.write(lines(3, start=2))
        assert failure.value.errno == errno.ENOSPC
        assert path.read_bytes() == before
        monkeypatch.setattr(logfiles.os, "write", real_write)
        log.write(lines(1, start=5))
    assert numbers(path) == [0, 1, 5]


def test_a_partial_line_that_cannot_be_cut_back_is_ended_before_the_next_batch(path, monkeypatch):
    real_write = os.write
    with LogFile(path) as log:
        log.write(lines(1))

        def disk_full_after_half(fd: int, data: bytes) -> int:
            monkeypatch.setattr(logfiles.os, "write", failing)
            return real_write(fd, data[:10])

        def failing(fd: int, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        def no_truncate(fd: int, length: int) -> None:
            raise OSError(errno.EIO, "Input/output error")

        monkeypatch.setattr(logfiles.os, "write", disk_full_after_half)
        monkeypatch.setattr(logfiles.os, "ftruncate", no_truncate)
        with pytest.raises(OSError):
            log.write(lines(1, start=1))
        monkeypatch.setattr(logfiles.os, "write", real_write)
        log.write(lines(1, start=2))
    raw = path.read_text().splitlines()
    assert json.loads(raw[0])["n"] == "000000"
    assert len(raw[1]) == 10  # the torn fragment, alone on its line
    assert json.loads(raw[2])["n"] == "000002"


@pytest.mark.parametrize("arguments", [{"max_bytes": 0}, {"rotate_interval": 0.0}, {"backups": -1}])
def test_invalid_limits_raise_valueerror(path, arguments):
    with pytest.raises(ValueError):
        LogFile(path, **arguments)


def test_backups_zero_starts_a_new_file_and_keeps_no_old_one(path):
    with LogFile(path, max_bytes=line_bytes(), backups=0) as log:
        log.write(lines(1))
        log.write(lines(1, start=1))
    assert [p.name for p in path.parent.iterdir()] == ["engine.json"]
    assert numbers(path) == [1]


# -- log_line ----------------------------------------------------------------------------------------------

class _Pinned:
    def __repr__(self) -> str:
        return "<pinned>"


@pytest.mark.parametrize("at_ns", [
    T0 * 1_000_000_000 + 123_456_789,  # a fraction: microseconds, as structlog keeps them
    T0 * 1_000_000_000 + 999,          # under a microsecond past a whole second: no fraction at all
    T0 * 1_000_000_000 + 7_000,        # a fraction with leading zeros
])
def test_log_line_is_what_structlogs_json_renderer_writes_after_its_iso_utc_timestamper(monkeypatch, at_ns):
    decoded = event(3, at_ns=at_ns, note="ünïcode", ratio=0.5, nothing=None, truncated=True, obj=_Pinned())
    moment = datetime.datetime.fromtimestamp(at_ns // 1_000_000_000, tz=datetime.timezone.utc).replace(
        microsecond=at_ns % 1_000_000_000 // 1000)

    class Frozen(datetime.datetime):
        @classmethod
        def now(cls, tz: Any = None) -> datetime.datetime:  # type: ignore[override]
            return moment.astimezone(tz)

    monkeypatch.setattr(structlog.processors, "datetime",
                        types.SimpleNamespace(datetime=Frozen, timezone=datetime.timezone))
    event_dict = {key: value for key, value in decoded.items() if key != "timestamp_ns"}
    event_dict["engine"] = "engine1"
    event_dict = structlog.processors.TimeStamper(fmt="iso", utc=True)(None, "info", event_dict)
    expected = structlog.processors.JSONRenderer()(None, "info", event_dict)
    assert json.loads(log_line(decoded, "engine1")) == json.loads(expected)


def test_log_line_adds_the_engine_name(path):
    assert json.loads(log_line(event(), "engine7"))["engine"] == "engine7"


# -- log_row -----------------------------------------------------------------------------------------------

def test_log_row_maps_every_column_with_its_type():
    trace = "0af7651916cd43dd8448eb211c80319c"
    row = log_row(event(0, correlation_id=77, trace_id=trace, truncated=True), "engine1")
    assert tuple(row) == LOGS_COLUMNS
    assert row == {
        "ts": T0 * 1_000_000_000 + 123_456_000, "engine": "engine1", "pid": 4242, "level": "info",
        "component": "risk_engine", "event": "order_checked", "intent_id": 1000, "correlation_id": 77,
        "trace_id": trace, "fields": row["fields"],
    }
    assert [type(row[name]) for name in LOGS_COLUMNS] == [int, str, int, str, str, str, int, int, str, str]
    assert json.loads(row["fields"]) == {"strategy": "mm", "risk_mode": "NORMAL", "truncated": True}


def test_log_row_gives_absent_columns_their_defaults():
    row = log_row({"event": "hello", "level": "warning", "timestamp_ns": 5, "pid": 1}, "engine1")
    assert (row["component"], row["intent_id"], row["correlation_id"], row["trace_id"]) == ("", 0, 0, "")
    assert row["fields"] == "{}"


@pytest.mark.parametrize("value, column", [
    (42, 42), ("42", 42), (" 42 ", 42), (42.0, 42), (2**64 - 1, 2**64 - 1),
    ("abc", 0), (-1, 0), (2**64, 0), (1.5, 0), (True, 0), (None, 0), ([1], 0),
])
def test_log_row_takes_int_like_intent_ids_and_zero_for_others(value, column):
    assert log_row(event(intent_id=value), "engine1")["intent_id"] == column


def test_log_row_keeps_an_intent_id_that_is_not_int_like_in_fields():
    row = log_row(event(intent_id="abc", correlation_id=-3), "engine1")
    assert (row["intent_id"], row["correlation_id"]) == (0, 0)
    assert json.loads(row["fields"])["intent_id"] == "abc"
    assert json.loads(row["fields"])["correlation_id"] == -3


@pytest.mark.parametrize("value, column", [
    ("0af7651916cd43dd8448eb211c80319c", "0af7651916cd43dd8448eb211c80319c"),
    ("0AF7651916CD43DD8448EB211C80319C", "0af7651916cd43dd8448eb211c80319c"),
    (bytes.fromhex("0af7651916cd43dd8448eb211c80319c"), "0af7651916cd43dd8448eb211c80319c"),
    ("0af7651916cd43dd8448eb211c80319", ""),    # 31 digits
    ("0af7651916cd43dd8448eb211c80319cd", ""),  # 33 digits
    ("0af7651916cd43dd8448eb211c80319g", ""),   # not hex
    ("0" * 32, ""),                               # the W3C invalid (all-zero) trace id
    (12345, ""),
    (None, ""),
])
def test_log_row_accepts_only_32_hex_digit_trace_ids_in_lowercase(value, column):
    assert log_row(event(trace_id=value), "engine1")["trace_id"] == column


def test_log_row_puts_every_other_key_in_compact_fields_json_with_the_flags():
    row = log_row(event(truncated=True, schema_violation=True, engine="shadowed", venue="TWSE"), "engine1")
    fields = json.loads(row["fields"])
    assert fields == {"strategy": "mm", "risk_mode": "NORMAL", "truncated": True, "schema_violation": True,
                      "engine": "shadowed", "venue": "TWSE"}
    assert ", " not in row["fields"] and ": " not in row["fields"]
    assert not set(fields) & {"timestamp_ns", "pid", "level", "component", "event", "intent_id", "trace_id"}


def test_log_row_renders_values_json_cannot_encode_with_repr_and_stays_strict_json():
    row = log_row(event(obj=_Pinned(), ratio=math.nan, big=math.inf), "engine1")

    def reject(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    fields = json.loads(row["fields"], parse_constant=reject)
    assert (fields["obj"], fields["ratio"], fields["big"]) == ("<pinned>", "nan", "inf")


# -- from the ring -------------------------------------------------------------------------------------------

@pytest.fixture
def reset_structlog() -> Iterator[None]:
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


def test_an_event_from_the_log_ring_becomes_a_row_and_a_line(tel, reset_structlog, path):
    hftel.logs.configure(tel, strict=True)
    log = structlog.get_logger(component="order_adapter", strategy="mm")
    log.info("order_sent", intent_id=42, correlation_id=7, trace_id="0AF7651916CD43DD8448EB211C80319C", qty=3)
    (decoded,) = LogConsumer(tel.path).poll().events
    row = log_row(decoded, "engine1")
    assert (row["component"], row["event"], row["intent_id"], row["correlation_id"], row["trace_id"]) == (
        "order_adapter", "order_sent", 42, 7, "0af7651916cd43dd8448eb211c80319c")
    assert row["ts"] == decoded["timestamp_ns"] and row["pid"] == os.getpid()
    assert json.loads(row["fields"]) == {"strategy": "mm", "qty": 3}
    with LogFile(path) as logfile:
        logfile.write([log_line(decoded, "engine1")])
    (line,) = read_lines(path)
    assert line["event"] == "order_sent" and line["engine"] == "engine1" and line["timestamp"].endswith("Z")
