"""The monitor facade: the engine's watchdog uptime and its own health checks."""
from __future__ import annotations

import time
from typing import Any, Iterable

from hftel.catalogue import HEALTH_CHECKS
from hftel.instruments._base import Handles, component_logger


class Monitor:
    """Process uptime and the pass/fail state of each health check.

    >>> monitor = Monitor(tel)
    >>> monitor.tick()                        # from the engine's main loop: uptime moves
    >>> monitor.check("feed", ok=False, detail="no tick for 3.2 s")

    A check is logged when it changes state, not on every call.
    """

    def __init__(self, telemetry: Any, *, checks: Iterable[str] = HEALTH_CHECKS, log_level: str = "info"):
        self._log = component_logger(telemetry, "monitor", log_level)
        handles = Handles(telemetry, "monitor", {})
        self._uptime = handles["hft_process_uptime_seconds"]
        self._status = handles["hft_health_check_status"]
        self._started = time.monotonic()
        self._passing: dict[str, bool] = {}
        for check in checks:
            self._status[check].set(1)
            self._passing[check] = True

    def tick(self) -> float:
        """Sets the uptime; call it from the loop it watches, so a stalled loop shows as flat uptime."""
        uptime = time.monotonic() - self._started
        self._uptime.set(uptime)
        return uptime

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        self._status[name].set(1 if ok else 0)
        if self._passing.get(name) != ok:
            self._passing[name] = ok
            (self._log.info if ok else self._log.error)("health_check", check=name, ok=ok, detail=detail)
