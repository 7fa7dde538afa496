"""`hftel top [SEGMENT]`: a live view of a segment, in the spirit of Aeron's AeronStat.

Every refresh reads one Sample of the segment (a snapshot, the engine's status, the ring counters)
and turns it into a frame of text lines: a header, then counters with their rates, gauges,
histograms with rates and quantiles, and the audit and log rings. frame() is pure: the rates come
from the previous Sample and the elapsed time it is given, so tests pass both in. The curses loop
only draws frames; `--once` prints one to stdout.

    >>> monitor = Monitor("engine1")                    # doctest: +SKIP
    >>> first = monitor.sample()                        # doctest: +SKIP
    >>> second = monitor.sample()                       # doctest: +SKIP
    >>> print("\\n".join(frame(second, first, 1.0)))      # doctest: +SKIP
"""
from __future__ import annotations

import math
import os
import re
import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from hftel import _core, _rings
from hftel.errors import HftelError
from hftel.reader import EngineStatus, Reader, Series, Snapshot
from hftel.telemetry import DEFAULT_DIRECTORY, is_segment_file, segment_path

#: The rings a segment may hold, by the name the frame shows.
RINGS = (("audit", _rings.AUDIT), ("log", _rings.LOG))
#: The ring header counters the frame shows, in order.
RING_COUNTERS = ("full", "spilled", "lost", "skipped_records", "truncated", "violations")
#: What a rate, quantile or bound shows when there is none (first frame, empty histogram).
NONE = "-"
_SEGMENT_FILE = re.compile(r"^hftel-[A-Za-z0-9_.-]+$")
_NAME_MIN = 12      # a name column narrower than this says nothing; the terminal clips instead
_CELL_MIN = 8       # numbers get at least this much room, so columns do not jump between frames
_NS_UNITS = ((1, "ns", 0), (1e3, "us", 1), (1e6, "ms", 1))  # scale, unit, decimals; then seconds, 2 decimals

RingStats = Mapping[str, int]


def find_segment(directory: str | None = None) -> str:
    """The first segment file, by name, matching hftel-* in `directory` (default $HFTEL_SHM_DIR or /dev/shm)."""
    directory = directory or os.environ.get("HFTEL_SHM_DIR", DEFAULT_DIRECTORY)
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        names = []
    for name in names:
        if _SEGMENT_FILE.match(name) and is_segment_file(name):
            return os.path.join(directory, name)
    raise FileNotFoundError(f"no hftel segment (hftel-*) in {directory}; name one: hftel top SEGMENT")


@dataclass(frozen=True)
class Sample:
    """What one refresh read of a segment: its series, the engine's status and the ring counters.

    >>> sample = Monitor("engine1").sample()           # doctest: +SKIP
    >>> sample.status, sample.rings["audit"]["full"]   # doctest: +SKIP
    (<EngineStatus.LIVE: 'live'>, 0)

    `rings` maps "audit" and "log" to Ring.stats() (None for a segment without that ring);
    `now_ns` is the wall clock the uptime and heartbeat age are measured against.
    """

    path: str
    status: EngineStatus
    snapshot: Snapshot
    rings: Mapping[str, RingStats | None]
    now_ns: int


class Monitor:
    """One segment path, watched: samples it, and reattaches when the engine recreates the segment.

    >>> monitor = Monitor("engine1")        # doctest: +SKIP
    >>> monitor.sample().status             # doctest: +SKIP
    <EngineStatus.LIVE: 'live'>

    The segment is mapped read-only and nothing is written. A segment recreated at the path (a new
    epoch) is attached on the next sample; while the file is gone, samples say GONE and carry the
    last values read. One Monitor is for one thread.
    """

    def __init__(self, name_or_path: str | os.PathLike[str]):
        self.path = segment_path(name_or_path)
        self._attach()

    def _attach(self) -> None:
        self._segment = _core.Segment.attach(self.path, False)
        self._reader = Reader.from_segment(self._segment)
        self._rings = {name: _rings.Ring(self._segment, kind) for name, kind in RINGS}

    def sample(self) -> Sample:
        """Reads the segment now; never blocks the engine."""
        now_ns = time.time_ns()
        status = self._reader.status(now_ns=now_ns)
        if status is EngineStatus.RECREATED:
            status = self._reattach(now_ns)
        rings = {name: ring.stats() for name, ring in self._rings.items()}
        return Sample(self.path, status, self._reader.snapshot(), rings, now_ns)

    def _reattach(self, now_ns: int) -> EngineStatus:
        try:
            self._attach()
        except (HftelError, OSError):
            return EngineStatus.RECREATED  # gone again, or refused: the old mapping stays, try next time
        return self._reader.status(now_ns=now_ns)


# -- the frame -------------------------------------------------------------------------------------------


def frame(current: Sample, previous: Sample | None = None, elapsed: float | None = None,
          width: int | None = None) -> list[str]:
    """The text lines of one refresh. Rates are the change since `previous` over `elapsed` seconds, "-"
    without either or across a recreated segment; lines are cut to `width` when it is given."""
    before = _comparable(current, previous, elapsed)
    by_kind: dict[str, list[Series]] = {"counter": [], "gauge": [], "histogram": []}
    for series in current.snapshot.series:
        by_kind[series.kind].append(series)
    lines = [_header(current)]
    lines += _table("counters", ("value", "rate/s"), [
        (_series_name(series), _counter_cells(series, before.get(_key(series)), elapsed))
        for series in by_kind["counter"]], width)
    lines += _table("gauges", ("value",), [
        (_series_name(series), (_number(series.value),)) for series in by_kind["gauge"]], width)
    lines += _table("histograms", ("count", "rate/s", "p50", "p99", "max<="), [
        (_series_name(series), _histogram_cells(series, before.get(_key(series)), elapsed))
        for series in by_kind["histogram"]], width)
    lines += _table("rings", ("used", "of cap", "full", "spilled", "lost", "skipped", "truncated", "violations"),
                    [(name, _ring_cells(stats)) for name, stats in current.rings.items()], width)
    return lines if width is None else [line[:max(width, 0)] for line in lines]


def _comparable(current: Sample, previous: Sample | None, elapsed: float | None) -> dict[Any, Series]:
    """The previous sample's series by key, or nothing when no rate can be computed against it."""
    if previous is None or not elapsed or elapsed <= 0 or previous.path != current.path \
            or previous.snapshot.info.epoch != current.snapshot.info.epoch:
        return {}
    return {_key(series): series for series in previous.snapshot.series}


def _key(series: Series) -> tuple[str, tuple[tuple[str, str], ...]]:
    return series.name, tuple(sorted(series.labels.items()))


def _header(sample: Sample) -> str:
    info = sample.snapshot.info
    uptime = max(0, sample.now_ns - info.start_time_ns) / 1e9
    heartbeat = max(0, sample.now_ns - info.heartbeat_ns) / 1e9
    return (f"{sample.path}  engine {sample.status.value}  pid {info.creator_pid}  epoch {info.epoch:#018x}  "
            f"up {format_duration(uptime)}  heartbeat {format_duration(heartbeat)} ago  series {info.series}")


def _series_name(series: Series) -> str:
    sample = f"{series.name}_total" if series.kind == "counter" else series.name
    labels = ",".join(f'{name}="{value}"' for name, value in series.labels.items())
    return f"{sample}{{{labels}}}" if labels else sample


def _counter_cells(series: Series, before: Series | None, elapsed: float | None) -> tuple[str, ...]:
    return _number(series.value), _rate(series.value, None if before is None else before.value, elapsed)


def _histogram_cells(series: Series, before: Series | None, elapsed: float | None) -> tuple[str, ...]:
    return (_number(series.count), _rate(series.count, None if before is None else before.count, elapsed),
            format_ns(series.quantile(0.5)), format_ns(series.quantile(0.99)), _max_bound(series))


def _max_bound(series: Series) -> str:
    """The upper bound of the highest bucket holding a value: the largest value seen is at most this."""
    if series.count == 0:
        return NONE
    highest = series.cumulative.index(series.count)
    return format_ns(series.bounds[highest]) if highest < len(series.bounds) else ">" + format_ns(series.bounds[-1])


def _ring_cells(stats: RingStats | None) -> tuple[str, ...]:
    if stats is None:
        return ("none",) + (NONE,) * (1 + len(RING_COUNTERS))
    used = stats["tail"] - stats["head"]
    return (f"{used:,} B", f"{used / stats['capacity']:.1%}") + tuple(_number(stats[name]) for name in RING_COUNTERS)


def _rate(value: float | int, before: float | int | None, elapsed: float | None) -> str:
    if before is None or not elapsed:  # _comparable() leaves no `before` without a positive elapsed
        return NONE
    return f"{(value - before) / elapsed:,.1f}"


def _table(title: str, headings: Sequence[str], rows: Sequence[tuple[str, Sequence[str]]],
           width: int | None) -> list[str]:
    """A blank line, the title with right-aligned column headings, then one line per row."""
    if not rows:
        return []
    cells = [max(_CELL_MIN, len(heading), *(len(row[index]) for _, row in rows))
             for index, heading in enumerate(headings)]
    longest = max(len(title), *(len(name) for name, _ in rows))
    room = longest if width is None else width - 2 - sum(cell + 2 for cell in cells)
    name_width = max(_NAME_MIN, min(longest, room))

    def line(name: str, name_room: int, values: Sequence[str]) -> str:
        return _fit(name, name_room) + "".join(f"  {value:>{cell}}" for value, cell in zip(values, cells))

    body = ["  " + line(name, name_width, values) for name, values in rows]
    return ["", line(title, 2 + name_width, headings)] + body


def _fit(text: str, width: int) -> str:
    """`text` padded or cut to `width` characters; a cut name ends in ".."."""
    return text.ljust(width) if len(text) <= width else text[: width - 2] + ".."


# -- formatting --------------------------------------------------------------------------------------------


def format_ns(value: float) -> str:
    """Nanoseconds for people: 850ns, 12.3us, 4.1ms, 1.20s; "-" for NaN (an empty histogram)."""
    if math.isnan(value):
        return NONE
    for scale, unit, digits in _NS_UNITS:
        if abs(scaled := round(value / scale, digits)) < 1000:  # 999.96us is 1.0ms, not 1000.0us
            return f"{scaled:.{digits}f}{unit}"
    return f"{value / 1e9:.2f}s"


def format_duration(seconds: float) -> str:
    """0.1s under a minute, then 5m03s, 2h05m, 3d04h: the two largest units."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, second = divmod(int(seconds), 60)
    hours, minute = divmod(minutes, 60)
    days, hour = divmod(hours, 24)
    if days:
        return f"{days}d{hour:02d}h"
    return f"{hours}h{minute:02d}m" if hours else f"{minutes}m{second:02d}s"


def _number(value: float | int) -> str:
    return f"{value:,.6g}" if isinstance(value, float) else f"{value:,}"


# -- running it --------------------------------------------------------------------------------------------


def once(name_or_path: str | None, interval: float) -> str:
    """One frame as text: of two samples `interval` seconds apart, so rates show; interval 0 reads one
    sample and its rates are "-". Lines are not cut: scripts read them whole."""
    monitor = Monitor(name_or_path or find_segment())
    first, started = monitor.sample(), time.monotonic()
    if interval > 0:
        time.sleep(interval)
        lines = frame(monitor.sample(), first, time.monotonic() - started)
    else:
        lines = frame(first)
    return "\n".join(lines) + "\n"


def run(name_or_path: str | None, interval: float) -> int:
    """Draws the live view, refreshed every `interval` seconds, until `q` or Ctrl-C; returns 0."""
    import curses

    monitor = Monitor(name_or_path or find_segment())  # attach first, so a bad segment fails before curses
    try:
        curses.wrapper(_loop, monitor, interval)
    except KeyboardInterrupt:
        pass
    except curses.error as error:
        raise HftelError(f"cannot draw on this terminal ({error}); try --once") from error
    return 0


def _loop(screen: Any, monitor: Monitor, interval: float) -> None:
    _hide_cursor()
    previous: Sample | None = None
    last = time.monotonic()
    while True:
        sample, now = monitor.sample(), time.monotonic()
        height, width = screen.getmaxyx()
        _draw(screen, frame(sample, previous, now - last, width=width - 1), height)
        previous, last = sample, now
        if _quit_pressed(screen, now + interval):
            return


def _hide_cursor() -> None:
    import curses

    try:
        curses.curs_set(0)
    except curses.error:
        pass  # a terminal that cannot hide its cursor shows it


def _draw(screen: Any, lines: Sequence[str], height: int) -> None:
    import curses

    screen.erase()
    for row, line in enumerate(lines[:height]):
        try:
            screen.addstr(row, 0, line, curses.A_REVERSE if row == 0 else curses.A_NORMAL)
        except (curses.error, UnicodeEncodeError):
            pass  # the bottom-right cell, or a terminal too small for the line: what fits is drawn
    screen.refresh()


def _quit_pressed(screen: Any, deadline: float) -> bool:
    """Waits for keys until `deadline`: True on q, False at the deadline or when the terminal resized."""
    import curses

    while (remaining := deadline - time.monotonic()) > 0:
        screen.timeout(max(1, int(remaining * 1000)))
        key = screen.getch()
        if key in (ord("q"), ord("Q")):
            return True
        if key == curses.KEY_RESIZE:
            return False
    return False
