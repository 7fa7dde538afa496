# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""C-level record loops for the benchmarks, as a Cython engine would write them.

Each function runs `n` record calls in a `with nogil` loop on a bound hftel handle and returns the
value it left behind, so the caller can check that every call happened (nothing hoisted or folded).
The histogram loops take their values from an array (a power-of-two length, cycled), so the bucket
lookup is a real one: the compiler cannot see the values.

The audit loops fill one hftel_audit_orders_row per iteration, as an engine would, and hand it to
hftel_audit_write through an hftel_audit_writer of their own (AuditLoop) on the segment's audit ring.

Built at benchmark time by bench/conftest.py (-O3, the same flags as hftel._core).
"""
from libc.stdint cimport int64_t, uint8_t, uint64_t
from libc.string cimport memcpy, memset
from posix.time cimport CLOCK_REALTIME, clock_gettime, timespec

from hftel._core cimport Counter, Histogram, Segment
from hftel.chftel cimport (
    HFTEL_AUDIT_RING, HFTEL_AUDIT_WRITTEN, hftel_audit_write, hftel_audit_writer,
    hftel_audit_writer_close, hftel_audit_writer_init, hftel_counter_add, hftel_counter_add_atomic,
    hftel_counter_get, hftel_histogram_observe, hftel_histogram_observe_atomic, hftel_load_u64, hftel_ring,
    hftel_segment_ring,
)

cdef extern from "hftel_audit.h" nogil:
    const unsigned HFTEL_AUDIT_ORDERS_TYPE_ID
    const unsigned HFTEL_AUDIT_ORDERS_SIDE_BUY
    const unsigned HFTEL_AUDIT_ORDERS_ORDER_TYPE_LIMIT
    const unsigned HFTEL_AUDIT_ORDERS_TIME_IN_FORCE_ROD
    const unsigned HFTEL_AUDIT_ORDERS_STATUS_INTENT

    ctypedef struct hftel_audit_orders_row:
        uint64_t ts
        uint64_t seq
        uint64_t source_id
        uint64_t intent_id
        uint64_t correlation_id
        char strategy[24]
        char symbol[16]
        uint8_t side
        uint8_t order_type
        uint8_t time_in_force
        uint8_t status
        int64_t quantity
        double price

cdef extern from *:
    """
    /* Baselines. A volatile store cannot be merged or sunk out of the loop: one `mov` per iteration. */
    static inline void bench_plain_store(uint64_t *word, uint64_t value)
    {
        *(volatile uint64_t *)word = value;
    }

    /* A bare relaxed atomic add (LOCK XADD on x86), on a word private to this module. */
    static uint64_t bench_private_word __attribute__((aligned(128)));

    static inline void bench_relaxed_add(uint64_t amount)
    {
        __atomic_fetch_add(&bench_private_word, amount, __ATOMIC_RELAXED);
    }

    static inline uint64_t bench_private_get(void)
    {
        return __atomic_load_n(&bench_private_word, __ATOMIC_ACQUIRE);
    }
    """
    void bench_plain_store(uint64_t *word, uint64_t value) nogil
    void bench_relaxed_add(uint64_t amount) nogil
    uint64_t bench_private_get() nogil


def plain_store(Counter counter, Py_ssize_t n):
    """Baseline: n plain stores (i + 1) into the counter's word; returns the word (== n)."""
    cdef Py_ssize_t i
    cdef uint64_t *word = counter.handle.value
    with nogil:
        for i in range(n):
            bench_plain_store(word, <uint64_t>i + 1)
    return hftel_counter_get(&counter.handle)


def relaxed_atomic_add(Py_ssize_t n):
    """Baseline: n bare __atomic_fetch_add(relaxed) on a private word; returns the word."""
    cdef Py_ssize_t i
    with nogil:
        for i in range(n):
            bench_relaxed_add(1)
    return bench_private_get()


def counter_add_single_writer(Counter counter, Py_ssize_t n):
    """n hftel_counter_add (a load and a release store); returns the counter's value."""
    cdef Py_ssize_t i
    with nogil:
        for i in range(n):
            hftel_counter_add(&counter.handle, 1)
    return hftel_counter_get(&counter.handle)


def counter_add_atomic(Counter counter, Py_ssize_t n):
    """n hftel_counter_add_atomic (LOCK XADD); returns the counter's value."""
    cdef Py_ssize_t i
    with nogil:
        for i in range(n):
            hftel_counter_add_atomic(&counter.handle, 1)
    return hftel_counter_get(&counter.handle)


def histogram_observe_single_writer(Histogram histogram, const uint64_t[::1] values, Py_ssize_t n):
    """n hftel_histogram_observe of values[i % len(values)]; returns (count, sum) read back."""
    cdef Py_ssize_t i
    cdef Py_ssize_t mask = _mask(values)
    cdef const uint64_t *v = &values[0]
    with nogil:
        for i in range(n):
            hftel_histogram_observe(&histogram.handle, v[i & mask])
    return histogram_totals(histogram)


def histogram_observe_atomic(Histogram histogram, const uint64_t[::1] values, Py_ssize_t n):
    """n hftel_histogram_observe_atomic of values[i % len(values)]; returns (count, sum) read back."""
    cdef Py_ssize_t i
    cdef Py_ssize_t mask = _mask(values)
    cdef const uint64_t *v = &values[0]
    with nogil:
        for i in range(n):
            hftel_histogram_observe_atomic(&histogram.handle, v[i & mask])
    return histogram_totals(histogram)


def histogram_totals(Histogram histogram):
    """(sum of every bucket count including +Inf, sum of values), as a reader computes _count and _sum."""
    cdef uint64_t count = 0
    cdef Py_ssize_t b
    for b in range(histogram.handle.bucket_count + 1):
        count += hftel_load_u64(histogram.handle.counts + b)
    return count, hftel_load_u64(histogram.handle.sum)


cdef Py_ssize_t _mask(const uint64_t[::1] values) except -1:
    cdef Py_ssize_t length = values.shape[0]
    if length == 0 or length & (length - 1):
        raise ValueError(f"values must have a power-of-two length, got {length}")
    return length - 1


# -- audit rows and the clock ---------------------------------------------------------------------------

cdef class AuditLoop:
    """An hftel_audit_writer of its own on a segment's audit ring (no spill file: a full ring would
    lose the row, counted in the ring's `full` and `lost`; the benchmarks drain it so it never is)."""
    cdef hftel_audit_writer writer
    cdef readonly Segment segment

    def __init__(self, Segment segment, uint64_t source_id):
        self.segment = segment
        cdef hftel_ring ring = hftel_segment_ring(&segment.segment, HFTEL_AUDIT_RING)
        if ring.capacity == 0:
            raise ValueError("the segment has no audit ring")
        hftel_audit_writer_init(&self.writer, &ring, source_id, b"")

    def __dealloc__(self):
        hftel_audit_writer_close(&self.writer)

    @property
    def source_id(self):
        return self.writer.source_id

    def orders(self, Py_ssize_t n, uint64_t ts):
        """n audit_orders rows (intent_id 1..n and the fields of tel.audit.order in the Python
        benchmark), each filled in full and written by hftel_audit_write. ts 0: the writer reads
        CLOCK_REALTIME for each row. Returns (rows written to the ring, the last row's seq)."""
        cdef Py_ssize_t i, written = 0
        cdef hftel_audit_orders_row row
        with nogil:
            for i in range(n):
                memset(&row, 0, sizeof(row))
                row.ts = ts
                row.intent_id = <uint64_t>i + 1
                row.correlation_id = 2
                memcpy(row.strategy, b"mm", 2)
                memcpy(row.symbol, b"2330", 4)
                row.side = HFTEL_AUDIT_ORDERS_SIDE_BUY
                row.order_type = HFTEL_AUDIT_ORDERS_ORDER_TYPE_LIMIT
                row.time_in_force = HFTEL_AUDIT_ORDERS_TIME_IN_FORCE_ROD
                row.status = HFTEL_AUDIT_ORDERS_STATUS_INTENT
                row.quantity = 1
                row.price = 101.5
                if hftel_audit_write(&self.writer, HFTEL_AUDIT_ORDERS_TYPE_ID, &row, sizeof(row)) == HFTEL_AUDIT_WRITTEN:
                    written += 1
        return written, self.writer.next_seq - 1


def clock_realtime(Py_ssize_t n):
    """Baseline: n clock_gettime(CLOCK_REALTIME) (the vDSO call hftel_audit_write makes when ts is 0).
    Returns (the sum of tv_nsec, to keep every call live; the last reading in ns)."""
    cdef Py_ssize_t i
    cdef timespec now
    cdef uint64_t total = 0
    now.tv_sec = 0
    now.tv_nsec = 0
    with nogil:
        for i in range(n):
            clock_gettime(CLOCK_REALTIME, &now)
            total += <uint64_t>now.tv_nsec
    return total, <uint64_t>now.tv_sec * 1000000000 + <uint64_t>now.tv_nsec
