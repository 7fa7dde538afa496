"""The monitor facade: the engine's watchdog uptime, its own health checks, and its Python GC."""
from __future__ import annotations

import time
import weakref
from typing import Any, Iterable

from hftel.catalogue import HEALTH_CHECKS
from hftel.instruments._base import Handles, component_logger
from hftel.instruments.gc_stats import GcStats


class Monitor:
    """Process uptime, the pass/fail state of each health check, and Python's garbage collections.

    >>> monitor = Monitor(tel)                # also counts and times every GC collection
    >>> monitor.tick()                        # from the engine's main loop: uptime moves
    >>> monitor.check("feed", ok=False, detail="no tick for 3.2 s")
    >>> monitor.close()                       # stops recording GC stats

    A check is logged when it changes state, not on every call. GC stats (hft_python_gc_*) are
    recorded from a gc.callbacks hook while the Monitor lives: `close()`, or the Monitor being
    garbage collected, removes the hook; `gc_stats=False` never installs it.
    """

    def __init__(self, telemetry: Any, *, checks: Iterable[str] = HEALTH_CHECKS, log_level: str = "info",
                 gc_stats: bool = True):
        self._log = component_logger(telemetry, "monitor", log_level)
        handles = Handles(telemetry, "monitor", {})
        self._uptime = handles["hft_process_uptime_seconds"]
        self._status = handles["hft_health_check_status"]
        self._started = time.monotonic()
        self._passing: dict[str, bool] = {}
        for check in checks:
            self._status[check].set(1)
            self._passing[check] = True
        self.gc_stats = GcStats(handles)
        # The hook holds the handles, never the Monitor, so dropping the Monitor removes the hook too.
        self._uninstall = weakref.finalize(self, self.gc_stats.uninstall)
        if gc_stats:
            self.gc_stats.install()

    def tick(self) -> float:
        """Sets the uptime; call it from the loop it watches, so a stalled loop shows as flat uptime."""
        uptime = time.monotonic() - self._started
        self._uptime.set(uptime)
        return uptime

    def close(self) -> None:
        """Removes the GC hook; uptime and checks stay as they are. Idempotent."""
        self._uninstall()

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        self._status[name].set(1 if ok else 0)
        if self._passing.get(name) != ok:
            self._passing[name] = ok
            (self._log.info if ok else self._log.error)("health_check", check=name, ok=ok, detail=detail)
