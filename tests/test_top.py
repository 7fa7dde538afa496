"""`hftel top`: the frame a refresh draws, the monitor behind it, `--once`, and the curses loop under a pty."""
from __future__ import annotations

import fcntl
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from typing import Iterator

import pytest

import hftel
from hftel import _core, _rings
from hftel.cli import main
from hftel.top import Monitor, find_segment, format_duration, format_ns, frame
from processes import sigint_default

SMALL_RING = 65536


@pytest.fixture
def engine(segment_file: str) -> Iterator[hftel.Telemetry]:
    """A live engine whose rings are small enough for a few audit rows to show as a percentage."""
    telemetry = hftel.Telemetry.create(segment_file, capacity=64, values_bytes=1 << 20,
                                       audit_ring_bytes=SMALL_RING, log_ring_bytes=SMALL_RING)
    yield telemetry
    telemetry.close()


def row(lines: list[str], name: str) -> list[str]:
    """The cells of the frame line for series (or ring) `name`."""
    [found] = [line.split() for line in lines if line.split()[:1] == [name]]
    return found[1:]


def section(lines: list[str], title: str) -> list[str]:
    """The heading cells of a section (counters, gauges, histograms, rings)."""
    return row(lines, title)


# -- counters and gauges ---------------------------------------------------------------------------------

def test_a_counter_shows_its_value_and_the_change_per_second_since_the_previous_sample(engine):
    """25 after 5, two seconds apart: value 25, rate 10.0/s."""
    orders = engine.counter("orders", "Orders sent.", labels=("side",)).labels(side="buy")
    monitor = Monitor(engine.path)
    orders.inc(5)
    first = monitor.sample()
    orders.inc(20)
    lines = frame(monitor.sample(), first, elapsed=2.0)
    assert section(lines, "counters") == ["value", "rate/s"]
    assert row(lines, 'orders_total{side="buy"}') == ["25", "10.0"]


def test_the_first_frame_shows_a_dash_for_every_rate(engine):
    """Without a previous sample there is no rate: "-"."""
    engine.counter("orders", "Orders sent.").inc(3)
    engine.histogram("latency_ns", "Latency.").observe(1_000)
    lines = frame(Monitor(engine.path).sample())
    assert row(lines, "orders_total") == ["3", "-"]
    assert row(lines, "latency_ns")[1] == "-"


def test_no_rate_is_computed_across_a_recreated_segment(engine, segment_file):
    """A sample of a new epoch is not compared with the old one: rates are "-", not a negative number."""
    engine.counter("orders", "Orders sent.").inc(100)
    before = Monitor(segment_file).sample()
    with hftel.Telemetry.create(segment_file, capacity=16, values_bytes=1 << 16) as recreated:
        recreated.counter("orders", "Orders sent.").inc(1)
        lines = frame(Monitor(segment_file).sample(), before, elapsed=1.0)
    assert row(lines, "orders_total") == ["1", "-"]


def test_gauges_show_their_float_and_integer_values(engine):
    """A float gauge and an int gauge, each with the value last set."""
    engine.gauge("bus_occupancy_ratio", "Fill level.").set(0.25)
    engine.gauge("position", "Net lots.", kind="int").set(-3)
    lines = frame(Monitor(engine.path).sample())
    assert section(lines, "gauges") == ["value"]
    assert row(lines, "bus_occupancy_ratio") == ["0.25"]
    assert row(lines, "position") == ["-3"]


# -- histograms ------------------------------------------------------------------------------------------

def test_a_histogram_shows_count_rate_and_the_quantiles_series_quantile_gives(engine):
    """count, rate over the elapsed time, and p50 / p99 as Series.quantile estimates them, in time units."""
    latency = engine.histogram("order_latency_ns", "Round trip.")
    monitor = Monitor(engine.path)
    first = monitor.sample()
    for value in range(1_000, 201_000, 1_000):
        latency.observe(value)
    current = monitor.sample()
    series = current.snapshot.get("order_latency_ns")
    cells = row(frame(current, first, elapsed=4.0), "order_latency_ns")
    assert cells[:4] == ["200", "50.0", format_ns(series.quantile(0.5)), format_ns(series.quantile(0.99))]


def test_a_histogram_shows_the_bound_of_its_highest_filled_bucket(engine):
    """500 and 5,000 in buckets up to 1us, 10us, 100us: the largest value is at most 10.0us."""
    latency = engine.histogram("latency_ns", "Latency.", buckets=[1_000, 10_000, 100_000])
    latency.observe(500)
    latency.observe(5_000)
    assert section(frame(Monitor(engine.path).sample()), "histograms")[-1] == "max<="
    assert row(frame(Monitor(engine.path).sample()), "latency_ns")[-1] == "10.0us"


def test_a_value_beyond_the_last_bound_shows_as_greater_than_that_bound(engine):
    """A value in the +Inf bucket: "> last bound"."""
    engine.histogram("latency_ns", "Latency.", buckets=[1_000, 10_000]).observe(50_000)
    assert row(frame(Monitor(engine.path).sample()), "latency_ns")[-1] == ">10.0us"


def test_an_empty_histogram_shows_dashes_for_its_quantiles_and_bound(engine):
    """Nothing observed: count 0; p50, p99 and the bound are "-"."""
    engine.histogram("latency_ns", "Latency.")
    assert row(frame(Monitor(engine.path).sample()), "latency_ns") == ["0", "-", "-", "-", "-"]


@pytest.mark.parametrize(("nanoseconds", "text"), [
    (850, "850ns"), (12_345, "12.3us"), (4_100_000, "4.1ms"), (1_200_000_000, "1.20s"), (999_960, "1.0ms"),
    (float("nan"), "-"),
])
def test_nanoseconds_are_formatted_in_the_largest_unit_that_keeps_three_digits(nanoseconds, text):
    """850ns, 12.3us, 4.1ms, 1.20s; a value that rounds up to 1000 moves to the next unit."""
    assert format_ns(nanoseconds) == text


@pytest.mark.parametrize(("seconds", "text"), [(0.12, "0.1s"), (303, "5m03s"), (7_500, "2h05m"), (273_600, "3d04h")])
def test_durations_are_formatted_in_their_two_largest_units(seconds, text):
    """Uptime and heartbeat age: seconds under a minute, then two units."""
    assert format_duration(seconds) == text


# -- rings -------------------------------------------------------------------------------------------------

def test_ring_occupancy_after_audit_rows_is_the_pending_bytes_and_their_share_of_the_capacity(engine):
    """Three unconsumed rows: tail - head bytes, that over 64 KiB as a percentage, and zero counters."""
    for intent in range(3):
        engine.audit.order(intent_id=intent, strategy="mm", side="BUY")
    stats = _rings.Ring(_core.Segment.attach(engine.path, False), _rings.AUDIT).stats()
    pending = stats["tail"] - stats["head"]
    assert pending > 0
    lines = frame(Monitor(engine.path).sample())
    assert section(lines, "rings") == ["used", "of", "cap", "full", "spilled", "lost", "skipped", "truncated",
                                       "violations"]
    assert row(lines, "audit") == [f"{pending:,}", "B", f"{pending / SMALL_RING:.1%}", "0", "0", "0", "0", "0", "0"]
    assert row(lines, "log") == ["0", "B", "0.0%", "0", "0", "0", "0", "0", "0"]


def test_a_segment_without_rings_says_none(segment_file):
    """Rings sized 0: each ring row says none."""
    with hftel.Telemetry.create(segment_file, capacity=16, values_bytes=1 << 16,
                                audit_ring_bytes=0, log_ring_bytes=0) as tel:
        lines = frame(Monitor(tel.path).sample())
    assert row(lines, "audit")[0] == "none"
    assert row(lines, "log")[0] == "none"


# -- the header and the engine's status ------------------------------------------------------------------

def test_the_header_names_the_segment_its_engine_and_the_series_count(engine):
    """Path, status, pid, epoch in hex, uptime, heartbeat age and series count on the first line."""
    engine.counter("orders", "Orders.").inc()
    engine.gauge("position", "Lots.").set(1)
    header = frame(Monitor(engine.path).sample())[0]
    assert header.startswith(f"{engine.path}  engine live  pid {os.getpid()}  epoch {engine.epoch:#018x}  up ")
    assert " ago  series 2" in header


def test_a_closed_engine_is_shown_closed(engine):
    """After tel.close() the header says the engine is closed."""
    monitor = Monitor(engine.path)
    engine.close()
    assert "  engine closed  " in frame(monitor.sample())[0]


def test_the_monitor_reattaches_when_the_engine_recreates_the_segment(engine, segment_file):
    """A new segment at the path: the next sample is of the new epoch, live, with its values."""
    engine.counter("orders", "Orders.").inc(7)
    monitor = Monitor(segment_file)
    with hftel.Telemetry.create(segment_file, capacity=16, values_bytes=1 << 16) as recreated:
        recreated.counter("orders", "Orders.").inc(2)
        sample = monitor.sample()
        assert (sample.status, sample.snapshot.info.epoch) == (hftel.EngineStatus.LIVE, recreated.epoch)
        assert sample.snapshot.get_sample_value("orders_total") == 2


def test_a_deleted_segment_is_shown_gone_and_picked_up_again_when_it_returns(engine, segment_file):
    """File deleted: status gone with the last values; created again: reattached."""
    engine.counter("orders", "Orders.").inc(7)
    monitor = Monitor(segment_file)
    os.unlink(segment_file)
    gone = monitor.sample()
    assert "  engine gone  " in frame(gone)[0]
    assert gone.snapshot.get_sample_value("orders_total") == 7
    with hftel.Telemetry.create(segment_file, capacity=16, values_bytes=1 << 16) as recreated:
        assert monitor.sample().snapshot.info.epoch == recreated.epoch


# -- the terminal width ------------------------------------------------------------------------------------

def test_long_names_are_cut_to_the_width_and_keep_their_numbers(engine):
    """A 100-character name in 60 columns: every line fits; the name, cut to what the two 8-wide number
    columns leave (60 - 2 indent - 2 x (2 + 8) = 38), ends in ".."; value and rate stay."""
    engine.counter("x" * 100, "Long.").inc(42)
    lines = frame(Monitor(engine.path).sample(), width=60)
    assert max(len(line) for line in lines) <= 60
    [line] = [line for line in lines if line.startswith("  xxx")]
    assert line.split() == ["x" * 36 + "..", "42", "-"]


@pytest.mark.parametrize("width", [0, 1, 5])
def test_a_tiny_width_gives_lines_no_longer_than_it(engine, width):
    """A terminal a few columns wide: nothing fails, nothing overflows."""
    engine.histogram("latency_ns", "Latency.").observe(100)
    assert all(len(line) <= width for line in frame(Monitor(engine.path).sample(), width=width))


# -- finding the segment -----------------------------------------------------------------------------------

def test_without_a_segment_the_first_hftel_file_in_the_shm_dir_is_used(tmp_path, monkeypatch):
    """Sorted by name; spill files, files being created and other names are skipped."""
    for name in ("hftel-a.spill", "hftel-a.tmp-123", "other", "hftel-b", "hftel-c"):
        (tmp_path / name).write_bytes(b"")
    monkeypatch.setenv("HFTEL_SHM_DIR", str(tmp_path))
    assert find_segment() == str(tmp_path / "hftel-b")


def test_with_no_segment_in_the_shm_dir_top_exits_1_saying_so(tmp_path, monkeypatch, capsys):
    """An empty $HFTEL_SHM_DIR: exit 1 and one line naming the directory."""
    monkeypatch.setenv("HFTEL_SHM_DIR", str(tmp_path))
    assert main(["top", "--once"]) == 1
    assert capsys.readouterr().err == (
        f"hftel top: no hftel segment (hftel-*) in {tmp_path}; name one: hftel top SEGMENT\n")


def test_a_missing_named_segment_exits_1_naming_its_path(tmp_path, capsys):
    """A path with no file: exit 1, one line with the path."""
    path = str(tmp_path / "nothing.seg")
    assert main(["top", path, "--once"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("hftel top: ") and path in error and error.count("\n") == 1


def test_a_bare_name_is_looked_up_in_the_shm_dir(tmp_path, monkeypatch, capsys):
    """`hftel top NAME` reads $HFTEL_SHM_DIR/hftel-NAME."""
    monkeypatch.setenv("HFTEL_SHM_DIR", str(tmp_path))
    with hftel.Telemetry.create("named", capacity=16, values_bytes=1 << 16) as tel:
        tel.counter("orders", "Orders.").inc(4)
        assert main(["top", "named", "--once", "--interval", "0"]) == 0
    assert capsys.readouterr().out.startswith(f"{tmp_path / 'hftel-named'}  engine live  ")


# -- --once ------------------------------------------------------------------------------------------------

def test_once_with_interval_0_prints_one_frame_with_dashes_for_rates(engine, capsys):
    """One sample: the frame on stdout, values shown, rates "-"."""
    engine.counter("orders", "Orders.").inc(9)
    assert main(["top", engine.path, "--once", "--interval", "0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{engine.path}  engine live  ")
    assert row(lines, "orders_total") == ["9", "-"]


def test_once_with_an_interval_prints_rates_over_it(engine, capsys):
    """Two samples --interval apart: an unchanged counter has rate 0.0."""
    engine.counter("orders", "Orders.").inc(9)
    assert main(["top", engine.path, "--once", "--interval", "0.01"]) == 0
    assert row(capsys.readouterr().out.splitlines(), "orders_total") == ["9", "0.0"]


def test_a_negative_interval_is_refused(engine, capsys):
    """--interval -1: exit 2 and a line saying what is allowed."""
    assert main(["top", engine.path, "--interval", "-1"]) == 2
    assert "--interval must be > 0" in capsys.readouterr().err


# -- the live view under a pseudo-terminal -----------------------------------------------------------------

def start_top(path: str, rows: int, columns: int) -> tuple[subprocess.Popen, int]:
    """`python -m hftel top PATH` on a pty of `rows` x `columns`; returns the process and the pty's master."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    env = {**os.environ, "TERM": "xterm", "LINES": str(rows), "COLUMNS": str(columns)}
    process = subprocess.Popen([sys.executable, "-m", "hftel", "top", path], stdin=slave, stdout=slave,
                               stderr=slave, env=env, close_fds=True, preexec_fn=sigint_default)
    os.close(slave)
    return process, master


def read_until(master: int, wanted: bytes, seconds: float) -> bytes:
    """What the pty printed, read until `wanted` appears; fails at the deadline or at end of output."""
    output, deadline = b"", time.monotonic() + seconds
    while wanted not in output:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no {wanted!r} within {seconds} s; got {output[-2000:]!r}"
        ready, _, _ = select.select([master], [], [], remaining)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                chunk = b""
            assert chunk, f"the output ended without {wanted!r}: {output[-2000:]!r}"
            output += chunk
    return output


def wait_for_exit(process: subprocess.Popen, master: int, seconds: float) -> int:
    """The exit code, draining the pty meanwhile so the child never blocks writing to it."""
    deadline = time.monotonic() + seconds
    while process.poll() is None and time.monotonic() < deadline:
        if select.select([master], [], [], 0.05)[0]:
            try:
                os.read(master, 65536)
            except OSError:
                pass
    try:
        return process.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


@pytest.fixture
def terminal() -> Iterator[list[tuple[subprocess.Popen, int]]]:
    """Started top processes, killed and their ptys closed at the end whatever happened."""
    started: list[tuple[subprocess.Popen, int]] = []
    yield started
    for process, master in started:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)


def test_the_live_view_draws_the_segment_and_q_quits_with_exit_0(engine, terminal):
    """On a 40x200 terminal the header shows the segment's path; `q` ends it cleanly."""
    engine.counter("orders", "Orders.").inc(3)
    process, master = start_top(engine.path, 40, 200)
    terminal.append((process, master))
    read_until(master, engine.path.encode(), 30)
    os.write(master, b"q")
    assert wait_for_exit(process, master, 10) == 0


def test_the_live_view_on_a_terminal_too_small_for_it_does_not_crash(engine, terminal):
    """3 rows of 10 columns: it draws what fits, and `q` still quits with exit 0."""
    engine.histogram("latency_ns", "Latency.").observe(100)
    process, master = start_top(engine.path, 3, 10)
    terminal.append((process, master))
    read_until(master, engine.path[:9].encode(), 30)
    os.write(master, b"q")
    assert wait_for_exit(process, master, 10) == 0


def test_the_live_view_ends_cleanly_on_ctrl_c(engine, terminal):
    """SIGINT (what Ctrl-C sends) while drawing: exit 0, not a traceback or 130."""
    process, master = start_top(engine.path, 40, 200)
    terminal.append((process, master))
    read_until(master, engine.path.encode(), 30)
    process.send_signal(signal.SIGINT)
    assert wait_for_exit(process, master, 10) == 0
