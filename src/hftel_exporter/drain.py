"""The drain: audit rows and log events from the rings (and spill files) into the spool, then ClickHouse.

    >>> drain = Drain(spool, sink, batch_rows=100_000, batch_interval=1.0, log=log)
    >>> drain.follow(exporter.segments.attached.values())   # which segments to drain
    >>> drain.collect()    # rings -> spool; frees the rings
    >>> drain.deliver()    # spool -> ClickHouse; retires what landed

Every row takes the same road: ring -> numpy batch -> spool entry (written, fsynced) -> the ring is
freed -> insert with the entry's deduplication token -> the entry is retired. A crash anywhere
leaves each row in the ring or in the spool, and a replay inserts with the same token, so ClickHouse
keeps one copy. On start the drain seeks each ring past what the spool already holds.

Nothing is dropped on the way. A full spool stops collection (the rings fill, engines spill to their
spill files, and `hftel_spool_full` says so); a failed insert is retried with exponential backoff and
full jitter; an entry ClickHouse refuses for good (a permanent error, five times) is moved aside to
the spool's quarantine directory, counted and logged, and the drain goes on.
"""
from __future__ import annotations

import errno
import json
import os
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable

import lz4.frame

from hftel import _core
from hftel.errors import HftelError, RingError
from hftel.reader import EngineStatus
from hftel.rings import AuditConsumer, LogConsumer
from hftel.schemas import AUDIT_TABLES, LOGS_HFT
from hftel.spill import SpillReader
from hftel.telemetry import spill_path
from hftel_exporter.selfmetrics import Histogram
from hftel_exporter.sinks import Sink, SinkError
from hftel_exporter.spool import Spool, SpoolEntry, SpoolFullError

TABLES = {table.name: table for table in AUDIT_TABLES}
INSERT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
QUARANTINE_AFTER = 5  # permanent failures of one entry before it is moved aside
SPILL_OFFSETS = "spill-offsets.json"
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


@dataclass
class _Pending:
    """Audit rows polled from one ring and not yet spooled (the ring still holds them)."""

    start: int
    first_polled: float = 0.0
    end: int = 0
    rows: dict[str, list[Any]] = field(default_factory=dict)  # table -> framed parts, in ring order
    table_rows: dict[str, int] = field(default_factory=dict)
    count: int = 0


def source_key(path: str, epoch: int) -> str:
    """Names one life of one segment (its file and epoch) in the spool's manifests and tokens."""
    return f"{os.path.basename(path)}-{epoch:016x}"


class _Source:
    """One segment being drained: its rings' consumers and its spill file."""

    def __init__(self, path: str, engine: str):
        segment = _core.Segment.attach(path, True)
        self.path = path
        self.engine = engine
        self.key = source_key(path, segment.header()["epoch"])
        self.audit = _consumer(AuditConsumer, segment)
        self.logs = _consumer(LogConsumer, segment)
        self.pending = _Pending(self.audit.position) if self.audit else None
        self.logs_waiting_since = 0.0  # when unspooled log events were first seen in the ring (0: none)
        self.spill = spill_path(path)


def _compress(parts: list[Any]) -> bytes:
    """One LZ4 frame of the parts: audit records are mostly NUL padding, so this writes (and fsyncs)
    a fraction of the bytes, and ClickHouse reads the frame as it is (file(..., 'lz4'))."""
    compressor = lz4.frame.LZ4FrameCompressor(block_size=lz4.frame.BLOCKSIZE_MAX4MB)
    return compressor.begin() + b"".join(compressor.compress(part) for part in parts) + compressor.flush()


def _consumer(kind: type, segment: Any) -> Any:
    try:
        return kind(segment)
    except RingError:
        return None  # this segment was made without that ring


class Drain:
    """Moves audit rows and log events from the attached segments through the spool to a sink."""

    def __init__(self, spool: Spool, sink: Sink, *, batch_rows: int = 100_000, batch_interval: float = 1.0,
                 log: Any, log_file: Any = None, prepare: Any = None, clock: Any = time.monotonic):
        self.spool = spool
        self.sink = sink
        self.batch_rows = batch_rows
        self.batch_interval = batch_interval
        self.log = log
        self.log_file = log_file
        self.clock = clock
        self._prepare = prepare  # makes the tables (ddl.migrate) before the first insert; retried until it works
        self.sources: dict[str, _Source] = {}
        self.refused: set[str] = set()
        # metrics
        self.rows_spooled: Counter = Counter()     # (engine, origin) -> rows
        self.rows_inserted: Counter = Counter()    # table -> rows
        self.write_failures: Counter = Counter()   # (table, reason) -> failed insert attempts
        self.log_file_failures = 0
        self.spool_refusals = 0  # collection passes stopped by a full spool or disk
        self.quarantined = 0
        self.clickhouse_up = 0
        self.inserts = Histogram(INSERT_BUCKETS)  # seconds per insert
        self._attempts: dict[str, int] = {}
        self._done: dict[str, set[str]] = {}
        self._retry_at = 0.0
        self._backoff = 0.0
        self._spill_offsets = self._load_spill_offsets()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- which segments ------------------------------------------------------------------------------

    def follow(self, attachments: Iterable[Any]) -> None:
        """Drains exactly these attachments (objects with path, engine and reader): opens new ones
        writable, seeks each past what the spool holds, and drops those that went away."""
        wanted = {source_key(attachment.path, attachment.reader.info().epoch): attachment
                  for attachment in attachments}
        for key in [key for key in self.sources if key not in wanted]:
            self._flush(self.sources.pop(key), force=True)
        for key, attachment in wanted.items():
            if key in self.sources or key in self.refused:
                continue
            try:
                source = _Source(attachment.path, attachment.engine)
            except (OSError, HftelError) as error:
                self.refused.add(key)
                self.log.error("cannot drain segment", path=attachment.path, error=str(error),
                               hint="the exporter needs write access to drain (mode 0660, group hftel)")
                continue
            self._resume(source)
            self.sources[source.key] = source

    def _resume(self, source: _Source) -> None:
        """Seeks the rings past rows already spooled by an earlier run (kept until the spool is replayed)."""
        ends = {"audit": 0, "logs": 0}
        for entry in self.spool.entries():
            manifest = entry.manifest
            if manifest.get("source") == source.key and manifest.get("origin") in ends:
                ends[manifest["origin"]] = max(ends[manifest["origin"]], manifest["end"])
        for origin, consumer in (("audit", source.audit), ("logs", source.logs)):
            if consumer is not None and ends[origin] > consumer.position:
                consumer.seek(ends[origin])
                consumer.release()
        if source.pending is not None:
            source.pending = _Pending(source.audit.position)

    # -- rings and spill files -> spool --------------------------------------------------------------

    def collect(self) -> int:
        """One pass over every source: poll, and spool what is due. Returns rows spooled."""
        spooled = 0
        for source in list(self.sources.values()):
            try:
                spooled += self._collect_audit(source)
                spooled += self._collect_logs(source)
                spooled += self._collect_spill(source)
            except OSError as error:
                if isinstance(error, SpoolFullError) or error.errno in _DISK_FULL:
                    self._note_spool_refusal(error)
                    break  # the rings hold the rows; engines spill when they fill
                self._detach(source, error)
            except (RingError, ValueError) as error:
                self._detach(source, error)
        return spooled

    def _note_spool_refusal(self, error: OSError) -> None:
        """Logs once per episode that the spool takes no more (cap or disk full)."""
        self.spool_refusals += 1
        if self.spool_refusals == 1 or self.spool_refusals % 1000 == 0:
            self.log.critical("the spool takes no more rows; the rings and spill files hold them", error=str(error),
                              refusals=self.spool_refusals)

    def _detach(self, source: _Source, error: Exception) -> None:
        self.log.error("drain failed for a segment; detaching it", path=source.path, error=str(error))
        self.sources.pop(source.key, None)
        self.refused.add(source.key)

    def _collect_audit(self, source: _Source) -> int:
        if source.audit is None:
            return 0
        pending = source.pending
        assert pending is not None
        while pending.count < self.batch_rows:
            batch = source.audit.poll_framed(self.batch_rows - pending.count)
            if batch.count == 0:
                break
            if pending.count == 0:
                pending.first_polled = self.clock()
            for name, framed in batch.tables.items():
                pending.rows.setdefault(name, []).append(framed)
                pending.table_rows[name] = pending.table_rows.get(name, 0) + batch.rows[name]
            pending.count += batch.count
            pending.end = batch.end
            if batch.unknown:
                self.log.warning("audit records of unknown types skipped", path=source.path, types=batch.unknown)
        return self._flush(source)

    def _flush(self, source: _Source, force: bool = False) -> int:
        pending = source.pending
        if pending is None or pending.end == pending.start:
            return 0
        stats = source.audit.stats()
        pressed = (stats["tail"] - stats["head"]) * 2 >= stats["capacity"]
        due = pending.count >= self.batch_rows or self.clock() - pending.first_polled >= self.batch_interval
        if not (due or pressed or force):
            return 0
        files, manifest_tables = {}, {}
        for name, parts in pending.rows.items():
            # The records as the ring framed them: no decoding, no copy but the spool's write.
            files[f"{name}.rows.lz4"] = _compress(parts)
            manifest_tables[name] = {"rows": pending.table_rows[name], "file": f"{name}.rows.lz4", "layout": "framed",
                                     "token": f"{source.key}:audit:{pending.start}-{pending.end}:{name}"}
        self.spool.put(f"{source.key}-audit-{pending.start}",
                       files, {"source": source.key, "engine": source.engine, "origin": "audit",
                               "start": pending.start, "end": pending.end, "tables": manifest_tables})
        source.audit.release()
        self.rows_spooled[(source.engine, "ring")] += pending.count
        count = pending.count
        source.pending = _Pending(pending.end)
        return count

    def _logs_due(self, source: _Source, force: bool) -> bool:
        """Whether the log ring's events are due for the spool: like audit rows, batched for
        `batch_interval` (one spool entry and one insert per interval, not one per poll), sooner when
        the ring is half full or the drain stops."""
        stats = source.logs.stats()
        if stats["tail"] == source.logs.position:
            source.logs_waiting_since = 0.0
            return False
        now = self.clock()
        if not source.logs_waiting_since:
            source.logs_waiting_since = now
        pressed = (stats["tail"] - stats["head"]) * 2 >= stats["capacity"]
        return force or pressed or now - source.logs_waiting_since >= self.batch_interval

    def _collect_logs(self, source: _Source, force: bool = False) -> int:
        if source.logs is None or not self._logs_due(source, force):
            return 0
        source.logs_waiting_since = 0.0
        start = source.logs.position
        batch = source.logs.poll(self.batch_rows)
        if not batch.events:
            if batch.end != start:
                source.logs.release()  # padding only
            return 0
        from hftel_exporter.logfiles import log_line, log_row

        data = "".join(json.dumps(log_row(event, source.engine), ensure_ascii=False) + "\n"
                       for event in batch.events).encode()
        try:
            self.spool.put(f"{source.key}-logs-{start}", {f"{LOGS_HFT.name}.rows.lz4": _compress([data])},
                           {"source": source.key, "engine": source.engine, "origin": "logs", "start": start,
                            "end": batch.end, "tables": {LOGS_HFT.name: {
                                "rows": len(batch.events), "file": f"{LOGS_HFT.name}.rows.lz4",
                                "token": f"{source.key}:logs:{start}-{batch.end}:{LOGS_HFT.name}"}}})
        except BaseException:
            source.logs.seek(start)  # read them again next time
            raise
        # The file after the spool: a full spool then never writes the same lines twice.
        if self.log_file is not None:
            try:
                self.log_file.write([log_line(event, source.engine) for event in batch.events])
            except OSError as error:
                self.log_file_failures += 1
                self.log.error("cannot write the log file", error=str(error))
        source.logs.release(batch)
        return len(batch.events)

    def _collect_spill(self, source: _Source) -> int:
        try:
            status = os.stat(source.spill)
        except FileNotFoundError:
            return 0
        known = self._spill_offsets.get(source.spill, {})
        offset = known.get("offset", 0) if known.get("inode") == status.st_ino else 0
        if status.st_size <= max(offset, 1):
            return 0
        batch = SpillReader(source.spill).read(offset, max_bytes=64 << 20)
        for problem in batch.corrupt:
            self.log.error("spill file damaged; skipped to the next frame", path=source.spill, problem=problem)
        if batch.next_offset == offset or batch.count == 0:
            self._save_spill_offset(source.spill, status.st_ino, batch.next_offset)
            return 0
        identity = f"{os.path.basename(source.spill)}-{status.st_ino}"
        files, tables = {}, {}
        for name, rows in batch.tables.items():
            files[f"{name}.rows.lz4"] = _compress([rows.tobytes()])
            tables[name] = {"rows": len(rows), "file": f"{name}.rows.lz4", "layout": "rows",
                            "token": f"{identity}:spill:{offset}-{batch.next_offset}:{name}"}
        self.spool.put(f"{identity}-spill-{offset}", files,
                       {"source": source.key, "engine": source.engine, "origin": "spill", "spill": source.spill,
                        "inode": status.st_ino, "start": offset, "end": batch.next_offset, "tables": tables})
        self._save_spill_offset(source.spill, status.st_ino, batch.next_offset)
        self.rows_spooled[(source.engine, "spill")] += batch.count
        return batch.count

    def _load_spill_offsets(self) -> dict[str, dict[str, int]]:
        offsets: dict[str, dict[str, int]] = {}
        try:
            with open(os.path.join(self.spool.directory, SPILL_OFFSETS), "rb") as file:
                offsets = json.load(file)
        except FileNotFoundError:
            pass
        for entry in self.spool.entries():  # an entry spooled just before a crash may be ahead of the file
            manifest = entry.manifest
            if manifest.get("origin") == "spill":
                known = offsets.get(manifest["spill"], {})
                if known.get("inode") != manifest["inode"] or known.get("offset", 0) < manifest["end"]:
                    offsets[manifest["spill"]] = {"inode": manifest["inode"], "offset": manifest["end"]}
        return offsets

    def _save_spill_offset(self, path: str, inode: int, offset: int) -> None:
        if self._spill_offsets.get(path) == {"inode": inode, "offset": offset}:
            return
        self._spill_offsets[path] = {"inode": inode, "offset": offset}
        target = os.path.join(self.spool.directory, SPILL_OFFSETS)
        temporary = f"{target}.tmp"
        with open(temporary, "w") as file:
            json.dump(self._spill_offsets, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)

    # -- spool -> sink -------------------------------------------------------------------------------

    def deliver(self, limit: int = 64) -> int:
        """Inserts spooled entries, oldest first, and retires those that landed. Returns rows inserted.
        Stops at the first failure; the next call retries it after the backoff."""
        if self.clock() < self._retry_at:
            return 0
        if self._prepare is not None:
            try:
                self._prepare()
            except SinkError as error:
                self._wait_to_retry(error, "cannot create the tables yet; the spool keeps the rows")
                return 0
            self._prepare = None
        inserted = 0
        for entry in self.spool.entries()[:limit]:
            try:
                inserted += self._deliver(entry)
            except SinkError as error:
                self._failed(entry, error)
                return inserted
            self._backoff = 0.0
        return inserted

    def _deliver(self, entry: SpoolEntry) -> int:
        done = self._done.setdefault(entry.name, set())
        inserted = 0
        for name, table in entry.manifest["tables"].items():
            if name in done:
                continue
            started = time.perf_counter()
            if name == LOGS_HFT.name:
                self.sink.insert_logs(entry.file(table["file"]), table["token"])
            else:
                self.sink.insert_audit(TABLES[name], entry.file(table["file"]), table["token"],
                                       framed=table.get("layout") == "framed")
            self.inserts.observe(time.perf_counter() - started)
            self.clickhouse_up = 1
            done.add(name)
            self.rows_inserted[name] += table["rows"]
            inserted += table["rows"]
        self.spool.retire(entry)
        self._done.pop(entry.name, None)
        self._attempts.pop(entry.name, None)
        return inserted

    def _failed(self, entry: SpoolEntry, error: SinkError) -> None:
        table = next((name for name in entry.manifest["tables"] if name not in self._done.get(entry.name, ())), "")
        self.write_failures[(table, "transient" if error.transient else "permanent")] += 1
        attempts = self._attempts[entry.name] = self._attempts.get(entry.name, 0) + 1
        if not error.transient and attempts >= QUARANTINE_AFTER:
            where = self.spool.quarantine(entry)
            self.quarantined += 1
            self._attempts.pop(entry.name, None)
            self.log.critical("ClickHouse refused a spooled batch for good; moved it aside", entry=entry.name,
                              moved_to=where, error=str(error))
            return
        self._wait_to_retry(error, "insert failed; will retry", entry=entry.name, table=table, attempt=attempts)

    def _wait_to_retry(self, error: SinkError, event: str, **fields: Any) -> None:
        """Exponential backoff with full jitter (0.1 s doubling to 30 s), so exporters do not retry in step."""
        if error.transient:
            self.clickhouse_up = 0
        self._backoff = min(30.0, max(0.1, self._backoff * 2))
        delay = random.uniform(0, self._backoff)
        self._retry_at = self.clock() + delay
        self.log.warning(event, retry_in=round(delay, 3), error=str(error), **fields)

    def check_sink(self) -> None:
        """Refreshes clickhouse_up while there is nothing to insert."""
        self.clickhouse_up = int(self.sink.ping())

    # -- threads -------------------------------------------------------------------------------------

    def start(self, attachments: Any) -> None:
        """Runs collect() and deliver() on threads of their own until stop(). `attachments` is a
        callable returning the attachments to drain (the exporter's SegmentSet)."""
        def collecting() -> None:
            while not self._stop.is_set():
                try:
                    self.follow(attachments())
                    if self.collect() == 0:
                        self._stop.wait(0.02)
                except SpoolFullError:
                    self._stop.wait(0.1)
                except Exception as error:  # keep draining whatever else can be drained
                    self.log.exception("collect failed", error=str(error))
                    self._stop.wait(1.0)

        def delivering() -> None:
            last_ping = 0.0
            while not self._stop.is_set():
                try:
                    if self.deliver() == 0:
                        if not self.spool.entries() and self.clock() - last_ping >= 5.0:
                            self.check_sink()
                            last_ping = self.clock()
                        self._stop.wait(max(0.02, min(1.0, self._retry_at - self.clock())))
                except Exception as error:
                    self.log.exception("deliver failed", error=str(error))
                    self._stop.wait(1.0)

        self._threads = [threading.Thread(target=collecting, name="hftel-drain-collect", daemon=True),
                         threading.Thread(target=delivering, name="hftel-drain-deliver", daemon=True)]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stops both threads, spools what is pending and closes the sink."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        for source in list(self.sources.values()):
            try:
                self._flush(source, force=True)
                self._collect_logs(source, force=True)
            except (OSError, SpoolFullError) as error:
                self.log.warning("pending rows left in the ring", path=source.path, error=str(error))
        self.sink.close()
