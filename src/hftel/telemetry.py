"""The engine's entry point: create or attach a segment and register metrics on it."""
from __future__ import annotations

import os
import re
import threading
import weakref
from pathlib import Path
from typing import Any, Sequence

from hftel import _core
from hftel.errors import RegistrationError
from hftel.metrics import Buckets, MetricFamily, as_buckets, check_label_names, check_metric_name

DEFAULT_DIRECTORY = "/dev/shm"
DEFAULT_CAPACITY = 16384
DEFAULT_VALUES_BYTES = 32 * 1024 * 1024
DEFAULT_HEARTBEAT_INTERVAL = 0.1
DEFAULT_AUDIT_RING_BYTES = 16 * 1024 * 1024
DEFAULT_LOG_RING_BYTES = 16 * 1024 * 1024
SPILL_SUFFIX = ".spill"
_SEGMENT_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


#: Segments and spill files are built under `<path>.tmp-...` and then moved into place.
_TEMPORARY_MARKER = ".tmp-"


def is_segment_file(path: str | os.PathLike[str]) -> bool:
    """False for the files that sit beside segments: spill files, and the temporary files segments
    and spill files are built in."""
    name = os.path.basename(os.fspath(path))
    return not name.endswith(SPILL_SUFFIX) and _TEMPORARY_MARKER not in name


def spill_path(segment: str | os.PathLike[str]) -> str:
    """Where writers to this segment spill audit rows when its ring is full: next to the segment."""
    return os.fspath(segment) + SPILL_SUFFIX


def segment_path(name_or_path: str | os.PathLike[str]) -> str:
    """A bare name maps to $HFTEL_SHM_DIR/hftel-NAME (default /dev/shm); a path is used as it is."""
    text = os.fspath(name_or_path)
    if "/" in text:
        return text
    if not _SEGMENT_NAME.match(text):
        raise ValueError(f"segment name {text!r} may hold only letters, digits, '_', '.' and '-'")
    return str(Path(os.environ.get("HFTEL_SHM_DIR", DEFAULT_DIRECTORY)) / f"hftel-{text}")


def new_source_id() -> int:
    """A random, non-zero 64-bit source id: unique across writers and restarts without coordination."""
    return int.from_bytes(os.urandom(8), "little") or 1


# Writers in this process; a forked child must write as a new source, not as its parent.
_forked_writers: "weakref.WeakSet[Any]" = weakref.WeakSet()


def _reseed_after_fork() -> None:
    for writer in list(_forked_writers):
        if hasattr(writer, "source_id"):
            writer.reseed(new_source_id())
        else:
            writer.reseed()


os.register_at_fork(after_in_child=_reseed_after_fork)


class Telemetry:
    """The engine side of hftel: a segment to record counters, gauges and histograms into.

    >>> tel = Telemetry.create("/tmp/hftel-doc")
    >>> orders = tel.counter("orders", "Orders sent.", labels=("side",))
    >>> orders.labels(side="buy").inc()
    >>> latency = tel.histogram("order_latency_ns", "Order round trip.")
    >>> latency.observe(12_500)
    >>> tel.snapshot().get_sample_value("orders_total", {"side": "buy"})
    1
    >>> tel.close()

    Recording (`inc`, `set`, `observe`) is safe from any thread of any process. A handle that only
    one thread ever writes can skip the LOCK prefix: pass `single_writer=True` when registering.
    Other processes share the same series by attaching: `Telemetry.attach(path)`.
    """

    def __init__(self, segment: _core.Segment, *, owner: bool, single_writer: bool = False):
        self._segment = segment
        self._owner = owner
        self._single_writer = single_writer
        self._heartbeat: threading.Thread | None = None
        self._closed = False
        self._pid = os.getpid()  # a forked child must not close its parent's segment
        self._audit: Any = None
        self._log_writer: Any = None

    @classmethod
    def create(
        cls,
        name_or_path: str | os.PathLike[str],
        *,
        capacity: int = DEFAULT_CAPACITY,
        values_bytes: int = DEFAULT_VALUES_BYTES,
        mode: int = 0o600,
        heartbeat_interval: float | None = DEFAULT_HEARTBEAT_INTERVAL,
        single_writer: bool = False,
        audit_ring_bytes: int = DEFAULT_AUDIT_RING_BYTES,
        log_ring_bytes: int = DEFAULT_LOG_RING_BYTES,
    ) -> "Telemetry":
        """Creates a new segment (a new epoch), replacing any segment at that path atomically.

        `capacity` is the number of series, `values_bytes` the space for their values, `mode` the
        file's permissions (0600, or 0640 with a group the exporter runs in). `audit_ring_bytes` and
        `log_ring_bytes` size the two rings (powers of two, 64 KiB to 1 GiB; 0 for none). A background thread
        that holds no GIL stamps the header's heartbeat every `heartbeat_interval` seconds; pass
        None to stamp it yourself with heartbeat().
        """
        segment = _core.Segment.create(segment_path(name_or_path), capacity, values_bytes, mode,
                                       audit_ring_bytes, log_ring_bytes)
        telemetry = cls(segment, owner=True, single_writer=single_writer)
        if heartbeat_interval is not None:
            telemetry._start_heartbeat(heartbeat_interval)
        return telemetry

    @classmethod
    def attach(cls, name_or_path: str | os.PathLike[str], *, single_writer: bool = False) -> "Telemetry":
        """Attaches to a segment another process created, to record into it as well."""
        return cls(_core.Segment.attach(segment_path(name_or_path), True), owner=False, single_writer=single_writer)

    @property
    def path(self) -> str:
        return self._segment.path

    @property
    def epoch(self) -> int:
        return self._segment.header()["epoch"]

    # -- registration (slow path) ------------------------------------------------------------------

    def counter(self, name: str, help: str, labels: Sequence[str] = (), *, single_writer: bool | None = None) -> Any:
        """A counter (integers, only up). Like prometheus_client, `name` may end in `_total` or not."""
        check_metric_name(name)
        family = name[: -len("_total")] if name.endswith("_total") else name
        return self._define("counter", family, labels, lambda rendered: self._segment.counter(
            self._segment.register(_core.COUNTER, family, rendered, help), self._writer_mode(single_writer)))

    def gauge(
        self,
        name: str,
        help: str,
        labels: Sequence[str] = (),
        *,
        kind: str = "float",
        single_writer: bool | None = None,
    ) -> Any:
        """A gauge of floats (`kind="float"`, the default) or of 64-bit integers (`kind="int"`)."""
        check_metric_name(name)
        if kind not in ("float", "int"):
            raise RegistrationError(f"gauge {name!r}: kind must be 'float' or 'int', got {kind!r}")
        code = _core.GAUGE_FLOAT if kind == "float" else _core.GAUGE_INT
        bind = self._segment.float_gauge if kind == "float" else self._segment.int_gauge
        return self._define("gauge", name, labels, lambda rendered: bind(
            self._segment.register(code, name, rendered, help), self._writer_mode(single_writer)))

    def histogram(
        self,
        name: str,
        help: str,
        labels: Sequence[str] = (),
        *,
        buckets: Buckets | Sequence[int] | None = None,
        single_writer: bool | None = None,
    ) -> Any:
        """A histogram of integers (nanoseconds by convention) in fixed buckets.

        `buckets` is None for the default log-linear layout (64 ns to 17.2 s), a Buckets from
        log_linear_buckets(), or a list of inclusive integer upper bounds.
        """
        check_metric_name(name)
        layout = as_buckets(buckets)
        return self._define("histogram", name, labels, lambda rendered: self._segment.histogram(
            self._segment.register(_core.HISTOGRAM, name, rendered, help, layout.scheme, layout.bounds,
                                   layout.low_exponent, layout.high_exponent, layout.sub_bucket_bits),
            self._writer_mode(single_writer)), reserved=("le",))

    def _define(self, kind: str, name: str, labels: Sequence[str], make: Any, reserved: Sequence[str] = ()) -> Any:
        labelnames = check_label_names(name, labels, reserved)
        if not labelnames:
            return make("")
        return MetricFamily(kind, name, labelnames, make)

    def _writer_mode(self, single_writer: bool | None) -> bool:
        return self._single_writer if single_writer is None else single_writer

    # -- audit rows and log events ------------------------------------------------------------------

    @property
    def audit(self) -> Any:
        """This process's audit writer: `tel.audit.order(...)`, `.risk_decision(...)`, ...

        One source per process (a random 64-bit source id, sequence numbers from 1); a forked child
        gets a source of its own. A full ring sends rows to the spill file next to the segment.
        """
        if self._audit is None:
            from hftel import _rings

            self._audit = _rings.AuditWriter(self._segment, spill_path(self.path), new_source_id())
            _forked_writers.add(self._audit)
        return self._audit

    @property
    def log_writer(self) -> Any:
        """This process's log ring writer; engine code logs through structlog (hftel.logs.configure)."""
        if self._log_writer is None:
            from hftel import _rings

            self._log_writer = _rings.LogWriter(self._segment)
            _forked_writers.add(self._log_writer)
        return self._log_writer

    # -- liveness ------------------------------------------------------------------------------------

    def heartbeat(self) -> None:
        """Stamps the header's heartbeat now (only needed with heartbeat_interval=None)."""
        self._segment.heartbeat()

    def _start_heartbeat(self, interval: float) -> None:
        if interval <= 0:
            raise ValueError(f"heartbeat_interval must be > 0 seconds, got {interval}")
        self._heartbeat = threading.Thread(
            target=self._segment.run_heartbeat, args=(int(interval * 1e9),), name="hftel-heartbeat", daemon=True)
        self._heartbeat.start()

    def snapshot(self) -> Any:
        """A snapshot of every series, read as the exporter reads it."""
        from hftel.reader import Reader

        return Reader.from_segment(self._segment).snapshot()

    def close(self) -> None:
        """Marks the segment closed (readers see a clean shutdown) and stops the heartbeat.

        The mapping itself stays valid until the last handle on it is gone, so a handle used
        after close() never touches unmapped memory.
        """
        if self._closed:
            return
        self._closed = True
        if self._heartbeat is not None:
            self._segment.stop_heartbeat()
            self._heartbeat.join()
        if self._owner and os.getpid() == self._pid:
            self._segment.set_engine_state(_core.ENGINE_CLOSED)

    def __del__(self) -> None:
        # The heartbeat thread holds only the Segment; stop it when the engine drops its Telemetry.
        if self._heartbeat is not None:
            self._segment.stop_heartbeat()

    def __enter__(self) -> "Telemetry":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Telemetry {self.path} epoch={self.epoch:#x}>"
