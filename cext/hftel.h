/*
 * hftel.h -- the hftel shared-memory segment: its layout (an ABI) and the hot-path record functions.
 *
 * This header is the single source of truth for the layout. The Cython extension includes it, C and
 * C++ engines include it, and docs/layout.md describes the same bytes for humans. Any change to an
 * offset, a length or a meaning below bumps HFTEL_LAYOUT_VERSION.
 *
 * A segment is one file (normally under /dev/shm) mapped MAP_SHARED by the engine, which writes
 * metric values, and by the exporter, which only reads them. All integers are in the host's native
 * byte order: a segment never leaves the machine that made it.
 *
 *   0              HEADER_LENGTH       values_offset (descriptors end, rounded up to VALUE_ALIGNMENT)
 *   +--------------+-------------------+-------------------------+------------+------------+
 *   | header       | descriptor table  | values area             | audit ring | log ring   |
 *   | (one page)   | capacity records  | counters, gauges and    | (see       | (see       |
 *   |              |                   | histogram blocks        | hftel_ring.h)           |
 *   +--------------+-------------------+-------------------------+------------+------------+
 *                  ^ descriptors_offset^ values_offset           ^ audit_ring_offset (page aligned)
 *
 * Concurrency, in one place:
 *   - Recording (hftel_counter_add ...) may happen from any thread of any process. Functions named
 *     *_atomic use LOCK-prefixed read-modify-write and are safe for concurrent writers. The others
 *     are single-writer: a plain load and a release store. Never mix the two on one value: a
 *     single-writer add racing an atomic add loses one of them.
 *   - Readers (the exporter) only load; they never stop a writer.
 *   - Registration (hftel_registry.h) is the slow path and is serialised by the registration lock.
 *   - Publication order: a writer fills every field of a record, then release-stores its state
 *     word (descriptors) or the layout version (the header). Readers acquire-load that word first
 *     and ignore the record until it says PUBLISHED.
 *
 * The record functions never allocate, never make a system call, never fail and never set errno.
 */
#ifndef HFTEL_H
#define HFTEL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__cplusplus)
#define HFTEL_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define HFTEL_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

/* ---------------------------------------------------------------------------------------------
 * Sizes.
 * ------------------------------------------------------------------------------------------ */

#define HFTEL_LAYOUT_VERSION 2u
/* "HFTELSEG" read as a little-endian 64-bit word. */
#define HFTEL_MAGIC 0x4745534c45544648ull

#define HFTEL_SIZE_OF_INT 4u
#define HFTEL_SIZE_OF_LONG 8u
#define HFTEL_CACHE_LINE_LENGTH 64u
/* Value slots are two cache lines: Intel's adjacent-line prefetcher pulls lines in pairs, so two
 * values written by different threads one line apart would still contend (Agrona does the same). */
#define HFTEL_VALUE_ALIGNMENT (2u * HFTEL_CACHE_LINE_LENGTH)

/* ---------------------------------------------------------------------------------------------
 * Header: the first page of the segment.
 *
 *   (one row per field, in order; the type gives its size)
 *  +---------------------------------------------------------------+  line 0: identity
 *  |                    Magic "HFTELSEG" (u64)                     |  (written once, at creation)
 *  +---------------------------------------------------------------+
 *  |                    Layout Version (u32)                       |  <- release-stored LAST
 *  +---------------------------------------------------------------+
 *  |                    Header Length (u32)                        |
 *  +---------------------------------------------------------------+
 *  |                    Segment Length (u64)                       |
 *  +---------------------------------------------------------------+
 *  |                    Epoch (u64, random, never 0)               |
 *  +---------------------------------------------------------------+
 *  |                    Creator PID (i64)                          |
 *  +---------------------------------------------------------------+
 *  |                    Start Time (u64, ns since the Unix epoch)  |
 *  +---------------------------------------------------------------+
 *  |                    Reserved to 64                             |
 *  +---------------------------------------------------------------+  line 1: geometry
 *  |                    Descriptors Offset (u64)                   |  (written once, at creation)
 *  +---------------------------------------------------------------+
 *  |                    Descriptor Length (u32)                    |
 *  +---------------------------------------------------------------+
 *  |                    Descriptor Capacity (u32)                  |
 *  +---------------------------------------------------------------+
 *  |                    Values Offset (u64)                        |
 *  +---------------------------------------------------------------+
 *  |                    Values Length (u64)                        |
 *  +---------------------------------------------------------------+
 *  |                    Audit Ring Offset (u64, 0: no ring)        |
 *  +---------------------------------------------------------------+
 *  |                    Audit Ring Capacity (u64, power of two)    |
 *  +---------------------------------------------------------------+
 *  |                    Log Ring Offset (u64, 0: no ring)          |
 *  +---------------------------------------------------------------+
 *  |                    Log Ring Capacity (u64, power of two)      |
 *  +---------------------------------------------------------------+  line 2: registration
 *  |                    Registration Lock (i64, holder pid, 0 free)|  (slow path, under the lock)
 *  +---------------------------------------------------------------+
 *  |                    Descriptor Count (u32)                     |
 *  +---------------------------------------------------------------+
 *  |                    Reserved (u32)                             |
 *  +---------------------------------------------------------------+
 *  |                    Values Used (u64)                          |
 *  +---------------------------------------------------------------+
 *  |                    Reserved to 192                            |
 *  +---------------------------------------------------------------+  line 3: liveness
 *  |                    Heartbeat (u64, ns since the Unix epoch)   |  (engine, periodically)
 *  +---------------------------------------------------------------+
 *  |                    Engine State (u32: RUNNING 1, CLOSED 2)    |
 *  +---------------------------------------------------------------+
 *  |                    Reserved to HEADER_LENGTH (4096)           |
 *  +---------------------------------------------------------------+
 * ------------------------------------------------------------------------------------------ */

#define HFTEL_MAGIC_OFFSET 0u
#define HFTEL_LAYOUT_VERSION_OFFSET (HFTEL_MAGIC_OFFSET + HFTEL_SIZE_OF_LONG)
#define HFTEL_HEADER_LENGTH_OFFSET (HFTEL_LAYOUT_VERSION_OFFSET + HFTEL_SIZE_OF_INT)
#define HFTEL_SEGMENT_LENGTH_OFFSET (HFTEL_HEADER_LENGTH_OFFSET + HFTEL_SIZE_OF_INT)
#define HFTEL_EPOCH_OFFSET (HFTEL_SEGMENT_LENGTH_OFFSET + HFTEL_SIZE_OF_LONG)
#define HFTEL_CREATOR_PID_OFFSET (HFTEL_EPOCH_OFFSET + HFTEL_SIZE_OF_LONG)
#define HFTEL_START_TIME_OFFSET (HFTEL_CREATOR_PID_OFFSET + HFTEL_SIZE_OF_LONG)

#define HFTEL_DESCRIPTORS_OFFSET_OFFSET (1u * HFTEL_CACHE_LINE_LENGTH)
#define HFTEL_DESCRIPTOR_LENGTH_OFFSET (HFTEL_DESCRIPTORS_OFFSET_OFFSET + HFTEL_SIZE_OF_LONG)
#define HFTEL_DESCRIPTOR_CAPACITY_OFFSET (HFTEL_DESCRIPTOR_LENGTH_OFFSET + HFTEL_SIZE_OF_INT)
#define HFTEL_VALUES_OFFSET_OFFSET (HFTEL_DESCRIPTOR_CAPACITY_OFFSET + HFTEL_SIZE_OF_INT)
#define HFTEL_VALUES_LENGTH_OFFSET (HFTEL_VALUES_OFFSET_OFFSET + HFTEL_SIZE_OF_LONG)
#define HFTEL_AUDIT_RING_OFFSET_OFFSET (HFTEL_VALUES_LENGTH_OFFSET + HFTEL_SIZE_OF_LONG)
#define HFTEL_AUDIT_RING_CAPACITY_OFFSET (HFTEL_AUDIT_RING_OFFSET_OFFSET + HFTEL_SIZE_OF_LONG)
#define HFTEL_LOG_RING_OFFSET_OFFSET (HFTEL_AUDIT_RING_CAPACITY_OFFSET + HFTEL_SIZE_OF_LONG)
#define HFTEL_LOG_RING_CAPACITY_OFFSET (HFTEL_LOG_RING_OFFSET_OFFSET + HFTEL_SIZE_OF_LONG)

#define HFTEL_REGISTRATION_LOCK_OFFSET (2u * HFTEL_CACHE_LINE_LENGTH)
#define HFTEL_DESCRIPTOR_COUNT_OFFSET (HFTEL_REGISTRATION_LOCK_OFFSET + HFTEL_SIZE_OF_LONG)
#define HFTEL_VALUES_USED_OFFSET (HFTEL_DESCRIPTOR_COUNT_OFFSET + 2u * HFTEL_SIZE_OF_INT)

#define HFTEL_HEARTBEAT_OFFSET (3u * HFTEL_CACHE_LINE_LENGTH)
#define HFTEL_ENGINE_STATE_OFFSET (HFTEL_HEARTBEAT_OFFSET + HFTEL_SIZE_OF_LONG)

#define HFTEL_HEADER_LENGTH 4096u

enum hftel_engine_state {
    HFTEL_ENGINE_RUNNING = 1,
    HFTEL_ENGINE_CLOSED = 2
};

/* The header as a struct, for code that prefers field names to offsets. */
typedef struct hftel_header {
    uint64_t magic;
    uint32_t layout_version;
    uint32_t header_length;
    uint64_t segment_length;
    uint64_t epoch;
    int64_t creator_pid;
    uint64_t start_time_ns;
    uint8_t reserved0[16];
    uint64_t descriptors_offset;
    uint32_t descriptor_length;
    uint32_t descriptor_capacity;
    uint64_t values_offset;
    uint64_t values_length;
    uint64_t audit_ring_offset;
    uint64_t audit_ring_capacity;
    uint64_t log_ring_offset;
    uint64_t log_ring_capacity;
    int64_t registration_lock;
    uint32_t descriptor_count;
    uint32_t reserved2;
    uint64_t values_used;
    uint8_t reserved3[40];
    uint64_t heartbeat_ns;
    uint32_t engine_state;
    uint8_t reserved4[HFTEL_HEADER_LENGTH - HFTEL_ENGINE_STATE_OFFSET - HFTEL_SIZE_OF_INT];
} hftel_header;

HFTEL_STATIC_ASSERT(sizeof(hftel_header) == HFTEL_HEADER_LENGTH, "header is one page");
HFTEL_STATIC_ASSERT(offsetof(hftel_header, magic) == HFTEL_MAGIC_OFFSET, "magic");
HFTEL_STATIC_ASSERT(offsetof(hftel_header, layout_version) == HFTEL_LAYOUT_VERSION_OFFSET, "version");
HFTEL_STATIC_ASSERT(offsetof(hftel_header, header_length) == HFTEL_HEADER_LENGTH_OFFSET, "header length");
HFTEL_STATIC_ASSERT(offsetof(hftel_header, segment_length) == HFTEL_SEGMENT_LENGTH_OFFSET, "segment length");
HFTEL_STATIC_ASSERT(offsetof(hftel_header, epoch) == HFTEL_EPOCH_OFFSET, "epoch");
HFTEL_STATIC_ASSERT(offsetof(hftel_header, creator_pid) == HFTEL_CREATOR_PID_OFFSET, "creator pid");
HFTEL_STATIC_ASSERT(offsetof(hftel_header, start_time_ns) == HFTEL_START_TIME_OFFSET, "start time");
HFTEL_STATIC_ASSERT(offsetof(hftel_header, descriptors_offset) == HFTEL_DESCRIPTORS_OFFSET_OFFSET, "descriptors offset");
HFTEL_STATIC_ASSERT(offsetof(hftel_header, descriptor_length) == HFTEL_DESCRIPTOR_LENGTH_OFFSET, "descriptor length");
HFTEL_STATIC_ASSERT(offsetof(hftel_header, descriptor_capacity) == HFTEL_DESCRIPTOR_CAPACITY_OFFSET, "descriptor capacity");
HFTEL_STATIC_ASSERT(offsetof(hftel_header, values_offset) == HFTEL_VALUES_OFFSET_OFFSET, "values offset");
HFTEL_STATIC_ASSERT(offsetof(hftel_header, values_length) == HFTEL_VALUES_LENGTH_OFFSET, "values length");
HFTEL_STATIC_ASSERT(offsetof(hftel_header, audit_ring_offset) == HFTEL_AUDIT_RING_OFFSET_OFFSET, "audit ring offset");
HFTEL_STATIC_ASSERT(offsetof(hftel_header, audit_ring_capacity) == HFTEL_AUDIT_RING_CAPACITY_OFFSET, "audit ring capacity");
HFTEL_STATIC_ASSERT(offsetof(hftel_header, log_ring_offset) == HFTEL_LOG_RING_OFFSET_OFFSET, "log ring offset");
HFTEL_STATIC_ASSERT(offsetof(hftel_header, log_ring_capacity) == HFTEL_LOG_RING_CAPACITY_OFFSET, "log ring capacity");
HFTEL_STATIC_ASSERT(offsetof(hftel_header, registration_lock) == HFTEL_REGISTRATION_LOCK_OFFSET, "registration lock");
HFTEL_STATIC_ASSERT(offsetof(hftel_header, descriptor_count) == HFTEL_DESCRIPTOR_COUNT_OFFSET, "descriptor count");
HFTEL_STATIC_ASSERT(offsetof(hftel_header, values_used) == HFTEL_VALUES_USED_OFFSET, "values used");
HFTEL_STATIC_ASSERT(offsetof(hftel_header, heartbeat_ns) == HFTEL_HEARTBEAT_OFFSET, "heartbeat");
HFTEL_STATIC_ASSERT(offsetof(hftel_header, engine_state) == HFTEL_ENGINE_STATE_OFFSET, "engine state");

/* ---------------------------------------------------------------------------------------------
 * Descriptor: one fixed-length record per series (a metric name plus one label set).
 *
 *   (one row per field, in order; the type gives its size)
 *  +---------------------------------------------------------------+
 *  |                    State (i32)                                |  <- release-stored LAST
 *  +-------------------------------+-------------------------------+
 *  |        Type (u16)             |      Bucket Scheme (u16)      |
 *  +-------------------------------+-------------------------------+
 *  |                    Value Offset (u64, from values_offset)     |
 *  +---------------------------------------------------------------+
 *  |                    Value Length (u32)                         |
 *  +---------------------------------------------------------------+
 *  |                    Bucket Count (u32, finite buckets)         |
 *  +---------------+---------------+---------------+---------------+
 *  | Low Exponent  | High Exponent | Sub-bucket Bits| Reserved     |  (log-linear scheme only)
 *  +---------------+---------------+-------------------------------+
 *  |        Name Length (u16)      |      Labels Length (u16)      |
 *  +-------------------------------+-------------------------------+
 *  |        Help Length (u16)      |      Reserved to 64           |
 *  +-------------------------------+-------------------------------+
 *  |                    Name (NAME_MAX_LENGTH bytes, ASCII)       ...
 *  +---------------------------------------------------------------+
 *  |                    Labels (LABELS_MAX_LENGTH bytes)          ...  rendered, escaped:
 *  +---------------------------------------------------------------+     side="buy",venue="X"
 *  |                    Help (HELP_MAX_LENGTH bytes, UTF-8)       ...
 *  +---------------------------------------------------------------+
 *
 * The labels are stored already rendered for the exposition format, so `name{labels}` is the
 * series' exposition prefix. A counter's name is its family name, without the `_total` suffix.
 * ------------------------------------------------------------------------------------------ */

#define HFTEL_DESCRIPTOR_LENGTH 1024u
#define HFTEL_NAME_MAX_LENGTH 128u
#define HFTEL_LABELS_MAX_LENGTH 320u
#define HFTEL_HELP_MAX_LENGTH 512u

#define HFTEL_STATE_OFFSET 0u
#define HFTEL_TYPE_OFFSET (HFTEL_STATE_OFFSET + HFTEL_SIZE_OF_INT)
#define HFTEL_BUCKET_SCHEME_OFFSET (HFTEL_TYPE_OFFSET + 2u)
#define HFTEL_VALUE_OFFSET_OFFSET (HFTEL_BUCKET_SCHEME_OFFSET + 2u)
#define HFTEL_VALUE_LENGTH_OFFSET (HFTEL_VALUE_OFFSET_OFFSET + HFTEL_SIZE_OF_LONG)
#define HFTEL_BUCKET_COUNT_OFFSET (HFTEL_VALUE_LENGTH_OFFSET + HFTEL_SIZE_OF_INT)
#define HFTEL_LOW_EXPONENT_OFFSET (HFTEL_BUCKET_COUNT_OFFSET + HFTEL_SIZE_OF_INT)
#define HFTEL_HIGH_EXPONENT_OFFSET (HFTEL_LOW_EXPONENT_OFFSET + 1u)
#define HFTEL_SUB_BUCKET_BITS_OFFSET (HFTEL_HIGH_EXPONENT_OFFSET + 1u)
#define HFTEL_NAME_LENGTH_OFFSET (HFTEL_SUB_BUCKET_BITS_OFFSET + 2u)
#define HFTEL_LABELS_LENGTH_OFFSET (HFTEL_NAME_LENGTH_OFFSET + 2u)
#define HFTEL_HELP_LENGTH_OFFSET (HFTEL_LABELS_LENGTH_OFFSET + 2u)
#define HFTEL_NAME_OFFSET 64u
#define HFTEL_LABELS_OFFSET (HFTEL_NAME_OFFSET + HFTEL_NAME_MAX_LENGTH)
#define HFTEL_HELP_OFFSET (HFTEL_LABELS_OFFSET + HFTEL_LABELS_MAX_LENGTH)

enum hftel_descriptor_state {
    HFTEL_DESCRIPTOR_UNUSED = 0,
    HFTEL_DESCRIPTOR_ALLOCATED = 1, /* claimed, fields being written: readers skip it */
    HFTEL_DESCRIPTOR_PUBLISHED = 2  /* immutable from here on */
};

enum hftel_metric_type {
    HFTEL_COUNTER = 1,     /* u64, only ever increases */
    HFTEL_GAUGE_INT = 2,   /* i64 */
    HFTEL_GAUGE_FLOAT = 3, /* IEEE 754 double, stored in a u64 word */
    HFTEL_HISTOGRAM = 4    /* histogram block, below */
};

enum hftel_bucket_scheme {
    HFTEL_BUCKETS_NONE = 0,       /* not a histogram */
    HFTEL_BUCKETS_EXPLICIT = 1,   /* bounds given by the user; lookup by binary search */
    HFTEL_BUCKETS_LOG_LINEAR = 2  /* powers of two split into 2^sub_bits linear steps */
};

typedef struct hftel_descriptor {
    int32_t state;
    uint16_t type;
    uint16_t bucket_scheme;
    uint64_t value_offset;
    uint32_t value_length;
    uint32_t bucket_count;
    uint8_t low_exponent;
    uint8_t high_exponent;
    uint8_t sub_bucket_bits;
    uint8_t reserved0;
    uint16_t name_length;
    uint16_t labels_length;
    uint16_t help_length;
    uint8_t reserved1[HFTEL_NAME_OFFSET - 34u];
    char name[HFTEL_NAME_MAX_LENGTH];
    char labels[HFTEL_LABELS_MAX_LENGTH];
    char help[HFTEL_HELP_MAX_LENGTH];
} hftel_descriptor;

HFTEL_STATIC_ASSERT(sizeof(hftel_descriptor) == HFTEL_DESCRIPTOR_LENGTH, "descriptor length");
HFTEL_STATIC_ASSERT(offsetof(hftel_descriptor, state) == HFTEL_STATE_OFFSET, "state");
HFTEL_STATIC_ASSERT(offsetof(hftel_descriptor, type) == HFTEL_TYPE_OFFSET, "type");
HFTEL_STATIC_ASSERT(offsetof(hftel_descriptor, bucket_scheme) == HFTEL_BUCKET_SCHEME_OFFSET, "bucket scheme");
HFTEL_STATIC_ASSERT(offsetof(hftel_descriptor, value_offset) == HFTEL_VALUE_OFFSET_OFFSET, "value offset");
HFTEL_STATIC_ASSERT(offsetof(hftel_descriptor, value_length) == HFTEL_VALUE_LENGTH_OFFSET, "value length");
HFTEL_STATIC_ASSERT(offsetof(hftel_descriptor, bucket_count) == HFTEL_BUCKET_COUNT_OFFSET, "bucket count");
HFTEL_STATIC_ASSERT(offsetof(hftel_descriptor, low_exponent) == HFTEL_LOW_EXPONENT_OFFSET, "low exponent");
HFTEL_STATIC_ASSERT(offsetof(hftel_descriptor, high_exponent) == HFTEL_HIGH_EXPONENT_OFFSET, "high exponent");
HFTEL_STATIC_ASSERT(offsetof(hftel_descriptor, sub_bucket_bits) == HFTEL_SUB_BUCKET_BITS_OFFSET, "sub-bucket bits");
HFTEL_STATIC_ASSERT(offsetof(hftel_descriptor, name_length) == HFTEL_NAME_LENGTH_OFFSET, "name length");
HFTEL_STATIC_ASSERT(offsetof(hftel_descriptor, labels_length) == HFTEL_LABELS_LENGTH_OFFSET, "labels length");
HFTEL_STATIC_ASSERT(offsetof(hftel_descriptor, help_length) == HFTEL_HELP_LENGTH_OFFSET, "help length");
HFTEL_STATIC_ASSERT(offsetof(hftel_descriptor, name) == HFTEL_NAME_OFFSET, "name");
HFTEL_STATIC_ASSERT(offsetof(hftel_descriptor, labels) == HFTEL_LABELS_OFFSET, "labels");
HFTEL_STATIC_ASSERT(offsetof(hftel_descriptor, help) == HFTEL_HELP_OFFSET, "help");

/* ---------------------------------------------------------------------------------------------
 * Values. Every value block starts on a VALUE_ALIGNMENT boundary inside the values area.
 *
 * Counter, gauge: one 8-byte word at the start of a VALUE_ALIGNMENT slot.
 *
 * Histogram block, for B finite buckets:
 *
 *  +---------------------------------------------------------------+
 *  |  Bounds: B x u64, strictly increasing, inclusive upper bounds  |  written before PUBLISHED,
 *  |  (bucket i counts values v with bounds[i-1] < v <= bounds[i])  |  read-only afterwards
 *  +---------------------------------------------------------------+  <- padded to VALUE_ALIGNMENT
 *  |  Counts: (B + 1) x u64; the last one is the +Inf bucket        |  hot: one add per observe
 *  +---------------------------------------------------------------+
 *  |  Sum (u64, of observed values)                                  |  hot: one add per observe
 *  +---------------------------------------------------------------+  <- padded to VALUE_ALIGNMENT
 *
 * There is no count word: a reader derives _count as the sum of the bucket counts, so a snapshot's
 * _count always equals its +Inf bucket and its cumulative buckets never decrease. The sum is read
 * after the counts, so it may miss or include the few observations in flight during the read.
 * ------------------------------------------------------------------------------------------ */

#define HFTEL_MAX_BUCKETS 256u
#define HFTEL_MAX_DESCRIPTOR_CAPACITY (1u << 20)

static inline uint64_t hftel_align(uint64_t value, uint64_t alignment)
{
    return (value + alignment - 1u) & ~(alignment - 1u);
}

static inline uint64_t hftel_histogram_counts_offset(uint32_t bucket_count)
{
    return hftel_align((uint64_t)bucket_count * HFTEL_SIZE_OF_LONG, HFTEL_VALUE_ALIGNMENT);
}

static inline uint64_t hftel_histogram_block_length(uint32_t bucket_count)
{
    return hftel_histogram_counts_offset(bucket_count) +
           hftel_align(((uint64_t)bucket_count + 2u) * HFTEL_SIZE_OF_LONG, HFTEL_VALUE_ALIGNMENT);
}

/* ---------------------------------------------------------------------------------------------
 * Handles: what an engine holds to record. Each is bound once, on the slow path, to a published
 * descriptor (hftel_registry.h does it), and is then used with the functions below.
 * ------------------------------------------------------------------------------------------ */

typedef struct hftel_counter {
    uint64_t *value;
} hftel_counter;

typedef struct hftel_gauge {
    int64_t *value;
} hftel_gauge;

typedef struct hftel_float_gauge {
    uint64_t *bits; /* an IEEE 754 double, kept in an integer word so that it can be atomic */
} hftel_float_gauge;

typedef struct hftel_histogram {
    uint64_t *counts;       /* bucket_count + 1 words; the last is +Inf */
    uint64_t *sum;
    const uint64_t *bounds; /* bucket_count words */
    uint32_t bucket_count;
    uint16_t bucket_scheme;
    uint8_t low_exponent;
    uint8_t high_exponent;
    uint8_t sub_bucket_bits;
} hftel_histogram;

/* ---------------------------------------------------------------------------------------------
 * Counters.
 * ------------------------------------------------------------------------------------------ */

/* Single writer: only one thread may ever add to this counter. A plain load and a release store. */
static inline void hftel_counter_add(const hftel_counter *counter, uint64_t amount)
{
    uint64_t current = __atomic_load_n(counter->value, __ATOMIC_RELAXED);
    __atomic_store_n(counter->value, current + amount, __ATOMIC_RELEASE);
}

/* Any thread of any process. */
static inline void hftel_counter_add_atomic(const hftel_counter *counter, uint64_t amount)
{
    __atomic_fetch_add(counter->value, amount, __ATOMIC_RELAXED);
}

static inline uint64_t hftel_counter_get(const hftel_counter *counter)
{
    return __atomic_load_n(counter->value, __ATOMIC_ACQUIRE);
}

/* ---------------------------------------------------------------------------------------------
 * Gauges. A set is a single store and is safe from any thread; adds come in both flavours.
 * ------------------------------------------------------------------------------------------ */

static inline void hftel_gauge_set(const hftel_gauge *gauge, int64_t value)
{
    __atomic_store_n(gauge->value, value, __ATOMIC_RELEASE);
}

static inline void hftel_gauge_add(const hftel_gauge *gauge, int64_t amount)
{
    int64_t current = __atomic_load_n(gauge->value, __ATOMIC_RELAXED);
    __atomic_store_n(gauge->value, (int64_t)((uint64_t)current + (uint64_t)amount), __ATOMIC_RELEASE);
}

static inline void hftel_gauge_add_atomic(const hftel_gauge *gauge, int64_t amount)
{
    __atomic_fetch_add(gauge->value, amount, __ATOMIC_RELAXED);
}

static inline int64_t hftel_gauge_get(const hftel_gauge *gauge)
{
    return __atomic_load_n(gauge->value, __ATOMIC_ACQUIRE);
}

static inline uint64_t hftel_double_to_bits(double value)
{
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    return bits;
}

static inline double hftel_bits_to_double(uint64_t bits)
{
    double value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

static inline void hftel_float_gauge_set(const hftel_float_gauge *gauge, double value)
{
    __atomic_store_n(gauge->bits, hftel_double_to_bits(value), __ATOMIC_RELEASE);
}

static inline void hftel_float_gauge_add(const hftel_float_gauge *gauge, double amount)
{
    double current = hftel_bits_to_double(__atomic_load_n(gauge->bits, __ATOMIC_RELAXED));
    __atomic_store_n(gauge->bits, hftel_double_to_bits(current + amount), __ATOMIC_RELEASE);
}

/* Any thread: a compare-and-swap loop, since there is no atomic floating-point add. */
static inline void hftel_float_gauge_add_atomic(const hftel_float_gauge *gauge, double amount)
{
    uint64_t expected = __atomic_load_n(gauge->bits, __ATOMIC_RELAXED);
    uint64_t desired;
    do {
        desired = hftel_double_to_bits(hftel_bits_to_double(expected) + amount);
    } while (!__atomic_compare_exchange_n(gauge->bits, &expected, desired, 1,
                                          __ATOMIC_RELAXED, __ATOMIC_RELAXED));
}

static inline double hftel_float_gauge_get(const hftel_float_gauge *gauge)
{
    return hftel_bits_to_double(__atomic_load_n(gauge->bits, __ATOMIC_ACQUIRE));
}

/* ---------------------------------------------------------------------------------------------
 * Histograms.
 *
 * Log-linear scheme (low exponent L, high exponent H, sub-bucket bits S): bucket 0 holds v <= 2^L;
 * then each power of two [2^e, 2^(e+1)) for L <= e < H is cut into 2^S equal steps; values above
 * 2^H go to +Inf. Finite buckets: 1 + ((H - L) << S). Lookup is a count-leading-zeros, a shift and
 * a mask. The default layout (hftel_default_buckets) is L=6, H=34, S=1: 64 ns to 17.2 s with two
 * steps per octave, 57 finite buckets.
 * ------------------------------------------------------------------------------------------ */

#define HFTEL_DEFAULT_LOW_EXPONENT 6u
#define HFTEL_DEFAULT_HIGH_EXPONENT 34u
#define HFTEL_DEFAULT_SUB_BUCKET_BITS 1u

static inline uint32_t hftel_log_linear_bucket_count(unsigned low, unsigned high, unsigned sub_bits)
{
    return 1u + ((uint32_t)(high - low) << sub_bits);
}

/* The inclusive upper bound of finite bucket `index` in a log-linear layout. */
static inline uint64_t hftel_log_linear_bound(unsigned low, unsigned sub_bits, uint32_t index)
{
    if (index == 0u) {
        return 1ull << low;
    }
    uint32_t step = index - 1u;
    unsigned exponent = low + (step >> sub_bits);
    uint64_t sub = (uint64_t)(step & ((1u << sub_bits) - 1u)) + 1u;
    return (1ull << exponent) + (sub << (exponent - sub_bits));
}

static inline uint32_t hftel_log_linear_index(uint64_t value, unsigned low, unsigned high,
                                              unsigned sub_bits)
{
    /* Shift by one so that each bucket is (bound[i-1], bound[i]], as Prometheus' `le` means. */
    uint64_t x = value - (value != 0u);
    if (x < (1ull << low)) {
        return 0u;
    }
    unsigned exponent = 63u - (unsigned)__builtin_clzll(x);
    if (exponent >= high) {
        return hftel_log_linear_bucket_count(low, high, sub_bits); /* +Inf */
    }
    uint32_t sub = (uint32_t)(x >> (exponent - sub_bits)) & ((1u << sub_bits) - 1u);
    return 1u + ((uint32_t)(exponent - low) << sub_bits) + sub;
}

/* The first bucket whose bound is >= value, or bucket_count (+Inf): a branch-light binary search. */
static inline uint32_t hftel_explicit_index(uint64_t value, const uint64_t *bounds, uint32_t count)
{
    uint32_t low = 0u;
    uint32_t length = count;
    while (length > 0u) {
        uint32_t half = length >> 1;
        if (bounds[low + half] < value) {
            low += half + 1u;
            length -= half + 1u;
        } else {
            length = half;
        }
    }
    return low;
}

static inline uint32_t hftel_histogram_index(const hftel_histogram *histogram, uint64_t value)
{
    if (histogram->bucket_scheme == HFTEL_BUCKETS_LOG_LINEAR) {
        return hftel_log_linear_index(value, histogram->low_exponent, histogram->high_exponent,
                                      histogram->sub_bucket_bits);
    }
    return hftel_explicit_index(value, histogram->bounds, histogram->bucket_count);
}

/* Single writer. */
static inline void hftel_histogram_observe(const hftel_histogram *histogram, uint64_t value)
{
    uint64_t *bucket = histogram->counts + hftel_histogram_index(histogram, value);
    __atomic_store_n(bucket, __atomic_load_n(bucket, __ATOMIC_RELAXED) + 1u, __ATOMIC_RELEASE);
    __atomic_store_n(histogram->sum, __atomic_load_n(histogram->sum, __ATOMIC_RELAXED) + value,
                     __ATOMIC_RELEASE);
}

/* Any thread of any process. */
static inline void hftel_histogram_observe_atomic(const hftel_histogram *histogram, uint64_t value)
{
    __atomic_fetch_add(histogram->counts + hftel_histogram_index(histogram, value), 1u,
                       __ATOMIC_RELAXED);
    __atomic_fetch_add(histogram->sum, value, __ATOMIC_RELAXED);
}

/* ---------------------------------------------------------------------------------------------
 * Reading. Plain acquire loads: a reader never blocks, and never needs to retry.
 * ------------------------------------------------------------------------------------------ */

static inline uint64_t hftel_load_u64(const uint64_t *word)
{
    return __atomic_load_n(word, __ATOMIC_ACQUIRE);
}

#ifdef __cplusplus
}
#endif

#endif /* HFTEL_H */
