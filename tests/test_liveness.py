"""A reader tells a live engine from a dead, closed, recreated or deleted one."""
from __future__ import annotations

import os
import signal
import stat
import struct
import time

import pytest

import hftel
from hftel import EngineStatus

REGISTRATION_LOCK_OFFSET = 128  # HFTEL_REGISTRATION_LOCK_OFFSET in cext/hftel.h


def engine_that_waits(path: str, ready, hold) -> None:
    tel = hftel.Telemetry.create(path, capacity=16, values_bytes=1 << 16)
    tel.counter("ticks", "Ticks.").inc(7)
    ready.set()
    hold.wait(60)


def test_a_running_engine_is_live(tel, segment_file):
    """Fresh heartbeat, creator alive, not closed: LIVE."""
    assert hftel.Reader(segment_file).status() is EngineStatus.LIVE


def test_the_heartbeat_thread_keeps_stamping_the_header(tel, segment_file):
    """The engine's background thread advances the heartbeat without any call from the engine."""
    reader = hftel.Reader(segment_file)
    first = reader.info().heartbeat_ns
    deadline = time.monotonic() + 10
    while reader.info().heartbeat_ns == first and time.monotonic() < deadline:
        time.sleep(0.01)
    assert reader.info().heartbeat_ns > first


def test_a_closed_engine_is_closed(tel, segment_file):
    """close() marks a clean shutdown."""
    tel.close()
    assert hftel.Reader(segment_file).status() is EngineStatus.CLOSED


def test_a_killed_engine_is_dead_and_its_last_values_stay_readable(segment_file, spawn):
    """SIGKILL the creator: the reader says DEAD and still reads what it wrote."""
    ready, hold = spawn.Event(), spawn.Event()
    engine = spawn.Process(target=engine_that_waits, args=(segment_file, ready, hold))
    engine.start()
    assert ready.wait(60)
    reader = hftel.Reader(segment_file)
    assert reader.status() is EngineStatus.LIVE
    os.kill(engine.pid, signal.SIGKILL)
    engine.join()
    assert reader.status() is EngineStatus.DEAD
    assert reader.snapshot().get_sample_value("ticks_total") == 7


def test_a_stale_heartbeat_means_dead(tel, segment_file):
    """An engine that stopped stamping its heartbeat (hung) reads as DEAD."""
    reader = hftel.Reader(segment_file)
    later = time.time_ns() + 10 * 10**9
    assert reader.status(now_ns=later, stale_after=2.0) is EngineStatus.DEAD


def test_a_recreated_segment_is_told_apart_by_file_and_epoch(tel, segment_file):
    """A new segment at the same path: the old reader says RECREATED; a new reader sees a new epoch."""
    tel.counter("ticks", "Ticks.").inc(3)
    reader = hftel.Reader(segment_file)
    old_epoch = reader.info().epoch
    with hftel.Telemetry.create(segment_file, capacity=16, values_bytes=1 << 16) as new:
        new.counter("ticks", "Ticks.").inc(5)
        assert reader.status() is EngineStatus.RECREATED
        assert reader.snapshot().get_sample_value("ticks_total") == 3  # the old mapping stays valid
        fresh = hftel.Reader(segment_file)
        assert fresh.info().epoch != old_epoch
        assert fresh.snapshot().get_sample_value("ticks_total") == 5


def test_a_deleted_segment_is_gone(tel, segment_file):
    """Removing the file: GONE, and what the engine recorded is still readable through the mapping."""
    tel.counter("ticks", "Ticks.").inc(4)
    reader = hftel.Reader(segment_file)
    os.unlink(segment_file)
    assert reader.status() is EngineStatus.GONE
    assert reader.snapshot().get_sample_value("ticks_total") == 4


def test_segments_are_created_0600_by_default(tel, segment_file):
    """Only the owner may read or write a segment unless asked otherwise."""
    assert stat.S_IMODE(os.stat(segment_file).st_mode) == 0o600


def test_the_mode_is_exactly_what_was_asked_whatever_the_umask(segment_file):
    """mode=0o640 (a group for the exporter) holds even under umask 077."""
    previous = os.umask(0o077)
    try:
        hftel.Telemetry.create(segment_file, mode=0o640, heartbeat_interval=None).close()
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(segment_file).st_mode) == 0o640


def test_a_bad_mode_is_refused(segment_file):
    """Modes outside 0777 (setuid, sticky) are refused."""
    with pytest.raises(hftel.RegistrationError, match="mode"):
        hftel.Telemetry.create(segment_file, mode=0o4755)


def test_a_registration_lock_left_by_a_dead_process_is_taken_over(tel, segment_file, spawn):
    """A registrant killed while holding the lock does not wedge later registrations."""
    dead = spawn.Process(target=int)
    dead.start()
    dead.join()
    with open(segment_file, "r+b") as file:
        file.seek(REGISTRATION_LOCK_OFFSET)
        file.write(struct.pack("<q", dead.pid))
    tel.counter("after", "Registered after the takeover.").inc()
    assert tel.snapshot().get_sample_value("after_total") == 1


def test_a_bare_name_maps_under_the_shm_directory(tmp_path, monkeypatch):
    """Telemetry.create('engine1') makes $HFTEL_SHM_DIR/hftel-engine1."""
    monkeypatch.setenv("HFTEL_SHM_DIR", str(tmp_path))
    with hftel.Telemetry.create("engine1", heartbeat_interval=None) as tel:
        assert tel.path == str(tmp_path / "hftel-engine1")
        assert hftel.Reader("engine1").status() is EngineStatus.LIVE


def test_a_segment_name_with_a_bad_character_is_refused():
    """Names are letters, digits, '_', '.' and '-'; anything else is a ValueError."""
    with pytest.raises(ValueError, match="segment name"):
        hftel.segment_path("a b")
