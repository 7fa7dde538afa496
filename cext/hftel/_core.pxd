# The handles, for Cython engines to cimport. Each holds a C handle from hftel.h and a reference to
# the Segment that keeps its mapping alive. The inline `nogil` methods below are the Cython hot path:
#
#     from hftel._core cimport Counter, Histogram
#     cdef Counter sent = tel.counter("orders_sent", "Orders sent.")
#     cdef Histogram latency = tel.histogram("order_latency_ns", "Order latency.")
#     with nogil:
#         sent.add(1)
#         latency.record(elapsed_ns)
from libc.stdint cimport int64_t, uint64_t
from hftel.chftel cimport (
    hftel_segment, hftel_counter, hftel_gauge, hftel_float_gauge, hftel_histogram,
    hftel_counter_add, hftel_counter_add_atomic, hftel_gauge_set, hftel_gauge_add,
    hftel_gauge_add_atomic, hftel_float_gauge_set, hftel_float_gauge_add,
    hftel_float_gauge_add_atomic, hftel_histogram_observe, hftel_histogram_observe_atomic,
)


cdef class Segment:
    cdef hftel_segment segment
    cdef readonly str path
    cdef int heartbeat_stop


cdef class Counter:
    cdef hftel_counter handle
    cdef readonly bint single_writer
    cdef readonly Segment segment

    cdef inline void add(self, uint64_t amount) noexcept nogil:
        if self.single_writer:
            hftel_counter_add(&self.handle, amount)
        else:
            hftel_counter_add_atomic(&self.handle, amount)


cdef class IntGauge:
    cdef hftel_gauge handle
    cdef readonly bint single_writer
    cdef readonly Segment segment

    cdef inline void store(self, int64_t value) noexcept nogil:
        hftel_gauge_set(&self.handle, value)

    cdef inline void add(self, int64_t amount) noexcept nogil:
        if self.single_writer:
            hftel_gauge_add(&self.handle, amount)
        else:
            hftel_gauge_add_atomic(&self.handle, amount)


cdef class Gauge:
    cdef hftel_float_gauge handle
    cdef readonly bint single_writer
    cdef readonly Segment segment

    cdef inline void store(self, double value) noexcept nogil:
        hftel_float_gauge_set(&self.handle, value)

    cdef inline void add(self, double amount) noexcept nogil:
        if self.single_writer:
            hftel_float_gauge_add(&self.handle, amount)
        else:
            hftel_float_gauge_add_atomic(&self.handle, amount)


cdef class Histogram:
    cdef hftel_histogram handle
    cdef readonly bint single_writer
    cdef readonly Segment segment

    cdef inline void record(self, uint64_t value) noexcept nogil:
        if self.single_writer:
            hftel_histogram_observe(&self.handle, value)
        else:
            hftel_histogram_observe_atomic(&self.handle, value)
