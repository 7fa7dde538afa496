"""Talking to systemd: readiness, status text, watchdog pings (the sd_notify protocol, no libsystemd).

The protocol (sd_notify(3)): one datagram per message to the AF_UNIX socket named by NOTIFY_SOCKET,
holding newline-separated `KEY=VALUE` assignments. The socket is a filesystem path, or an abstract
socket when the name starts with '@'. Without NOTIFY_SOCKET (not started by systemd as Type=notify)
every call is a cheap no-op.

Nothing is removed from os.environ, so child processes inherit NOTIFY_SOCKET and WATCHDOG_*; the
unit's NotifyAccess=main makes systemd ignore whatever they send, and WATCHDOG_PID tells a child
that the watchdog is not its own.
"""
from __future__ import annotations

import logging
import os
import socket
import struct
import threading
import time
from typing import Mapping

_log = logging.getLogger(__name__)

# The longest one message may block when systemd's receive queue is full (PID 1 busy, e.g. during
# a daemon-reload). Bounded in the kernel (SO_SNDTIMEO), so a full queue costs at most this long
# and then counts as a failed send; far below any sane WatchdogSec.
SEND_TIMEOUT_S = 1.0


class Notifier:
    """Sends service state to systemd from the process it started (Type=notify).

        >>> notifier = Notifier.from_environment()
        >>> notifier.ready("serving 3 segments")            # READY=1 + STATUS=...
        >>> if notifier.watchdog_interval is not None:       # WatchdogSec= is set for this process
        ...     notifier.watchdog()                          # every watchdog_interval seconds
        >>> notifier.stopping()                              # on SIGTERM, before draining

    Methods return True when the message was sent and False otherwise (not enabled, or the send
    failed). A failed send never raises: the socket can vanish under a running service (systemd
    re-executed, stopped, or the exporter run by hand with a stale environment), and losing a
    status line must not take the exporter down. Failures are counted in `send_failures`; the
    first one is logged. Any thread may call any method.
    """

    def __init__(self, address: str | None = None, watchdog_usec: int | None = None):
        """`address` as in NOTIFY_SOCKET ('/run/...' or '@abstract'), None to disable."""
        if address is not None and not address.startswith(("/", "@")):
            raise ValueError(f"NOTIFY_SOCKET must be an absolute path or start with '@': {address!r}")
        self.address = address
        self.watchdog_usec = watchdog_usec if address is not None else None
        self.send_failures = 0
        self._sockaddr = None if address is None else _unix_address(address)
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Notifier:
        """Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID; anything unusable disables that part."""
        address = environ.get("NOTIFY_SOCKET") or None
        if address is not None and not address.startswith(("/", "@")):
            # e.g. "vsock:2:1234" (systemd 253+ in VMs): not a socket this process can reach.
            _log.warning("sd_notify disabled: NOTIFY_SOCKET %r is neither a path nor '@abstract'", address)
            address = None
        return cls(address, _watchdog_usec(environ))

    @property
    def enabled(self) -> bool:
        """True when systemd listens for notifications from this process."""
        return self._sockaddr is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between watchdog() calls: half of WATCHDOG_USEC; None when no watchdog is asked for."""
        return None if self.watchdog_usec is None else self.watchdog_usec / 2_000_000

    def ready(self, status: str | None = None) -> bool:
        """Startup is complete (READY=1), with an optional status line."""
        return self.notify("READY=1" if status is None else f"READY=1\nSTATUS={_one_line(status)}")

    def status(self, text: str) -> bool:
        """Sets the one-line status `systemctl status` shows."""
        return self.notify(f"STATUS={_one_line(text)}")

    def watchdog(self) -> bool:
        """Keeps the watchdog from firing (WATCHDOG=1); a no-op unless this process owns the watchdog."""
        return self.notify("WATCHDOG=1") if self.watchdog_usec is not None else False

    def stopping(self) -> bool:
        """Shutdown has begun (STOPPING=1)."""
        return self.notify("STOPPING=1")

    def reloading(self) -> bool:
        """A reload has begun (RELOADING=1); send ready() when it is done. MONOTONIC_USEC is what
        Type=notify-reload (systemd 253+) requires; older versions ignore it."""
        return self.notify(f"RELOADING=1\nMONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def notify(self, message: str) -> bool:
        """Sends raw `KEY=VALUE` lines; True if the datagram went out."""
        if self._sockaddr is None:
            return False
        try:
            self._connectionless_socket().sendto(message.encode(), self._sockaddr)
            return True
        except OSError as error:
            with self._lock:
                self.send_failures += 1
                first = self.send_failures == 1
            if first:
                _log.warning("sd_notify to %s failed (%s); further failures are only counted", self.address, error)
            return False

    def close(self) -> None:
        """Closes the socket; a later message opens a new one."""
        with self._lock:
            sock, self._socket = self._socket, None
        if sock is not None:
            sock.close()

    def _connectionless_socket(self) -> socket.socket:
        with self._lock:
            if self._socket is None:
                # Not connected: every sendto resolves the path again, so a socket systemd recreated
                # (daemon-reexec) is found. Python sockets are close-on-exec: children do not get it.
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                seconds = int(SEND_TIMEOUT_S)
                try:  # struct timeval as 64-bit Linux lays it out; elsewhere sends block as libsystemd's do
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO,
                                    struct.pack("@ll", seconds, int((SEND_TIMEOUT_S - seconds) * 1_000_000)))
                except OSError:
                    pass
                self._socket = sock
            return self._socket


def _watchdog_usec(environ: Mapping[str, str]) -> int | None:
    """WATCHDOG_USEC when it is a positive integer and WATCHDOG_PID is unset or this process."""
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
        pid = environ.get("WATCHDOG_PID")
        if usec <= 0 or (pid is not None and int(pid) != os.getpid()):
            return None
    except ValueError:
        return None
    return usec


def _unix_address(address: str) -> bytes:
    """The AF_UNIX address for NOTIFY_SOCKET: '@name' is the abstract socket b'\\0name'."""
    return b"\0" + os.fsencode(address[1:]) if address.startswith("@") else os.fsencode(address)


def _one_line(text: str) -> str:
    """A newline would start a new assignment: a status is one line."""
    return " ".join(text.splitlines())
