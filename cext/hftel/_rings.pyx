# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The thin layer between Python and cext/hftel_ring.h and hftel_writer.h.

Writers (engine side): AuditWriter (its per-table methods are generated from the schemas into
_audit_rows.pxi) and LogWriter. Consumer (exporter side): Consumer, which copies committed records
out of a ring in batches. Users reach them through hftel.Telemetry and hftel.rings.
"""
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset
from posix.unistd cimport getpid

from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE, PyByteArray_Resize
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem
from cpython.object cimport PyObject
from cpython.unicode cimport PyUnicode_AsUTF8AndSize

from hftel.chftel cimport *
from hftel._core cimport Segment

from hftel import errors

RING_HEADER_LENGTH = HFTEL_RING_HEADER_LENGTH
RING_MIN_CAPACITY = HFTEL_RING_MIN_CAPACITY
RING_MAX_CAPACITY = HFTEL_RING_MAX_CAPACITY
RECORD_HEADER_LENGTH = HFTEL_RECORD_HEADER_LENGTH
RECORD_LOG_EVENT = HFTEL_RECORD_LOG_EVENT
RECORD_PADDING = HFTEL_RECORD_PADDING
RECORD_TRUNCATED = HFTEL_RECORD_TRUNCATED
RECORD_SCHEMA_VIOLATION = HFTEL_RECORD_SCHEMA_VIOLATION
SPILL_MAGIC = HFTEL_SPILL_MAGIC
SPILL_VERSION = HFTEL_SPILL_VERSION
SPILL_HEADER_LENGTH = HFTEL_SPILL_HEADER_LENGTH
SPILL_FRAME_SYNC = HFTEL_SPILL_FRAME_SYNC
SPILL_FRAME_HEADER_LENGTH = HFTEL_SPILL_FRAME_HEADER_LENGTH
LOG_EVENT_HEADER_LENGTH = HFTEL_LOG_EVENT_HEADER_LENGTH
LOG_EVENT_MAX_LENGTH = HFTEL_LOG_EVENT_MAX_LENGTH
LOG_STR = HFTEL_LOG_STR
LOG_INT = HFTEL_LOG_INT
LOG_FLOAT = HFTEL_LOG_FLOAT
LOG_BOOL = HFTEL_LOG_BOOL
LOG_NONE = HFTEL_LOG_NONE
LOG_BYTES = HFTEL_LOG_BYTES
LOG_INT_TEXT = HFTEL_LOG_INT_TEXT
AUDIT = HFTEL_AUDIT_RING
LOG = HFTEL_LOG_RING
# Each record a Consumer hands out is framed: length (u32), flags (u16), reserved (u16), producer
# pid (i32), reserved (u32), then the payload padded to 8 bytes.
BATCH_FRAME_LENGTH = 16


cdef hftel_ring _ring_of(Segment segment, int kind) except *:
    if kind != HFTEL_AUDIT_RING and kind != HFTEL_LOG_RING:
        raise ValueError(f"ring kind must be AUDIT ({HFTEL_AUDIT_RING}) or LOG ({HFTEL_LOG_RING}), got {kind}")
    return hftel_segment_ring(&segment.segment, <hftel_ring_kind>kind)


# -- converting arguments --------------------------------------------------------------------------

cdef inline int _put_text(char *field, size_t width, object value, str where) except -1:
    """Copies str (UTF-8) or bytes into a NUL-padded field, cut at its width on a character boundary."""
    cdef const char *data
    cdef Py_ssize_t length
    if type(value) is str:
        data = PyUnicode_AsUTF8AndSize(value, &length)
    elif type(value) is bytes:
        data = PyBytes_AS_STRING(value)
        length = PyBytes_GET_SIZE(value)
    elif value is None:
        return 0
    else:
        raise TypeError(f"{where} takes text (str), got {type(value).__name__}")
    if <size_t>length > width:
        length = width
        while length > 0 and (<uint8_t>data[length] & 0xc0) == 0x80:
            length -= 1
    memcpy(field, data, length)
    return 0


cdef inline int _put_bytes(uint8_t *field, size_t width, object value, str where) except -1:
    if value is None:
        return 0
    if type(value) is not bytes:
        raise TypeError(f"{where} takes bytes (at most {width}), got {type(value).__name__}")
    if <size_t>PyBytes_GET_SIZE(value) > width:
        raise ValueError(f"{where} takes at most {width} bytes, got {PyBytes_GET_SIZE(value)}")
    memcpy(field, PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value))
    return 0


cdef inline uint8_t _code(dict codes, object value, str where) except? 255:
    """An enum column's code: 0 for None, the member's code for its name or for the code itself."""
    if value is None:
        return 0
    cdef PyObject *found = PyDict_GetItem(codes, value)
    if found != NULL:
        return <object>found
    if type(value) is int and 0 < value <= len(codes):
        return value
    raise ValueError(f"{where} must be one of {', '.join(codes)} (or None), got {value!r}")


# -- rings -------------------------------------------------------------------------------------------

cdef class Ring:
    """One ring of a segment, for its counters and for low-level access (tests, inspect)."""
    cdef hftel_ring ring
    cdef readonly Segment segment
    cdef readonly int kind

    def __init__(self, Segment segment, int kind):
        self.segment = segment
        self.kind = kind
        self.ring = _ring_of(segment, kind)

    @property
    def capacity(self):
        return self.ring.capacity

    @property
    def max_record_length(self):
        return self.ring.max_record_length

    def stats(self):
        """The ring's positions and counters, as they are now."""
        if self.ring.capacity == 0:
            return None
        cdef hftel_ring_header *h = self.ring.header
        return {
            "capacity": self.ring.capacity,
            "tail": hftel_load_u64(&h.tail),
            "head": hftel_load_u64(&h.head),
            "skipped_records": hftel_load_u64(&h.skipped_records),
            "skipped_bytes": hftel_load_u64(&h.skipped_bytes),
            "full": hftel_load_u64(&h.full),
            "spilled": hftel_load_u64(&h.spilled),
            "lost": hftel_load_u64(&h.lost),
            "truncated": hftel_load_u64(&h.truncated),
            "violations": hftel_load_u64(&h.violations),
        }

    def write(self, uint16_t type, bytes payload, uint16_t flags=0):
        """Claims, copies and commits one record; False when the ring is full (nothing written)."""
        return hftel_ring_write(&self.ring, type, flags, getpid(), PyBytes_AS_STRING(payload),
                                PyBytes_GET_SIZE(payload)) == 0

    def claim(self, uint32_t payload_length, uint16_t type):
        """Claims a record and leaves it uncommitted (what a producer killed mid-write leaves)."""
        cdef uint64_t position = hftel_ring_claim(&self.ring, HFTEL_RECORD_HEADER_LENGTH + payload_length, type, 0,
                                                  getpid())
        return None if position == <uint64_t>-1 else position

    def commit(self, uint64_t position):
        hftel_ring_commit(&self.ring, position)

    def recent(self):
        """Every intact committed record still in the data, consumed or not, oldest first, as
        (position, type, flags, pid, payload). For the flight recorder: found by scanning for tags
        that carry their own position, so it works however the head and tail were left."""
        if self.ring.capacity == 0:
            return []
        cdef uint64_t tail = hftel_ring_load_tail(&self.ring)
        cdef uint64_t start = tail - self.ring.capacity if tail > self.ring.capacity else 0
        cdef uint64_t index, position, tag
        cdef hftel_record_header *record
        found = []
        for index in range(0, self.ring.capacity - HFTEL_RECORD_HEADER_LENGTH + 1, HFTEL_RECORD_ALIGNMENT):
            position = (tail & ~self.ring.mask) + index
            if position >= tail:
                if position < self.ring.capacity:
                    continue
                position -= self.ring.capacity
            if position < start:
                continue
            record = <hftel_record_header *>(self.ring.data + index)
            tag = hftel_load_u64(&record.tag)
            if tag != hftel_record_tag(position, HFTEL_RECORD_COMMITTED) or record.type == HFTEL_RECORD_PADDING:
                continue
            if record.length < HFTEL_RECORD_HEADER_LENGTH or record.length > self.ring.capacity - index:
                continue
            found.append((position, record.type, record.flags, record.pid,
                          (<char *>record)[HFTEL_RECORD_HEADER_LENGTH:record.length]))
        # Producers may have lapped the oldest records while we copied them.
        tail = hftel_ring_load_tail(&self.ring)
        start = tail - self.ring.capacity if tail > self.ring.capacity else 0
        return sorted(entry for entry in found if entry[0] >= start)


cdef class Consumer:
    """The one consumer of a ring: copies committed records out in batches.

    poll() reads ahead from the last released position; release() publishes a position, which
    frees the ring up to it. Only the exporter consumes, and only one consumer per ring at a time.
    """
    cdef hftel_ring ring
    cdef readonly Segment segment
    cdef readonly uint64_t position  # read up to here
    cdef readonly uint64_t released  # published head
    cdef readonly uint64_t stall_timeout_ns
    cdef uint64_t stall_position
    cdef uint64_t stall_since
    cdef readonly uint64_t skipped

    def __init__(self, Segment segment, int kind, double stall_timeout=5.0):
        if not segment.segment.writable:
            raise ValueError("a ring consumer needs the segment mapped writable (it publishes its position)")
        self.segment = segment
        self.ring = _ring_of(segment, kind)
        if self.ring.capacity == 0:
            raise errors.RingError(f"segment {segment.path} has no {'audit' if kind == AUDIT else 'log'} ring")
        self.stall_timeout_ns = <uint64_t>(stall_timeout * 1e9)
        self.released = hftel_ring_load_head(&self.ring)
        self.position = self.released
        self.stall_position = <uint64_t>-1
        cdef uint64_t tail = hftel_ring_load_tail(&self.ring)
        if self.released > tail or tail - self.released > self.ring.capacity or self.released % HFTEL_RECORD_ALIGNMENT:
            raise errors.RingError(f"ring positions are inconsistent (head {self.released}, tail {tail}, "
                                   f"capacity {self.ring.capacity}): forged or damaged segment {segment.path}")

    def poll(self, uint64_t max_records=100000, uint64_t max_bytes=64 << 20):
        """Copies up to max_records committed records, grouped by type: ({type: bytearray}, count).

        Each bytearray holds the records of one type back to back, each framed as BATCH_FRAME_LENGTH
        describes. Stops at the first record not yet committed; skips (and counts) one whose
        producer died, or that has not moved for stall_timeout.
        """
        cdef dict groups = {}
        cdef uint64_t count = 0, copied = 0, skip = 0, tail = hftel_ring_load_tail(&self.ring)
        cdef hftel_record_header header
        cdef hftel_peek state
        cdef uint32_t payload_length
        cdef Py_ssize_t at
        cdef bytearray buffer
        cdef char *frame
        while count < max_records and copied < max_bytes:
            state = hftel_ring_peek(&self.ring, self.position, tail, &header, &skip)
            if state == HFTEL_PEEK_EMPTY:
                tail = hftel_ring_load_tail(&self.ring)
                if tail == self.position:
                    break
                continue
            if state == HFTEL_PEEK_RECORD:
                payload_length = header.length - HFTEL_RECORD_HEADER_LENGTH
                buffer = groups.get(header.type)
                if buffer is None:
                    buffer = bytearray()
                    groups[header.type] = buffer
                at = PyByteArray_GET_SIZE(buffer)
                PyByteArray_Resize(buffer, at + 16 + ((payload_length + 7) & ~7u))
                frame = PyByteArray_AS_STRING(buffer) + at
                memset(frame, 0, 16 + ((payload_length + 7) & ~7u))
                memcpy(frame, &payload_length, 4)
                memcpy(frame + 4, &header.flags, 2)
                memcpy(frame + 8, &header.pid, 4)
                memcpy(frame + 16, hftel_ring_payload(&self.ring, self.position), payload_length)
                self.position += skip
                count += 1
                copied += payload_length
            elif state == HFTEL_PEEK_PADDING:
                self.position += skip
            elif state == HFTEL_PEEK_PENDING:
                if hftel_process_is_dead(header.pid) or self._stalled():
                    self._skip(skip)
                else:
                    break
            elif state == HFTEL_PEEK_UNTAGGED:
                if self._stalled():
                    self._skip(hftel_ring_untagged_extent(&self.ring, self.position, tail))
                else:
                    break
            else:
                raise errors.RingError(
                    f"ring record at position {self.position} is corrupt (tail {tail}, capacity "
                    f"{self.ring.capacity}): forged or damaged segment {self.segment.path}")
        return groups, count

    cdef bint _stalled(self):
        """True once the record at the current position has stayed unfinished for stall_timeout."""
        cdef uint64_t now = hftel_monotonic_ns()
        if self.stall_position != self.position:
            self.stall_position = self.position
            self.stall_since = now
        return now - self.stall_since >= self.stall_timeout_ns

    cdef void _skip(self, uint64_t extent):
        hftel_ring_count_skip(&self.ring, extent)
        self.position += extent
        self.skipped += 1

    def seek(self, uint64_t position):
        """Reads on from `position`, a record boundary at or past the head that an earlier consumer
        reached (the exporter's spool remembers where each batch ended, so a restart does not read
        again what it already holds). The records skipped stay in the ring until release()."""
        cdef uint64_t tail = hftel_ring_load_tail(&self.ring)
        if position < self.released or position > tail or position % HFTEL_RECORD_ALIGNMENT:
            raise ValueError(f"seek({position}) outside the ring's records {self.released}..{tail} "
                             f"or not on a record boundary")
        self.position = position

    def release(self, position=None):
        """Frees the ring up to `position` (default: everything polled so far)."""
        cdef uint64_t target = self.position if position is None else position
        if target < self.released or target > self.position:
            raise ValueError(f"release({target}) outside the polled range {self.released}..{self.position}")
        hftel_ring_advance(&self.ring, target)
        self.released = target

    def backlog(self):
        """Bytes claimed by producers and not yet released."""
        return hftel_ring_load_tail(&self.ring) - self.released


# -- writers -------------------------------------------------------------------------------------------

cdef class _AuditWriterBase:
    cdef hftel_audit_writer writer
    cdef readonly Segment segment
    cdef object __weakref__

    def __init__(self, Segment segment, str spill_path, uint64_t source_id):
        self.segment = segment
        cdef hftel_ring ring = _ring_of(segment, HFTEL_AUDIT_RING)
        encoded = spill_path.encode()
        if len(encoded) >= HFTEL_SPILL_PATH_MAX:
            raise ValueError(f"spill path is longer than {HFTEL_SPILL_PATH_MAX - 1} bytes: {spill_path}")
        hftel_audit_writer_init(&self.writer, &ring, source_id, encoded)

    def __dealloc__(self):
        hftel_audit_writer_close(&self.writer)

    cdef inline object _write(self, uint16_t type, void *row, uint32_t length):
        hftel_audit_write(&self.writer, type, row, length)
        return (<uint64_t *>row)[1]

    @property
    def source_id(self):
        return self.writer.source_id

    @property
    def next_seq(self):
        return self.writer.next_seq

    def reseed(self, uint64_t source_id):
        """A new source (a forked child must not reuse its parent's source id and sequence)."""
        hftel_audit_writer_close(&self.writer)
        self.writer.source_id = source_id
        self.writer.next_seq = 1
        self.writer.pid = getpid()

    def write_raw(self, uint16_t type, bytearray row):
        """Writes a prebuilt row (its ts, seq and source_id are filled in place). For tests and tools."""
        hftel_audit_write(&self.writer, type, PyByteArray_AS_STRING(row), PyByteArray_GET_SIZE(row))
        return (<uint64_t *>PyByteArray_AS_STRING(row))[1]


include "_audit_rows.pxi"


cdef class LogWriter:
    """Copies structured log events into the log ring (the structlog bridge calls write()).

    Each call encodes on its own stack: a field's repr() may log, or let another thread log, in the
    middle of an event without either event being corrupted."""
    cdef hftel_log_writer writer
    cdef readonly Segment segment
    cdef object __weakref__

    def __init__(self, Segment segment):
        self.segment = segment
        cdef hftel_ring ring = _ring_of(segment, HFTEL_LOG_RING)
        hftel_log_writer_init(&self.writer, &ring)

    def reseed(self):
        self.writer.pid = getpid()

    def write(self, uint8_t level, str event, dict context, dict fields, bint violation=False, uint64_t ts=0):
        """Encodes `event` with the context's fields, then the call's (which win), into the ring.

        Returns False when the ring was full and the event was dropped (counted)."""
        cdef hftel_log_event encoded
        cdef const char *data
        cdef Py_ssize_t length
        data = PyUnicode_AsUTF8AndSize(event, &length)
        hftel_log_begin(&encoded, level, ts, data, length)
        if violation:
            encoded.flags |= HFTEL_RECORD_SCHEMA_VIOLATION
        if context:
            for key, value in context.items():
                if not fields or key not in fields:
                    _add_field(&encoded, key, value)
        if fields:
            for key, value in fields.items():
                _add_field(&encoded, key, value)
        return hftel_log_write(&self.writer, &encoded) == 0


cdef int _add_field(hftel_log_event *event, object key, object value) except -1:
    cdef const char *name
    cdef Py_ssize_t name_length
    cdef const char *data
    cdef Py_ssize_t length
    cdef int64_t integer
    cdef double real
    cdef uint8_t flag
    if type(key) is not str:
        key = str(key)
    name = PyUnicode_AsUTF8AndSize(key, &name_length)
    kind = type(value)
    if kind is str:
        data = PyUnicode_AsUTF8AndSize(value, &length)
        hftel_log_add(event, HFTEL_LOG_STR, name, name_length, data, length)
    elif kind is int:
        if -9223372036854775807 - 1 <= value <= 9223372036854775807:
            integer = value
            hftel_log_add(event, HFTEL_LOG_INT, name, name_length, &integer, 8)
        else:
            text = str(value).encode()
            hftel_log_add(event, HFTEL_LOG_INT_TEXT, name, name_length, PyBytes_AS_STRING(text),
                          PyBytes_GET_SIZE(text))
    elif kind is float:
        real = value
        hftel_log_add(event, HFTEL_LOG_FLOAT, name, name_length, &real, 8)
    elif kind is bool:
        flag = 1 if value else 0
        hftel_log_add(event, HFTEL_LOG_BOOL, name, name_length, &flag, 1)
    elif value is None:
        hftel_log_add(event, HFTEL_LOG_NONE, name, name_length, NULL, 0)
    elif kind is bytes:
        hftel_log_add(event, HFTEL_LOG_BYTES, name, name_length, PyBytes_AS_STRING(value),
                      PyBytes_GET_SIZE(value))
    else:
        # What structlog's JSON renderer falls back to for objects it cannot serialise.
        text = repr(value)
        data = PyUnicode_AsUTF8AndSize(text, &length)
        hftel_log_add(event, HFTEL_LOG_STR, name, name_length, data, length)
    return 0


def crc32(bytes data):
    """The C writer's CRC-32 (equal to zlib.crc32), exposed so tests can hold the two together."""
    return hftel_crc32(PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
