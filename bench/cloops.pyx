# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""C-level record loops for the benchmarks, as a Cython engine would write them.

Each function runs `n` record calls in a `with nogil` loop on a bound hftel handle and returns the
value it left behind, so the caller can check that every call happened (nothing hoisted or folded).
The histogram loops take their values from an array (a power-of-two length, cycled), so the bucket
lookup is a real one: the compiler cannot see the values.

Built at benchmark time by bench/conftest.py (-O3, the same flags as hftel._core).
"""
from libc.stdint cimport uint64_t

from hftel._core cimport Counter, Histogram
from hftel.chftel cimport (
    hftel_counter_add, hftel_counter_add_atomic, hftel_counter_get, hftel_histogram_observe,
    hftel_histogram_observe_atomic, hftel_load_u64,
)

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
