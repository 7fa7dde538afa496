"""Which segments the exporter reads: attaching, discovering series, and following engines' lives.

A SegmentSet turns the configured paths and globs into attached segments. Each scan picks up new
segment files, reattaches when an engine recreated its segment (a new epoch at the same path),
detaches when one is deleted, and refuses a forged or newer-layout file with one log line, not one
per scrape. An engine that died keeps its segment attached: its last values stay visible, and its
`hftel_engine_up` says 0.
"""
from __future__ import annotations

import glob
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable

from hftel import _core, _rings
from hftel.errors import LayoutVersionError, SegmentError
from hftel.reader import DEFAULT_STALE_AFTER, EngineStatus, Reader
from hftel.telemetry import is_segment_file
from hftel_exporter.exposition import SeriesSource

RING_KINDS = {"audit": _rings.AUDIT, "log": _rings.LOG}


def engine_name(path: str) -> str:
    """The engine label of a segment: its file name without the `hftel-` prefix."""
    name = os.path.basename(path)
    return name[len("hftel-"):] if name.startswith("hftel-") and len(name) > len("hftel-") else name


def error_kind(error: Exception) -> str:
    if isinstance(error, LayoutVersionError):
        return "segment_version"
    if isinstance(error, SegmentError):
        return "segment_corrupt"
    return "segment_unreadable"


class Attachment:
    """One attached segment and the series found in it so far.

    >>> attachment = Attachment.open("/dev/shm/hftel-engine1")  # doctest: +SKIP
    >>> attachment.discover(log, Counter())                     # doctest: +SKIP
    True
    >>> attachment.engine, len(attachment.sources)             # doctest: +SKIP
    ('engine1', 12)
    """

    def __init__(self, path: str, segment: _core.Segment, engine: str):
        self.path = path
        self.engine = engine
        self.segment = segment
        self.reader = Reader.from_segment(segment)
        self.length = segment.header()["segment_length"]
        self.sources: list[SeriesSource] = []
        self.rings = {name: _rings.Ring(segment, kind) for name, kind in RING_KINDS.items()}

    @classmethod
    def open(cls, path: str, engine: str | None = None) -> "Attachment":
        return cls(path, _core.Segment.attach(path, False), engine or engine_name(path))

    def discover(self, log: Any, errors: Counter) -> bool:
        """Adds series published since the last call; True when there are new ones.

        A descriptor that fails its checks is refused for good (published descriptors never change)
        and logged once.
        """
        def refuse(index: int, error: SegmentError) -> None:
            errors["descriptor_corrupt"] += 1
            log.warning("descriptor refused", engine=self.engine, path=self.path, index=index, error=str(error))

        found = self.reader.discover(on_refused=refuse)
        self.sources.extend(SeriesSource(
            engine=self.engine, segment=self.segment, index=known.index, type=known.type, name=known.name,
            labels=known.rendered_labels, help=known.help, value_offset=known.value_offset, bounds=known.bounds)
            for known in found)
        return bool(found)

    def status(self, stale_after: float) -> EngineStatus:
        return self.reader.status(stale_after=stale_after)

    def check_file(self) -> None:
        """Raises SegmentError when the file under the mapping was cut short: reading a page past
        its end would kill the process (SIGBUS), so this runs before anything reads the mapping."""
        try:
            stat = os.stat(self.path)
        except OSError:
            return  # gone: status() says so
        if (stat.st_dev, stat.st_ino) == self.segment.identity and stat.st_size < self.length:
            raise SegmentError(f"truncated to {stat.st_size} bytes under the exporter, "
                               f"the segment is {self.length} bytes (segment {self.path})")

    def ring_stats(self) -> dict[str, dict]:
        """Positions and loss counters of each ring the segment has."""
        return {name: stats for name, ring in self.rings.items() if (stats := ring.stats()) is not None}


@dataclass
class _Refusal:
    """A file that could not be attached, remembered so it is logged once, not once per scan."""

    fingerprint: tuple
    message: str


@dataclass
class SegmentSet:
    """The attached segments matching `patterns` (paths or globs), kept current by `scan()`.

    >>> segments = SegmentSet(["/dev/shm/hftel-*"], log=structlog.get_logger())  # doctest: +SKIP
    >>> segments.scan()                                         # doctest: +SKIP
    True
    """

    patterns: Iterable[str]
    log: Any  # a structlog logger: .info(event, **fields), .warning(...)
    stale_after: float = DEFAULT_STALE_AFTER
    attached: dict[str, Attachment] = field(default_factory=dict)
    errors: Counter = field(default_factory=Counter)
    reattachments: Counter = field(default_factory=Counter)
    _refused: dict[str, _Refusal] = field(default_factory=dict)

    def scan(self) -> bool:
        """Follows deletions, new epochs and new files; True when the set of series changed."""
        changed = self._follow_attached()
        for path in self._matching_paths():
            if path not in self.attached:
                changed |= self._try_attach(path)
        for attachment in list(self.attached.values()):
            changed |= attachment.discover(self.log, self.errors)
        return changed

    def _matching_paths(self) -> list[str]:
        paths: set[str] = set()
        for pattern in self.patterns:
            matches = glob.glob(pattern) if glob.has_magic(pattern) else [pattern] if os.path.exists(pattern) else []
            paths.update(path for path in matches if is_segment_file(path) and os.path.isfile(path))
        return sorted(paths)

    def _follow_attached(self) -> bool:
        changed = False
        for path, attachment in list(self.attached.items()):
            try:
                attachment.check_file()
                status = attachment.status(self.stale_after)
            except SegmentError as error:
                self._detach_forged(attachment, error)
                changed = True
                continue
            if status is EngineStatus.GONE:
                self.log.info("segment deleted, detached", engine=attachment.engine, path=path)
            elif status is EngineStatus.RECREATED:
                self.reattachments[attachment.engine] += 1
                self.log.info("segment recreated (new epoch), reattaching", engine=attachment.engine, path=path)
            else:
                try:
                    attachment.segment.check_header()
                    continue
                except SegmentError as error:
                    self._detach_forged(attachment, error)
                    changed = True
                    continue
            del self.attached[path]
            changed = True
        return changed

    def _detach_forged(self, attachment: Attachment, error: SegmentError) -> None:
        """Drops a segment changed under the exporter; logged once, tried again once the file changes."""
        self.errors[error_kind(error)] += 1
        self._refused[attachment.path] = _Refusal(_fingerprint(attachment.path), str(error))
        self.log.warning("segment changed under the exporter, detached", engine=attachment.engine, path=attachment.path,
                 error=str(error))
        del self.attached[attachment.path]

    def _try_attach(self, path: str) -> bool:
        fingerprint = _fingerprint(path)
        refusal = self._refused.get(path)
        if refusal is not None and refusal.fingerprint == fingerprint:
            return False
        engine = engine_name(path)
        try:
            if any(other.engine == engine for other in self.attached.values()):
                raise ValueError(f"another attached segment already has the engine name {engine!r}")
            attachment = Attachment.open(path, engine)
        except (SegmentError, OSError, ValueError) as error:
            message = str(error)
            kind = "engine_name_conflict" if isinstance(error, ValueError) else error_kind(error)
            if refusal is None or refusal.message != message:
                self.errors[kind] += 1
                self.log.warning("segment refused", path=path, kind=kind, error=message)
            self._refused[path] = _Refusal(fingerprint, message)
            return False
        self._refused.pop(path, None)
        self.attached[path] = attachment
        info = attachment.reader.info()
        self.log.info("segment attached", engine=engine, path=path, epoch=f"{info.epoch:016x}", pid=info.creator_pid,
                 series=info.series)
        return True

    def sources(self) -> list[SeriesSource]:
        return [source for attachment in self.attached.values() for source in attachment.sources]


def _fingerprint(path: str) -> tuple:
    """Identity and size of a file: a refused file is tried again once it changes."""
    try:
        stat = os.stat(path)
    except OSError:
        return ()
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
