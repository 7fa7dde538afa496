"""The spill file: where audit rows go when the ring is full, and how the exporter reads them back."""
from __future__ import annotations

import os
import stat
import struct
import zlib
from collections import defaultdict
from typing import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

import hftel
from hftel import _rings
from hftel.errors import SpillError
from hftel.rings import AuditConsumer
from hftel.schemas import AUDIT_ORDERS
from hftel.spill import SpillReader
from hftel.telemetry import spill_path

SMALL_RING = 65536  # the smallest audit ring: a couple of hundred rows
HEADER = _rings.SPILL_HEADER_LENGTH
ORDER_FRAME = _rings.SPILL_FRAME_HEADER_LENGTH + AUDIT_ORDERS.record_length  # one spilled audit_orders row
SPILLED = 20  # rows in the `spill_file` fixture's file


@pytest.fixture
def small(segment_file: str) -> Iterator[hftel.Telemetry]:
    """An engine segment with the smallest audit ring and nobody consuming it."""
    telemetry = hftel.Telemetry.create(segment_file, capacity=16, values_bytes=1 << 16, heartbeat_interval=None,
                                       audit_ring_bytes=SMALL_RING, log_ring_bytes=SMALL_RING)
    yield telemetry
    telemetry.close()


def audit_stats(telemetry: hftel.Telemetry) -> dict[str, int]:
    return AuditConsumer(telemetry.path).stats()


def fill_ring(telemetry: hftel.Telemetry) -> int:
    """Writes order rows (intent_id = 10 * seq) until one spills; returns how many were written."""
    written = 0
    while audit_stats(telemetry)["spilled"] == 0:
        seq = telemetry.audit.order(intent_id=10 * (written + 1), strategy="fill")
        written += 1
        assert seq == written
    return written


@pytest.fixture
def spill_file(small: hftel.Telemetry) -> tuple[str, list[int]]:
    """A spill file holding exactly SPILLED order rows, and their sequence numbers in file order."""
    first = fill_ring(small)
    extra = [small.audit.order(intent_id=10 * (first + 1 + index), strategy="spilled") for index in range(SPILLED - 1)]
    path = spill_path(small.path)
    assert os.path.getsize(path) == HEADER + SPILLED * ORDER_FRAME
    return path, [first] + extra


def file_bytes(path: str) -> bytearray:
    with open(path, "rb") as file:
        return bytearray(file.read())


def write_bytes(path: str, data: bytes) -> None:
    with open(path, "wb") as file:
        file.write(data)


def seqs(batch) -> list[int]:
    return [int(seq) for seq in batch.tables["audit_orders"]["seq"]] if "audit_orders" in batch.tables else []


# -- overflow into the spill file ---------------------------------------------------------------------

def test_a_full_audit_ring_spills_every_row_next_to_the_segment_and_loses_none(small):
    """No consumer, many times the ring's capacity: every row is in the ring or the spill file, once, intact."""
    rows = 1500
    for index in range(1, rows + 1):
        if index % 3:
            assert small.audit.order(intent_id=10 * index, price=index / 4, strategy=f"s{index % 5}") == index
        else:
            assert small.audit.risk_decision(intent_id=10 * index, observed_value=index / 4, rule=f"r{index % 5}") \
                == index
    stats = audit_stats(small)
    assert stats["full"] == stats["spilled"] > 0
    assert stats["lost"] == 0
    path = spill_path(small.path)
    assert path == small.path + ".spill"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

    ring = AuditConsumer(small.path).poll()
    spill = SpillReader(path).read()
    assert spill.count == stats["spilled"]
    assert spill.corrupt == []
    seen: list[int] = []
    for batch in (ring, spill):
        for row in batch.tables["audit_orders"]:
            seq = int(row["seq"])
            seen.append(seq)
            assert (row["intent_id"], row["price"], row["strategy"]) == (10 * seq, seq / 4, f"s{seq % 5}".encode())
        for row in batch.tables["audit_risk_decisions"]:
            seq = int(row["seq"])
            seen.append(seq)
            assert (row["intent_id"], row["observed_value"], row["rule"]) == (10 * seq, seq / 4,
                                                                                 f"r{seq % 5}".encode())
    assert sorted(seen) == list(range(1, rows + 1))


@given(st.binary(max_size=4096))
def test_the_writers_crc32_is_zlibs(data):
    """The C writer's CRC-32 equals zlib.crc32, which the reader checks frames with."""
    assert _rings.crc32(data) == zlib.crc32(data)


# -- reading ------------------------------------------------------------------------------------------

def test_reading_from_next_offset_returns_only_rows_appended_since(small):
    """The exporter resumes at next_offset: it sees the new rows, and none it has read already."""
    fill_ring(small)
    path = spill_path(small.path)
    first = SpillReader(path).read()
    assert first.next_offset == os.path.getsize(path)
    appended = [small.audit.order(intent_id=1) for _ in range(5)]
    second = SpillReader(path).read(first.next_offset)
    assert seqs(second) == appended
    assert second.next_offset == os.path.getsize(path)
    nothing_new = SpillReader(path).read(second.next_offset)
    assert (nothing_new.count, nothing_new.next_offset) == (0, second.next_offset)


@pytest.mark.parametrize("cut_into_last_frame", [5, _rings.SPILL_FRAME_HEADER_LENGTH + 100],
                         ids=["inside-the-frame-header", "inside-the-payload"])
def test_a_torn_last_frame_is_left_for_later_and_read_once_complete(spill_file, cut_into_last_frame):
    """A frame cut short at the end is not decoded, nor called corrupt; once appended whole, it is read."""
    path, written = spill_file
    whole = file_bytes(path)
    last_frame = len(whole) - ORDER_FRAME
    write_bytes(path, whole[:last_frame + cut_into_last_frame])
    torn = SpillReader(path).read()
    assert seqs(torn) == written[:-1]
    assert torn.next_offset == last_frame
    assert torn.corrupt == []
    with open(path, "ab") as file:
        file.write(whole[last_frame + cut_into_last_frame:])
    rest = SpillReader(path).read(torn.next_offset)
    assert seqs(rest) == written[-1:]
    assert rest.next_offset == len(whole)


def test_a_corrupted_frame_is_reported_and_the_frames_after_it_are_still_read(spill_file):
    """A flipped payload byte fails the frame's CRC: reported with its offset, skipped, the rest kept."""
    path, written = spill_file
    data = file_bytes(path)
    bad = HEADER + 7 * ORDER_FRAME
    data[bad + _rings.SPILL_FRAME_HEADER_LENGTH + 40] ^= 0x01
    write_bytes(path, data)
    batch = SpillReader(path).read()
    assert seqs(batch) == written[:7] + written[8:]
    assert len(batch.corrupt) == 1
    assert f"byte {bad}" in batch.corrupt[0]
    assert "CRC mismatch" in batch.corrupt[0]
    assert batch.next_offset == len(data)


def test_a_damaged_frame_length_near_the_end_is_reported_and_the_frames_after_it_are_still_read(spill_file):
    """A length reaching past the end of the file is damage, not a torn tail, when whole frames follow it."""
    path, written = spill_file
    data = file_bytes(path)
    bad = HEADER + (SPILLED - 3) * ORDER_FRAME
    struct.pack_into("<I", data, bad + 4, 60_000)  # the frame's payload length
    write_bytes(path, data)
    batch = SpillReader(path).read()
    assert seqs(batch) == written[:-3] + written[-2:]
    assert len(batch.corrupt) == 1 and f"byte {bad}" in batch.corrupt[0]
    assert batch.next_offset == len(data)


def forge_header(data: bytearray, problem: str) -> bytes:
    if problem == "bad magic":
        struct.pack_into("<Q", data, 0, 0x1122334455667788)
        return bytes(data)
    if problem == "truncated":
        return bytes(data[:HEADER - 24])
    struct.pack_into("<I", data, 8, _rings.SPILL_VERSION + 1)  # a newer version
    return bytes(data)


@pytest.mark.parametrize(("problem", "message"), [
    ("bad magic", r"not an hftel spill file \(bad magic 0x1122334455667788\)"),
    ("truncated", rf"truncated spill file: {HEADER - 24} bytes, the header alone is {HEADER}"),
    ("newer version", rf"spill file version {_rings.SPILL_VERSION + 1} .* is not the version {_rings.SPILL_VERSION}"),
])
def test_a_file_that_is_not_a_readable_spill_file_raises_spillerror_naming_the_problem(spill_file, problem, message):
    """Bad magic, a header cut short or a newer version: SpillError says which, and names the file."""
    path, _ = spill_file
    write_bytes(path, forge_header(file_bytes(path), problem))
    with pytest.raises(SpillError, match=message) as raised:
        SpillReader(path).read()
    assert path in str(raised.value)


# -- several writers ------------------------------------------------------------------------------------

CHILDREN = 4
CHILD_ROWS = 400


def spill_from_a_child(path: str, start) -> None:
    """A child engine process: attaches and, once all are ready, writes rows into the full ring (intent_id = seq)."""
    telemetry = hftel.Telemetry.attach(path)
    audit = telemetry.audit
    start.wait()
    for index in range(1, CHILD_ROWS + 1):
        audit.order(intent_id=index, strategy="child", reject_reason="x" * (index % 96))


def test_rows_spilled_by_several_processes_share_one_file_without_interleaving(small, segment_file, spawn):
    """Concurrent appends from several processes: every frame decodes, every (source, seq) is there once."""
    parent_rows = fill_ring(small)
    start = spawn.Barrier(CHILDREN)
    children = [spawn.Process(target=spill_from_a_child, args=(segment_file, start)) for _ in range(CHILDREN)]
    for child in children:
        child.start()
    for child in children:
        child.join(60)
    assert [child.exitcode for child in children] == [0] * CHILDREN

    path = spill_path(segment_file)
    spill = SpillReader(path).read()
    assert spill.corrupt == []
    assert spill.next_offset == os.path.getsize(path)
    assert spill.count == audit_stats(small)["spilled"] == 1 + CHILDREN * CHILD_ROWS
    by_source: dict[int, list[int]] = defaultdict(list)
    for row in spill.tables["audit_orders"]:
        by_source[int(row["source_id"])].append(int(row["seq"]))
        if row["strategy"] == b"child":
            assert row["intent_id"] == row["seq"]
            assert row["reject_reason"] == b"x" * (int(row["seq"]) % 96)
    parent = by_source.pop(small.audit.source_id)
    in_ring = AuditConsumer(segment_file).poll().tables["audit_orders"]
    assert set(in_ring["source_id"]) == {small.audit.source_id}
    assert sorted(parent + [int(seq) for seq in in_ring["seq"]]) == list(range(1, parent_rows + 1))
    assert len(by_source) == CHILDREN
    for child_seqs in by_source.values():
        assert sorted(child_seqs) == list(range(1, CHILD_ROWS + 1))
