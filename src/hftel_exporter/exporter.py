"""The scrape path: refresh the attached segments, render them and the exporter's own metrics.

The Exporter is what the HTTP server calls. A scrape scans first (so a segment created, recreated or
deleted just before it is already reflected), then renders with the compiled plan. Plans are built
once per format and kept until the set of series changes.

    >>> exporter = Exporter(load_config(None), log)   # doctest: +SKIP
    >>> body, content_type = exporter.metrics("text/plain")  # doctest: +SKIP
"""
from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

from hftel_exporter._exposition import RenderPlan
from hftel_exporter.exposition import Format, build_plan, negotiate
from hftel_exporter.segments import SegmentSet
from hftel_exporter.selfmetrics import RESERVED_SAMPLES, SelfMetrics

#: The loop counts as wedged (healthz fails, and the systemd watchdog stops being fed) after this
#: many scan intervals without a tick.
WEDGED_AFTER_INTERVALS = 5


class Exporter:
    """Serves the attached segments: `metrics()`, `healthz()`, `readyz()` for the HTTP server.

    >>> exporter = Exporter(config, log)   # doctest: +SKIP
    >>> exporter.tick()                    # the main loop, every scan interval  # doctest: +SKIP
    """

    def __init__(self, config: SimpleNamespace, log: Any):
        self.config = config
        self.log = log
        self.segments = SegmentSet(config.segments.paths, log=log, stale_after=config.segments.stale_after)
        self.self_metrics = SelfMetrics()
        self._lock = threading.Lock()
        self._plans: dict[str, RenderPlan] = {}
        self._conflicts_seen: set[tuple[str, int]] = set()
        self._last_tick = time.monotonic()
        self._scanned = False
        self.drain: Any = None  # the Drain, when audit rows and logs go to ClickHouse (see command.run)
        self.health: Any = None  # the ClickHouseHealth collector, while one runs (see command.run)
        self.host: Any = None  # the HostMetrics collector, while host.enabled (see command.run)

    def attachments(self) -> list[Any]:
        """The attached segments now (for the drain, which runs on threads of its own)."""
        with self._lock:
            return list(self.segments.attached.values())

    def tick(self) -> None:
        """One turn of the main loop: scan the segments, and note that the loop is alive."""
        with self._lock:
            self._refresh()
        self._last_tick = time.monotonic()

    def _refresh(self) -> None:
        if self.segments.scan():
            self._plans.clear()
        self._scanned = True

    def _plan(self, fmt: Format) -> RenderPlan:
        plan = self._plans.get(fmt.name)
        if plan is None:
            plan, conflicts = build_plan(self.segments.sources(), fmt, self.config.segments.engine_label,
                                         RESERVED_SAMPLES)
            for conflict in conflicts:
                key = (conflict.source.engine, conflict.source.index)
                if key not in self._conflicts_seen:
                    self._conflicts_seen.add(key)
                    self.segments.errors["type_conflict"] += 1
                    self.log.warning("series left out", engine=conflict.source.engine, series=conflict.source.name,
                                     reason=conflict.reason)
            self._plans[fmt.name] = plan
        return plan

    def metrics(self, accept: str | None) -> tuple[bytes, str]:
        """The exposition in the format the scraper asked for, and its Content-Type."""
        started = time.perf_counter()
        fmt = negotiate(accept)
        try:
            with self._lock:
                self._refresh()
                plan = self._plan(fmt)
                tail = self.self_metrics.render(
                    fmt, list(self.segments.attached.values()), self.segments.errors, self.segments.reattachments,
                    plan.samples, stale_after=self.config.segments.stale_after,
                    engine_label=self.config.segments.engine_label, drain=self.drain, health=self.health,
                    host=self.host)
            body = plan.render(tail + b"# EOF\n" if fmt.openmetrics else tail)
        except Exception:
            self.segments.errors["render"] += 1
            raise
        self.self_metrics.observe_scrape(time.perf_counter() - started)
        return body, fmt.content_type

    def healthz(self) -> tuple[bool, str]:
        """Healthy while the main loop ticks."""
        silent = time.monotonic() - self._last_tick
        limit = WEDGED_AFTER_INTERVALS * self.config.segments.scan_interval
        if silent > limit:
            return False, f"main loop has not run for {silent:.1f} s (limit {limit:.1f} s)\n"
        return True, "ok\n"

    def readyz(self) -> tuple[bool, str]:
        """Ready once the first scan is done and at least one segment is attached."""
        attached = len(self.segments.attached)
        if not self._scanned or attached == 0:
            patterns = ", ".join(self.config.segments.paths)
            return False, f"no segment attached yet (looking for {patterns})\n"
        return True, f"{attached} segment(s) attached\n"

    def observe(self, path: str, status: int, seconds: float) -> None:
        """Called by the server after each request; server errors are logged."""
        if status >= 500:
            self.log.error("request failed", path=path, status=status)
