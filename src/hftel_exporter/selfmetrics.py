"""The exporter's own metrics: its scrapes and errors, each engine's liveness, each ring's counters.

They are few (tens of lines), change shape as engines come and go, and are rendered in Python after
the compiled plan. Names follow the Prometheus conventions: base units, `_total` on counters,
`_seconds`, `_bytes`, `_ratio`.

    >>> metrics = SelfMetrics()
    >>> metrics.observe_scrape(0.0004)
    >>> "hftel_exporter_scrape_duration_seconds_count 1" in metrics.render(TEXT, [], Counter(), Counter(), 0)
    True
"""
from __future__ import annotations

import os
import resource
import sys
import time
from collections import Counter
from typing import Iterable, Sequence

import hftel
from hftel.metrics import render_labels
from hftel.reader import EngineStatus
from hftel_exporter._exposition import format_double
from hftel_exporter.exposition import TEXT, Format, family_header, prefix, sample_names, series_prefixes
from hftel_exporter.segments import Attachment

__all__ = ["SelfMetrics", "ERROR_KINDS", "RESERVED_SAMPLES", "TEXT"]

#: Every kind of error the exporter counts; each is exposed from the start, at 0.
ERROR_KINDS = ("segment_corrupt", "segment_version", "segment_unreadable", "descriptor_corrupt",
               "type_conflict", "engine_name_conflict", "render")

SCRAPE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

_RING_COUNTERS = {
    "full": "Writes that found the ring full (audit rows then go to the spill file; log events are dropped).",
    "spilled": "Audit rows written to the spill file because the ring was full.",
    "lost": "Records lost: an audit row the spill file could not take either, or a dropped log event.",
    "skipped_records": "Records the consumer skipped because their producer died or stalled mid-write.",
    "skipped_bytes": "Bytes of records the consumer skipped.",
    "truncated": "Log events cut short to fit the largest record.",
    "violations": "Events written that broke their component's log schema.",
}

#: (name, kind, help) of every family rendered here, in output order.
FAMILIES: tuple[tuple[str, str, str], ...] = (
    ("hftel_exporter_build_info", "gauge", "Always 1; the exporter's version as a label."),
    ("hftel_exporter_segments_attached", "gauge", "Segments the exporter has attached."),
    ("hftel_exporter_series", "gauge", "Series the exporter found in each attached segment."),
    ("hftel_exporter_samples", "gauge", "Sample lines rendered from engine segments in the last scrape."),
    ("hftel_exporter_scrape_duration_seconds", "histogram", "Time taken to answer a scrape of /metrics."),
    ("hftel_exporter_errors", "counter", "Errors by kind: refused segments and descriptors, conflicts, renders."),
    ("hftel_exporter_reattachments", "counter", "Times an engine recreated its segment and the exporter reattached."),
    ("hftel_engine_up", "gauge", "1 when the engine behind the segment is alive and stamping its heartbeat."),
    ("hftel_engine_heartbeat_age_seconds", "gauge", "Seconds since the engine last stamped its heartbeat."),
    ("hftel_engine_start_time_seconds", "gauge", "When the engine created its segment, in Unix seconds."),
    ("hftel_engine_info", "gauge", "Always 1; the segment's epoch, creator pid and status as labels."),
    ("hftel_ring_capacity_bytes", "gauge", "Capacity of the ring."),
    ("hftel_ring_used_bytes", "gauge", "Bytes written to the ring and not yet consumed."),
    ("hftel_ring_occupancy_ratio", "gauge", "Used bytes over capacity."),
    *((f"hftel_ring_{name}", "counter", text) for name, text in _RING_COUNTERS.items()),
    ("process_cpu_seconds", "counter", "Total user and system CPU time spent in seconds."),
    ("process_resident_memory_bytes", "gauge", "Resident memory size in bytes."),
    ("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds."),
    ("process_open_fds", "gauge", "Number of open file descriptors."),
    ("process_max_fds", "gauge", "Maximum number of open file descriptors."),
)

#: Sample name -> owner, so that an engine series cannot shadow one of these.
RESERVED_SAMPLES = {sample: "the exporter's own " + name for name, kind, _ in FAMILIES
                    for sample in sample_names(name, kind)}

_PROCESS_START = time.time()


class SelfMetrics:
    """Counts the exporter's scrapes and renders every self-metric family.

    >>> SelfMetrics().render(TEXT, [], Counter(), Counter(), 0).count("# TYPE") == len(FAMILIES)
    True
    """

    def __init__(self) -> None:
        self.scrape_buckets = [0] * (len(SCRAPE_BUCKETS) + 1)
        self.scrape_sum = 0.0

    def observe_scrape(self, seconds: float) -> None:
        index = next((i for i, bound in enumerate(SCRAPE_BUCKETS) if seconds <= bound), len(SCRAPE_BUCKETS))
        self.scrape_buckets[index] += 1
        self.scrape_sum += seconds

    def render(self, fmt: Format, attachments: Sequence[Attachment], errors: Counter, reattachments: Counter,
               samples: int, *, stale_after: float = 2.0, engine_label: str = "engine") -> bytes:
        lines: dict[str, list[str]] = {name: [] for name, _, _ in FAMILIES}
        label = engine_label or "engine"
        lines["hftel_exporter_build_info"].append(_line("hftel_exporter_build_info", ("version", "python"),
                                                        (hftel.__version__, sys.version.split()[0]), 1))
        lines["hftel_exporter_segments_attached"].append(_line("hftel_exporter_segments_attached", (), (),
                                                               len(attachments)))
        lines["hftel_exporter_samples"].append(_line("hftel_exporter_samples", (), (), samples))
        lines["hftel_exporter_scrape_duration_seconds"] = self._scrape_lines()
        for kind in sorted(set(ERROR_KINDS) | set(errors)):
            lines["hftel_exporter_errors"].append(_line("hftel_exporter_errors_total", ("kind",), (kind,), errors[kind]))
        now = time.time_ns()
        for attachment in attachments:
            self._engine_lines(lines, attachment, label, now, stale_after, reattachments)
        _process_lines(lines)
        out = [family_header(name, kind, help, fmt) + "".join(lines[name]) for name, kind, help in FAMILIES]
        return "".join(out).encode()

    def _scrape_lines(self) -> list[str]:
        name = "hftel_exporter_scrape_duration_seconds"
        cumulative, values = 0, []
        for count in self.scrape_buckets:
            cumulative += count
            values.append(cumulative)
        bounds = [format_double(bound) for bound in SCRAPE_BUCKETS]
        prefixes = series_prefixes(name, "histogram", "", bounds)
        numbers = [str(value) for value in values] + [str(cumulative), format_double(self.scrape_sum)]
        return [f"{prefix.decode()}{number}\n" for prefix, number in zip(prefixes, numbers)]

    def _engine_lines(self, lines: dict[str, list[str]], attachment: Attachment, label: str, now: int,
                      stale_after: float, reattachments: Counter) -> None:
        engine = attachment.engine
        info = attachment.reader.info()
        status = attachment.status(stale_after)
        one = ((label,), (engine,))
        lines["hftel_exporter_series"].append(_line("hftel_exporter_series", *one, len(attachment.sources)))
        lines["hftel_exporter_reattachments"].append(
            _line("hftel_exporter_reattachments_total", *one, reattachments[engine]))
        lines["hftel_engine_up"].append(_line("hftel_engine_up", *one, int(status is EngineStatus.LIVE)))
        lines["hftel_engine_heartbeat_age_seconds"].append(
            _line("hftel_engine_heartbeat_age_seconds", *one, max(0.0, (now - info.heartbeat_ns) / 1e9)))
        lines["hftel_engine_start_time_seconds"].append(
            _line("hftel_engine_start_time_seconds", *one, info.start_time_ns / 1e9))
        lines["hftel_engine_info"].append(_line(
            "hftel_engine_info", (label, "epoch", "pid", "status"),
            (engine, f"{info.epoch:016x}", str(info.creator_pid), status.value), 1))
        for ring, stats in attachment.ring_stats().items():
            names, values = (label, "ring"), (engine, ring)
            used = max(0, stats["tail"] - stats["head"])
            lines["hftel_ring_capacity_bytes"].append(_line("hftel_ring_capacity_bytes", names, values,
                                                            stats["capacity"]))
            lines["hftel_ring_used_bytes"].append(_line("hftel_ring_used_bytes", names, values, used))
            lines["hftel_ring_occupancy_ratio"].append(_line("hftel_ring_occupancy_ratio", names, values,
                                                             used / stats["capacity"]))
            for counter in _RING_COUNTERS:
                lines[f"hftel_ring_{counter}"].append(_line(f"hftel_ring_{counter}_total", names, values,
                                                            stats[counter]))


def _process_lines(lines: dict[str, list[str]]) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    lines["process_cpu_seconds"].append(_line("process_cpu_seconds_total", (), (),
                                                    usage.ru_utime + usage.ru_stime))
    lines["process_resident_memory_bytes"].append(_line("process_resident_memory_bytes", (), (), _resident_bytes()))
    lines["process_start_time_seconds"].append(_line("process_start_time_seconds", (), (), _PROCESS_START))
    lines["process_open_fds"].append(_line("process_open_fds", (), (), len(os.listdir("/proc/self/fd"))))
    lines["process_max_fds"].append(_line("process_max_fds", (), (),
                                          resource.getrlimit(resource.RLIMIT_NOFILE)[0]))


def _resident_bytes() -> int:
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _line(sample: str, names: Iterable[str], values: Iterable[str], value: float) -> str:
    number = str(value) if isinstance(value, int) else format_double(value)
    return f"{prefix(sample, render_labels(tuple(names), tuple(values))).decode()}{number}\n"
