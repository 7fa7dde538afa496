"""The rings: many producers and one consumer, wraparound, dead producers, a full ring, forged rings."""
from __future__ import annotations

import mmap
import os
import signal
import struct
from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hftel
from hftel import _core, _rings, rings
from hftel.errors import RingError
from hftel.spill import SpillReader
from hftel.telemetry import spill_path

SMALL = 1 << 16  # the smallest ring: about 220 order rows, so a few thousand rows wrap it many times
AUDIT_RING_OFFSET = 96  # header fields, from cext/hftel.h
TAIL, HEAD, DATA = 0, 256, 512  # ring header offsets, from cext/hftel_ring.h
ORDER_RECORD = 24 + 264  # record header + an audit_orders row


@pytest.fixture
def small(segment_file):
    telemetry = hftel.Telemetry.create(segment_file, capacity=16, values_bytes=4096, heartbeat_interval=None,
                                       audit_ring_bytes=SMALL, log_ring_bytes=SMALL)
    yield telemetry
    telemetry.close()


def ring_words(path: str):
    """The segment mapped writable, and the audit ring's offset in it: for forging."""
    with open(path, "r+b") as file:
        memory = mmap.mmap(file.fileno(), 0)
    (offset,) = struct.unpack_from("<Q", memory, AUDIT_RING_OFFSET)
    return memory, offset


def produce(path: str, rows: int, burst: int) -> None:
    """A producer process: writes `rows` order rows (intent_id = seq - 1) in bursts, each started only
    once the ring is at most half full, so that the test exercises the ring and not the spill file."""
    telemetry = hftel.Telemetry.attach(path)
    ring = _rings.Ring(telemetry._segment, _rings.AUDIT)
    for index in range(rows):
        if index % burst == 0:
            while (lambda stats: stats["tail"] - stats["head"])(ring.stats()) > SMALL // 2:
                os.sched_yield()
        telemetry.audit.order(intent_id=index, strategy="mm", quantity=index)


def claim_and_die(path: str, claimed) -> None:
    """A producer killed between claim and commit: it claims a record, says so, and waits to be killed."""
    telemetry = hftel.Telemetry.attach(path)
    _rings.Ring(telemetry._segment, _rings.AUDIT).claim(264, 1)
    claimed.set()
    signal.pause()


def test_many_producers_wrapping_the_ring_deliver_every_row_exactly_once_in_sequence_order(small, spawn):
    """4 processes x 3000 rows through a 64 KiB ring (~50 laps): per source, every sequence number
    arrives exactly once and in order, fields intact, with nothing spilled or skipped."""
    producers, rows = 4, 3000
    burst = SMALL // 2 // producers // ORDER_RECORD  # all producers' bursts fit in the free half
    consumer = rings.AuditConsumer(small.path)
    children = [spawn.Process(target=produce, args=(small.path, rows, burst)) for _ in range(producers)]
    for child in children:
        child.start()
    from_ring: dict[int, list[int]] = defaultdict(list)
    intact = True
    while any(child.is_alive() for child in children) or consumer.backlog():
        batch = consumer.poll()
        for row in batch.tables.get("audit_orders", []):
            from_ring[int(row["source_id"])].append(int(row["seq"]))
            intact &= row["intent_id"] == row["seq"] - 1 == row["quantity"]
        consumer.release(batch)
    for child in children:
        child.join()
        assert child.exitcode == 0
    assert intact
    assert len(from_ring) == producers
    assert all(seqs == list(range(1, rows + 1)) for seqs in from_ring.values())
    stats = consumer.stats()
    assert stats["tail"] > 40 * SMALL
    assert stats["full"] == stats["skipped_records"] == 0
    assert not os.path.exists(spill_path(small.path))


def test_a_producer_killed_between_claim_and_commit_is_skipped_and_counted(small, spawn):
    """The consumer sees the claim's producer is dead, skips its record, and the ring keeps flowing."""
    claimed = spawn.Event()
    child = spawn.Process(target=claim_and_die, args=(small.path, claimed))
    child.start()
    assert claimed.wait(60)
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    for index in range(3):
        small.audit.order(intent_id=index)
    consumer = rings.AuditConsumer(small.path, stall_timeout=3600)  # only death may skip it here
    batch = consumer.poll()
    assert list(batch.tables["audit_orders"]["intent_id"]) == [0, 1, 2]
    assert consumer.skipped == 1
    assert consumer.stats()["skipped_records"] == 1
    assert consumer.stats()["skipped_bytes"] == ORDER_RECORD


def test_a_live_producer_mid_write_holds_the_consumer_until_it_commits(small):
    """A claim by a live process is waited for, not skipped; the rows behind it follow once committed."""
    ring = _rings.Ring(small._segment, _rings.AUDIT)
    position = ring.claim(264, 1)
    small.audit.order(intent_id=7)
    consumer = rings.AuditConsumer(small.path, stall_timeout=3600)
    assert consumer.poll().count == 0
    ring.commit(position)
    assert list(consumer.poll().tables["audit_orders"]["intent_id"]) == [0, 7]
    assert consumer.skipped == 0


def test_a_claim_that_never_progresses_is_skipped_after_the_stall_timeout(small):
    """A claimed record whose producer is alive but stopped (SIGSTOP, a debugger) is skipped once it
    has not moved for stall_timeout; here 0, so at once."""
    _rings.Ring(small._segment, _rings.AUDIT).claim(264, 1)
    small.audit.order(intent_id=7)
    consumer = rings.AuditConsumer(small.path, stall_timeout=0)
    batch = consumer.poll()
    assert list(batch.tables["audit_orders"]["intent_id"]) == [7]
    assert consumer.stats()["skipped_records"] == 1


def test_a_producer_dead_before_stamping_its_claim_is_skipped_up_to_the_next_record(small):
    """A producer killed between moving the tail and writing its record header leaves untagged bytes;
    after the stall timeout the consumer skips exactly those bytes, up to the next tagged record."""
    memory, offset = ring_words(small.path)
    struct.pack_into("<Q", memory, offset + TAIL, ORDER_RECORD)  # the dead producer's claim: no header
    small.audit.order(intent_id=7)
    waiting = rings.AuditConsumer(small.path, stall_timeout=3600)
    assert waiting.poll().count == 0
    consumer = rings.AuditConsumer(small.path, stall_timeout=0)
    assert list(consumer.poll().tables["audit_orders"]["intent_id"]) == [7]
    assert consumer.stats()["skipped_bytes"] == ORDER_RECORD


@settings(max_examples=40)
@given(sizes=st.lists(st.integers(min_value=0, max_value=(SMALL // 8) - 24), min_size=1, max_size=120),
       drain_every=st.integers(min_value=1, max_value=40))
def test_records_of_any_length_come_back_intact_and_in_order_across_wraparound(tmp_path_factory, sizes,
                                                                                drain_every):
    """Whatever the record lengths (so whatever padding the wraps need), payloads arrive byte for
    byte and in order."""
    path = str(tmp_path_factory.mktemp("ring") / "engine.seg")
    segment = _core.Segment.create(path, 1, 4096, 0o600, SMALL, 0)
    ring = _rings.Ring(segment, _rings.AUDIT)
    consumer = _rings.Consumer(segment, _rings.AUDIT, 3600.0)
    sent, received = [], []

    def drain() -> None:
        groups, _ = consumer.poll()
        received.extend(payload for payload, _, _ in rings.iter_frames(groups.get(9, b"")))
        consumer.release()

    for number, size in enumerate(sizes):
        payload = bytes((number + i) % 251 for i in range(size))
        if not ring.write(9, payload):
            drain()
            assert ring.write(9, payload)
        sent.append(payload)
        if number % drain_every == 0:
            drain()
    drain()
    assert received == sent


def test_a_full_ring_without_a_consumer_spills_every_row_and_loses_none(small):
    """With nobody draining, writes keep returning: the overflow lands in the spill file."""
    rows = 2000
    for index in range(rows):
        small.audit.order(intent_id=index)
    stats = rings.AuditConsumer(small.path).stats()
    in_ring = rings.AuditConsumer(small.path).poll().tables["audit_orders"]
    in_spill = SpillReader(spill_path(small.path)).read().tables["audit_orders"]
    assert stats["full"] == stats["spilled"] == len(in_spill) > 0
    assert stats["lost"] == 0
    assert sorted(list(in_ring["seq"]) + list(in_spill["seq"])) == list(range(1, rows + 1))


def test_a_consumer_that_restarts_reads_again_what_it_polled_but_did_not_release(small):
    """release() is the commit point: rows polled and not released come back to the next consumer."""
    for index in range(3):
        small.audit.order(intent_id=index)
    first = rings.AuditConsumer(small.path)
    first.release(first.poll(max_rows=1))
    assert first.poll().count == 2  # polled, never released
    again = rings.AuditConsumer(small.path)
    assert list(again.poll().tables["audit_orders"]["intent_id"]) == [1, 2]


def test_released_space_is_reused_without_spilling(small):
    """A consumer keeping up lets producers write many times the ring's capacity with no overflow."""
    consumer = rings.AuditConsumer(small.path)
    for index in range(5 * SMALL // ORDER_RECORD):
        small.audit.order(intent_id=index)
        if index % 50 == 0:
            consumer.release(consumer.poll())
    consumer.release(consumer.poll())
    assert consumer.stats()["full"] == 0
    assert not os.path.exists(spill_path(small.path))


def test_release_beyond_what_was_polled_is_refused(small):
    small.audit.order()
    consumer = rings.AuditConsumer(small.path)
    with pytest.raises(ValueError, match="outside the polled range"):
        consumer._consumer.release(10**6)


def test_a_forged_tail_too_far_ahead_of_the_head_is_refused(small):
    memory, offset = ring_words(small.path)
    struct.pack_into("<Q", memory, offset + TAIL, 3 * SMALL)
    with pytest.raises(RingError, match="inconsistent.*forged or damaged"):
        rings.AuditConsumer(small.path)


def test_a_forged_record_length_is_refused_naming_its_position(small):
    small.audit.order()
    memory, offset = ring_words(small.path)
    struct.pack_into("<I", memory, offset + DATA + 8, SMALL)  # the first record's length
    consumer = rings.AuditConsumer(small.path)
    with pytest.raises(RingError, match="record at position 0 is corrupt"):
        consumer.poll()


def test_a_consumer_needs_a_writable_mapping(small):
    with pytest.raises(ValueError, match="writable"):
        rings.AuditConsumer(_core.Segment.attach(small.path, False))


def test_a_segment_without_rings_says_so(segment_file):
    telemetry = hftel.Telemetry.create(segment_file, audit_ring_bytes=0, log_ring_bytes=0, heartbeat_interval=None)
    with pytest.raises(RingError, match="has no audit ring"):
        rings.AuditConsumer(telemetry.path)


@pytest.mark.parametrize("size", [1000, 3 << 16, 1 << 31])
def test_a_ring_size_that_is_not_a_power_of_two_in_range_is_refused_at_create(segment_file, size):
    with pytest.raises(hftel.RegistrationError, match="audit ring capacity"):
        hftel.Telemetry.create(segment_file, audit_ring_bytes=size, heartbeat_interval=None)
