"""A C engine writes audit rows and log events with hftel_writer.h; Python consumes them."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import hftel
from conftest import build_c_program
from hftel import rings
from hftel.spill import SpillReader
from hftel.telemetry import spill_path

SOURCE = Path(__file__).parent / "c" / "audit_engine.c"
THREADS, ROWS = 3, 2000


@pytest.fixture(scope="module")
def audit_engine(tmp_path_factory) -> Path:
    return build_c_program(SOURCE, tmp_path_factory.mktemp("c"))


@pytest.fixture
def c_wrote(segment_file, audit_engine):
    """Ring and spill contents after 3 C threads wrote 2000 rows each into a 64 KiB ring, unconsumed."""
    telemetry = hftel.Telemetry.create(segment_file, heartbeat_interval=None, audit_ring_bytes=1 << 16)
    result = subprocess.run([str(audit_engine), segment_file, str(THREADS), str(ROWS)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    in_ring = rings.AuditConsumer(segment_file).poll().tables["audit_orders"]
    in_spill = SpillReader(spill_path(segment_file)).read().tables["audit_orders"]
    yield telemetry, in_ring, in_spill
    telemetry.close()


def test_c_threads_rows_are_all_in_the_ring_or_the_spill_file_exactly_once(c_wrote):
    """Every (source, seq) of every C thread is found once, fields intact."""
    _, in_ring, in_spill = c_wrote
    rows = list(in_ring) + list(in_spill)
    keys = sorted((int(row["source_id"]), int(row["seq"])) for row in rows)
    assert keys == [(1000 + thread, seq) for thread in range(THREADS) for seq in range(1, ROWS + 1)]
    assert all(int(row["intent_id"]) == int(row["seq"]) == 1 - int(row["quantity"]) for row in rows)
    assert all(row["side"] == 2 and row["strategy"] == f"c{row['source_id']}".encode() for row in rows)


def test_c_rows_in_the_ring_keep_each_threads_sequence_order(c_wrote):
    _, in_ring, _ = c_wrote
    for thread in range(THREADS):
        seqs = [int(row["seq"]) for row in in_ring if row["source_id"] == 1000 + thread]
        assert seqs == sorted(seqs)


def test_c_log_events_decode_with_their_typed_fields(c_wrote):
    telemetry, _, _ = c_wrote
    events = rings.LogConsumer(telemetry.path).poll().events
    assert sorted(event["source"] for event in events) == [1000 + thread for thread in range(THREADS)]
    assert all(event["event"] == "c_done" and event["ratio"] == 0.25 and event["level"] == "info"
               for event in events)
