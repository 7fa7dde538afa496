"""`hftel inspect`: what a segment says about its engine, readable after the engine was killed."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import Iterator

import pytest
import structlog

import hftel
import hftel.logs
from hftel.cli import main
from hftel.rings import AuditConsumer
from hftel.telemetry import spill_path

SMALL_RING = 65536


def inspect(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hftel", "inspect", *args], capture_output=True, text=True,
                          timeout=60)


def listed(output: str, heading: str) -> list[str]:
    """The entries listed under the line starting with `heading` (each marked "  * " or indented "    ")."""
    lines = output.splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith(heading)) + 1
    entries = []
    for line in lines[start:]:
        if not (line.startswith("  * ") or line.startswith("    ")):
            break
        entries.append(line)
    return entries


def ring_line(output: str, ring: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(f"{ring} ring: "))


@pytest.fixture
def small(segment_file: str) -> Iterator[hftel.Telemetry]:
    telemetry = hftel.Telemetry.create(segment_file, capacity=16, values_bytes=1 << 16, heartbeat_interval=None,
                                       audit_ring_bytes=SMALL_RING, log_ring_bytes=SMALL_RING)
    yield telemetry
    telemetry.close()


# -- after a crash ---------------------------------------------------------------------------------------

AUDIT_ROWS = 9


def engine_that_gets_killed(path: str, ready) -> None:
    """Writes audit rows of three tables and log events (one flagged, one cut), says so, and waits to die."""
    tel = hftel.Telemetry.create(path, capacity=16, values_bytes=1 << 16,
                                 audit_ring_bytes=SMALL_RING, log_ring_bytes=SMALL_RING)
    for seq in range(1, AUDIT_ROWS + 1):
        if seq % 3 == 1:
            tel.audit.order(intent_id=1000 + seq, strategy="mm", side="SELL")
        elif seq % 3 == 2:
            tel.audit.risk_decision(intent_id=1000 + seq, rule=f"rule-{seq}", decision="REJECT")
        else:
            tel.audit.connectivity(gateway="shioaji", session=f"session-{seq}", event="DISCONNECTED")
    hftel.logs.configure(tel, strict=False)
    log = structlog.get_logger(component="monitor")
    log.info("no_check_field")  # a schema violation
    log = log.bind(check="heartbeat")
    log.info("oversized", blob="z" * 5000)  # truncated
    for step in range(1, 6):
        log.warning(f"step-{step}", step=step)
    ready.set()
    signal.pause()


@pytest.fixture(scope="module")
def crashed(tmp_path_factory) -> tuple[str, int, subprocess.CompletedProcess]:
    """A segment whose engine was SIGKILLed after writing, its pid, and `hftel inspect -n 3` of it."""
    import multiprocessing

    spawn = multiprocessing.get_context("spawn")
    path = str(tmp_path_factory.mktemp("crashed") / "engine.seg")
    ready = spawn.Event()
    engine = spawn.Process(target=engine_that_gets_killed, args=(path, ready))
    engine.start()
    try:
        while not ready.wait(0.1):
            assert engine.is_alive(), f"the engine exited with {engine.exitcode} before it was ready"
    finally:
        os.kill(engine.pid, signal.SIGKILL)
        engine.join()
    return path, engine.pid, inspect(path, "-n", "3")


def test_inspect_of_a_killed_engine_succeeds_with_its_header_and_liveness(crashed):
    """Exit 0; the layout version, and the engine called dead."""
    path, _, result = crashed
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"segment {path}\n")
    assert f"layout version {hftel.LAYOUT_VERSION}," in result.stdout
    assert "  engine dead: heartbeat" in result.stdout


def test_inspect_prints_the_ring_counters(crashed):
    """Each ring's size and counters: the log ring counted one cut event and one schema violation."""
    _, _, result = crashed
    audit = ring_line(result.stdout, "audit")
    assert audit.startswith(f"audit ring: {SMALL_RING} bytes, ")
    assert audit.endswith("full 0, spilled 0, lost 0, skipped 0, truncated 0, violations 0")
    log = ring_line(result.stdout, "log")
    assert log.startswith(f"log ring: {SMALL_RING} bytes, ")
    assert log.endswith("full 0, spilled 0, lost 0, skipped 0, truncated 1, violations 1")


def test_inspect_prints_the_last_audit_rows_with_their_tables_and_values(crashed):
    """-n 3: the three newest rows, unconsumed, each with its table, seq and the values the engine wrote."""
    _, _, result = crashed
    rows = listed(result.stdout, "  last 3 audit rows")
    assert len(rows) == 3
    assert all(row.startswith("  * ") for row in rows)
    order, decision, connectivity = (row[4:] for row in rows)
    assert order.startswith("audit_orders ") and " seq=7 " in order
    assert "intent_id=1007" in order and "side=SELL" in order
    assert decision.startswith("audit_risk_decisions ") and " seq=8 " in decision
    assert "rule='rule-8'" in decision and "decision=REJECT" in decision
    assert connectivity.startswith("audit_connectivity ") and " seq=9 " in connectivity
    assert "session='session-9'" in connectivity and "event=DISCONNECTED" in connectivity


def test_inspect_prints_the_last_log_events_as_json(crashed):
    """-n 3: the three newest events, each one JSON object with the engine's pid."""
    _, pid, result = crashed
    events = listed(result.stdout, "  last 3 log events")
    assert len(events) == 3
    assert all(event.startswith("  * ") for event in events)
    decoded = [json.loads(event[4:]) for event in events]
    assert [(event["event"], event["step"], event["level"]) for event in decoded] == [
        ("step-3", 3, "warning"), ("step-4", 4, "warning"), ("step-5", 5, "warning")]
    assert {event["pid"] for event in decoded} == {pid}
    assert all(event["check"] == "heartbeat" and event["timestamp"].endswith("Z") for event in decoded)


# -- consumed and unconsumed ----------------------------------------------------------------------------

def test_consumed_records_are_still_shown_unmarked_and_unconsumed_ones_are_marked(small, capsys):
    """Rows an AuditConsumer polled and released are listed without `*`; the rest with `*`."""
    for intent in range(1, 6):
        small.audit.order(intent_id=100 + intent)
    consumer = AuditConsumer(small.path)
    consumer.release(consumer.poll(max_rows=2))
    assert main(["inspect", small.path, "-n", "5"]) == 0
    rows = listed(capsys.readouterr().out, "  last 5 audit rows")
    assert [(row[:4], f"intent_id={100 + seq}" in row) for seq, row in enumerate(rows, 1)] == [
        ("    ", True), ("    ", True), ("  * ", True), ("  * ", True), ("  * ", True)]


# -- the spill file ---------------------------------------------------------------------------------------

def test_inspect_counts_the_rows_of_a_spill_file_per_table(small, capsys):
    """With rows spilled, the spill file's path and its rows per table are printed."""
    while AuditConsumer(small.path).stats()["spilled"] == 0:
        small.audit.order(intent_id=1)
    for _ in range(2):
        small.audit.order(intent_id=2)
    for _ in range(4):
        small.audit.risk_decision(intent_id=3)
    assert main(["inspect", small.path]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("spill file: "))
    size = os.path.getsize(spill_path(small.path))
    assert line == f"spill file: {spill_path(small.path)}: {size} bytes, audit_orders 3, audit_risk_decisions 4"


def test_inspect_says_when_there_is_no_spill_file(small, capsys):
    """Without a spill file, the report says none."""
    small.audit.order(intent_id=1)
    assert main(["inspect", small.path]) == 0
    assert "\nspill file: none\n" in capsys.readouterr().out


# -- not a segment -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("contents", "problem"), [
    (None, "No such file or directory"),
    (b"x" * 8192, "bad magic"),
    (b"", "truncated"),
], ids=["missing", "forged", "empty"])
def test_inspect_of_a_missing_or_forged_segment_exits_1_with_one_line_naming_the_problem(tmp_path, contents, problem):
    """No traceback: one line on stderr, naming the file and what is wrong with it."""
    path = tmp_path / "engine.seg"
    if contents is not None:
        path.write_bytes(contents)
    result = inspect(str(path))
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("hftel inspect: ")
    assert problem in lines[0] and str(path) in lines[0]
