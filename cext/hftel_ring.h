/*
 * hftel_ring.h -- the many-producer, one-consumer record rings inside a segment: their layout (part
 * of the ABI, versioned with HFTEL_LAYOUT_VERSION) and the claim, commit and read steps.
 *
 * A segment holds two rings, located by the header (audit_ring_offset/_capacity and
 * log_ring_offset/_capacity): one for audit rows, one for log events, so that a flood of log events
 * never pushes audit rows out. Producers are engine threads in any process; the consumer is the
 * exporter. The design is Agrona's ManyToOneRingBuffer, with one change: records are stamped with
 * their position instead of the consumer zeroing what it has read, so the consumer writes nothing
 * but its own position and counters, and a crashed engine's rings still hold its last records for
 * `hftel inspect` to print.
 *
 * Ring region (ring_offset, RING_HEADER_LENGTH + capacity bytes):
 *
 *  +---------------------------------------------------------------+  0
 *  |  Tail Position (u64): bytes ever claimed                       |  producers, compare-and-swap
 *  +---------------------------------------------------------------+  128
 *  |  Head Cache (u64): a recent copy of the head                   |  producers, a hint
 *  +---------------------------------------------------------------+  256
 *  |  Head Position (u64): bytes ever consumed                      |  the consumer only
 *  |  Skipped Records (u64), Skipped Bytes (u64)                    |  the consumer only
 *  +---------------------------------------------------------------+  384
 *  |  Full (u64): records that found the ring full                  |  producers, atomic adds
 *  |  Spilled (u64): of those, written to the spill file instead    |  (overflow paths only)
 *  |  Lost (u64): of those, lost (log events dropped, spill failed) |
 *  |  Truncated (u64): records cut to fit                           |
 *  |  Schema Violations (u64): log events missing required fields   |
 *  +---------------------------------------------------------------+  512 = RING_HEADER_LENGTH
 *  |  Data: capacity bytes (a power of two), records back to back   |
 *  +---------------------------------------------------------------+
 *
 * Positions are 64-bit byte counts that only grow; a position's index in the data is
 * position & (capacity - 1). Free space is capacity - (tail - head).
 *
 * Record (starts RECORD_ALIGNMENT aligned; occupies its length rounded up to RECORD_ALIGNMENT):
 *
 *  +---------------------------------------------------------------+  0
 *  |  Tag (u64): (position ^ TAG_KEY) | stage                       |  <- release-stored: CLAIMED,
 *  +-------------------------------+---------------+---------------+     then COMMITTED
 *  |  Length (u32, header+payload) |  Type (u16)   | Flags (u16)   |  8
 *  +-------------------------------+---------------+---------------+
 *  |  Producer PID (i32)           |  Reserved (u32)               |  16
 *  +-------------------------------+-------------------------------+
 *  |  Payload (Length - RECORD_HEADER_LENGTH bytes)               ...  24: an audit row struct
 *  +---------------------------------------------------------------+     or an encoded log event
 *
 * Protocol:
 *   1. Claim: a producer compare-and-swaps the tail forward by the record's aligned length (plus
 *      the bytes left before the end of the data, when the record would not fit there: those
 *      become a PADDING record, or, when fewer than RECORD_HEADER_LENGTH, implicit padding that
 *      the consumer skips without reading).
 *   2. It writes Length, Type and its PID, then release-stores Tag with stage CLAIMED.
 *   3. It writes the payload, then release-stores Tag with stage COMMITTED.
 *   4. The consumer acquire-loads the Tag at the head. Only a tag carrying the head's own position
 *      counts: stale bytes from an earlier lap carry another position. It copies the committed
 *      records it wants, then release-stores the new head, which frees the space.
 *
 * A producer that dies between claim and commit must not wedge the ring. The consumer skips a
 * record at the head that is not committed when its producer's PID is dead (stage CLAIMED), or
 * when it has made no progress for the consumer's stall timeout (stage CLAIMED by a stopped
 * process, or no tag at all: the producer died between the compare-and-swap and step 2; the
 * record's extent is then found from the next tagged record, or the tail). Every skip is counted.
 * ------------------------------------------------------------------------------------------ */
#ifndef HFTEL_RING_H
#define HFTEL_RING_H

#include "hftel.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HFTEL_RING_HEADER_LENGTH 512u
#define HFTEL_RING_TAIL_OFFSET 0u
#define HFTEL_RING_HEAD_CACHE_OFFSET (1u * HFTEL_VALUE_ALIGNMENT)
#define HFTEL_RING_HEAD_OFFSET (2u * HFTEL_VALUE_ALIGNMENT)
#define HFTEL_RING_SKIPPED_RECORDS_OFFSET (HFTEL_RING_HEAD_OFFSET + HFTEL_SIZE_OF_LONG)
#define HFTEL_RING_SKIPPED_BYTES_OFFSET (HFTEL_RING_SKIPPED_RECORDS_OFFSET + HFTEL_SIZE_OF_LONG)
#define HFTEL_RING_FULL_OFFSET (3u * HFTEL_VALUE_ALIGNMENT)
#define HFTEL_RING_SPILLED_OFFSET (HFTEL_RING_FULL_OFFSET + HFTEL_SIZE_OF_LONG)
#define HFTEL_RING_LOST_OFFSET (HFTEL_RING_SPILLED_OFFSET + HFTEL_SIZE_OF_LONG)
#define HFTEL_RING_TRUNCATED_OFFSET (HFTEL_RING_LOST_OFFSET + HFTEL_SIZE_OF_LONG)
#define HFTEL_RING_VIOLATIONS_OFFSET (HFTEL_RING_TRUNCATED_OFFSET + HFTEL_SIZE_OF_LONG)

#define HFTEL_RING_MIN_CAPACITY 65536ull
#define HFTEL_RING_MAX_CAPACITY (1ull << 30)

#define HFTEL_RECORD_HEADER_LENGTH 24u
#define HFTEL_RECORD_ALIGNMENT 8u
#define HFTEL_RECORD_TAG_OFFSET 0u
#define HFTEL_RECORD_LENGTH_OFFSET 8u
#define HFTEL_RECORD_TYPE_OFFSET 12u
#define HFTEL_RECORD_FLAGS_OFFSET 14u
#define HFTEL_RECORD_PID_OFFSET 16u
/* A record may take at most this share of the data, so that one always fits after a wrap. */
#define HFTEL_RECORD_MAX_SHARE 8u
#define HFTEL_RECORD_MAX_LENGTH 65536u

/* Mixed into every tag so that no plausible payload value looks like a position. */
#define HFTEL_RECORD_TAG_KEY 0x9e3779b97f4a7c10ull
#define HFTEL_RECORD_STAGE_MASK 7ull
#define HFTEL_RECORD_CLAIMED 1u
#define HFTEL_RECORD_COMMITTED 2u

/* Record types: audit rows use their table's type id (1..63, hftel_audit.h). */
#define HFTEL_RECORD_LOG_EVENT 64u
#define HFTEL_RECORD_PADDING 65535u

/* Record flags. */
#define HFTEL_RECORD_TRUNCATED 1u        /* something was cut to fit */
#define HFTEL_RECORD_SCHEMA_VIOLATION 2u /* a log event missing a field its component requires */

typedef struct hftel_ring_header {
    uint64_t tail;
    uint8_t pad0[HFTEL_VALUE_ALIGNMENT - 8u];
    uint64_t head_cache;
    uint8_t pad1[HFTEL_VALUE_ALIGNMENT - 8u];
    uint64_t head;
    uint64_t skipped_records;
    uint64_t skipped_bytes;
    uint8_t pad2[HFTEL_VALUE_ALIGNMENT - 24u];
    uint64_t full;
    uint64_t spilled;
    uint64_t lost;
    uint64_t truncated;
    uint64_t violations;
    uint8_t pad3[HFTEL_VALUE_ALIGNMENT - 40u];
} hftel_ring_header;

HFTEL_STATIC_ASSERT(sizeof(hftel_ring_header) == HFTEL_RING_HEADER_LENGTH, "ring header length");
HFTEL_STATIC_ASSERT(offsetof(hftel_ring_header, tail) == HFTEL_RING_TAIL_OFFSET, "tail");
HFTEL_STATIC_ASSERT(offsetof(hftel_ring_header, head_cache) == HFTEL_RING_HEAD_CACHE_OFFSET, "head cache");
HFTEL_STATIC_ASSERT(offsetof(hftel_ring_header, head) == HFTEL_RING_HEAD_OFFSET, "head");
HFTEL_STATIC_ASSERT(offsetof(hftel_ring_header, skipped_records) == HFTEL_RING_SKIPPED_RECORDS_OFFSET, "skipped");
HFTEL_STATIC_ASSERT(offsetof(hftel_ring_header, skipped_bytes) == HFTEL_RING_SKIPPED_BYTES_OFFSET, "skipped bytes");
HFTEL_STATIC_ASSERT(offsetof(hftel_ring_header, full) == HFTEL_RING_FULL_OFFSET, "full");
HFTEL_STATIC_ASSERT(offsetof(hftel_ring_header, spilled) == HFTEL_RING_SPILLED_OFFSET, "spilled");
HFTEL_STATIC_ASSERT(offsetof(hftel_ring_header, lost) == HFTEL_RING_LOST_OFFSET, "lost");
HFTEL_STATIC_ASSERT(offsetof(hftel_ring_header, truncated) == HFTEL_RING_TRUNCATED_OFFSET, "truncated");
HFTEL_STATIC_ASSERT(offsetof(hftel_ring_header, violations) == HFTEL_RING_VIOLATIONS_OFFSET, "violations");

typedef struct hftel_record_header {
    uint64_t tag;
    uint32_t length;
    uint16_t type;
    uint16_t flags;
    int32_t pid;
    uint32_t reserved;
} hftel_record_header;

HFTEL_STATIC_ASSERT(sizeof(hftel_record_header) == HFTEL_RECORD_HEADER_LENGTH, "record header length");
HFTEL_STATIC_ASSERT(offsetof(hftel_record_header, length) == HFTEL_RECORD_LENGTH_OFFSET, "record length");
HFTEL_STATIC_ASSERT(offsetof(hftel_record_header, type) == HFTEL_RECORD_TYPE_OFFSET, "record type");
HFTEL_STATIC_ASSERT(offsetof(hftel_record_header, flags) == HFTEL_RECORD_FLAGS_OFFSET, "record flags");
HFTEL_STATIC_ASSERT(offsetof(hftel_record_header, pid) == HFTEL_RECORD_PID_OFFSET, "record pid");
HFTEL_STATIC_ASSERT((HFTEL_RECORD_TAG_KEY & HFTEL_RECORD_STAGE_MASK) == 0u, "tag key keeps the stage bits clear");

/* What a producer or the consumer holds: addresses computed from a checked, private geometry. */
typedef struct hftel_ring {
    hftel_ring_header *header;
    uint8_t *data;
    uint64_t capacity; /* 0: the segment has no such ring */
    uint64_t mask;
    uint32_t max_record_length;
} hftel_ring;

static inline uint64_t hftel_record_tag(uint64_t position, uint32_t stage)
{
    return ((position ^ HFTEL_RECORD_TAG_KEY) & ~HFTEL_RECORD_STAGE_MASK) | stage;
}

static inline uint32_t hftel_ring_max_record_length(uint64_t capacity)
{
    uint64_t share = capacity / HFTEL_RECORD_MAX_SHARE;
    return (uint32_t)(share < HFTEL_RECORD_MAX_LENGTH ? share : HFTEL_RECORD_MAX_LENGTH);
}

static inline hftel_record_header *hftel_ring_record(const hftel_ring *ring, uint64_t position)
{
    return (hftel_record_header *)(ring->data + (position & ring->mask));
}

/* ---------------------------------------------------------------------------------------------
 * Producing. Lock-free, no system calls; safe from any thread of any process.
 * ------------------------------------------------------------------------------------------ */

/* Claims space for a record of `length` bytes (header included) and stamps it CLAIMED. Returns the
 * record's position, or UINT64_MAX when the ring is full (nothing was claimed) or the record is
 * longer than max_record_length. The caller writes the payload, then calls hftel_ring_commit. */
static inline uint64_t hftel_ring_claim(const hftel_ring *ring, uint32_t length, uint16_t type, uint16_t flags,
                                        int32_t pid)
{
    if (ring->capacity == 0u || length > ring->max_record_length || length < HFTEL_RECORD_HEADER_LENGTH) {
        return UINT64_MAX;
    }
    uint64_t need = hftel_align(length, HFTEL_RECORD_ALIGNMENT);
    uint64_t head = __atomic_load_n(&ring->header->head_cache, __ATOMIC_RELAXED);
    uint64_t tail = __atomic_load_n(&ring->header->tail, __ATOMIC_ACQUIRE);
    uint64_t padding;
    do {
        uint64_t to_end = ring->capacity - (tail & ring->mask);
        padding = need > to_end ? to_end : 0u;
        uint64_t required = need + padding;
        if (tail + required - head > ring->capacity) {
            head = __atomic_load_n(&ring->header->head, __ATOMIC_ACQUIRE);
            if (tail + required - head > ring->capacity) {
                return UINT64_MAX;
            }
            __atomic_store_n(&ring->header->head_cache, head, __ATOMIC_RELAXED);
        }
    } while (!__atomic_compare_exchange_n(&ring->header->tail, &tail, tail + need + padding, 1,
                                          __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
    if (padding >= HFTEL_RECORD_HEADER_LENGTH) {
        hftel_record_header *pad = hftel_ring_record(ring, tail);
        pad->length = (uint32_t)padding;
        pad->type = HFTEL_RECORD_PADDING;
        pad->flags = 0u;
        pad->pid = pid;
        pad->reserved = 0u;
        __atomic_store_n(&pad->tag, hftel_record_tag(tail, HFTEL_RECORD_COMMITTED), __ATOMIC_RELEASE);
    }
    uint64_t position = tail + padding;
    hftel_record_header *record = hftel_ring_record(ring, position);
    record->length = length;
    record->type = type;
    record->flags = flags;
    record->pid = pid;
    record->reserved = 0u;
    __atomic_store_n(&record->tag, hftel_record_tag(position, HFTEL_RECORD_CLAIMED), __ATOMIC_RELEASE);
    return position;
}

static inline uint8_t *hftel_ring_payload(const hftel_ring *ring, uint64_t position)
{
    return (uint8_t *)hftel_ring_record(ring, position) + HFTEL_RECORD_HEADER_LENGTH;
}

static inline void hftel_ring_set_flags(const hftel_ring *ring, uint64_t position, uint16_t flags)
{
    hftel_ring_record(ring, position)->flags = flags;
}

/* Publishes a claimed record to the consumer. */
static inline void hftel_ring_commit(const hftel_ring *ring, uint64_t position)
{
    __atomic_store_n(&hftel_ring_record(ring, position)->tag, hftel_record_tag(position, HFTEL_RECORD_COMMITTED),
                     __ATOMIC_RELEASE);
}

/* Claims, copies and commits in one go: 0 on success, -1 when the ring is full or the record too long. */
static inline int hftel_ring_write(const hftel_ring *ring, uint16_t type, uint16_t flags, int32_t pid,
                                   const void *payload, uint32_t payload_length)
{
    uint64_t position = hftel_ring_claim(ring, HFTEL_RECORD_HEADER_LENGTH + payload_length, type, flags, pid);
    if (position == UINT64_MAX) {
        return -1;
    }
    memcpy(hftel_ring_payload(ring, position), payload, payload_length);
    hftel_ring_commit(ring, position);
    return 0;
}

/* Overflow-path counters (full, spilled, lost, truncated, violations): atomic, rarely touched. */
static inline void hftel_ring_count(uint64_t *counter, uint64_t amount)
{
    __atomic_fetch_add(counter, amount, __ATOMIC_RELAXED);
}

/* ---------------------------------------------------------------------------------------------
 * Consuming. One consumer per ring (the exporter); nothing here writes outside the ring header's
 * consumer line. The consumer reads one record at the head with hftel_ring_peek, copies what it
 * needs, moves on with the length it was told, and publishes the new head with hftel_ring_advance
 * when it is done with everything before it.
 * ------------------------------------------------------------------------------------------ */

typedef enum hftel_peek {
    HFTEL_PEEK_EMPTY = 0,     /* head == tail */
    HFTEL_PEEK_RECORD = 1,    /* a committed record: its header is in *out */
    HFTEL_PEEK_PADDING = 2,   /* skip *skip bytes: padding to the end of the data */
    HFTEL_PEEK_PENDING = 3,   /* claimed but not committed yet (*out holds the header if it has one) */
    HFTEL_PEEK_UNTAGGED = 4,  /* claimed, not even stamped CLAIMED yet */
    HFTEL_PEEK_CORRUPT = 5    /* the ring's words make no sense: a forged or damaged segment */
} hftel_peek;

static inline uint64_t hftel_ring_load_tail(const hftel_ring *ring)
{
    return __atomic_load_n(&ring->header->tail, __ATOMIC_ACQUIRE);
}

static inline uint64_t hftel_ring_load_head(const hftel_ring *ring)
{
    return __atomic_load_n(&ring->header->head, __ATOMIC_ACQUIRE);
}

/* Looks at the record at `position` (the consumer's head, or a later record it has walked to),
 * given the tail it loaded. On RECORD and PADDING, *skip is how far the next record is. */
static inline hftel_peek hftel_ring_peek(const hftel_ring *ring, uint64_t position, uint64_t tail,
                                         hftel_record_header *out, uint64_t *skip)
{
    if (position == tail) {
        return HFTEL_PEEK_EMPTY;
    }
    if (tail - position > ring->capacity || position % HFTEL_RECORD_ALIGNMENT != 0u) {
        return HFTEL_PEEK_CORRUPT;
    }
    uint64_t to_end = ring->capacity - (position & ring->mask);
    if (to_end < HFTEL_RECORD_HEADER_LENGTH) {
        *skip = to_end;
        return tail - position >= to_end ? HFTEL_PEEK_PADDING : HFTEL_PEEK_CORRUPT;
    }
    hftel_record_header *record = hftel_ring_record(ring, position);
    uint64_t tag = __atomic_load_n(&record->tag, __ATOMIC_ACQUIRE);
    if ((tag & ~HFTEL_RECORD_STAGE_MASK) != hftel_record_tag(position, 0u)) {
        return HFTEL_PEEK_UNTAGGED;
    }
    out->tag = tag;
    out->length = record->length;
    out->type = record->type;
    out->flags = record->flags;
    out->pid = record->pid;
    out->reserved = record->reserved;
    uint64_t stage = tag & HFTEL_RECORD_STAGE_MASK;
    if (stage != HFTEL_RECORD_CLAIMED && stage != HFTEL_RECORD_COMMITTED) {
        return HFTEL_PEEK_CORRUPT;
    }
    uint64_t extent = hftel_align(out->length, HFTEL_RECORD_ALIGNMENT);
    if (out->length < HFTEL_RECORD_HEADER_LENGTH || extent > to_end || extent > tail - position ||
        (out->type != HFTEL_RECORD_PADDING && out->length > ring->max_record_length) ||
        (out->type == HFTEL_RECORD_PADDING && extent != to_end)) {
        return HFTEL_PEEK_CORRUPT;
    }
    *skip = extent;
    if (stage == HFTEL_RECORD_CLAIMED) {
        return HFTEL_PEEK_PENDING;
    }
    return out->type == HFTEL_RECORD_PADDING ? HFTEL_PEEK_PADDING : HFTEL_PEEK_RECORD;
}

/* For an UNTAGGED head that has stalled: how far the dead claim extends. It ends at the next
 * record that carries its own position's tag, or at the tail. */
static inline uint64_t hftel_ring_untagged_extent(const hftel_ring *ring, uint64_t position, uint64_t tail)
{
    for (uint64_t next = position + HFTEL_RECORD_ALIGNMENT; next < tail; next += HFTEL_RECORD_ALIGNMENT) {
        if (ring->capacity - (next & ring->mask) < HFTEL_RECORD_HEADER_LENGTH) {
            continue;
        }
        uint64_t tag = __atomic_load_n(&hftel_ring_record(ring, next)->tag, __ATOMIC_ACQUIRE);
        if ((tag & ~HFTEL_RECORD_STAGE_MASK) == hftel_record_tag(next, 0u)) {
            return next - position;
        }
    }
    return tail - position;
}

static inline void hftel_ring_advance(const hftel_ring *ring, uint64_t head)
{
    __atomic_store_n(&ring->header->head, head, __ATOMIC_RELEASE);
}

static inline void hftel_ring_count_skip(const hftel_ring *ring, uint64_t bytes)
{
    hftel_ring_header *header = ring->header;
    __atomic_store_n(&header->skipped_records, header->skipped_records + 1u, __ATOMIC_RELEASE);
    __atomic_store_n(&header->skipped_bytes, header->skipped_bytes + bytes, __ATOMIC_RELEASE);
}

#ifdef __cplusplus
}
#endif

#endif /* HFTEL_RING_H */
