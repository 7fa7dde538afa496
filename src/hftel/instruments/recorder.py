"""The recorder facade: the engine's own writers (tick capture and the like) and their queues."""
from __future__ import annotations

from typing import Any, Iterable

from hftel.instruments._base import Handles, component_logger


class Recorder:
    """Batches written and failed, write latency and queue depth, by sink.

    >>> recorder = Recorder(tel, sinks=("ticks",))
    >>> recorder.written("ticks", latency_ns=350_000)
    >>> recorder.failed("ticks", "disk full")
    >>> recorder.queue_depth("ticks", 1_200)

    A failure is logged with its error at each change from working to failing, and counted every time.
    """

    def __init__(self, telemetry: Any, *, sinks: Iterable[str], log_level: str = "info"):
        self.sinks = tuple(sinks)
        self._log = component_logger(telemetry, "recorder", log_level)
        handles = Handles(telemetry, "recorder", {"sink": self.sinks})
        self._writes = handles["hft_recorder_writes_total"]
        self._failures = handles["hft_recorder_write_failures_total"]
        self._latency = handles["hft_recorder_write_latency_seconds"]
        self._depth = handles["hft_recorder_queue_depth"]
        self._failing = {sink: False for sink in self.sinks}

    def written(self, sink: str, latency_ns: int) -> None:
        self._writes[sink].inc()
        self._latency[sink].observe(latency_ns)
        if self._failing[sink]:
            self._failing[sink] = False
            self._log.info("recorder_recovered", sink=sink)

    def failed(self, sink: str, error: str) -> None:
        self._failures[sink].inc()
        if not self._failing[sink]:
            self._failing[sink] = True
            self._log.error("recorder_write_failed", sink=sink, error=error)

    def queue_depth(self, sink: str, records: int) -> None:
        self._depth[sink].set(records)
