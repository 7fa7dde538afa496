"""Bad segments are refused with an error naming the problem, and nothing is read out of bounds.

Each targeted test forges one field of a small valid segment file (through the struct helpers below,
with the offsets of cext/hftel.h and cext/hftel_ring.h) and checks the exception type and message. The hypothesis tests
overwrite random bytes of the header, the descriptor table and the values area, or truncate the
file, and check that a Reader either refuses the file with SegmentError or reads sane series.

A reader bug that reads outside the mapping would kill the interpreter (SIGSEGV/SIGBUS). Tests
that provoke such a read on purpose run the reader in a child process, so that a crash shows up as
one failing test naming the signal instead of taking the whole pytest run down.
"""
from __future__ import annotations

import os
import re
import signal
import struct
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hftel
from hftel import _core

# ---------------------------------------------------------------------------------------------------
# The layout, defined once. Each value is the cext/hftel.h macro named in the comment (offsets are
# HFTEL_<FIELD>_OFFSET); test_the_layout_used_here_matches_hftel_h checks them against the header.
# All integers are native byte order (the segment never leaves the machine), hence "=" in struct.
# ---------------------------------------------------------------------------------------------------

HEADER_LENGTH = _core.HEADER_LENGTH            # HFTEL_HEADER_LENGTH
DESCRIPTOR_LENGTH = _core.DESCRIPTOR_LENGTH    # HFTEL_DESCRIPTOR_LENGTH
MAX_BUCKETS = _core.MAX_BUCKETS                # HFTEL_MAX_BUCKETS
LAYOUT_VERSION = _core.LAYOUT_VERSION          # HFTEL_LAYOUT_VERSION
CACHE_LINE_LENGTH = 64                         # HFTEL_CACHE_LINE_LENGTH
VALUE_ALIGNMENT = 2 * CACHE_LINE_LENGTH        # HFTEL_VALUE_ALIGNMENT
MAX_DESCRIPTOR_CAPACITY = 1 << 20              # HFTEL_MAX_DESCRIPTOR_CAPACITY
NAME_MAX_LENGTH = 128                          # HFTEL_NAME_MAX_LENGTH
LABELS_MAX_LENGTH = 320                        # HFTEL_LABELS_MAX_LENGTH
HELP_MAX_LENGTH = 512                          # HFTEL_HELP_MAX_LENGTH
RING_HEADER_LENGTH = 512                       # HFTEL_RING_HEADER_LENGTH (hftel_ring.h)
RING_MIN_CAPACITY = 1 << 16                    # HFTEL_RING_MIN_CAPACITY (hftel_ring.h)
RING_MAX_CAPACITY = 1 << 30                    # HFTEL_RING_MAX_CAPACITY (hftel_ring.h)

# Header field -> (offset, struct code). The offset is HFTEL_<FIELD upper-cased>_OFFSET.
HEADER_FIELDS: dict[str, tuple[int, str]] = {
    "magic": (0, "Q"),
    "layout_version": (8, "I"),
    "header_length": (12, "I"),
    "segment_length": (16, "Q"),
    "epoch": (24, "Q"),
    "creator_pid": (32, "q"),
    "start_time": (40, "Q"),
    "descriptors_offset": (64, "Q"),
    "descriptor_length": (72, "I"),
    "descriptor_capacity": (76, "I"),
    "values_offset": (80, "Q"),
    "values_length": (88, "Q"),
    "audit_ring_offset": (96, "Q"),
    "audit_ring_capacity": (104, "Q"),
    "log_ring_offset": (112, "Q"),
    "log_ring_capacity": (120, "Q"),
    "registration_lock": (128, "q"),
    "descriptor_count": (136, "I"),
    "values_used": (144, "Q"),
    "heartbeat": (192, "Q"),
    "engine_state": (200, "I"),
}

# Descriptor field -> (offset inside the record, struct code). Same naming rule as the header.
DESCRIPTOR_FIELDS: dict[str, tuple[int, str]] = {
    "state": (0, "i"),
    "type": (4, "H"),
    "bucket_scheme": (6, "H"),
    "value_offset": (8, "Q"),
    "value_length": (16, "I"),
    "bucket_count": (20, "I"),
    "low_exponent": (24, "B"),
    "high_exponent": (25, "B"),
    "sub_bucket_bits": (26, "B"),
    "name_length": (28, "H"),
    "labels_length": (30, "H"),
    "help_length": (32, "H"),
}
# The text areas of a descriptor: HFTEL_NAME_OFFSET, HFTEL_LABELS_OFFSET, HFTEL_HELP_OFFSET.
NAME_OFFSET = 64
LABELS_OFFSET = NAME_OFFSET + NAME_MAX_LENGTH
HELP_OFFSET = LABELS_OFFSET + LABELS_MAX_LENGTH

U64_MAX = 2**64 - 1
U32_MAX = 2**32 - 1

# The series the valid segment holds: (family name, rendered labels) of each descriptor used below.
TICKS = ("ticks", "")                      # counter
OPEN_ORDERS = ("open_orders", "")          # integer gauge
SPREAD = ("spread", "")                    # float gauge
BUY_ORDERS = ("orders", 'side="buy"')      # labelled counter
LATENCY = ("latency_ns", "")               # histogram, default (log-linear) buckets
FILLS = ("fill_ns", "")                    # histogram, explicit buckets
FILL_BOUNDS = (1_000, 10_000, 100_000)


# ---------------------------------------------------------------------------------------------------
# Building a valid segment, and reading and forging its fields.
# ---------------------------------------------------------------------------------------------------


# The rings of the valid segment: both, and small (the minimum for the log ring), which keeps the
# file, and so the property tests that copy it, small.
AUDIT_RING_BYTES = 1 << 17
LOG_RING_BYTES = 1 << 16


def build_segment(path: str | os.PathLike[str], *, rings: bool = True) -> str:
    """Creates a small, closed segment at `path` holding one series of each kind, with values, and
    an audit ring and a log ring (or none, with rings=False)."""
    path = os.fspath(path)
    tel = hftel.Telemetry.create(path, capacity=64, values_bytes=64 * 1024, heartbeat_interval=None,
                                 audit_ring_bytes=AUDIT_RING_BYTES if rings else 0,
                                 log_ring_bytes=LOG_RING_BYTES if rings else 0)
    try:
        tel.counter(TICKS[0], "Ticks seen.").inc(3)
        tel.gauge(OPEN_ORDERS[0], "Open orders.", kind="int").set(-7)
        tel.gauge(SPREAD[0], "Bid-ask spread.", kind="float").set(0.25)
        orders = tel.counter("orders", "Orders sent.", labels=("side",))
        orders.labels(side="buy").inc(2)
        orders.labels(side="sell").inc()
        latency = tel.histogram(LATENCY[0], "Order round trip.")
        for value in (10, 100, 1_000, 1_000_000):
            latency.observe(value)
        fills = tel.histogram(FILLS[0], "Time to fill.", buckets=list(FILL_BOUNDS))
        for value in (5, 5_000, 10_000_000):
            fills.observe(value)
    finally:
        tel.close()
    return path


def read_field(path: str, offset: int, code: str) -> int:
    with open(path, "rb") as file:
        file.seek(offset)
        return struct.unpack("=" + code, file.read(struct.calcsize("=" + code)))[0]


def write_bytes(path: str, offset: int, data: bytes) -> None:
    """Overwrites bytes in place (never truncates, so a reader's mapping stays valid)."""
    with open(path, "r+b") as file:
        file.seek(offset)
        file.write(data)


def write_field(path: str, offset: int, code: str, value: int) -> None:
    write_bytes(path, offset, struct.pack("=" + code, value))


def header_field(path: str, field: str) -> int:
    return read_field(path, *HEADER_FIELDS[field])


def forge_header(path: str, field: str, value: int) -> None:
    offset, code = HEADER_FIELDS[field]
    write_field(path, offset, code, value)


def descriptor_base(path: str, index: int) -> int:
    """The file offset of descriptor `index`, from the header's descriptors_offset."""
    return header_field(path, "descriptors_offset") + index * DESCRIPTOR_LENGTH


def descriptor_field(path: str, index: int, field: str) -> int:
    offset, code = DESCRIPTOR_FIELDS[field]
    return read_field(path, descriptor_base(path, index) + offset, code)


def forge_descriptor(path: str, index: int, field: str, value: int) -> None:
    offset, code = DESCRIPTOR_FIELDS[field]
    write_field(path, descriptor_base(path, index) + offset, code, value)


def forge_text(path: str, index: int, area_offset: int, length_field: str, text: bytes) -> None:
    """Replaces a descriptor's name, labels or help (the bytes and their length field)."""
    write_bytes(path, descriptor_base(path, index) + area_offset, text)
    forge_descriptor(path, index, length_field, len(text))


def find_descriptor(path: str, series: tuple[str, str]) -> int:
    """The index of the descriptor holding (name, rendered labels)."""
    name, labels = series
    for index in range(header_field(path, "descriptor_count")):
        base = descriptor_base(path, index)
        with open(path, "rb") as file:
            file.seek(base)
            record = file.read(DESCRIPTOR_LENGTH)
        name_length = descriptor_field(path, index, "name_length")
        labels_length = descriptor_field(path, index, "labels_length")
        stored_name = record[NAME_OFFSET:NAME_OFFSET + name_length].decode()
        stored_labels = record[LABELS_OFFSET:LABELS_OFFSET + labels_length].decode()
        if (stored_name, stored_labels) == (name, labels):
            return index
    raise LookupError(f"no descriptor for {series} in {path}")


def forge_value_word(path: str, index: int, word: int, value: int) -> None:
    """Overwrites u64 word `word` of descriptor `index`'s value block (a histogram's bounds first)."""
    block = header_field(path, "values_offset") + descriptor_field(path, index, "value_offset")
    write_field(path, block + 8 * word, "Q", value)


def refusal(opener: Callable[[str], Any], path: str, expected: type[BaseException]) -> str:
    """Opens `path`, expects exactly `expected` (not a subclass), returns the message."""
    with pytest.raises(expected) as caught:
        opener(path)
    assert type(caught.value) is expected, f"{type(caught.value).__name__}: {caught.value}"
    return str(caught.value)


def snapshot_refusal(path: str) -> str:
    """Attaches (which must succeed: the header is intact) and expects snapshot() to refuse."""
    reader = hftel.Reader(path)
    return refusal(lambda _: reader.snapshot(), path, hftel.SegmentError)


def run_isolated(script: str, *args: str) -> str:
    """Runs `script` in a child interpreter; a crash (an out-of-bounds read) fails the test."""
    result = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", textwrap.dedent(script), *args],
        capture_output=True, text=True, timeout=60,
    )
    if result.returncode < 0:
        pytest.fail(
            f"the child was killed by {signal.Signals(-result.returncode).name}: it read outside the "
            f"mapping\n{result.stderr[-2000:]}"
        )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def open_for_reading(path: str) -> Any:
    return hftel.Reader(path)


def open_for_writing(path: str) -> Any:
    return hftel.Telemetry.attach(path)


# Every header check is made by both attach paths: the exporter's Reader and an engine's attach.
OPENERS = pytest.mark.parametrize("opener", [open_for_reading, open_for_writing], ids=["Reader", "attach"])


@pytest.fixture
def segment(tmp_path: Path) -> str:
    """A small valid segment file holding each kind of series, closed, with values recorded, and
    both rings."""
    return build_segment(tmp_path / "engine.seg")


@pytest.fixture
def ringless_segment(tmp_path: Path) -> str:
    """The same segment created without rings (audit_ring_bytes=0, log_ring_bytes=0)."""
    return build_segment(tmp_path / "ringless.seg", rings=False)


def values_end(path: str) -> int:
    """Where the values area ends: the earliest a ring may start."""
    return header_field(path, "values_offset") + header_field(path, "values_length")


def ring_end(path: str, ring: str) -> int:
    """Where the `ring` ("audit" or "log") ends: its offset, the ring header and its data."""
    return header_field(path, f"{ring}_ring_offset") + RING_HEADER_LENGTH + header_field(path, f"{ring}_ring_capacity")


def test_the_fixture_segment_is_valid_and_holds_every_kind_of_series(segment):
    """Sanity: the untouched segment attaches and reads back every series recorded."""
    snapshot = hftel.Reader(segment).snapshot()
    assert snapshot.get_sample_value("ticks_total") == 3
    assert snapshot.get_sample_value("open_orders") == -7
    assert snapshot.get_sample_value("spread") == 0.25
    assert snapshot.get_sample_value("orders_total", {"side": "buy"}) == 2
    assert snapshot.get_sample_value("latency_ns_count") == 4
    assert snapshot.get("fill_ns").bounds == FILL_BOUNDS
    assert snapshot.get_sample_value("fill_ns_count") == 3
    assert hftel.Telemetry.attach(segment).path == segment


def test_the_layout_used_here_matches_hftel_h():
    """The offsets and sizes defined at the top of this module are the ones cext/hftel.h and
    cext/hftel_ring.h define."""
    headers = [Path(hftel.get_include()) / name for name in ("hftel.h", "hftel_ring.h")]
    for header in headers:
        if not header.exists():
            pytest.skip(f"{header} is not available")
    macros: dict[str, int] = {}
    text = "\n".join(header.read_text() for header in headers)
    for match in re.finditer(r"^#define (HFTEL_\w+)[ \t]+([^\n]+)$", text, re.MULTILINE):
        expression = re.sub(r"\b(0x[0-9a-fA-F]+|\d+)[uUlL]*\b", r"\1", match.group(2))
        try:
            macros[match.group(1)] = eval(expression, {"__builtins__": {}}, dict(macros))  # noqa: S307
        except (NameError, SyntaxError):
            continue  # not an integer constant
    for field, (offset, _) in {**HEADER_FIELDS, **DESCRIPTOR_FIELDS}.items():
        assert macros[f"HFTEL_{field.upper()}_OFFSET"] == offset, field
    for name, value in [
        ("HEADER_LENGTH", HEADER_LENGTH), ("DESCRIPTOR_LENGTH", DESCRIPTOR_LENGTH), ("MAX_BUCKETS", MAX_BUCKETS),
        ("LAYOUT_VERSION", LAYOUT_VERSION), ("CACHE_LINE_LENGTH", CACHE_LINE_LENGTH),
        ("VALUE_ALIGNMENT", VALUE_ALIGNMENT), ("MAX_DESCRIPTOR_CAPACITY", MAX_DESCRIPTOR_CAPACITY),
        ("NAME_MAX_LENGTH", NAME_MAX_LENGTH), ("LABELS_MAX_LENGTH", LABELS_MAX_LENGTH),
        ("HELP_MAX_LENGTH", HELP_MAX_LENGTH), ("NAME_OFFSET", NAME_OFFSET), ("LABELS_OFFSET", LABELS_OFFSET),
        ("HELP_OFFSET", HELP_OFFSET), ("RING_HEADER_LENGTH", RING_HEADER_LENGTH),
        ("RING_MIN_CAPACITY", RING_MIN_CAPACITY), ("RING_MAX_CAPACITY", RING_MAX_CAPACITY),
    ]:
        assert macros[f"HFTEL_{name}"] == value, name


# ---------------------------------------------------------------------------------------------------
# The file itself.
# ---------------------------------------------------------------------------------------------------


@OPENERS
def test_a_nonexistent_path_raises_an_os_error_naming_the_path(opener, tmp_path):
    """Attaching to a file that does not exist raises OSError, and the message names the path."""
    path = str(tmp_path / "no-such-segment")
    with pytest.raises(OSError) as caught:
        opener(path)
    assert path in str(caught.value)


@OPENERS
@pytest.mark.parametrize("length", [0, 1, HEADER_LENGTH - 1])
def test_a_file_shorter_than_the_header_is_refused_as_truncated(opener, segment, length):
    """A file shorter than the header page is refused as truncated, naming the file."""
    os.truncate(segment, length)
    message = refusal(opener, segment, hftel.SegmentError)
    assert "truncated" in message
    assert segment in message


@OPENERS
def test_a_file_truncated_after_the_header_is_refused_for_its_segment_length(opener, segment):
    """A file cut short after an intact header contradicts the header's segment length."""
    os.truncate(segment, header_field(segment, "values_offset"))
    message = refusal(opener, segment, hftel.SegmentError)
    assert "segment length" in message and "truncated" in message
    assert segment in message


@OPENERS
def test_a_file_longer_than_its_segment_length_is_refused(opener, segment):
    """Bytes appended past the segment length are refused as well: the length field is forged or stale."""
    os.truncate(segment, header_field(segment, "segment_length") + VALUE_ALIGNMENT)
    assert "segment length" in refusal(opener, segment, hftel.SegmentError)


@OPENERS
def test_a_forged_segment_length_is_refused(opener, segment):
    """A segment length field that disagrees with the file's size is refused."""
    forge_header(segment, "segment_length", U64_MAX)
    assert "segment length" in refusal(opener, segment, hftel.SegmentError)


# ---------------------------------------------------------------------------------------------------
# The header.
# ---------------------------------------------------------------------------------------------------


@OPENERS
def test_a_wrong_magic_is_refused_as_not_an_hftel_segment(opener, segment):
    """A file whose first word is not "HFTELSEG" is not a segment."""
    forge_header(segment, "magic", header_field(segment, "magic") ^ 1)
    message = refusal(opener, segment, hftel.SegmentError)
    assert "magic" in message and "not an hftel segment" in message
    assert segment in message


@OPENERS
def test_layout_version_zero_is_refused_as_not_initialised(opener, segment):
    """Layout version 0 means the creator has not published the header (or died doing so)."""
    forge_header(segment, "layout_version", 0)
    message = refusal(opener, segment, hftel.LayoutVersionError)
    assert "not initialised" in message and "layout version 0" in message


@OPENERS
@pytest.mark.parametrize("version", [LAYOUT_VERSION + 1, U32_MAX])
def test_a_newer_layout_version_is_refused_with_layout_version_error(opener, segment, version):
    """A segment from a newer hftel raises LayoutVersionError saying the version is newer."""
    forge_header(segment, "layout_version", version)
    message = refusal(opener, segment, hftel.LayoutVersionError)
    assert "newer" in message and f"layout version {version}" in message


@OPENERS
@pytest.mark.parametrize("value", [0, HEADER_LENGTH - 1, HEADER_LENGTH * 2])
def test_a_forged_header_length_is_refused(opener, segment, value):
    """A header length other than one page is refused."""
    forge_header(segment, "header_length", value)
    assert "header length" in refusal(opener, segment, hftel.SegmentError)


@OPENERS
def test_a_forged_descriptor_length_is_refused(opener, segment):
    """A descriptor record length other than HFTEL_DESCRIPTOR_LENGTH is refused."""
    forge_header(segment, "descriptor_length", DESCRIPTOR_LENGTH * 2)
    assert "descriptor length" in refusal(opener, segment, hftel.SegmentError)


@OPENERS
@pytest.mark.parametrize("capacity", [0, MAX_DESCRIPTOR_CAPACITY + 1, U32_MAX])
def test_a_descriptor_capacity_outside_the_limits_is_refused(opener, segment, capacity):
    """A descriptor capacity of 0 or past the maximum is refused before anything is indexed by it."""
    forge_header(segment, "descriptor_capacity", capacity)
    message = refusal(opener, segment, hftel.SegmentError)
    assert "descriptor capacity" in message and "outside" in message


@OPENERS
def test_a_descriptor_capacity_forged_huge_but_within_the_limit_is_refused(opener, segment):
    """A capacity whose table would run past the end of the file is refused."""
    forge_header(segment, "descriptor_capacity", MAX_DESCRIPTOR_CAPACITY)
    message = refusal(opener, segment, hftel.SegmentError)
    assert "descriptor table" in message and "does not fit" in message


@OPENERS
@pytest.mark.parametrize("where", ["past the end", "at 2**64-64", "inside the header", "misaligned"])
def test_a_forged_descriptors_offset_is_refused(opener, segment, where):
    """A descriptor table past the end, wrapping around, inside the header or misaligned is refused."""
    length = header_field(segment, "segment_length")
    offset = {
        "past the end": length + HEADER_LENGTH,
        "at 2**64-64": 2**64 - CACHE_LINE_LENGTH,
        "inside the header": 0,
        "misaligned": header_field(segment, "descriptors_offset") + 1,
    }[where]
    forge_header(segment, "descriptors_offset", offset)
    message = refusal(opener, segment, hftel.SegmentError)
    assert "descriptor table" in message and "does not fit" in message


@OPENERS
def test_a_values_offset_overlapping_the_descriptors_is_refused(opener, segment):
    """A values area that starts inside the descriptor table is refused."""
    forge_header(segment, "values_offset", header_field(segment, "values_offset") - VALUE_ALIGNMENT)
    message = refusal(opener, segment, hftel.SegmentError)
    assert "values area" in message and "overlaps" in message


@OPENERS
def test_a_misaligned_values_offset_is_refused(opener, segment):
    """A values area that does not start on a value-slot boundary is refused."""
    forge_header(segment, "values_offset", header_field(segment, "values_offset") + CACHE_LINE_LENGTH)
    assert "values area" in refusal(opener, segment, hftel.SegmentError)


@OPENERS
@pytest.mark.parametrize("rings", [True, False], ids=["rings", "no rings"])
@pytest.mark.parametrize("forged", ["one slot past the end", "2**64-1"])
def test_a_values_length_past_the_end_is_refused(opener, tmp_path, rings, forged):
    """A values area running past the end of the file (or wrapping around 2**64) is refused, with or
    without rings after it: the values area is checked before the rings."""
    path = build_segment(tmp_path / "engine.seg", rings=rings)
    past_the_end = header_field(path, "segment_length") - header_field(path, "values_offset") + VALUE_ALIGNMENT
    forge_header(path, "values_length", past_the_end if forged == "one slot past the end" else U64_MAX)
    message = refusal(opener, path, hftel.SegmentError)
    assert "values area" in message and "end of the file" in message


@OPENERS
def test_a_values_area_grown_into_the_audit_ring_is_refused(opener, segment):
    """A values area one slot longer, still inside the file, runs into the audit ring: the refusal
    names the ring, which no longer starts after the values area."""
    assert values_end(segment) == header_field(segment, "audit_ring_offset")
    forge_header(segment, "values_length", header_field(segment, "values_length") + VALUE_ALIGNMENT)
    message = refusal(opener, segment, hftel.SegmentError)
    offset = header_field(segment, "audit_ring_offset")
    assert f"audit ring at offset {offset}, {AUDIT_RING_BYTES} bytes long, overlaps what precedes it" in message


@OPENERS
def test_a_descriptor_count_above_the_capacity_is_refused(opener, segment):
    """A descriptor count larger than the table is refused."""
    forge_header(segment, "descriptor_count", header_field(segment, "descriptor_capacity") + 1)
    message = refusal(opener, segment, hftel.SegmentError)
    assert "descriptor count" in message and "exceeds the capacity" in message


@OPENERS
def test_values_used_beyond_the_values_area_is_refused(opener, segment):
    """A values-used mark past the end of the values area is refused."""
    forge_header(segment, "values_used", header_field(segment, "values_length") + 1)
    assert "values used" in refusal(opener, segment, hftel.SegmentError)


def test_a_header_forged_after_attaching_is_refused_by_the_next_snapshot(segment):
    """snapshot() checks the header again: a count forged while attached is refused, not followed."""
    reader = hftel.Reader(segment)
    reader.snapshot()
    forge_header(segment, "descriptor_count", header_field(segment, "descriptor_capacity") + 1)
    message = refusal(lambda _: reader.snapshot(), segment, hftel.SegmentError)
    assert "exceeds the capacity" in message


# ---------------------------------------------------------------------------------------------------
# The rings' geometry (header line 1, bytes 96 to 127): checked with the rest of the header.
# ---------------------------------------------------------------------------------------------------

RINGS = pytest.mark.parametrize("ring", ["audit", "log"])
RING_BYTES = {"audit": AUDIT_RING_BYTES, "log": LOG_RING_BYTES}


def capacity_refused(ring: str, capacity: int) -> str:
    """What the refusal of a ring capacity says (hftel_check_ring_geometry)."""
    return (f"{ring} ring capacity {capacity} is not a power of two in "
            f"{RING_MIN_CAPACITY}..{RING_MAX_CAPACITY}")


def placement_refused(ring: str, offset: int, capacity: int) -> str:
    """What the refusal of a ring's placement says (hftel_check_ring_geometry)."""
    return (f"{ring} ring at offset {offset}, {capacity} bytes long, overlaps what precedes it or the end "
            f"of the file")


def test_the_valid_segment_lays_its_rings_out_as_hftel_segment_create_does(segment):
    """Sanity for the forgeries below: the audit ring starts where the values area ends, the log
    ring on the first page after the audit ring, and the file ends on the first page after that."""
    assert header_field(segment, "audit_ring_capacity") == AUDIT_RING_BYTES
    assert header_field(segment, "log_ring_capacity") == LOG_RING_BYTES
    assert header_field(segment, "audit_ring_offset") == values_end(segment)
    assert header_field(segment, "log_ring_offset") == -(-ring_end(segment, "audit") // HEADER_LENGTH) * HEADER_LENGTH
    assert header_field(segment, "segment_length") == -(-ring_end(segment, "log") // HEADER_LENGTH) * HEADER_LENGTH
    assert os.path.getsize(segment) == header_field(segment, "segment_length")


@OPENERS
def test_a_segment_created_without_rings_attaches_and_reads(opener, ringless_segment):
    """A segment made with audit_ring_bytes=0 and log_ring_bytes=0 has 0/0 ring fields, ends on the
    page after its values area, and attaches and reads like any other."""
    for field in ("audit_ring_offset", "audit_ring_capacity", "log_ring_offset", "log_ring_capacity"):
        assert header_field(ringless_segment, field) == 0, field
    assert header_field(ringless_segment, "segment_length") == os.path.getsize(ringless_segment)
    assert header_field(ringless_segment, "segment_length") == -(-values_end(ringless_segment) // HEADER_LENGTH) * HEADER_LENGTH
    opener(ringless_segment)
    snapshot = hftel.Reader(ringless_segment).snapshot()
    assert snapshot.get_sample_value("ticks_total") == 3
    assert snapshot.get_sample_value("latency_ns_count") == 4


@OPENERS
@RINGS
@pytest.mark.parametrize(
    "forged",
    ["not a power of two", "one byte short", "below the minimum", "above the maximum", "2**63", "2**64-1"],
)
def test_a_ring_capacity_that_is_not_a_power_of_two_in_range_is_refused(opener, segment, ring, forged):
    """A ring capacity that is not a power of two, or lies outside HFTEL_RING_MIN_CAPACITY..
    HFTEL_RING_MAX_CAPACITY (however it would fit), is refused, naming the ring and the capacity."""
    capacity = {
        "not a power of two": 3 * RING_MIN_CAPACITY,
        "one byte short": RING_BYTES[ring] - 1,
        "below the minimum": RING_MIN_CAPACITY // 2,
        "above the maximum": RING_MAX_CAPACITY * 2,
        "2**63": 2**63,
        "2**64-1": U64_MAX,
    }[forged]
    forge_header(segment, f"{ring}_ring_capacity", capacity)
    assert capacity_refused(ring, capacity) in refusal(opener, segment, hftel.SegmentError)


@OPENERS
@RINGS
def test_a_ring_offset_with_a_capacity_of_zero_is_refused(opener, segment, ring):
    """A ring is absent only when both its offset and its capacity are 0: an offset with no capacity
    is refused."""
    forge_header(segment, f"{ring}_ring_capacity", 0)
    assert capacity_refused(ring, 0) in refusal(opener, segment, hftel.SegmentError)


@OPENERS
@RINGS
def test_a_ring_capacity_with_an_offset_of_zero_is_refused(opener, segment, ring):
    """... and a capacity with offset 0 puts the ring over the header: refused."""
    forge_header(segment, f"{ring}_ring_offset", 0)
    assert placement_refused(ring, 0, RING_BYTES[ring]) in refusal(opener, segment, hftel.SegmentError)


@OPENERS
@RINGS
@pytest.mark.parametrize("shift", [8, VALUE_ALIGNMENT, HEADER_LENGTH // 2])
def test_a_ring_offset_that_is_not_page_aligned_is_refused(opener, segment, ring, shift):
    """A ring moved off its page boundary (still after what precedes it and inside the file) is refused."""
    offset = header_field(segment, f"{ring}_ring_offset") + shift
    assert offset + RING_HEADER_LENGTH + RING_BYTES[ring] <= header_field(segment, "segment_length")
    forge_header(segment, f"{ring}_ring_offset", offset)
    message = refusal(opener, segment, hftel.SegmentError)
    assert f"{ring} ring offset {offset} is not page aligned" in message


@OPENERS
@pytest.mark.parametrize("ring", ["audit", "log with no audit ring"])
@pytest.mark.parametrize("where", ["at the values area", "on its last page"])
def test_a_ring_overlapping_the_values_area_is_refused(opener, segment, ring, where):
    """A ring starting inside the values area is refused; so is the log ring when there is no audit
    ring to sit after."""
    values_offset = header_field(segment, "values_offset")
    offset = {
        "at the values area": values_offset // HEADER_LENGTH * HEADER_LENGTH,
        "on its last page": (values_end(segment) - 1) // HEADER_LENGTH * HEADER_LENGTH,
    }[where]
    assert offset < values_end(segment)
    if ring == "audit":
        forge_header(segment, "audit_ring_offset", offset)
        expected = placement_refused("audit", offset, AUDIT_RING_BYTES)
    else:
        forge_header(segment, "audit_ring_offset", 0)
        forge_header(segment, "audit_ring_capacity", 0)
        forge_header(segment, "log_ring_offset", offset)
        expected = placement_refused("log", offset, LOG_RING_BYTES)
    assert expected in refusal(opener, segment, hftel.SegmentError)


@OPENERS
@pytest.mark.parametrize("where", ["at the audit ring", "one page in", "on its last page"])
def test_a_log_ring_overlapping_the_audit_ring_is_refused(opener, segment, where):
    """The log ring must start after the audit ring ends: one that starts inside it is refused."""
    audit = header_field(segment, "audit_ring_offset")
    offset = {
        "at the audit ring": audit,
        "one page in": audit + HEADER_LENGTH,
        "on its last page": (ring_end(segment, "audit") - 1) // HEADER_LENGTH * HEADER_LENGTH,
    }[where]
    assert values_end(segment) <= offset < ring_end(segment, "audit")
    forge_header(segment, "log_ring_offset", offset)
    assert placement_refused("log", offset, LOG_RING_BYTES) in refusal(opener, segment, hftel.SegmentError)


@OPENERS
def test_an_audit_ring_moved_onto_the_log_ring_is_refused(opener, segment):
    """An audit ring moved one page later (still page aligned, still inside the file) runs into the
    log ring: the refusal names the log ring, which no longer starts after the audit ring ends."""
    forge_header(segment, "audit_ring_offset", header_field(segment, "audit_ring_offset") + HEADER_LENGTH)
    log_offset = header_field(segment, "log_ring_offset")
    assert ring_end(segment, "audit") > log_offset
    assert placement_refused("log", log_offset, LOG_RING_BYTES) in refusal(opener, segment, hftel.SegmentError)


@OPENERS
@RINGS
@pytest.mark.parametrize("where", ["capacity doubled", "at the end of the file", "a page past the end",
                                   "at 2**64-4096"])
def test_a_ring_running_past_the_end_of_the_file_is_refused(opener, segment, ring, where):
    """A ring whose data would end past the end of the file, or whose offset wraps around 2**64, is
    refused."""
    length = header_field(segment, "segment_length")
    offset, capacity = header_field(segment, f"{ring}_ring_offset"), RING_BYTES[ring]
    if where == "capacity doubled":
        capacity *= 2
        forge_header(segment, f"{ring}_ring_capacity", capacity)
        assert offset + RING_HEADER_LENGTH + capacity > length
    else:
        offset = {"at the end of the file": length, "a page past the end": length + HEADER_LENGTH,
                  "at 2**64-4096": 2**64 - HEADER_LENGTH}[where]
        forge_header(segment, f"{ring}_ring_offset", offset)
    assert placement_refused(ring, offset, capacity) in refusal(opener, segment, hftel.SegmentError)


@pytest.mark.parametrize(
    "forged,problem",
    [
        ({"audit_ring_capacity": AUDIT_RING_BYTES // 2}, "geometry changed after it was attached"),
        ({"log_ring_offset": 0, "log_ring_capacity": 0}, "geometry changed after it was attached"),
        ({"audit_ring_offset": 0, "audit_ring_capacity": 0}, "geometry changed after it was attached"),
        ({"audit_ring_capacity": 3 * RING_MIN_CAPACITY}, capacity_refused("audit", 3 * RING_MIN_CAPACITY)),
    ],
    ids=["audit ring shrunk", "log ring removed", "audit ring removed", "capacity not a power of two"],
)
def test_a_ring_geometry_forged_after_attaching_is_refused_by_the_next_snapshot(segment, forged, problem):
    """snapshot() checks the header again and compares the ring geometry with the one it attached:
    a ring changed while attached is refused, even when the new geometry would pass on its own."""
    reader = hftel.Reader(segment)
    reader.snapshot()
    for field, value in forged.items():
        forge_header(segment, field, value)
    message = refusal(lambda _: reader.snapshot(), segment, hftel.SegmentError)
    assert problem in message


def test_the_problem_is_still_named_when_the_segment_path_is_long(tmp_path):
    """A long (but legal) path does not push the description of the problem out of the message."""
    directory = tmp_path / ("d" * 200) / ("e" * 100)
    directory.mkdir(parents=True)
    path = build_segment(directory / "engine.seg")
    forge_header(path, "magic", 0)
    assert "magic" in refusal(open_for_reading, path, hftel.SegmentError)


# ---------------------------------------------------------------------------------------------------
# Descriptors: the header is intact, so attaching succeeds; snapshot() checks each descriptor.
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [0, 5, 0xFFFF])
def test_a_published_descriptor_with_an_unknown_type_is_refused(segment, kind):
    """A published descriptor whose type is not counter, gauge or histogram is refused."""
    index = find_descriptor(segment, TICKS)
    forge_descriptor(segment, index, "type", kind)
    message = snapshot_refusal(segment)
    assert f"descriptor {index}" in message and f"unknown type {kind}" in message


@pytest.mark.parametrize("name", [b"tic-s", b"ti ks", b"9ticks", b"t\xffcks", b"ticks\x00"])
def test_a_descriptor_name_with_invalid_characters_is_refused(segment, name):
    """A metric name outside [a-zA-Z_:][a-zA-Z0-9_:]* is refused."""
    index = find_descriptor(segment, TICKS)
    forge_text(segment, index, NAME_OFFSET, "name_length", name)
    message = snapshot_refusal(segment)
    assert f"descriptor {index}" in message and "invalid metric name" in message


@pytest.mark.parametrize("length", [0, NAME_MAX_LENGTH + 1, 0xFFFF])
def test_a_descriptor_name_length_of_zero_or_past_its_area_is_refused(segment, length):
    """An empty name, or a name length running past the name area, is refused."""
    index = find_descriptor(segment, TICKS)
    forge_descriptor(segment, index, "name_length", length)
    message = snapshot_refusal(segment)
    assert f"descriptor {index}" in message and "invalid metric name" in message


@pytest.mark.parametrize(
    "labels",
    [b'side="buy', b'side=buy', b'side="buy",', b'1side="buy"', b'side="b\\uy"', b'side="b\nuy"', b'="buy"',
     b'side="buy"venue="x"'],
    ids=["unterminated quote", "unquoted", "trailing comma", "bad label name", "bad escape", "raw newline",
         "empty label name", "missing comma"],
)
def test_a_descriptor_with_malformed_labels_is_refused(segment, labels):
    """Labels that are not name="value"(,name="value")* with valid escapes are refused."""
    index = find_descriptor(segment, BUY_ORDERS)
    forge_text(segment, index, LABELS_OFFSET, "labels_length", labels)
    message = snapshot_refusal(segment)
    assert f"descriptor {index}" in message and "malformed labels" in message


def test_a_descriptor_labels_length_past_its_area_is_refused(segment):
    """A labels length running past the labels area is refused."""
    index = find_descriptor(segment, BUY_ORDERS)
    forge_descriptor(segment, index, "labels_length", LABELS_MAX_LENGTH + 1)
    assert "malformed labels" in snapshot_refusal(segment)


def test_a_descriptor_help_length_past_its_area_is_refused(segment):
    """A help length running past the help area is refused."""
    index = find_descriptor(segment, TICKS)
    forge_descriptor(segment, index, "help_length", HELP_MAX_LENGTH + 1)
    message = snapshot_refusal(segment)
    assert f"descriptor {index}" in message and "help length" in message


def test_a_descriptor_help_that_is_not_utf8_is_refused(segment):
    """Help text that is not UTF-8 is garbage: SegmentError, not a UnicodeDecodeError."""
    index = find_descriptor(segment, TICKS)
    forge_text(segment, index, HELP_OFFSET, "help_length", b"Ticks \xff seen.")
    assert f"descriptor {index}" in snapshot_refusal(segment)


def test_a_descriptor_label_value_that_is_not_utf8_is_refused(segment):
    """Label values that are not UTF-8 are garbage: SegmentError, not a UnicodeDecodeError."""
    index = find_descriptor(segment, BUY_ORDERS)
    forge_text(segment, index, LABELS_OFFSET, "labels_length", b'side="b\xffy"')
    assert f"descriptor {index}" in snapshot_refusal(segment)


@pytest.mark.parametrize("series", [TICKS, LATENCY], ids=["counter", "histogram"])
@pytest.mark.parametrize("where", ["past the end", "at the end", "misaligned", "at 2**40"])
def test_a_value_offset_outside_the_values_area_is_refused(segment, series, where):
    """A value offset past (or at) the end of the values area, or misaligned, is refused."""
    index = find_descriptor(segment, series)
    values_length = header_field(segment, "values_length")
    offset = {
        "past the end": values_length + VALUE_ALIGNMENT,
        "at the end": values_length,
        "misaligned": descriptor_field(segment, index, "value_offset") + 8,
        "at 2**40": 2**40,
    }[where]
    forge_descriptor(segment, index, "value_offset", offset)
    message = snapshot_refusal(segment)
    assert f"descriptor {index}" in message and "outside the values area" in message


@pytest.mark.parametrize("series", [TICKS, LATENCY], ids=["counter", "histogram"])
def test_a_value_offset_plus_length_overflowing_2_to_the_64_is_refused(segment, series):
    """value_offset + value_length wrapping around 2**64 (landing inside the area) is refused."""
    index = find_descriptor(segment, series)
    forge_descriptor(segment, index, "value_offset", 2**64 - VALUE_ALIGNMENT)
    forge_descriptor(segment, index, "value_length", 2 * VALUE_ALIGNMENT)
    message = snapshot_refusal(segment)
    assert f"descriptor {index}" in message and "outside the values area" in message


@pytest.mark.parametrize("series", [TICKS, LATENCY], ids=["counter", "histogram"])
def test_a_value_length_past_the_values_area_is_refused(segment, series):
    """A value block running past the end of the values area is refused."""
    index = find_descriptor(segment, series)
    forge_descriptor(segment, index, "value_length", U32_MAX)
    assert "outside the values area" in snapshot_refusal(segment)


@pytest.mark.parametrize("field,value", [("value_length", 0), ("value_length", 7), ("bucket_scheme", 1)])
def test_a_counter_with_a_malformed_value_slot_is_refused(segment, field, value):
    """A counter's slot shorter than one word, or a counter with a bucket scheme, is refused."""
    index = find_descriptor(segment, TICKS)
    forge_descriptor(segment, index, field, value)
    message = snapshot_refusal(segment)
    assert f"descriptor {index}" in message and "malformed value slot" in message


@pytest.mark.parametrize("series", [LATENCY, FILLS], ids=["log-linear", "explicit"])
@pytest.mark.parametrize("count", [0, MAX_BUCKETS + 1, U32_MAX])
def test_a_histogram_bucket_count_of_zero_or_past_the_maximum_is_refused(segment, series, count):
    """A histogram with no finite bucket, or more than HFTEL_MAX_BUCKETS, is refused."""
    index = find_descriptor(segment, series)
    forge_descriptor(segment, index, "bucket_count", count)
    message = snapshot_refusal(segment)
    assert f"descriptor {index}" in message and f"{count} buckets" in message


def test_a_histogram_bucket_count_too_large_for_its_block_is_refused(segment):
    """A bucket count whose bounds and counts would run past the descriptor's value block is refused."""
    index = find_descriptor(segment, FILLS)
    forge_descriptor(segment, index, "bucket_count", MAX_BUCKETS)
    message = snapshot_refusal(segment)
    assert f"{MAX_BUCKETS} buckets in a" in message and "block" in message


@pytest.mark.parametrize("word,value", [(1, FILL_BOUNDS[0]), (1, FILL_BOUNDS[0] - 1), (2, 0)],
                         ids=["equal", "decreasing", "zero last"])
def test_explicit_histogram_bounds_forged_non_increasing_are_refused(segment, word, value):
    """Explicit bounds that do not strictly increase are refused."""
    index = find_descriptor(segment, FILLS)
    forge_value_word(segment, index, word, value)
    message = snapshot_refusal(segment)
    assert f"descriptor {index}" in message and "strictly increase" in message


def test_log_linear_histogram_bounds_forged_off_the_layout_are_refused(segment):
    """Log-linear bounds that still increase but do not match the layout's formula are refused."""
    index = find_descriptor(segment, LATENCY)
    forge_value_word(segment, index, 0, 63)
    assert "does not match the log-linear layout" in snapshot_refusal(segment)


@pytest.mark.parametrize(
    "field,value,problem",
    [("high_exponent", 35, "buckets, not"), ("low_exponent", 5, "buckets, not"),
     ("low_exponent", 34, "is invalid"), ("high_exponent", 63, "is invalid"),
     ("sub_bucket_bits", 9, "is invalid"), ("low_exponent", 0, "is invalid")],
)
def test_log_linear_parameters_forged_inconsistent_are_refused(segment, field, value, problem):
    """Log-linear exponents or sub-bucket bits that are invalid or disagree with the bucket count are refused."""
    index = find_descriptor(segment, LATENCY)
    forge_descriptor(segment, index, field, value)
    message = snapshot_refusal(segment)
    assert f"descriptor {index}" in message and "log-linear layout" in message and problem in message


@pytest.mark.parametrize("scheme", [0, 3, 0xFFFF])
def test_a_histogram_with_an_unknown_bucket_scheme_is_refused(segment, scheme):
    """A histogram whose bucket scheme is neither explicit nor log-linear is refused."""
    index = find_descriptor(segment, FILLS)
    forge_descriptor(segment, index, "bucket_scheme", scheme)
    assert f"unknown bucket scheme {scheme}" in snapshot_refusal(segment)


@pytest.mark.parametrize("state", [0, 1, 3, -1])
def test_a_descriptor_that_is_not_published_is_skipped_not_read(segment, state):
    """A record whose state is not PUBLISHED is ignored (it may be mid-registration), however garbled."""
    index = find_descriptor(segment, TICKS)
    forge_descriptor(segment, index, "state", state)
    forge_descriptor(segment, index, "value_offset", U64_MAX)
    snapshot = hftel.Reader(segment).snapshot()
    assert snapshot.get("ticks") is None
    assert snapshot.get_sample_value("open_orders") == -7


def test_a_refused_descriptor_is_refused_again_by_the_next_snapshot(segment):
    """A retry after a refused snapshot must not silently return a partial (here: empty) snapshot."""
    forge_descriptor(segment, find_descriptor(segment, TICKS), "type", 99)
    reader = hftel.Reader(segment)
    with pytest.raises(hftel.SegmentError):
        reader.snapshot()
    try:
        snapshot = reader.snapshot()
    except hftel.SegmentError:
        return
    pytest.fail(f"the second snapshot succeeded with only {[s.name for s in snapshot.series]}")


def test_attach_for_writing_refuses_to_bind_a_forged_descriptor(segment):
    """Registering again a series whose descriptor is forged raises SegmentError instead of binding it."""
    forge_descriptor(segment, find_descriptor(segment, TICKS), "value_offset", 2**40)
    tel = hftel.Telemetry.attach(segment)
    with pytest.raises(hftel.SegmentError, match="outside the values area"):
        tel.counter(TICKS[0], "Ticks seen.")


def test_attach_for_writing_never_reads_the_bounds_of_a_forged_histogram(segment):
    """Registering again a histogram whose value offset is forged is refused, not read out of bounds."""
    forge_descriptor(segment, find_descriptor(segment, FILLS), "value_offset", 2**40)
    outcome = run_isolated(
        """
        import sys, hftel
        tel = hftel.Telemetry.attach(sys.argv[1])
        try:
            tel.histogram(sys.argv[2], "Time to fill.", buckets=[int(b) for b in sys.argv[3:]])
        except hftel.SegmentError as error:
            print("refused:", error)
        else:
            print("accepted")
        """,
        segment, FILLS[0], *map(str, FILL_BOUNDS),
    )
    assert outcome.startswith("refused:") and "outside the values area" in outcome


# ---------------------------------------------------------------------------------------------------
# Descriptors forged after their first check, while a reader is attached: published descriptors are
# meant to be immutable, but the reader must not trust shared memory it checked earlier.
# ---------------------------------------------------------------------------------------------------


def test_a_value_offset_forged_after_the_first_snapshot_is_never_followed(segment):
    """A counter's value offset forged once it was checked is refused (or ignored), never dereferenced."""
    index = find_descriptor(segment, TICKS)
    outcome = run_isolated(
        """
        import struct, sys, hftel
        path, at = sys.argv[1], int(sys.argv[2])
        reader = hftel.Reader(path)
        reader.snapshot()
        with open(path, "r+b") as file:
            file.seek(at)
            file.write(struct.pack("=Q", 2**40))
        try:
            value = reader.snapshot().get_sample_value("ticks_total")
        except hftel.SegmentError as error:
            print("refused:", error)
        else:
            print("read:", value)
        """,
        segment, str(descriptor_base(segment, index) + DESCRIPTOR_FIELDS["value_offset"][0]),
    )
    assert outcome == "read: 3" or outcome.startswith("refused:"), outcome


def test_a_bucket_count_forged_after_the_first_snapshot_gives_no_inconsistent_histogram(segment):
    """A histogram's bucket count forged once it was checked never yields counts that do not match its bounds."""
    index = find_descriptor(segment, LATENCY)
    reader = hftel.Reader(segment)
    reader.snapshot()
    forge_descriptor(segment, index, "bucket_count", descriptor_field(segment, index, "bucket_count") + 1)
    try:
        histogram = reader.snapshot().get(LATENCY[0])
    except hftel.SegmentError:
        return
    assert len(histogram.cumulative) == len(histogram.bounds) + 1


# ---------------------------------------------------------------------------------------------------
# Properties: random corruption is refused with SegmentError or read as sane series; never a crash,
# never another exception.
# ---------------------------------------------------------------------------------------------------


class Pristine:
    """The bytes of a valid segment, with a short repr for hypothesis' failure reports (not 340 kB)."""

    def __init__(self, data: bytes):
        self.data = data

    def __repr__(self) -> str:
        return f"<valid segment, {len(self.data)} bytes>"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Pristine:
    """A valid segment's bytes, built once for the property tests."""
    return Pristine(Path(build_segment(tmp_path_factory.mktemp("pristine") / "engine.seg")).read_bytes())


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def write_fresh(directory: Path, data: bytes) -> str:
    """Writes `data` as a new file (a new inode) at directory/engine.seg, so that a mapping of the
    previous example's file is never truncated under it."""
    temporary, path = directory / "engine.seg.tmp", directory / "engine.seg"
    temporary.write_bytes(data)
    os.replace(temporary, path)
    return str(path)


def interesting_regions(data: bytes) -> list[tuple[int, int]]:
    """[start, end) ranges worth corrupting: header lines, each used descriptor's fields and text,
    the used part of the values area (a histogram's bounds live there), and the whole file."""
    def field(offset: int, code: str, base: int = 0) -> int:
        return struct.unpack_from("=" + code, data, base + offset)[0]

    regions = [(0, 4 * CACHE_LINE_LENGTH), (0, len(data))]
    descriptors = field(*HEADER_FIELDS["descriptors_offset"])
    for index in range(field(*HEADER_FIELDS["descriptor_count"])):
        base = descriptors + index * DESCRIPTOR_LENGTH
        regions.append((base, base + NAME_OFFSET))
        for area, length_field in ((NAME_OFFSET, "name_length"), (LABELS_OFFSET, "labels_length"),
                                   (HELP_OFFSET, "help_length")):
            regions.append((base + area, base + area + field(*DESCRIPTOR_FIELDS[length_field], base) + 1))
    values = field(*HEADER_FIELDS["values_offset"])
    regions.append((values, values + field(*HEADER_FIELDS["values_used"])))
    return regions


INTERESTING_WORDS = [0, 1, 2, 0x7F, 0x80, 0xFF, 2**15, 2**16 - 1, 2**31, U32_MAX, 2**63, U64_MAX,
                     CACHE_LINE_LENGTH, VALUE_ALIGNMENT, HEADER_LENGTH, DESCRIPTOR_LENGTH, MAX_BUCKETS,
                     MAX_BUCKETS + 1, MAX_DESCRIPTOR_CAPACITY, 2**40, RING_HEADER_LENGTH, RING_MIN_CAPACITY,
                     RING_MAX_CAPACITY]


def payloads() -> st.SearchStrategy[bytes]:
    """Random bytes, or a boundary value written as a 1-, 2-, 4- or 8-byte native integer."""
    word = st.builds(
        lambda value, width: (value % 2 ** (8 * width)).to_bytes(width, sys.byteorder),
        st.sampled_from(INTERESTING_WORDS) | st.integers(0, U64_MAX),
        st.sampled_from([1, 2, 4, 8]),
    )
    return st.binary(min_size=1, max_size=8) | word


def assert_sane(snapshot: hftel.Snapshot) -> None:
    """What a reader may rely on from any snapshot it is given."""
    for series in snapshot.series:
        assert series.kind in ("counter", "gauge", "histogram")
        assert isinstance(series.name, str) and series.name
        if series.kind == "histogram":
            assert len(series.bounds) >= 1
            assert len(series.cumulative) == len(series.bounds) + 1
            assert all(a < b for a, b in zip(series.bounds, series.bounds[1:]))
            assert all(a <= b for a, b in zip(series.cumulative, series.cumulative[1:]))
            assert series.count == series.cumulative[-1]
        list(series.samples())  # renders without raising


FUZZ_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ_SETTINGS
@given(data=st.data())
def test_overwriting_random_bytes_is_refused_with_segment_error_or_read_sanely(pristine, scratch, data):
    """Any overwrite of header, descriptor or value bytes: SegmentError, or a snapshot of sane series."""
    corrupted = bytearray(pristine.data)
    regions = interesting_regions(pristine.data)
    for _ in range(data.draw(st.integers(1, 4), label="overwrites")):
        start, end = data.draw(st.sampled_from(regions), label="region")
        offset = data.draw(st.integers(start, end - 1), label="offset")
        payload = data.draw(payloads(), label="payload")[: len(corrupted) - offset]
        corrupted[offset:offset + len(payload)] = payload
    path = write_fresh(scratch, bytes(corrupted))
    try:
        snapshot = hftel.Reader(path).snapshot()
    except hftel.SegmentError:
        return
    assert_sane(snapshot)


@FUZZ_SETTINGS
@given(data=st.data(), opener=st.sampled_from([open_for_reading, open_for_writing]))
def test_a_truncated_or_extended_file_is_always_refused(pristine, scratch, data, opener):
    """A file cut at any length, or extended past its segment length, is refused on attach."""
    size = len(pristine.data)
    length = data.draw(st.integers(0, size - 1) | st.integers(size + 1, size + 3 * HEADER_LENGTH), label="length")
    path = write_fresh(scratch, pristine.data[:length].ljust(length, b"\0"))
    with pytest.raises((hftel.SegmentError, OSError)):
        opener(path)
