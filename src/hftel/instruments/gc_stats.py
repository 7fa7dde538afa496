"""Python's garbage collector as the engine sees it: collections, objects freed, and each pause.

Only the engine can see its own collector, so the engine records these (the exporter reads another
process's CPU and memory, never its GC). A callback in `gc.callbacks` is called by CPython at the
start and the stop of every collection; the pair is timed with `time.perf_counter_ns`, and the stop
adds the counts CPython reports. The callback never raises: an error inside it is counted in
`GcStats.errors` and dropped, so a collection never reports "Exception ignored in garbage collection
callback" because of hftel.

    >>> stats = GcStats(Handles(tel, "monitor", {}))   # Monitor(tel) does this for you
    >>> stats.install()
    >>> gc.collect(2)
    >>> stats.uninstall()

A forked child does not record into its parent's series: every GcStats is uninstalled in the child.
"""
from __future__ import annotations

import gc
import os
import time
import weakref
from typing import Any

from hftel.catalogue import GC_GENERATIONS

_installed: "weakref.WeakSet[GcStats]" = weakref.WeakSet()


class GcStats:
    """The gc.callbacks callback recording hft_python_gc_* from the monitor's handles.

    >>> stats = GcStats(handles)   # hftel.instruments._base.Handles of the monitor component
    >>> stats.install()            # from now on every collection is counted and timed
    >>> stats.uninstall()          # idempotent

    Called by CPython with the GIL held, one collection at a time, so the start time needs no lock.
    """

    def __init__(self, handles: Any):
        collections = handles["hft_python_gc_collections_total"]
        collected = handles["hft_python_gc_collected_objects_total"]
        uncollectable = handles["hft_python_gc_uncollectable_objects_total"]
        pauses = handles["hft_python_gc_pause_seconds"]
        self._by_generation = {int(generation): (collections[generation], collected[generation],
                                                 uncollectable[generation], pauses[generation])
                               for generation in GC_GENERATIONS}
        self._started_ns = 0
        self.errors = 0  # exceptions swallowed inside the callback

    @property
    def installed(self) -> bool:
        return any(callback is self for callback in gc.callbacks)

    def install(self) -> None:
        if not self.installed:
            gc.callbacks.append(self)
            _installed.add(self)

    def uninstall(self) -> None:
        gc.callbacks[:] = [callback for callback in gc.callbacks if callback is not self]
        _installed.discard(self)

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        now = time.perf_counter_ns()
        try:
            if phase == "start":
                self._started_ns = now
                return
            started, self._started_ns = self._started_ns, 0
            handles = self._by_generation.get(info["generation"])
            if handles is None:  # a generation a future CPython may add
                return
            collections, collected, uncollectable, pauses = handles
            collections.inc()
            if info["collected"]:
                collected.inc(info["collected"])
            if info["uncollectable"]:
                uncollectable.inc(info["uncollectable"])
            if started:  # installed between a start and its stop: count it, but there is no pause to time
                pauses.observe(now - started)
        except Exception:  # never into CPython's collector: it would print and drop it anyway
            self.errors += 1


def _uninstall_in_child() -> None:
    for stats in list(_installed):
        stats.uninstall()


os.register_at_fork(after_in_child=_uninstall_in_child)
