# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The thin layer between Python and cext/hftel.h: segments and the record handles.

Everything of substance lives in the C headers; each method here converts its arguments, calls one
C function and turns a failure status into a Python exception. Users reach it through
`hftel.Telemetry` and `hftel.Reader`, not directly.
"""
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy
from posix.time cimport nanosleep, timespec

from hftel.chftel cimport *

from operator import index as _as_integer

from cpython.long cimport PyLong_Check

from hftel import errors

cdef extern from *:
    """
    static inline int hftel_py_load_flag(const int *flag) { return __atomic_load_n(flag, __ATOMIC_ACQUIRE); }
    static inline void hftel_py_store_flag(int *flag, int value) { __atomic_store_n(flag, value, __ATOMIC_RELEASE); }
    """
    int hftel_py_load_flag(const int *flag) nogil
    void hftel_py_store_flag(int *flag, int value) nogil

LAYOUT_VERSION = HFTEL_LAYOUT_VERSION
HEADER_LENGTH = HFTEL_HEADER_LENGTH
DESCRIPTOR_LENGTH = HFTEL_DESCRIPTOR_LENGTH
MAX_BUCKETS = HFTEL_MAX_BUCKETS
DEFAULT_LOW_EXPONENT = HFTEL_DEFAULT_LOW_EXPONENT
DEFAULT_HIGH_EXPONENT = HFTEL_DEFAULT_HIGH_EXPONENT
DEFAULT_SUB_BUCKET_BITS = HFTEL_DEFAULT_SUB_BUCKET_BITS

COUNTER = HFTEL_COUNTER
GAUGE_INT = HFTEL_GAUGE_INT
GAUGE_FLOAT = HFTEL_GAUGE_FLOAT
HISTOGRAM = HFTEL_HISTOGRAM
BUCKETS_NONE = HFTEL_BUCKETS_NONE
BUCKETS_EXPLICIT = HFTEL_BUCKETS_EXPLICIT
BUCKETS_LOG_LINEAR = HFTEL_BUCKETS_LOG_LINEAR
DESCRIPTOR_PUBLISHED = HFTEL_DESCRIPTOR_PUBLISHED
ENGINE_RUNNING = HFTEL_ENGINE_RUNNING
ENGINE_CLOSED = HFTEL_ENGINE_CLOSED


cdef object _raise(hftel_status status, hftel_error *error):
    message = error.message.decode("utf-8", "replace")
    if status == HFTEL_ERROR_IO:
        raise OSError(message)
    if status == HFTEL_ERROR_VERSION:
        raise errors.LayoutVersionError(message)
    if status == HFTEL_ERROR_CORRUPT:
        raise errors.SegmentError(message)
    if status == HFTEL_ERROR_FULL:
        raise errors.SegmentFullError(message)
    if status == HFTEL_ERROR_BUSY:
        raise errors.RegistrationBusyError(message)
    raise errors.RegistrationError(message)


cdef inline int _check(hftel_status status, hftel_error *error) except -1:
    """Raises the exception for a failed C call; returns 0 on HFTEL_OK."""
    if status != HFTEL_OK:
        _raise(status, error)
    return 0


cdef inline bytes _text(str value):
    return value.encode("utf-8")


def process_is_dead(int64_t pid):
    """True when no process has this pid (the registration lock's test, shared with the reader)."""
    return bool(hftel_process_is_dead(pid))


def log_linear_bound(unsigned low, unsigned sub_bits, uint32_t index):
    """The upper bound of finite bucket `index` in a log-linear layout (as the C writer sees it)."""
    return hftel_log_linear_bound(low, sub_bits, index)


def log_linear_index(uint64_t value, unsigned low, unsigned high, unsigned sub_bits):
    """The bucket the C writer puts `value` in, for a log-linear layout."""
    return hftel_log_linear_index(value, low, high, sub_bits)


def explicit_index(uint64_t value, bounds):
    """The bucket the C writer puts `value` in, for explicit bounds."""
    cdef uint64_t array[256]
    cdef uint32_t count = len(bounds)
    if count > HFTEL_MAX_BUCKETS:
        raise ValueError(f"at most {HFTEL_MAX_BUCKETS} bounds")
    for i, bound in enumerate(bounds):
        array[i] = bound
    return hftel_explicit_index(value, array, count)


cdef class Segment:
    """One mapped segment file. The mapping lives as long as this object and every handle on it."""

    def __dealloc__(self):
        hftel_segment_close(&self.segment)

    @staticmethod
    def create(str path, uint32_t descriptor_capacity, uint64_t values_length, uint32_t mode,
               uint64_t audit_ring_capacity=0, uint64_t log_ring_capacity=0):
        cdef Segment self = Segment.__new__(Segment)
        cdef hftel_segment_options options
        cdef hftel_error error
        options.descriptor_capacity = descriptor_capacity
        options.values_length = values_length
        options.mode = mode
        options.audit_ring_capacity = audit_ring_capacity
        options.log_ring_capacity = log_ring_capacity
        cdef bytes encoded = _text(path)
        _check(hftel_segment_create(encoded, &options, &self.segment, &error), &error)
        self.path = path
        return self

    @staticmethod
    def attach(str path, bint writable):
        cdef Segment self = Segment.__new__(Segment)
        cdef hftel_error error
        cdef bytes encoded = _text(path)
        _check(hftel_segment_attach(encoded, writable, &self.segment, &error), &error)
        self.path = path
        return self

    @property
    def identity(self):
        """(st_dev, st_ino) of the file this mapping holds."""
        return (self.segment.device, self.segment.inode)

    def check_header(self):
        """Checks the header again, and that its geometry is the one attached; raises on a bad one."""
        cdef hftel_error error
        _check(hftel_segment_recheck(&self.segment, &error), &error)

    def header(self):
        cdef hftel_header *h = hftel_segment_header(&self.segment)
        return {
            "layout_version": h.layout_version,
            "segment_length": h.segment_length,
            "epoch": h.epoch,
            "creator_pid": h.creator_pid,
            "start_time_ns": h.start_time_ns,
            "heartbeat_ns": hftel_load_u64(&h.heartbeat_ns),
            "engine_state": h.engine_state,
            "descriptor_capacity": h.descriptor_capacity,
            "descriptor_count": min(h.descriptor_count, h.descriptor_capacity),
            "values_length": h.values_length,
            "values_used": min(h.values_used, h.values_length),
            "audit_ring_capacity": self.segment.audit_ring_capacity,
            "log_ring_capacity": self.segment.log_ring_capacity,
        }

    def descriptor_count(self):
        return hftel_segment_descriptor_count(&self.segment)

    def is_published(self, uint32_t index):
        if index >= self.segment.descriptor_capacity:
            return False
        return hftel_descriptor_at(&self.segment, index).state == HFTEL_DESCRIPTOR_PUBLISHED

    def descriptor(self, uint32_t index):
        """The fields of a published descriptor, from a checked private copy; SegmentError if forged."""
        cdef hftel_descriptor d
        cdef hftel_error error
        _check(hftel_segment_read_descriptor(&self.segment, index, &d, &error), &error)
        cdef const uint64_t *bounds
        try:
            result = {
                "index": index,
                "type": d.type,
                "name": d.name[:d.name_length].decode("ascii"),
                "labels": d.labels[:d.labels_length].decode("utf-8"),
                "help": d.help[:d.help_length].decode("utf-8"),
                "value_offset": d.value_offset,
                "bucket_count": d.bucket_count if d.type == HFTEL_HISTOGRAM else 0,
                "bounds": (),
            }
        except UnicodeDecodeError as problem:
            raise errors.SegmentError(f"descriptor {index} holds text that is not UTF-8: {problem}") from None
        if d.type == HFTEL_HISTOGRAM:
            bounds = <const uint64_t *>hftel_value_at(&self.segment, d.value_offset)
            result["bounds"] = tuple([bounds[i] for i in range(d.bucket_count)])
        return result

    def register(self, uint16_t kind, str name, str labels, str help, uint16_t scheme=HFTEL_BUCKETS_NONE,
                 bounds=(), uint8_t low=0, uint8_t high=0, uint8_t sub_bits=0):
        """Registers a series (or finds the existing one) and returns its descriptor index."""
        cdef hftel_metric_spec spec
        cdef hftel_error error
        cdef uint32_t index = 0
        cdef uint64_t array[256]
        if len(bounds) > HFTEL_MAX_BUCKETS:
            raise errors.RegistrationError(f"histogram '{name}' has {len(bounds)} buckets, at most {HFTEL_MAX_BUCKETS}")
        for i, bound in enumerate(bounds):
            array[i] = bound
        cdef bytes name_bytes = _text(name)
        cdef bytes labels_bytes = _text(labels)
        cdef bytes help_bytes = _text(help)
        spec.type = kind
        spec.name = name_bytes
        spec.labels = labels_bytes
        spec.help = help_bytes
        spec.bucket_scheme = scheme
        spec.bucket_count = len(bounds)
        spec.bounds = array
        spec.low_exponent = low
        spec.high_exponent = high
        spec.sub_bucket_bits = sub_bits
        _check(hftel_register(&self.segment, &spec, &index, &error), &error)
        return index

    def counter(self, uint32_t index, bint single_writer):
        cdef Counter handle = Counter.__new__(Counter)
        cdef hftel_error error
        _check(hftel_bind_counter(&self.segment, index, &handle.handle, &error), &error)
        handle.segment = self
        handle.single_writer = single_writer
        return handle

    def int_gauge(self, uint32_t index, bint single_writer):
        cdef IntGauge handle = IntGauge.__new__(IntGauge)
        cdef hftel_error error
        _check(hftel_bind_gauge(&self.segment, index, &handle.handle, &error), &error)
        handle.segment = self
        handle.single_writer = single_writer
        return handle

    def float_gauge(self, uint32_t index, bint single_writer):
        cdef Gauge handle = Gauge.__new__(Gauge)
        cdef hftel_error error
        _check(hftel_bind_float_gauge(&self.segment, index, &handle.handle, &error), &error)
        handle.segment = self
        handle.single_writer = single_writer
        return handle

    def histogram(self, uint32_t index, bint single_writer):
        cdef Histogram handle = Histogram.__new__(Histogram)
        cdef hftel_error error
        _check(hftel_bind_histogram(&self.segment, index, &handle.handle, &error), &error)
        handle.segment = self
        handle.single_writer = single_writer
        return handle

    def read_value(self, uint64_t value_offset, uint16_t kind):
        """The current value of a counter or gauge at a checked value offset."""
        if value_offset > self.segment.values_length - 8 or value_offset % HFTEL_VALUE_ALIGNMENT:
            raise errors.SegmentError(f"value offset {value_offset} is outside the values area")
        cdef uint64_t bits = hftel_load_u64(<uint64_t *>hftel_value_at(&self.segment, value_offset))
        cdef double real
        if kind == HFTEL_COUNTER:
            return bits
        if kind == HFTEL_GAUGE_INT:
            return <int64_t>bits
        memcpy(&real, &bits, sizeof(real))
        return real

    def read_histogram(self, uint64_t value_offset, uint32_t bucket_count):
        """(per-bucket counts including +Inf, sum) of a histogram at a checked offset. Never blocks."""
        if (bucket_count == 0 or bucket_count > HFTEL_MAX_BUCKETS or value_offset > self.segment.values_length
                or hftel_histogram_block_length(bucket_count) > self.segment.values_length - value_offset):
            raise errors.SegmentError(f"histogram block at {value_offset} is outside the values area")
        cdef uint8_t *block = hftel_value_at(&self.segment, value_offset)
        cdef uint64_t *counts = <uint64_t *>(block + hftel_histogram_counts_offset(bucket_count))
        cdef uint32_t n = bucket_count + 1
        buckets = [hftel_load_u64(&counts[i]) for i in range(n)]
        return buckets, hftel_load_u64(&counts[n])

    def heartbeat(self, now_ns=None):
        hftel_segment_heartbeat(&self.segment, hftel_realtime_ns() if now_ns is None else now_ns)

    def set_engine_state(self, uint32_t state):
        hftel_segment_set_engine_state(&self.segment, state)

    def run_heartbeat(self, uint64_t interval_ns):
        """Stores the time into the header every interval_ns until stop_heartbeat(); holds no GIL."""
        cdef timespec pause
        pause.tv_sec = interval_ns // 1000000000
        pause.tv_nsec = interval_ns % 1000000000
        hftel_py_store_flag(&self.heartbeat_stop, 0)
        with nogil:
            while not hftel_py_load_flag(&self.heartbeat_stop):
                hftel_segment_heartbeat(&self.segment, hftel_realtime_ns())
                nanosleep(&pause, NULL)

    def stop_heartbeat(self):
        hftel_py_store_flag(&self.heartbeat_stop, 1)


cdef class Counter:
    """A counter series: only goes up. `inc()` is safe from any thread of any process."""

    def inc(self, amount=1):
        """Adds `amount` (an integer >= 0)."""
        cdef int64_t n = amount if PyLong_Check(amount) else _as_integer(amount)
        if n < 0:
            raise ValueError("counters only go up: inc() takes an amount >= 0")
        if self.single_writer:
            hftel_counter_add(&self.handle, <uint64_t>n)
        else:
            hftel_counter_add_atomic(&self.handle, <uint64_t>n)

    def get(self):
        return hftel_counter_get(&self.handle)


cdef class IntGauge:
    """A gauge holding a signed 64-bit integer."""

    def set(self, value):
        hftel_gauge_set(&self.handle, value if PyLong_Check(value) else _as_integer(value))

    def inc(self, amount=1):
        self.add(amount if PyLong_Check(amount) else _as_integer(amount))

    def dec(self, amount=1):
        cdef int64_t n = amount if PyLong_Check(amount) else _as_integer(amount)
        self.add(-n)

    def get(self):
        return hftel_gauge_get(&self.handle)


cdef class Gauge:
    """A gauge holding a float."""

    def set(self, double value):
        hftel_float_gauge_set(&self.handle, value)

    def inc(self, double amount=1.0):
        self.add(amount)

    def dec(self, double amount=1.0):
        self.add(-amount)

    def get(self):
        return hftel_float_gauge_get(&self.handle)


cdef class Histogram:
    """A histogram of integer values (nanoseconds, by convention), in fixed buckets."""

    def observe(self, value):
        """Records `value`, an integer (nanoseconds by convention); a negative one counts as 0."""
        cdef int64_t n = value if PyLong_Check(value) else _as_integer(value)
        self.record(<uint64_t>n if n > 0 else 0)

    def time(self):
        """A context manager that observes the nanoseconds spent inside it (monotonic clock)."""
        cdef Timer timer = Timer.__new__(Timer)
        timer.histogram = self
        return timer


cdef class Timer:
    """Returned by Histogram.time(): `with latency.time(): work()`."""
    cdef Histogram histogram
    cdef uint64_t started_ns

    def __enter__(self):
        self.started_ns = hftel_monotonic_ns()
        return self

    def __exit__(self, *exc_info):
        self.histogram.record(hftel_monotonic_ns() - self.started_ns)
        return False
