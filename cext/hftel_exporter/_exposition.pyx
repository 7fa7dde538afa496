# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The thin layer over cext/hftel_exposition.h: a render plan, and rendering it.

hftel_exporter.exposition decides what every line says (the slow path, once per series); this module
checks each value offset against its segment, packs the plan into C and renders it without the GIL.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Calloc, PyMem_Free, PyMem_Malloc
from libc.stdint cimport uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

from hftel._core cimport Segment
from hftel.chftel cimport (HFTEL_COUNTER, HFTEL_GAUGE_FLOAT, HFTEL_GAUGE_INT, HFTEL_HISTOGRAM, HFTEL_MAX_BUCKETS,
                           HFTEL_VALUE_ALIGNMENT, hftel_histogram_block_length, hftel_histogram_counts_offset,
                           hftel_value_at)

from hftel import errors

cdef extern from "hftel_exposition.h":
    ctypedef struct hftel_render_op:
        const uint64_t *value
        const uint64_t *sum
        const char *text
        const uint32_t *prefix_ends
        uint32_t text_length
        uint32_t bucket_count
        uint16_t kind
        uint16_t flags
    enum: HFTEL_RENDER_SECONDS
    size_t hftel_render_bound(const hftel_render_op *ops, size_t count) nogil
    size_t hftel_render(const hftel_render_op *ops, size_t count, char *out) nogil
    size_t hftel_format_double(double value, char *out) nogil

LITERAL = 0
COUNTER = HFTEL_COUNTER
GAUGE_INT = HFTEL_GAUGE_INT
GAUGE_FLOAT = HFTEL_GAUGE_FLOAT
HISTOGRAM = HFTEL_HISTOGRAM
SECONDS = HFTEL_RENDER_SECONDS


def format_double(double value):
    """A float as the renderer writes it (NaN, +Inf, integers without a point, shortest round trip)."""
    cdef char text[32]
    cdef size_t length = hftel_format_double(value, text)
    return text[:length].decode("ascii")


cdef const uint64_t *_checked_value(Segment segment, uint64_t value_offset, uint16_t kind,
                                    uint32_t bucket_count) except NULL:
    cdef uint64_t values_length = segment.segment.values_length
    if value_offset % HFTEL_VALUE_ALIGNMENT or values_length < 8 or value_offset > values_length - 8:
        raise errors.SegmentError(f"value offset {value_offset} is outside the values area of {segment.path}")
    if kind == HFTEL_HISTOGRAM:
        if (bucket_count == 0 or bucket_count > HFTEL_MAX_BUCKETS
                or hftel_histogram_block_length(bucket_count) > values_length - value_offset):
            raise errors.SegmentError(f"histogram block at {value_offset} is outside the values area of {segment.path}")
        return <const uint64_t *>(hftel_value_at(&segment.segment, value_offset)
                                  + hftel_histogram_counts_offset(bucket_count))
    return <const uint64_t *>hftel_value_at(&segment.segment, value_offset)


cdef class RenderPlan:
    """Every line of a scrape, decided in advance; `render()` fills in the values.

    >>> plan = RenderPlan([(LITERAL, b"# TYPE up gauge\\n")])
    >>> plan.render(b"up 1\\n")
    b'# TYPE up gauge\\nup 1\\n'

    Each operation is `(LITERAL, text)` or `(kind, segment, value_offset, prefixes[, flags])`:
    `prefixes` holds the text before each value, one per sample line (a histogram: each bucket, +Inf,
    _count, _sum); `flags` may be SECONDS for a nanosecond histogram shown in seconds.
    The plan keeps its segments mapped for as long as it lives, so a scrape in flight never reads
    an unmapped page.
    """
    cdef hftel_render_op *ops
    cdef uint32_t *ends
    cdef size_t count
    cdef size_t bound
    cdef list keep
    cdef readonly size_t samples

    def __cinit__(self, operations):
        operations = list(operations)
        self.keep = []
        self.count = len(operations)
        self.ops = <hftel_render_op *>PyMem_Calloc(max(self.count, 1), sizeof(hftel_render_op))
        cdef size_t ends_needed = 0
        for operation in operations:
            if operation[0] == HFTEL_HISTOGRAM:
                ends_needed += len(operation[3])
        self.ends = <uint32_t *>PyMem_Malloc(max(ends_needed, 1) * sizeof(uint32_t))
        if self.ops == NULL or self.ends == NULL:
            raise MemoryError()
        cdef size_t at = 0
        for index, operation in enumerate(operations):
            at = self._pack(&self.ops[index], operation, at)
        self.bound = hftel_render_bound(self.ops, self.count)

    cdef size_t _pack(self, hftel_render_op *op, tuple operation, size_t ends_at) except? 0:
        cdef uint16_t kind = operation[0]
        cdef bytes text
        cdef Segment segment
        if kind not in (LITERAL, HFTEL_COUNTER, HFTEL_GAUGE_INT, HFTEL_GAUGE_FLOAT, HFTEL_HISTOGRAM):
            raise ValueError(f"unknown operation kind {kind}")
        if kind == LITERAL:
            text = operation[1]
        else:
            segment, value_offset, prefixes = operation[1], operation[2], operation[3]
            op.flags = operation[4] if len(operation) > 4 else 0
            text = b"".join(prefixes)
            if kind == HFTEL_HISTOGRAM:
                op.bucket_count = len(prefixes) - 3
            elif len(prefixes) != 1:
                raise ValueError(f"a counter or gauge has one line, got {len(prefixes)} prefixes")
            op.value = _checked_value(segment, value_offset, kind, op.bucket_count)
            self.keep.append(segment)
            if kind == HFTEL_HISTOGRAM:
                op.sum = op.value + op.bucket_count + 1
                op.prefix_ends = self.ends + ends_at
                end = 0
                for prefix in prefixes:
                    end += len(prefix)
                    self.ends[ends_at] = end
                    ends_at += 1
            self.samples += len(prefixes)
        self.keep.append(text)
        op.kind = kind
        op.text = PyBytes_AS_STRING(text)
        op.text_length = PyBytes_GET_SIZE(text)
        return ends_at

    def __dealloc__(self):
        PyMem_Free(self.ops)
        PyMem_Free(self.ends)

    def render(self, bytes tail=b""):
        """The exposition: every line of the plan with the values as they are now, then `tail`."""
        cdef size_t tail_length = PyBytes_GET_SIZE(tail)
        cdef char *buffer = <char *>malloc(self.bound + tail_length + 1)
        if buffer == NULL:
            raise MemoryError()
        cdef size_t length
        try:
            with nogil:
                length = hftel_render(self.ops, self.count, buffer)
            memcpy(buffer + length, PyBytes_AS_STRING(tail), tail_length)
            return PyBytes_FromStringAndSize(buffer, length + tail_length)
        finally:
            free(buffer)
