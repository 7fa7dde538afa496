"""The exporter's own metrics: its scrapes and errors, each engine's liveness, each ring's counters.

They are few (tens of lines), change shape as engines come and go, and are rendered in Python after
the compiled plan. Names follow the Prometheus conventions: base units, `_total` on counters,
`_seconds`, `_bytes`, `_ratio`.

    >>> metrics = SelfMetrics()
    >>> metrics.observe_scrape(0.0004)
    >>> b"hftel_exporter_scrape_duration_seconds_count 1" in metrics.render(TEXT, [], Counter(), Counter(), 0)
    True
"""
from __future__ import annotations

import bisect
import itertools
import os
import resource
import sys
import time
from collections import Counter
from typing import Any, Iterable, Sequence

import hftel
from hftel.metrics import render_labels
from hftel.reader import EngineStatus
from hftel_exporter._exposition import format_double
from hftel_exporter.clickhouse_health import FAMILIES as CLICKHOUSE_HEALTH_FAMILIES, NAMES as CLICKHOUSE_HEALTH_NAMES
from hftel_exporter.exposition import TEXT, Format, family_header, prefix, sample_names, series_prefixes
from hftel_exporter.host import FAMILIES as HOST_FAMILIES
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
    ("hftel_clickhouse_up", "gauge", "1 when the last insert or ping to the audit sink succeeded."),
    ("hftel_clickhouse_insert_duration_seconds", "histogram", "Time taken by one insert of a spooled batch."),
    ("hftel_clickhouse_rows_inserted", "counter", "Rows inserted into ClickHouse, by table."),
    ("hftel_recorder_write_failures", "counter",
     "Failed inserts into ClickHouse, by table and whether a retry may succeed (each is retried)."),
    ("hftel_drain_rows_spooled", "counter", "Rows the drain took from the rings and spill files into the spool."),
    ("hftel_drain_segments", "gauge", "Segments the drain is reading from."),
    ("hftel_drain_refused_segments", "gauge", "Segments the drain could not open (no write access, or damaged)."),
    ("hftel_spool_bytes", "gauge", "Bytes held in the spool, waiting for ClickHouse."),
    ("hftel_spool_max_bytes", "gauge", "The spool's size cap."),
    ("hftel_spool_usage_ratio", "gauge", "Spool bytes over its cap; near 1 the drain is about to stop."),
    ("hftel_spool_full", "gauge",
     "1 when the spool is at its cap: the drain has stopped reading the rings, engines spill (CRIT)."),
    ("hftel_spool_batches", "gauge", "Batches in the spool."),
    ("hftel_spool_oldest_batch_age_seconds", "gauge", "Age of the oldest batch in the spool."),
    ("hftel_spool_quarantined_batches", "counter",
     "Batches ClickHouse refused for good, moved to the spool's quarantine directory (CRIT: needs a person)."),
    ("hftel_logfile_write_failures", "counter", "Failed writes of the engines' JSON log file."),
    *CLICKHOUSE_HEALTH_FAMILIES,
    ("process_cpu_seconds", "counter", "Total user and system CPU time spent in seconds."),
    ("process_resident_memory_bytes", "gauge", "Resident memory size in bytes."),
    ("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds."),
    ("process_open_fds", "gauge", "Number of open file descriptors."),
    ("process_max_fds", "gauge", "Maximum number of open file descriptors."),
    *HOST_FAMILIES,
)

#: The drain's families, rendered only when the exporter drains (clickhouse.sink is not 'off').
DRAIN_FAMILIES = frozenset(name for name, _, _ in FAMILIES
                           if name.startswith(("hftel_clickhouse_", "hftel_recorder_", "hftel_drain_", "hftel_spool_",
                                               "hftel_logfile_")))

#: The host's and engine processes' families, rendered only while host metrics are collected (host.enabled).
HOST_NAMES = frozenset(name for name, _, _ in HOST_FAMILIES)

#: Sample name -> owner, so that an engine series cannot shadow one of these.
RESERVED_SAMPLES = {sample: "the exporter's own " + name for name, kind, _ in FAMILIES
                    for sample in sample_names(name, kind)}

_PROCESS_START = time.time()


class Histogram:
    """A histogram of seconds kept by the exporter itself: explicit bounds, a count per bucket, a sum.

    >>> histogram = Histogram((0.1, 1.0))
    >>> histogram.observe(0.5)
    >>> histogram.lines("x_seconds")[1].strip()
    'x_seconds_bucket{le="1"} 1'
    """

    def __init__(self, bounds: Sequence[float]):
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one: above every bound
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self.sum += seconds

    def lines(self, name: str, labels: str = "") -> list[str]:
        """The family's sample lines: cumulative buckets, +Inf, count and sum; `labels` already rendered."""
        cumulative = list(itertools.accumulate(self.counts))
        prefixes = series_prefixes(name, "histogram", labels, [format_double(bound) for bound in self.bounds])
        numbers = [str(value) for value in cumulative] + [str(cumulative[-1]), format_double(self.sum)]
        return [f"{prefix.decode()}{number}\n" for prefix, number in zip(prefixes, numbers)]


class SelfMetrics:
    """Counts the exporter's scrapes and renders every self-metric family.

    >>> optional = DRAIN_FAMILIES | CLICKHOUSE_HEALTH_NAMES | HOST_NAMES   # rendered only when their part runs
    >>> SelfMetrics().render(TEXT, [], Counter(), Counter(), 0).count(b"# TYPE") == len(FAMILIES) - len(optional)
    True
    """

    def __init__(self) -> None:
        self.scrapes = Histogram(SCRAPE_BUCKETS)

    def observe_scrape(self, seconds: float) -> None:
        self.scrapes.observe(seconds)

    def render(self, fmt: Format, attachments: Sequence[Attachment], errors: Counter, reattachments: Counter,
               samples: int, *, stale_after: float = 2.0, engine_label: str = "engine", drain: Any = None,
               health: Any = None, host: Any = None) -> bytes:
        """Every family's header and lines; the drain's only with a `drain`, ClickHouse health's only with
        a `health` collector (hftel_exporter.clickhouse_health), the host's only with a `host` collector
        (hftel_exporter.host)."""
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
        if drain is not None:
            _drain_lines(lines, drain, label)
        if health is not None:
            lines.update(health.lines())
        if host is not None:  # hftel_exporter.host: the last snapshot, already formatted
            lines.update(host.lines())
        _process_lines(lines)
        out = [family_header(name, kind, help, fmt) + "".join(lines[name]) for name, kind, help in FAMILIES
               if (drain is not None or name not in DRAIN_FAMILIES)
               and (health is not None or name not in CLICKHOUSE_HEALTH_NAMES)
               and (host is not None or name not in HOST_NAMES)]
        return "".join(out).encode()

    def _scrape_lines(self) -> list[str]:
        return self.scrapes.lines("hftel_exporter_scrape_duration_seconds")

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


def _drain_lines(lines: dict[str, list[str]], drain: Any, label: str) -> None:
    """The drain's families: sink health and inserts, the spool, rows taken from the rings."""
    from hftel.schemas import CLICKHOUSE_TABLES

    sink = (("sink",), (drain.sink.name,))
    spool = drain.spool
    spool_bytes = spool.bytes
    lines["hftel_clickhouse_up"].append(_line("hftel_clickhouse_up", *sink, drain.clickhouse_up))
    lines["hftel_clickhouse_insert_duration_seconds"] = drain.inserts.lines("hftel_clickhouse_insert_duration_seconds")
    for table in (table.name for table in CLICKHOUSE_TABLES):
        lines["hftel_clickhouse_rows_inserted"].append(
            _line("hftel_clickhouse_rows_inserted_total", ("table",), (table,), drain.rows_inserted[table]))
        for reason in ("transient", "permanent"):
            lines["hftel_recorder_write_failures"].append(_line(
                "hftel_recorder_write_failures_total", ("table", "reason"), (table, reason),
                drain.write_failures[(table, reason)]))
    for (engine, origin), rows in sorted(drain.rows_spooled.items()):
        lines["hftel_drain_rows_spooled"].append(
            _line("hftel_drain_rows_spooled_total", (label, "origin"), (engine, origin), rows))
    lines["hftel_drain_segments"].append(_line("hftel_drain_segments", (), (), len(drain.sources)))
    lines["hftel_drain_refused_segments"].append(_line("hftel_drain_refused_segments", (), (), len(drain.refused)))
    lines["hftel_spool_bytes"].append(_line("hftel_spool_bytes", (), (), spool_bytes))
    lines["hftel_spool_max_bytes"].append(_line("hftel_spool_max_bytes", (), (), spool.max_bytes))
    lines["hftel_spool_usage_ratio"].append(_line("hftel_spool_usage_ratio", (), (), spool_bytes / spool.max_bytes))
    lines["hftel_spool_full"].append(_line("hftel_spool_full", (), (), int(spool_bytes >= spool.max_bytes)))
    lines["hftel_spool_batches"].append(_line("hftel_spool_batches", (), (), len(spool.entries())))
    lines["hftel_spool_oldest_batch_age_seconds"].append(
        _line("hftel_spool_oldest_batch_age_seconds", (), (), spool.oldest_age()))
    lines["hftel_spool_quarantined_batches"].append(
        _line("hftel_spool_quarantined_batches_total", (), (), drain.quarantined))
    lines["hftel_logfile_write_failures"].append(
        _line("hftel_logfile_write_failures_total", (), (), drain.log_file_failures))


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
