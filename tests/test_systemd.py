"""The exporter speaks sd_notify as systemd expects, and its unit file is hardened and well formed.

Messages go to a real AF_UNIX datagram socket standing in for systemd's notify socket. The unit file
is scored by `systemd-analyze security --offline=true`; `systemd-analyze verify` is not run: offline it
fails on the ExecStart binary, which does not exist outside a deployment, and says nothing else.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from hftel_exporter.systemd import Notifier

UNIT = Path(__file__).resolve().parent.parent / "exporter" / "systemd" / "hftel-exporter.service"
MAX_EXPOSURE = 2.0
OFFLINE_SECURITY_SINCE = 250  # the systemd version that added `systemd-analyze security --offline=`


@pytest.fixture
def systemd_socket(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    """A bound datagram socket in tmp_path, as systemd's NOTIFY_SOCKET: (its path, the socket)."""
    path = str(tmp_path / "notify")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(path)
    receiver.settimeout(5)  # a sent datagram is already queued: recv returns at once
    yield path, receiver
    receiver.close()


def notifier_for(address: str, **environment: str) -> Notifier:
    return Notifier.from_environment({"NOTIFY_SOCKET": address, **environment})


def received(receiver: socket.socket) -> bytes:
    return receiver.recv(4096)


def nothing_queued(receiver: socket.socket) -> bool:
    receiver.setblocking(False)  # a send is synchronous: what was sent is queued by now
    try:
        receiver.recv(4096)
    except BlockingIOError:
        return True
    return False


# --- messages ---------------------------------------------------------------------------------------


def test_ready_sends_ready_1(systemd_socket):
    """ready() without a status is the bare READY=1 systemd waits for."""
    path, receiver = systemd_socket
    assert notifier_for(path).ready() is True
    assert b"READY=1" == received(receiver)


def test_ready_with_a_status_sends_both_in_one_datagram(systemd_socket):
    """ready(status) sends READY=1 and STATUS=... as two lines of one message."""
    path, receiver = systemd_socket
    notifier_for(path).ready(status="serving 3 segments")
    assert b"READY=1\nSTATUS=serving 3 segments" == received(receiver)


def test_status_sends_status(systemd_socket):
    """status(text) sends STATUS=text."""
    path, receiver = systemd_socket
    notifier_for(path).status("draining audit_orders")
    assert b"STATUS=draining audit_orders" == received(receiver)


def test_a_status_with_newlines_stays_one_assignment(systemd_socket):
    """A newline inside a status cannot smuggle in another assignment such as READY=1."""
    path, receiver = systemd_socket
    notifier_for(path).status("spool full\nREADY=1")
    assert b"STATUS=spool full READY=1" == received(receiver)


def test_watchdog_sends_watchdog_1(systemd_socket):
    """watchdog() sends WATCHDOG=1 when systemd asked this process for pings."""
    path, receiver = systemd_socket
    assert notifier_for(path, WATCHDOG_USEC="30000000").watchdog() is True
    assert b"WATCHDOG=1" == received(receiver)


def test_stopping_sends_stopping_1(systemd_socket):
    """stopping() sends STOPPING=1."""
    path, receiver = systemd_socket
    notifier_for(path).stopping()
    assert b"STOPPING=1" == received(receiver)


def test_reloading_sends_reloading_1_with_the_monotonic_clock(systemd_socket):
    """reloading() sends RELOADING=1 and MONOTONIC_USEC, as Type=notify-reload requires."""
    path, receiver = systemd_socket
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    notifier_for(path).reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    first, second = received(receiver).split(b"\n")
    assert b"RELOADING=1" == first
    assert second.startswith(b"MONOTONIC_USEC=")
    assert before <= int(second.removeprefix(b"MONOTONIC_USEC=")) <= after


def test_an_at_sign_names_an_abstract_socket():
    """NOTIFY_SOCKET=@name reaches the abstract-namespace socket "\\0name"."""
    name = f"hftel-test-{os.getpid()}-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind("\0" + name)
        receiver.settimeout(5)
        notifier_for("@" + name).ready()
        assert b"READY=1" == received(receiver)


# --- the watchdog -----------------------------------------------------------------------------------


def test_the_watchdog_interval_is_half_of_watchdog_usec_in_seconds(systemd_socket):
    """WATCHDOG_USEC=30000000 (WatchdogSec=30s): ping every 15 seconds."""
    path, _ = systemd_socket
    assert 15.0 == notifier_for(path, WATCHDOG_USEC="30000000").watchdog_interval


def test_a_watchdog_pid_of_this_process_keeps_the_watchdog(systemd_socket):
    """WATCHDOG_PID naming this process: the watchdog is ours."""
    path, _ = systemd_socket
    notifier = notifier_for(path, WATCHDOG_USEC="2000000", WATCHDOG_PID=str(os.getpid()))
    assert 1.0 == notifier.watchdog_interval


def test_a_watchdog_pid_of_another_process_disables_the_watchdog(systemd_socket):
    """WATCHDOG_PID naming another process (we are its child): no interval and no ping sent."""
    path, receiver = systemd_socket
    notifier = notifier_for(path, WATCHDOG_USEC="30000000", WATCHDOG_PID=str(os.getppid()))
    assert notifier.watchdog_interval is None
    assert notifier.watchdog() is False
    assert nothing_queued(receiver)


def test_without_watchdog_usec_there_is_no_watchdog(systemd_socket):
    """No WatchdogSec= in the unit: no interval, and watchdog() sends nothing."""
    path, receiver = systemd_socket
    notifier = notifier_for(path)
    assert notifier.watchdog_interval is None
    assert notifier.watchdog() is False
    assert nothing_queued(receiver)


# --- outside systemd, and failures ------------------------------------------------------------------


def test_without_notify_socket_every_method_is_a_no_op():
    """Not started by systemd: disabled, no watchdog, and every call returns False."""
    notifier = Notifier.from_environment({"WATCHDOG_USEC": "30000000"})
    assert notifier.enabled is False
    assert notifier.watchdog_interval is None
    assert [False] * 6 == [notifier.ready(), notifier.ready("x"), notifier.status("x"), notifier.watchdog(),
                           notifier.stopping(), notifier.reloading()]


def test_a_notify_socket_that_is_not_a_unix_socket_disables_notification():
    """NOTIFY_SOCKET=vsock:... (systemd in a VM) is not reachable from here: disabled, not an error."""
    assert Notifier.from_environment({"NOTIFY_SOCKET": "vsock:2:1234"}).enabled is False


def test_a_socket_that_disappeared_returns_false_without_raising(systemd_socket):
    """systemd's socket gone (closed and unlinked): the send fails quietly and is counted."""
    path, receiver = systemd_socket
    notifier = notifier_for(path)
    receiver.close()
    os.unlink(path)
    assert notifier.status("still serving") is False
    assert 1 == notifier.send_failures


def test_send_failures_are_logged_once(systemd_socket, caplog):
    """A dead socket makes every ping fail: the log gets one warning, the counter all of them."""
    path, receiver = systemd_socket
    notifier = notifier_for(path, WATCHDOG_USEC="30000000")
    receiver.close()
    with caplog.at_level(logging.WARNING, logger="hftel_exporter.systemd"):
        for _ in range(3):
            notifier.watchdog()
    assert 3 == notifier.send_failures
    assert 1 == len(caplog.records)


def test_the_environment_is_left_for_children(systemd_socket, monkeypatch):
    """Nothing is removed from os.environ: children inherit NOTIFY_SOCKET (NotifyAccess=main ignores them)."""
    path, receiver = systemd_socket
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    notifier = Notifier.from_environment()
    notifier.ready()
    notifier.watchdog()
    assert (path, "30000000") == (os.environ.get("NOTIFY_SOCKET"), os.environ.get("WATCHDOG_USEC"))


# --- the unit file ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def security_report() -> subprocess.CompletedProcess[str]:
    """`systemd-analyze security --offline=true` run once on the unit; skips when it cannot run here."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not on PATH: the unit file's security score is not checked")
    version = subprocess.run([analyze, "--version"], capture_output=True, text=True).stdout
    match = re.match(r"systemd (\d+)", version)
    if match is None or int(match.group(1)) < OFFLINE_SECURITY_SINCE:
        pytest.skip(f"systemd-analyze {version.split(chr(10))[0]!r} predates "
                    f"`security --offline=` (systemd {OFFLINE_SECURITY_SINCE})")
    return subprocess.run(
        [analyze, "security", "--offline=true", "--no-pager", str(UNIT)], capture_output=True, text=True,
        errors="replace", env={**os.environ, "SYSTEMD_COLORS": "0"}, check=True)


def test_the_unit_scores_an_overall_exposure_of_at_most_2(security_report):
    """The hardened unit stays at or below 2.0 on systemd's 0 (safe) to 10 (unsafe) scale."""
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", security_report.stdout)
    assert match is not None, security_report.stdout
    assert float(match.group(1)) <= MAX_EXPOSURE, security_report.stdout


def test_systemd_understands_every_line_of_the_unit(security_report):
    """No unknown key or unparsable value: systemd would ignore such a line and lose that hardening."""
    complaints = [line for line in security_report.stderr.splitlines() if re.search(rf"{UNIT.name}:\d+:", line)]
    assert [] == complaints


def test_the_unit_never_runs_with_group_hftel_as_its_primary_group():
    """RemoveIPC= deletes /dev/shm files of the unit's primary group at stop: with Group=hftel, the
    engines' segments. hftel must stay a supplementary group."""
    settings = [line.strip() for line in UNIT.read_text().splitlines() if not line.lstrip().startswith("#")]
    assert "RemoveIPC=yes" in settings
    assert ["Group=hftel-exporter"] == [line for line in settings if line.startswith("Group=")]
    assert "SupplementaryGroups=hftel" in settings
