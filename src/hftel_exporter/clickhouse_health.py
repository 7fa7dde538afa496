"""ClickHouse's own health, read from its system tables on a thread of its own, for /metrics.

Every `clickhouse.health_interval` seconds the collector asks the drain's sink (the server through
clickhouse-connect, or the embedded engine) five small questions, through the sink's own query path
and so under its lock (one statement at a time, shared with the drain and the query socket):

    system.tables     the MergeTree tables of the hftel database (each gets a 0 series below)
    system.parts      active parts per partition of those tables
    system.merges     merges running, per table
    system.mutations  mutations not done (and not killed), per table; those whose last attempt failed
    system.disks      free and total bytes of each disk

A scrape never waits for ClickHouse: it renders the last snapshot. A collection either answers all
five or counts as failed: `hftel_clickhouse_health_up` goes to 0, `hftel_clickhouse_health_errors_total`
counts it, the table and disk series are dropped (not left stale: an alert on them resolves, and
`hftel_clickhouse_health_up == 0` says why), and one log line says so; the next line comes when it
recovers, not at every interval.

    >>> health = ClickHouseHealth(drain.sink, interval=5.0, log=log)   # doctest: +SKIP
    >>> health.start()          # collects now, then every 5 s, until stop()  # doctest: +SKIP
    >>> health.collect()        # or one collection, here and now  # doctest: +SKIP
    True
    >>> health.lines()["hftel_clickhouse_health_up"]  # doctest: +SKIP
    ['hftel_clickhouse_health_up{sink="embedded"} 1\\n']
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Protocol

from hftel.metrics import render_labels
from hftel.schemas import sql_string
from hftel_exporter._exposition import format_double
from hftel_exporter.exposition import prefix
from hftel_exporter.sinks import SinkError, json_rows

#: (name, kind, help) of the health families, in output order; selfmetrics.FAMILIES includes them.
FAMILIES: tuple[tuple[str, str, str], ...] = (
    ("hftel_clickhouse_health_up", "gauge", "1 when the last read of ClickHouse's system tables succeeded."),
    ("hftel_clickhouse_health_errors", "counter", "Reads of ClickHouse's system tables that failed."),
    ("hftel_clickhouse_query_duration_seconds", "histogram",
     "Round trip of one system-table query of the ClickHouse health collector."),
    ("hftel_clickhouse_parts", "gauge", "Active parts per partition of the tables in the hftel database."),
    ("hftel_clickhouse_merges_active", "gauge", "Merges running, per table of the hftel database."),
    ("hftel_clickhouse_mutations_pending", "gauge", "Mutations not done yet, per table of the hftel database."),
    ("hftel_clickhouse_mutations_failed", "gauge",
     "Mutations not done whose last attempt failed, per table of the hftel database."),
    ("hftel_clickhouse_disk_free_bytes", "gauge", "Free bytes on each ClickHouse disk."),
    ("hftel_clickhouse_disk_total_bytes", "gauge", "Size in bytes of each ClickHouse disk."),
    ("hftel_clickhouse_disk_used_bytes", "gauge", "Bytes in use on each ClickHouse disk: total less free."),
)

#: The health families' names, rendered only while a collector runs (clickhouse.health_interval > 0).
NAMES = frozenset(name for name, _, _ in FAMILIES)

QUERY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class TimedQueries(Protocol):
    """What the collector needs of a sink: its name, its database and timed queries (EmbeddedSink,
    ClickHouseSink)."""

    name: str
    database: str

    def query_timed(self, sql: str, fmt: str = "TabSeparatedWithNames") -> tuple[bytes, float]: ...


@dataclass(frozen=True)
class Snapshot:
    """What one successful collection read."""

    tables: tuple[str, ...]
    parts: tuple[tuple[str, str, int], ...]       # (table, partition, active parts)
    merges: dict[str, int]                        # table -> merges running
    mutations: dict[str, tuple[int, int]]         # table -> (pending, failed)
    disks: tuple[tuple[str, int, int], ...]       # (disk, free bytes, total bytes)


class ClickHouseHealth:
    """Reads ClickHouse's system tables every `interval` seconds on a thread; renders the last read.

    One thread collects (start() and stop() belong to the exporter's main thread); lines() may be
    called from any thread at any time and never waits for ClickHouse.

    >>> health = ClickHouseHealth(EmbeddedSink(path), interval=5.0, log=log)   # doctest: +SKIP
    >>> health.collect(), health.up                                           # doctest: +SKIP
    (True, 1)
    """

    def __init__(self, sink: TimedQueries, *, interval: float, log: Any):
        from hftel_exporter.selfmetrics import Histogram  # here: selfmetrics imports FAMILIES from this module

        self.sink = sink
        self.interval = interval
        self.log = log
        self.up = 0
        self.errors = 0
        self.durations = Histogram(QUERY_BUCKETS)
        self._snapshot: Snapshot | None = None
        self._failing: bool | None = None  # None until the first collection ends
        self._lock = threading.Lock()  # guards the numbers above for lines(); never held during a query
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- collecting ----------------------------------------------------------------------------------

    def collect(self) -> bool:
        """One collection: every system-table query in turn. Returns whether it succeeded."""
        try:
            snapshot = self._read()
        except Exception as error:  # noqa: BLE001 - whatever went wrong, /metrics says so and the thread goes on
            with self._lock:
                self.up, self._snapshot = 0, None
                self.errors += 1
            self._note(False, _describe(error))
            return False
        with self._lock:
            self.up, self._snapshot = 1, snapshot
        self._note(True)
        return True

    def _read(self) -> Snapshot:
        database = sql_string(self.sink.database)
        tables = tuple(row["name"] for row in self._query(
            f"SELECT name FROM system.tables WHERE database = {database} AND engine LIKE '%MergeTree' ORDER BY name"))
        parts = self._query(
            f"SELECT table, partition, count() AS parts FROM system.parts WHERE active AND database = {database} "
            f"GROUP BY table, partition ORDER BY table, partition")
        merges = self._query(
            f"SELECT table, count() AS merges FROM system.merges WHERE database = {database} GROUP BY table")
        mutations = self._query(
            f"SELECT table, count() AS pending, countIf(latest_fail_reason != '') AS failed FROM system.mutations "
            f"WHERE database = {database} AND NOT is_done AND NOT is_killed GROUP BY table")
        disks = self._query("SELECT name, free_space, total_space FROM system.disks ORDER BY name")
        return Snapshot(
            tables=tables,
            parts=tuple((row["table"], row["partition"], int(row["parts"])) for row in parts),
            merges={row["table"]: int(row["merges"]) for row in merges},
            mutations={row["table"]: (int(row["pending"]), int(row["failed"])) for row in mutations},
            disks=tuple((row["name"], int(row["free_space"]), int(row["total_space"])) for row in disks))

    def _query(self, sql: str) -> list[dict[str, Any]]:
        answer, seconds = self.sink.query_timed(sql, "JSONEachRow")
        with self._lock:
            self.durations.observe(seconds)
        return json_rows(answer)

    def _note(self, ok: bool, error: str = "") -> None:
        """Logs a change of state (failing, recovered), not every interval."""
        if ok and self._failing:
            self.log.info("ClickHouse health collection recovered", sink=self.sink.name)
        elif not ok and not self._failing:
            self.log.error("ClickHouse health collection failed; hftel_clickhouse_health_up is 0 until it works "
                           "again (logged once)", sink=self.sink.name, error=error, retry_every=self.interval)
        self._failing = not ok

    # -- the thread ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Collects now and then every `interval` seconds (from the end of one to the start of the next),
        on a thread of its own, until stop()."""
        def collecting() -> None:
            while True:
                self.collect()
                if self._stop.wait(self.interval):
                    return

        self.log.info("collecting ClickHouse health", sink=self.sink.name, every=self.interval)
        self._thread = threading.Thread(target=collecting, name="hftel-clickhouse-health", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stops the thread; waits up to `timeout` for a collection under way (it holds no lock of ours)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    # -- rendering -----------------------------------------------------------------------------------

    def lines(self) -> dict[str, list[str]]:
        """The sample lines of every health family (family name -> lines) from the last snapshot."""
        name = self.sink.name
        sink = (("sink",), (name,))
        with self._lock:
            up, errors, snapshot = self.up, self.errors, self._snapshot
            durations = self.durations.lines("hftel_clickhouse_query_duration_seconds",
                                             render_labels(*sink))
        lines: dict[str, list[str]] = {family: [] for family, _, _ in FAMILIES}
        lines["hftel_clickhouse_health_up"].append(_line("hftel_clickhouse_health_up", *sink, up))
        lines["hftel_clickhouse_health_errors"].append(_line("hftel_clickhouse_health_errors_total", *sink, errors))
        lines["hftel_clickhouse_query_duration_seconds"] = durations
        if snapshot is None:
            return lines
        database = self.sink.database
        for table, partition, parts in snapshot.parts:
            lines["hftel_clickhouse_parts"].append(_line(
                "hftel_clickhouse_parts", ("sink", "database", "table", "partition"),
                (name, database, table, partition), parts))
        for table in sorted(set(snapshot.tables) | set(snapshot.merges) | set(snapshot.mutations)):
            labels = (("sink", "database", "table"), (name, database, table))
            pending, failed = snapshot.mutations.get(table, (0, 0))
            lines["hftel_clickhouse_merges_active"].append(
                _line("hftel_clickhouse_merges_active", *labels, snapshot.merges.get(table, 0)))
            lines["hftel_clickhouse_mutations_pending"].append(
                _line("hftel_clickhouse_mutations_pending", *labels, pending))
            lines["hftel_clickhouse_mutations_failed"].append(
                _line("hftel_clickhouse_mutations_failed", *labels, failed))
        for disk, free, total in snapshot.disks:
            labels = (("sink", "disk"), (name, disk))
            lines["hftel_clickhouse_disk_free_bytes"].append(_line("hftel_clickhouse_disk_free_bytes", *labels, free))
            lines["hftel_clickhouse_disk_total_bytes"].append(_line("hftel_clickhouse_disk_total_bytes", *labels, total))
            lines["hftel_clickhouse_disk_used_bytes"].append(
                _line("hftel_clickhouse_disk_used_bytes", *labels, max(0, total - free)))
        return lines


def start_health(drain: Any, interval: float, log: Any) -> ClickHouseHealth | None:
    """The collector for the drain's sink, started; None when there is no drain (clickhouse.sink is
    'off') or `interval` is 0."""
    if drain is None or interval <= 0:
        return None
    health = ClickHouseHealth(drain.sink, interval=interval, log=log)
    health.start()
    return health


def _describe(error: BaseException) -> str:
    """What went wrong, in one line: a SinkError says it already; anything else is an answer of a shape
    the collector did not expect."""
    if isinstance(error, SinkError):
        return str(error)
    return f"ClickHouse answered something unexpected: {type(error).__name__}: {error}"


def _line(sample: str, names: tuple[str, ...], values: tuple[str, ...], value: float) -> str:
    number = str(value) if isinstance(value, int) else format_double(value)
    return f"{prefix(sample, render_labels(names, values)).decode()}{number}\n"
