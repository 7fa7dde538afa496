"""The read side: attach to a segment without ever stopping its writers, and take snapshots."""
from __future__ import annotations

import enum
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping

from hftel import _core
from hftel.errors import SegmentError
from hftel.metrics import parse_labels
from hftel.telemetry import segment_path

#: A heartbeat older than this (with the default 0.1 s interval) means the engine stopped stamping.
DEFAULT_STALE_AFTER = 2.0

_KIND = {
    _core.COUNTER: "counter",
    _core.GAUGE_INT: "gauge",
    _core.GAUGE_FLOAT: "gauge",
    _core.HISTOGRAM: "histogram",
}


class EngineStatus(enum.Enum):
    """What a reader can tell about the engine behind a segment."""

    LIVE = "live"            # heartbeat fresh, creator alive
    DEAD = "dead"            # creator gone, or heartbeat stale: the values are the last it wrote
    CLOSED = "closed"        # the engine closed the segment cleanly
    RECREATED = "recreated"  # a new segment (new epoch) now sits at the path: reattach
    GONE = "gone"            # the file was deleted


@dataclass(frozen=True)
class SegmentInfo:
    """The segment header, as read at one moment."""

    path: str
    layout_version: int
    epoch: int
    creator_pid: int
    start_time_ns: int
    heartbeat_ns: int
    engine_closed: bool
    series: int
    capacity: int
    values_used: int
    values_length: int


@dataclass(frozen=True)
class Series:
    """One series in a snapshot: a counter or gauge value, or a histogram's buckets."""

    name: str
    kind: str
    help: str
    labels: Mapping[str, str]
    value: float | int = 0
    bounds: tuple[int, ...] = ()
    cumulative: tuple[int, ...] = ()  # one per bound, then +Inf
    sum: int = 0

    @property
    def count(self) -> int:
        return self.cumulative[-1] if self.cumulative else 0

    def samples(self) -> Iterator[tuple[str, dict[str, str], float | int]]:
        """(sample name, labels, value) as the Prometheus exposition lists them."""
        labels = dict(self.labels)
        if self.kind == "counter":
            yield f"{self.name}_total", labels, self.value
        elif self.kind == "gauge":
            yield self.name, labels, self.value
        else:
            for bound, count in zip(self.bounds + ("+Inf",), self.cumulative):  # type: ignore[operator]
                yield f"{self.name}_bucket", {**labels, "le": str(bound)}, count
            yield f"{self.name}_count", labels, self.count
            yield f"{self.name}_sum", labels, self.sum

    def quantile(self, q: float) -> float:
        """An estimate of the q-quantile, interpolated inside its bucket (as histogram_quantile)."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile must be within [0, 1], got {q}")
        if self.kind != "histogram" or self.count == 0:
            return float("nan")
        rank = q * self.count
        lower, below = 0, 0
        for bound, cumulative in zip(self.bounds, self.cumulative):
            if cumulative >= rank:
                inside = cumulative - below
                return float(lower + (bound - lower) * ((rank - below) / inside if inside else 0.0))
            lower, below = bound, cumulative
        return float(self.bounds[-1])


@dataclass(frozen=True)
class Snapshot:
    """Every published series of a segment at one moment.

    >>> snap.get_sample_value("orders_total", {"side": "buy"})  # doctest: +SKIP
    42
    """

    info: SegmentInfo
    series: tuple[Series, ...] = field(default_factory=tuple)

    def samples(self) -> Iterator[tuple[str, dict[str, str], float | int]]:
        for series in self.series:
            yield from series.samples()

    def get_sample_value(self, name: str, labels: Mapping[str, str] | None = None) -> float | int | None:
        """The value of one sample, or None, like prometheus_client's registry method."""
        wanted = dict(labels or {})
        for sample_name, sample_labels, value in self.samples():
            if sample_name == name and sample_labels == wanted:
                return value
        return None

    def get(self, name: str, labels: Mapping[str, str] | None = None) -> Series | None:
        """The series with this family name and labels, or None."""
        wanted = dict(labels or {})
        for series in self.series:
            if series.name == name and dict(series.labels) == wanted:
                return series
        return None


@dataclass(frozen=True)
class Descriptor:
    """A published series as its descriptor declares it (checked, copied out of the segment)."""

    index: int
    type: int
    name: str
    kind: str
    help: str
    labels: Mapping[str, str]
    rendered_labels: str  # as the exposition writes them: side="buy",venue="X"
    bounds: tuple[int, ...]
    value_offset: int
    bucket_count: int


class Reader:
    """A read-only view of a segment, for the exporter and for tools.

    >>> reader = Reader("engine1")              # doctest: +SKIP
    >>> reader.status()                         # doctest: +SKIP
    <EngineStatus.LIVE: 'live'>
    >>> reader.snapshot().get_sample_value("orders_total")  # doctest: +SKIP
    42

    The segment is mapped read-only and checked: a truncated, forged or newer-layout file raises
    SegmentError (or LayoutVersionError) naming the problem. Descriptors are checked once, when
    first seen; values are only ever read at checked offsets. One Reader is for one thread.
    """

    def __init__(self, name_or_path: str | os.PathLike[str]):
        self._init(_core.Segment.attach(segment_path(name_or_path), False))

    @classmethod
    def from_segment(cls, segment: _core.Segment) -> "Reader":
        reader = cls.__new__(cls)
        reader._init(segment)
        return reader

    def _init(self, segment: _core.Segment) -> None:
        self._segment = segment
        self._known: list[Descriptor] = []
        self._pending: list[int] = []  # allocated but not yet published when last looked
        self._seen = 0

    @property
    def path(self) -> str:
        return self._segment.path

    def info(self) -> SegmentInfo:
        header = self._segment.header()
        return SegmentInfo(
            path=self._segment.path,
            layout_version=header["layout_version"],
            epoch=header["epoch"],
            creator_pid=header["creator_pid"],
            start_time_ns=header["start_time_ns"],
            heartbeat_ns=header["heartbeat_ns"],
            engine_closed=header["engine_state"] == _core.ENGINE_CLOSED,
            series=header["descriptor_count"],
            capacity=header["descriptor_capacity"],
            values_used=header["values_used"],
            values_length=header["values_length"],
        )

    def status(self, *, now_ns: int | None = None, stale_after: float = DEFAULT_STALE_AFTER) -> EngineStatus:
        """Tells a live engine from a dead, closed or recreated one."""
        try:
            stat = os.stat(self._segment.path)
        except FileNotFoundError:
            return EngineStatus.GONE
        if (stat.st_dev, stat.st_ino) != self._segment.identity:
            return EngineStatus.RECREATED
        info = self.info()
        if info.engine_closed:
            return EngineStatus.CLOSED
        now = time.time_ns() if now_ns is None else now_ns
        if _core.process_is_dead(info.creator_pid) or now - info.heartbeat_ns > stale_after * 1e9:
            return EngineStatus.DEAD
        return EngineStatus.LIVE

    def snapshot(self) -> Snapshot:
        """Reads every published series; never blocks a writer, never retries.

        A histogram's _count is the sum of its bucket counts read in this pass, so it always equals
        the +Inf bucket and the cumulative buckets never decrease.
        """
        self._segment.check_header()
        self.discover()
        series = []
        for known in self._known:
            if known.kind == "histogram":
                counts, total = self._segment.read_histogram(known.value_offset, known.bucket_count)
                cumulative, running = [], 0
                for count in counts:
                    running += count
                    cumulative.append(running)
                series.append(Series(known.name, known.kind, known.help, known.labels,
                                     bounds=known.bounds, cumulative=tuple(cumulative), sum=total))
            else:
                value = self._segment.read_value(known.value_offset, known.type)
                series.append(Series(known.name, known.kind, known.help, known.labels, value=value))
        return Snapshot(self.info(), tuple(series))

    def discover(self, on_refused: Callable[[int, SegmentError], None] | None = None) -> list[Descriptor]:
        """The series published since the last call, in index order.

        A forged descriptor raises SegmentError, and is kept (with all not yet looked at) to be
        refused again next time: never forgotten. With `on_refused`, it is reported there instead and
        left out for good (a published descriptor never changes), and discovery goes on.
        """
        count = self._segment.descriptor_count()
        candidates = self._pending + list(range(self._seen, count))
        self._seen = count
        self._pending = []
        found: list[Descriptor] = []
        try:
            for position, index in enumerate(candidates):
                if not self._segment.is_published(index):
                    self._pending.append(index)
                    continue
                try:
                    fields = self._segment.descriptor(index)
                except SegmentError as error:
                    if on_refused is None:
                        self._pending.extend(candidates[position:])
                        raise
                    on_refused(index, error)
                    continue
                found.append(self._describe(index, fields))
        finally:
            if found:
                self._known = sorted(self._known + found, key=lambda known: known.index)
        return sorted(found, key=lambda known: known.index)

    @staticmethod
    def _describe(index: int, fields: dict) -> Descriptor:
        return Descriptor(
            index=index,
            type=fields["type"],
            name=fields["name"],
            kind=_KIND[fields["type"]],
            help=fields["help"],
            labels=parse_labels(fields["labels"]),
            rendered_labels=fields["labels"],
            bounds=fields["bounds"],
            value_offset=fields["value_offset"],
            bucket_count=fields["bucket_count"],
        )
