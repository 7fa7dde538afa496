"""Host metrics and each attached engine's process metrics, read with psutil on a thread of their own.

What the machine under the engines is doing: CPU time per core and mode, load, memory and swap,
network and disk counters, filesystem sizes, temperatures where the kernel exposes sensors; and for
every attached segment, its engine process's CPU time, resident memory, threads, open files and
context switches. The engine process is found by the creator pid in the segment's header, and only
while the process behind that pid started before the segment was created: a pid the kernel handed to
another process since is never attributed to the engine.

A collection reads tens of /proc and /sys files (about 1 ms on a small machine, more with many
cores, disks and sensors; a statvfs on a stuck network mount would block), so it runs every scan
interval on its own thread, and a scrape renders the last snapshot, already formatted: /metrics
never waits for the kernel. A section that cannot be read (no /proc/diskstats in a container, no
sensors) leaves its families empty and is logged once.

    >>> host = HostMetrics(exporter.attachments, log, interval=1.0)  # doctest: +SKIP
    >>> host.start()                            # the first snapshot is taken, then one every second
    >>> host.lines()["hftel_host_load1"]        # family -> sample lines, rendered by selfmetrics
    ['hftel_host_load1 0.42\n']
    >>> host.stop()
"""
from __future__ import annotations

import glob
import os
import re
import threading
import time
import weakref
from types import SimpleNamespace
from typing import Any, Callable, Iterable, Sequence

import psutil

from hftel.metrics import render_labels
from hftel_exporter._exposition import format_double
from hftel_exporter.exposition import prefix

__all__ = ["FAMILIES", "OPTIONAL_FAMILIES", "HostMetrics", "start_host"]

#: (name, kind, help) of every family collected here, in output order (counters without `_total`,
#: as in hftel_exporter.selfmetrics.FAMILIES, which lists them after the exporter's process_* families).
FAMILIES: tuple[tuple[str, str, str], ...] = (
    ("hftel_host_cpu_seconds", "counter", "Seconds each logical CPU spent in each mode (psutil.cpu_times)."),
    ("hftel_host_cpus", "gauge", "Logical CPUs of the host."),
    ("hftel_host_load1", "gauge", "Load average over 1 minute."),
    ("hftel_host_load5", "gauge", "Load average over 5 minutes."),
    ("hftel_host_load15", "gauge", "Load average over 15 minutes."),
    ("hftel_host_memory_total_bytes", "gauge", "Physical memory of the host."),
    ("hftel_host_memory_available_bytes", "gauge",
     "Memory available to new work without swapping (MemAvailable: free plus reclaimable cache)."),
    ("hftel_host_swap_total_bytes", "gauge", "Swap space of the host."),
    ("hftel_host_swap_used_bytes", "gauge", "Swap space in use."),
    ("hftel_host_network_receive_bytes", "counter", "Bytes received by each network interface (lo excluded)."),
    ("hftel_host_network_transmit_bytes", "counter", "Bytes sent by each network interface (lo excluded)."),
    ("hftel_host_network_receive_errors", "counter", "Receive errors of each network interface."),
    ("hftel_host_network_transmit_errors", "counter", "Transmit errors of each network interface."),
    ("hftel_host_network_receive_drops", "counter", "Received packets each network interface dropped."),
    ("hftel_host_network_transmit_drops", "counter", "Outgoing packets each network interface dropped."),
    ("hftel_host_disk_reads_completed", "counter", "Reads completed by each disk (partitions excluded)."),
    ("hftel_host_disk_writes_completed", "counter", "Writes completed by each disk."),
    ("hftel_host_disk_read_time_seconds", "counter",
     "Seconds spent by all reads of each disk: rate(read_time) / rate(reads) is the read latency."),
    ("hftel_host_disk_write_time_seconds", "counter",
     "Seconds spent by all writes of each disk: rate(write_time) / rate(writes) is the write latency."),
    ("hftel_host_disk_io_time_seconds", "counter",
     "Seconds each disk was busy with IO: its rate is the disk's utilisation, 0 to 1."),
    ("hftel_host_filesystem_size_bytes", "gauge", "Size of each mounted filesystem."),
    ("hftel_host_filesystem_avail_bytes", "gauge",
     "Bytes of each mounted filesystem available to unprivileged users (what df shows as Avail)."),
    ("hftel_host_temperature_celsius", "gauge",
     "Temperature of each hardware sensor the kernel exposes (absent where there is none)."),
    ("hftel_engine_process_cpu_seconds", "counter", "CPU seconds the engine process spent, by mode (user, system)."),
    ("hftel_engine_process_resident_memory_bytes", "gauge", "Resident memory of the engine process."),
    ("hftel_engine_process_threads", "gauge", "Threads of the engine process."),
    ("hftel_engine_process_open_fds", "gauge", "Open file descriptors of the engine process."),
    ("hftel_engine_process_context_switches", "counter",
     "Context switches of the engine process: voluntary (it waited) or involuntary (it was preempted)."),
)

#: Families that have no sample on a machine without what they measure (a VM exposes no sensors).
OPTIONAL_FAMILIES = frozenset({"hftel_host_temperature_celsius"})

#: The modes of psutil.cpu_times() exposed (guest time is already counted in user, as in /proc/stat).
CPU_MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")

#: A per-CPU counter that drops by less than this is held at its previous value: the kernel's idle and
#: iowait times can step back a little, and Prometheus would read any drop as a reset. A larger drop
#: (a CPU taken offline and back) is passed on as the reset it is. node-exporter does the same.
CPU_JUMP_BACK_SECONDS = 3.0

#: Loopback traffic is the machine talking to itself (scrapes, ClickHouse inserts), not NIC throughput.
SKIPPED_INTERFACES = frozenset({"lo"})

#: node-exporter's default: partitions (counted again in their disk), RAM disks, loop devices, floppies.
SKIPPED_DISKS = re.compile(r"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p|mmcblk\d+p)\d+$")

#: Read-only images are full by design (snaps, CD images); listing them would only trip disk alerts.
SKIPPED_FILESYSTEMS = frozenset({"squashfs", "iso9660", "erofs", "udf"})

#: How much later than the segment the process behind its creator pid may seem to have started.
#: psutil dates processes from the boot time in /proc/stat, which is whole seconds, so a process can
#: appear up to a second early, never late, unless the wall clock was stepped since.
CREATE_TIME_SLACK = 1.0

_LOAD_FAMILIES = ("hftel_host_load1", "hftel_host_load5", "hftel_host_load15")
_NETWORK = (("receive_bytes", "bytes_recv"), ("transmit_bytes", "bytes_sent"), ("receive_errors", "errin"),
            ("transmit_errors", "errout"), ("receive_drops", "dropin"), ("transmit_drops", "dropout"))
_DISK = (("reads_completed", "read_count", 1), ("writes_completed", "write_count", 1),
         ("read_time_seconds", "read_time", 1000), ("write_time_seconds", "write_time", 1000),
         ("io_time_seconds", "busy_time", 1000))  # psutil gives the times in milliseconds
_READ_ERRORS = (OSError, RuntimeError, NotImplementedError, ValueError, psutil.Error)


class HostMetrics:
    """Collects the host's and the engine processes' metrics every `interval` seconds on a thread.

    >>> host = HostMetrics(exporter.attachments, log, interval=1.0, segment_paths=paths)  # doctest: +SKIP
    >>> host.collect()                     # one collection, on the caller's thread   # doctest: +SKIP
    >>> host.lines()["hftel_host_cpus"]                                                # doctest: +SKIP
    ['hftel_host_cpus 8\\n']

    `attachments` returns the attached segments (hftel_exporter.segments.Attachment); it is called
    from the collecting thread. `lines()` may be called from any thread.
    """

    def __init__(self, attachments: Callable[[], Iterable[Any]], log: Any, *, interval: float,
                 engine_label: str = "engine", segment_paths: Sequence[str] = ()):
        self.attachments = attachments
        self.log = log
        self.interval = interval
        self.engine_label = engine_label or "engine"
        self.segment_paths = tuple(segment_paths)
        self.last_duration = 0.0  # seconds the last collection took
        self._lines: dict[str, list[str]] = {}
        self._cpu_seen: dict[tuple[int, str], float] = {}
        self._identities: weakref.WeakKeyDictionary[Any, tuple[int, float]] = weakref.WeakKeyDictionary()
        self._noted: set[tuple] = set()
        self._stop = threading.Event()
        self._collected = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the thread ------------------------------------------------------------------------------------

    def start(self, first_within: float = 5.0) -> None:
        """Starts collecting; returns once the first snapshot is taken (or after `first_within` s)."""
        self._thread = threading.Thread(target=self._run, name="hftel-host-metrics", daemon=True)
        self._thread.start()
        self._collected.wait(first_within)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def _run(self) -> None:
        while True:
            try:
                self.collect()
            except Exception as error:  # a bug here must not end the thread: the next turn may work
                self._note(("collect", str(error)), "host metrics collection failed", error=repr(error))
            self._collected.set()
            if self.last_duration > self.interval:
                self._note(("slow",), "host metrics collection slower than the scan interval",
                           seconds=round(self.last_duration, 3), interval=self.interval)
            if self._stop.wait(self.interval):
                return

    # -- the snapshot ----------------------------------------------------------------------------------

    def lines(self) -> dict[str, list[str]]:
        """Family name -> sample lines of the last collection ({} before the first one)."""
        return dict(self._lines)

    def collect(self) -> None:
        """Reads everything once and replaces the snapshot."""
        started = time.perf_counter()
        lines: dict[str, list[str]] = {name: [] for name, _, _ in FAMILIES}
        for section in (self._cpu, self._load, self._memory, self._network, self._disks, self._filesystems,
                        self._temperatures):
            try:
                section(lines)
            except _READ_ERRORS as error:
                self._note(("section", section.__name__), "host metrics section unreadable",
                           section=section.__name__.lstrip("_"), error=f"{type(error).__name__}: {error}")
        for attachment in self.attachments():
            try:
                self._engine(lines, attachment)
            except Exception as error:  # one engine's trouble must not cost the others or the host
                self._note(("engine", attachment.engine, str(error)), "engine process metrics failed",
                           engine=attachment.engine, error=repr(error))
        self._lines = lines
        self.last_duration = time.perf_counter() - started

    def _note(self, key: tuple, event: str, **fields: Any) -> None:
        """Logs `event` the first time `key` is seen, not on every collection."""
        if key not in self._noted:
            self._noted.add(key)
            self.log.warning(event, **fields)

    # -- the host --------------------------------------------------------------------------------------

    def _cpu(self, lines: dict[str, list[str]]) -> None:
        lines["hftel_host_cpus"].append(_line("hftel_host_cpus", (), (), psutil.cpu_count() or 0))
        for cpu, times in enumerate(psutil.cpu_times(percpu=True)):
            for mode in CPU_MODES:
                seconds = getattr(times, mode, None)
                if seconds is None:
                    continue
                key = (cpu, mode)
                previous = self._cpu_seen.get(key)
                if previous is not None and previous - CPU_JUMP_BACK_SECONDS < seconds < previous:
                    seconds = previous
                self._cpu_seen[key] = seconds
                lines["hftel_host_cpu_seconds"].append(
                    _line("hftel_host_cpu_seconds_total", ("cpu", "mode"), (str(cpu), mode), float(seconds)))

    def _load(self, lines: dict[str, list[str]]) -> None:
        for name, value in zip(_LOAD_FAMILIES, psutil.getloadavg()):
            lines[name].append(_line(name, (), (), float(value)))

    def _memory(self, lines: dict[str, list[str]]) -> None:
        memory = psutil.virtual_memory()
        lines["hftel_host_memory_total_bytes"].append(_line("hftel_host_memory_total_bytes", (), (), memory.total))
        lines["hftel_host_memory_available_bytes"].append(
            _line("hftel_host_memory_available_bytes", (), (), memory.available))
        swap = psutil.swap_memory()
        lines["hftel_host_swap_total_bytes"].append(_line("hftel_host_swap_total_bytes", (), (), swap.total))
        lines["hftel_host_swap_used_bytes"].append(_line("hftel_host_swap_used_bytes", (), (), swap.used))

    def _network(self, lines: dict[str, list[str]]) -> None:
        for device, counters in sorted(psutil.net_io_counters(pernic=True).items()):
            if device in SKIPPED_INTERFACES:
                continue
            for suffix, field in _NETWORK:
                family = f"hftel_host_network_{suffix}"
                lines[family].append(_line(f"{family}_total", ("device",), (device,), getattr(counters, field)))

    def _disks(self, lines: dict[str, list[str]]) -> None:
        for device, counters in sorted((psutil.disk_io_counters(perdisk=True) or {}).items()):
            if SKIPPED_DISKS.match(device):
                continue
            for suffix, field, per_unit in _DISK:
                family = f"hftel_host_disk_{suffix}"
                value = getattr(counters, field, None)
                if value is None:  # busy_time is Linux and FreeBSD only
                    continue
                lines[family].append(_line(f"{family}_total", ("device",), (device,),
                                           value if per_unit == 1 else value / per_unit))

    def _filesystems(self, lines: dict[str, list[str]]) -> None:
        """Disk-backed filesystems, and the one holding the segments (a tmpfs: spill files grow there).

        A filesystem mounted at several places (bind mounts, systemd's private namespaces) is listed
        once, at its shortest mountpoint; one the exporter may not stat (ProtectHome=) is left out.
        """
        partitions = {part.mountpoint: part for part in psutil.disk_partitions(all=False)}
        wanted = self._segment_mountpoints()
        if wanted - partitions.keys():
            partitions.update((part.mountpoint, part) for part in psutil.disk_partitions(all=True)
                              if part.mountpoint in wanted)
        seen: set[int] = set()
        for mountpoint in sorted(partitions, key=lambda path: (len(path), path)):
            part = partitions[mountpoint]
            if part.fstype in SKIPPED_FILESYSTEMS:
                continue
            try:
                device = os.stat(mountpoint).st_dev
                usage = psutil.disk_usage(mountpoint)
            except OSError:
                continue
            if device in seen:
                continue
            seen.add(device)
            names, values = ("mountpoint", "fstype"), (mountpoint, part.fstype)
            lines["hftel_host_filesystem_size_bytes"].append(
                _line("hftel_host_filesystem_size_bytes", names, values, usage.total))
            lines["hftel_host_filesystem_avail_bytes"].append(
                _line("hftel_host_filesystem_avail_bytes", names, values, usage.free))

    def _segment_mountpoints(self) -> set[str]:
        """The mountpoints of the directories the configured segment paths and globs live in."""
        mountpoints = set()
        for pattern in self.segment_paths:
            directory = os.path.dirname(os.path.abspath(pattern))
            if glob.has_magic(directory) or not os.path.isdir(directory):
                continue
            while not os.path.ismount(directory):
                directory = os.path.dirname(directory)
            mountpoints.add(directory)
        return mountpoints

    def _temperatures(self, lines: dict[str, list[str]]) -> None:
        if not hasattr(psutil, "sensors_temperatures"):  # not on every platform
            return
        for sensor, entries in sorted(psutil.sensors_temperatures().items()):
            labels: set[str] = set()
            for index, entry in enumerate(entries):
                label = entry.label or f"temp{index + 1}"
                if label in labels:  # two inputs of one chip with the same name: keep both apart
                    label = f"{label} {index + 1}"
                labels.add(label)
                lines["hftel_host_temperature_celsius"].append(
                    _line("hftel_host_temperature_celsius", ("sensor", "label"), (sensor, label), float(entry.current)))

    # -- the engine processes --------------------------------------------------------------------------

    def _identity(self, attachment: Any) -> tuple[int, float]:
        """The creator pid and creation time (Unix seconds) of a segment; both are fixed at creation."""
        identity = self._identities.get(attachment)
        if identity is None:
            info = attachment.reader.info()
            identity = self._identities[attachment] = (info.creator_pid, info.start_time_ns / 1e9)
        return identity

    def _engine(self, lines: dict[str, list[str]], attachment: Any) -> None:
        """The engine's process metrics, when its creator pid still names the process that created it."""
        engine = attachment.engine
        pid, created = self._identity(attachment)
        if pid <= 0:  # never a process of its own (kill(0) would mean our process group)
            return
        try:
            process = psutil.Process(pid)
            with process.oneshot():
                if process.create_time() > created + CREATE_TIME_SLACK:
                    self._note(("reused", engine, pid), "engine pid now names another process; not attributed",
                               engine=engine, pid=pid)
                    return
                if process.status() == psutil.STATUS_ZOMBIE:
                    return
                cpu = process.cpu_times()
                resident = process.memory_info().rss
                threads = process.num_threads()
                switches = process.num_ctx_switches()
                fds = self._open_fds(process, engine)
        except psutil.ZombieProcess:  # exited, not yet reaped by its parent
            return
        except psutil.NoSuchProcess:
            if _exists(pid):  # alive (kill says so) but not in our /proc: ProtectProc=, another pid namespace
                self._note(("invisible", engine, pid), "engine process not visible in /proc; no process metrics",
                           engine=engine, pid=pid)
            return
        except psutil.AccessDenied as error:
            self._note(("denied", engine, pid), "engine process unreadable; no process metrics",
                       engine=engine, pid=pid, error=str(error))
            return
        one = ((self.engine_label,), (engine,))
        for mode in ("user", "system"):
            lines["hftel_engine_process_cpu_seconds"].append(_line(
                "hftel_engine_process_cpu_seconds_total", (self.engine_label, "mode"), (engine, mode),
                float(getattr(cpu, mode))))
        lines["hftel_engine_process_resident_memory_bytes"].append(
            _line("hftel_engine_process_resident_memory_bytes", *one, resident))
        lines["hftel_engine_process_threads"].append(_line("hftel_engine_process_threads", *one, threads))
        if fds is not None:
            lines["hftel_engine_process_open_fds"].append(_line("hftel_engine_process_open_fds", *one, fds))
        for kind in ("voluntary", "involuntary"):
            lines["hftel_engine_process_context_switches"].append(_line(
                "hftel_engine_process_context_switches_total", (self.engine_label, "kind"), (engine, kind),
                getattr(switches, kind)))

    def _open_fds(self, process: psutil.Process, engine: str) -> int | None:
        """Open descriptors, or None when /proc/PID/fd is not ours to list (another user's process)."""
        try:
            return process.num_fds()
        except psutil.AccessDenied:
            self._note(("fds", engine, process.pid), "engine process's file descriptors unreadable (another user)",
                       engine=engine, pid=process.pid)
            return None


def start_host(config: SimpleNamespace, attachments: Callable[[], Iterable[Any]], log: Any) -> HostMetrics | None:
    """The collector the [host] and [segments] settings describe, started; None when host.enabled is false."""
    if not config.host.enabled:
        return None
    host = HostMetrics(attachments, log, interval=config.segments.scan_interval,
                       engine_label=config.segments.engine_label, segment_paths=config.segments.paths)
    host.start()
    return host


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, and is someone else's
        return True
    return True


def _line(sample: str, names: Sequence[str], values: Sequence[str], value: float) -> str:
    number = str(value) if isinstance(value, int) else format_double(value)
    return f"{prefix(sample, render_labels(tuple(names), tuple(values))).decode()}{number}\n"
