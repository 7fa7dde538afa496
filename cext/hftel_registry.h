/*
 * hftel_registry.h -- the slow path over hftel.h: create and attach segments, check them, register
 * metrics and bind handles. POSIX only. Nothing here is meant to be called while recording.
 *
 * Every function that can fail returns an hftel_status (HFTEL_OK is 0) and, on failure, fills an
 * hftel_error with a sentence that names the problem. Handles come back through out-parameters.
 *
 * Who may call what concurrently:
 *   - hftel_segment_create, _attach, _close: one caller per hftel_segment.
 *   - hftel_register: any thread of any process; serialised by the registration lock in the header.
 *     The lock word holds the holder's pid, so a holder that died is detected and the lock taken
 *     over instead of wedging every later registration. This assumes every registrant shares one
 *     pid namespace; a holder's pid reused by a live process makes the lock time out (BUSY) after
 *     HFTEL_LOCK_TIMEOUT_NS. A registrant that dies mid-registration leaves its descriptor
 *     ALLOCATED and its value space used for good: readers skip it, nothing reclaims it.
 *   - hftel_segment_check_*, hftel_find, hftel_bind_*: any thread, any time (read only).
 */
#ifndef HFTEL_REGISTRY_H
#define HFTEL_REGISTRY_H

#include "hftel.h"
#include "hftel_ring.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum hftel_status {
    HFTEL_OK = 0,
    HFTEL_ERROR_IO = 1,       /* the operating system refused: see the message for errno */
    HFTEL_ERROR_CORRUPT = 2,  /* the segment is truncated, forged or garbage */
    HFTEL_ERROR_VERSION = 3,  /* a layout version this code does not read */
    HFTEL_ERROR_INVALID = 4,  /* a bad argument: name, labels, buckets, sizes */
    HFTEL_ERROR_CONFLICT = 5, /* registered before with another type or other buckets */
    HFTEL_ERROR_FULL = 6,     /* no descriptor or value space left */
    HFTEL_ERROR_BUSY = 7      /* the registration lock stayed held by a live process */
} hftel_status;

#define HFTEL_ERROR_MESSAGE_LENGTH 256u
#define HFTEL_LOCK_TIMEOUT_NS 5000000000ll

typedef struct hftel_error {
    char message[HFTEL_ERROR_MESSAGE_LENGTH];
} hftel_error;

/* A mapped segment. The geometry is copied out of the header once it has been checked, and every
 * address is computed from this private copy: a process that rewrites the shared header later
 * cannot steer a reader outside its mapping. */
typedef struct hftel_segment {
    uint8_t *base;
    uint64_t length;
    int writable;
    uint64_t device; /* st_dev and st_ino of the file mapped, to tell a recreated segment apart */
    uint64_t inode;
    uint64_t descriptors_offset;
    uint32_t descriptor_capacity;
    uint64_t values_offset;
    uint64_t values_length;
    uint64_t audit_ring_offset;
    uint64_t audit_ring_capacity;
    uint64_t log_ring_offset;
    uint64_t log_ring_capacity;
} hftel_segment;

typedef struct hftel_segment_options {
    uint32_t descriptor_capacity;
    uint64_t values_length;
    uint32_t mode; /* file permissions, e.g. 0600 */
    uint64_t audit_ring_capacity; /* 0 (no ring) or a power of two in RING_MIN_CAPACITY..RING_MAX_CAPACITY */
    uint64_t log_ring_capacity;
} hftel_segment_options;

typedef struct hftel_metric_spec {
    uint16_t type;
    const char *name;
    const char *labels; /* rendered: k="v",k2="v2"; "" for none */
    const char *help;
    uint16_t bucket_scheme;
    uint32_t bucket_count;
    const uint64_t *bounds; /* EXPLICIT scheme only */
    uint8_t low_exponent;   /* LOG_LINEAR scheme only */
    uint8_t high_exponent;
    uint8_t sub_bucket_bits;
} hftel_metric_spec;

static inline hftel_status hftel_fail(hftel_error *error, hftel_status status, const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static inline hftel_status hftel_fail(hftel_error *error, hftel_status status, const char *format, ...)
{
    if (error != NULL) {
        va_list args;
        va_start(args, format);
        vsnprintf(error->message, sizeof error->message, format, args);
        va_end(args);
    }
    return status;
}

static inline hftel_header *hftel_segment_header(const hftel_segment *segment)
{
    return (hftel_header *)segment->base;
}

static inline hftel_descriptor *hftel_descriptor_at(const hftel_segment *segment, uint32_t index)
{
    return (hftel_descriptor *)(segment->base + segment->descriptors_offset +
                                (uint64_t)index * HFTEL_DESCRIPTOR_LENGTH);
}

static inline uint8_t *hftel_value_at(const hftel_segment *segment, uint64_t value_offset)
{
    return segment->base + segment->values_offset + value_offset;
}

/* Published descriptors so far, never more than the checked capacity. */
static inline uint32_t hftel_segment_descriptor_count(const hftel_segment *segment)
{
    uint32_t count = __atomic_load_n(&hftel_segment_header(segment)->descriptor_count, __ATOMIC_ACQUIRE);
    return count < segment->descriptor_capacity ? count : segment->descriptor_capacity;
}

static inline uint64_t hftel_realtime_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
}

static inline uint64_t hftel_monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
}

/* ---------------------------------------------------------------------------------------------
 * Syntax of names and labels (Prometheus' data model).
 * ------------------------------------------------------------------------------------------ */

static inline int hftel_is_name_start(char c, int allow_colon)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (allow_colon && c == ':');
}

static inline int hftel_is_name_char(char c, int allow_colon)
{
    return hftel_is_name_start(c, allow_colon) || (c >= '0' && c <= '9');
}

static inline int hftel_valid_name(const char *name, size_t length, int allow_colon)
{
    if (length == 0u || !hftel_is_name_start(name[0], allow_colon)) {
        return 0;
    }
    for (size_t i = 1; i < length; i++) {
        if (!hftel_is_name_char(name[i], allow_colon)) {
            return 0;
        }
    }
    return 1;
}

/* Labels as rendered for exposition: name="value"(,name="value")*, values escaped with \\, \" and
 * \n only. Returns 1 when well formed. */
static inline int hftel_valid_labels(const char *labels, size_t length)
{
    size_t i = 0;
    while (i < length) {
        size_t start = i;
        while (i < length && labels[i] != '=') {
            i++;
        }
        if (i + 1u >= length || !hftel_valid_name(labels + start, i - start, 0) || labels[i + 1u] != '"') {
            return 0;
        }
        i += 2u;
        for (;;) {
            if (i >= length) {
                return 0;
            }
            char c = labels[i];
            if (c == '"') {
                break;
            }
            if (c == '\n') {
                return 0;
            }
            if (c == '\\') {
                if (i + 1u >= length) {
                    return 0;
                }
                char escaped = labels[i + 1u];
                if (escaped != '\\' && escaped != '"' && escaped != 'n') {
                    return 0;
                }
                i++;
            }
            i++;
        }
        i++; /* the closing quote */
        if (i < length) {
            if (labels[i] != ',' || i + 1u == length) {
                return 0;
            }
            i++;
        }
    }
    return 1;
}

/* ---------------------------------------------------------------------------------------------
 * Checks: everything a reader trusts is checked first, so that a forged segment cannot make it
 * read outside the mapping.
 * ------------------------------------------------------------------------------------------ */

static inline int hftel_is_power_of_two(uint64_t value)
{
    return value != 0u && (value & (value - 1u)) == 0u;
}

static inline hftel_status hftel_check_ring_capacity(const char *which, uint64_t capacity, hftel_error *error)
{
    if (capacity != 0u && (!hftel_is_power_of_two(capacity) || capacity < HFTEL_RING_MIN_CAPACITY ||
                           capacity > HFTEL_RING_MAX_CAPACITY)) {
        return hftel_fail(error, HFTEL_ERROR_INVALID,
                          "%s ring capacity %llu is not 0 or a power of two between %llu and %llu bytes", which,
                          (unsigned long long)capacity, (unsigned long long)HFTEL_RING_MIN_CAPACITY,
                          (unsigned long long)HFTEL_RING_MAX_CAPACITY);
    }
    return HFTEL_OK;
}

/* A ring is absent (offset and capacity 0) or lies page aligned after `after`, inside the file. */
static inline hftel_status hftel_check_ring_geometry(const char *which, uint64_t offset, uint64_t capacity,
                                                     uint64_t after, uint64_t length, hftel_error *error)
{
    if (offset == 0u && capacity == 0u) {
        return HFTEL_OK;
    }
    hftel_error detail;
    if (hftel_check_ring_capacity(which, capacity, &detail) != HFTEL_OK || capacity == 0u) {
        return hftel_fail(error, HFTEL_ERROR_CORRUPT, "%s ring capacity %llu is not a power of two in %llu..%llu",
                          which, (unsigned long long)capacity, (unsigned long long)HFTEL_RING_MIN_CAPACITY,
                          (unsigned long long)HFTEL_RING_MAX_CAPACITY);
    }
    if (offset % HFTEL_HEADER_LENGTH != 0u) {
        return hftel_fail(error, HFTEL_ERROR_CORRUPT, "%s ring offset %llu is not page aligned (%u)", which,
                          (unsigned long long)offset, HFTEL_HEADER_LENGTH);
    }
    if (offset < after || offset > length ||
        HFTEL_RING_HEADER_LENGTH + capacity > length - offset) {
        return hftel_fail(error, HFTEL_ERROR_CORRUPT,
                          "%s ring at offset %llu, %llu bytes long, overlaps what precedes it or the end of the file",
                          which, (unsigned long long)offset, (unsigned long long)capacity);
    }
    return HFTEL_OK;
}

static inline hftel_status hftel_segment_check_header(const uint8_t *base, uint64_t length, hftel_error *error)
{
    if (length < HFTEL_HEADER_LENGTH) {
        return hftel_fail(error, HFTEL_ERROR_CORRUPT,
                          "truncated: the file holds %llu bytes but the header alone is %u",
                          (unsigned long long)length, HFTEL_HEADER_LENGTH);
    }
    const hftel_header *header = (const hftel_header *)base;
    if (header->magic != HFTEL_MAGIC) {
        return hftel_fail(error, HFTEL_ERROR_CORRUPT, "not an hftel segment: bad magic 0x%016llx",
                          (unsigned long long)header->magic);
    }
    uint32_t version = __atomic_load_n(&header->layout_version, __ATOMIC_ACQUIRE);
    if (version == 0u) {
        return hftel_fail(error, HFTEL_ERROR_VERSION,
                          "not initialised (layout version 0): its creator is still writing it, or died doing so");
    }
    if (version != HFTEL_LAYOUT_VERSION) {
        return hftel_fail(error, HFTEL_ERROR_VERSION, "layout version %u is %s than the version %u this hftel reads",
                          version, version > HFTEL_LAYOUT_VERSION ? "newer" : "older", HFTEL_LAYOUT_VERSION);
    }
    if (header->header_length != HFTEL_HEADER_LENGTH) {
        return hftel_fail(error, HFTEL_ERROR_CORRUPT, "header length is %u, expected %u",
                          header->header_length, HFTEL_HEADER_LENGTH);
    }
    if (header->segment_length != length) {
        return hftel_fail(error, HFTEL_ERROR_CORRUPT,
                          "segment length field says %llu bytes but the file holds %llu (truncated or forged)",
                          (unsigned long long)header->segment_length, (unsigned long long)length);
    }
    if (header->descriptor_length != HFTEL_DESCRIPTOR_LENGTH) {
        return hftel_fail(error, HFTEL_ERROR_CORRUPT, "descriptor length is %u, expected %u",
                          header->descriptor_length, HFTEL_DESCRIPTOR_LENGTH);
    }
    uint32_t capacity = header->descriptor_capacity;
    if (capacity == 0u || capacity > HFTEL_MAX_DESCRIPTOR_CAPACITY) {
        return hftel_fail(error, HFTEL_ERROR_CORRUPT, "descriptor capacity %u is outside 1..%u",
                          capacity, HFTEL_MAX_DESCRIPTOR_CAPACITY);
    }
    uint64_t descriptors = header->descriptors_offset;
    if (descriptors < HFTEL_HEADER_LENGTH || descriptors % HFTEL_CACHE_LINE_LENGTH != 0u || descriptors > length ||
        (uint64_t)capacity * HFTEL_DESCRIPTOR_LENGTH > length - descriptors) {
        return hftel_fail(error, HFTEL_ERROR_CORRUPT,
                          "descriptor table at offset %llu with %u records does not fit in %llu bytes",
                          (unsigned long long)descriptors, capacity, (unsigned long long)length);
    }
    uint64_t descriptors_end = descriptors + (uint64_t)capacity * HFTEL_DESCRIPTOR_LENGTH;
    uint64_t values = header->values_offset;
    if (values < descriptors_end || values % HFTEL_VALUE_ALIGNMENT != 0u || values > length ||
        header->values_length > length - values) {
        return hftel_fail(error, HFTEL_ERROR_CORRUPT,
                          "values area at offset %llu, %llu bytes long, overlaps the descriptors or the end of the file",
                          (unsigned long long)values, (unsigned long long)header->values_length);
    }
    uint64_t values_end = values + header->values_length;
    hftel_status status = hftel_check_ring_geometry("audit", header->audit_ring_offset, header->audit_ring_capacity,
                                                    values_end, length, error);
    if (status != HFTEL_OK) {
        return status;
    }
    uint64_t audit_end = header->audit_ring_offset == 0u ? values_end
                                                         : header->audit_ring_offset + HFTEL_RING_HEADER_LENGTH +
                                                               header->audit_ring_capacity;
    status = hftel_check_ring_geometry("log", header->log_ring_offset, header->log_ring_capacity, audit_end, length,
                                       error);
    if (status != HFTEL_OK) {
        return status;
    }
    uint32_t count = __atomic_load_n(&header->descriptor_count, __ATOMIC_ACQUIRE);
    if (count > capacity) {
        return hftel_fail(error, HFTEL_ERROR_CORRUPT, "descriptor count %u exceeds the capacity %u", count, capacity);
    }
    uint64_t used = __atomic_load_n(&header->values_used, __ATOMIC_ACQUIRE);
    if (used > header->values_length) {
        return hftel_fail(error, HFTEL_ERROR_CORRUPT, "values used (%llu) exceeds the values area (%llu)",
                          (unsigned long long)used, (unsigned long long)header->values_length);
    }
    return HFTEL_OK;
}

static inline hftel_status hftel_check_buckets(uint16_t scheme, uint32_t count, const uint64_t *bounds,
                                               unsigned low, unsigned high, unsigned sub_bits, hftel_error *error)
{
    if (count == 0u || count > HFTEL_MAX_BUCKETS) {
        return hftel_fail(error, HFTEL_ERROR_INVALID, "bucket count %u is outside 1..%u", count, HFTEL_MAX_BUCKETS);
    }
    if (scheme == HFTEL_BUCKETS_LOG_LINEAR) {
        if (sub_bits > 8u || low < sub_bits || low >= high || high > 62u) {
            return hftel_fail(error, HFTEL_ERROR_INVALID,
                              "log-linear layout low=%u high=%u sub_bits=%u is invalid (need sub_bits <= 8, "
                              "sub_bits <= low < high <= 62)", low, high, sub_bits);
        }
        if (count != hftel_log_linear_bucket_count(low, high, sub_bits)) {
            return hftel_fail(error, HFTEL_ERROR_INVALID, "log-linear layout has %u buckets, not %u",
                              hftel_log_linear_bucket_count(low, high, sub_bits), count);
        }
    } else if (scheme != HFTEL_BUCKETS_EXPLICIT) {
        return hftel_fail(error, HFTEL_ERROR_INVALID, "unknown bucket scheme %u", scheme);
    }
    if (bounds != NULL) {
        for (uint32_t i = 0; i < count; i++) {
            if (i > 0u && bounds[i] <= bounds[i - 1u]) {
                return hftel_fail(error, HFTEL_ERROR_INVALID,
                                  "bucket bounds must strictly increase: bound %u (%llu) follows %llu", i,
                                  (unsigned long long)bounds[i], (unsigned long long)bounds[i - 1u]);
            }
            if (scheme == HFTEL_BUCKETS_LOG_LINEAR && bounds[i] != hftel_log_linear_bound(low, sub_bits, i)) {
                return hftel_fail(error, HFTEL_ERROR_INVALID, "bound %u (%llu) does not match the log-linear layout", i,
                                  (unsigned long long)bounds[i]);
            }
        }
    }
    return HFTEL_OK;
}

/* Copies a descriptor that reads PUBLISHED into *out and checks the copy, so that nobody can change
 * a field between its check and its use. Trust only the copy, and only when this returns HFTEL_OK. */
static inline hftel_status hftel_segment_read_descriptor(const hftel_segment *segment, uint32_t index,
                                                         hftel_descriptor *out, hftel_error *error)
{
    if (index >= segment->descriptor_capacity) {
        return hftel_fail(error, HFTEL_ERROR_INVALID, "descriptor %u is beyond the capacity %u", index,
                          segment->descriptor_capacity);
    }
    const hftel_descriptor *shared = hftel_descriptor_at(segment, index);
    int32_t state = __atomic_load_n(&shared->state, __ATOMIC_ACQUIRE);
    if (state != HFTEL_DESCRIPTOR_PUBLISHED) {
        return hftel_fail(error, HFTEL_ERROR_CORRUPT, "descriptor %u is not published (state %d)", index, state);
    }
    memcpy(out, shared, sizeof *out);
    const hftel_descriptor *d = out;
    if (d->type < HFTEL_COUNTER || d->type > HFTEL_HISTOGRAM) {
        return hftel_fail(error, HFTEL_ERROR_CORRUPT, "descriptor %u has unknown type %u", index, d->type);
    }
    if (d->name_length > HFTEL_NAME_MAX_LENGTH || !hftel_valid_name(d->name, d->name_length, 1)) {
        return hftel_fail(error, HFTEL_ERROR_CORRUPT, "descriptor %u has an invalid metric name", index);
    }
    if (d->labels_length > HFTEL_LABELS_MAX_LENGTH || !hftel_valid_labels(d->labels, d->labels_length)) {
        return hftel_fail(error, HFTEL_ERROR_CORRUPT, "descriptor %u (%.*s) has malformed labels", index,
                          (int)d->name_length, d->name);
    }
    if (d->help_length > HFTEL_HELP_MAX_LENGTH) {
        return hftel_fail(error, HFTEL_ERROR_CORRUPT, "descriptor %u (%.*s) has help length %u > %u", index,
                          (int)d->name_length, d->name, d->help_length, HFTEL_HELP_MAX_LENGTH);
    }
    uint64_t values_length = segment->values_length;
    if (d->value_offset % HFTEL_VALUE_ALIGNMENT != 0u || d->value_offset > values_length ||
        d->value_length > values_length - d->value_offset) {
        return hftel_fail(error, HFTEL_ERROR_CORRUPT,
                          "descriptor %u (%.*s) points at values [%llu, +%u) outside the values area of %llu bytes",
                          index, (int)d->name_length, d->name, (unsigned long long)d->value_offset, d->value_length,
                          (unsigned long long)values_length);
    }
    if (d->type != HFTEL_HISTOGRAM) {
        if (d->bucket_scheme != HFTEL_BUCKETS_NONE || d->value_length < HFTEL_SIZE_OF_LONG) {
            return hftel_fail(error, HFTEL_ERROR_CORRUPT, "descriptor %u (%.*s) has a malformed value slot", index,
                              (int)d->name_length, d->name);
        }
        return HFTEL_OK;
    }
    if (d->bucket_count == 0u || d->bucket_count > HFTEL_MAX_BUCKETS ||
        d->value_length < hftel_histogram_block_length(d->bucket_count)) {
        return hftel_fail(error, HFTEL_ERROR_CORRUPT, "descriptor %u (%.*s) has %u buckets in a %u-byte block", index,
                          (int)d->name_length, d->name, d->bucket_count, d->value_length);
    }
    hftel_error detail;
    const uint64_t *bounds = (const uint64_t *)hftel_value_at(segment, d->value_offset);
    if (hftel_check_buckets(d->bucket_scheme, d->bucket_count, bounds, d->low_exponent, d->high_exponent,
                            d->sub_bucket_bits, &detail) != HFTEL_OK) {
        return hftel_fail(error, HFTEL_ERROR_CORRUPT, "descriptor %u (%.*s): %s", index, (int)d->name_length, d->name,
                          detail.message);
    }
    return HFTEL_OK;
}

/* Checks a published descriptor in place. */
static inline hftel_status hftel_segment_check_descriptor(const hftel_segment *segment, uint32_t index,
                                                          hftel_error *error)
{
    hftel_descriptor copy;
    return hftel_segment_read_descriptor(segment, index, &copy, error);
}

/* The checked geometry of a segment, copied from its header into the private hftel_segment. */
static inline void hftel_segment_take_geometry(hftel_segment *segment)
{
    const hftel_header *header = hftel_segment_header(segment);
    segment->descriptors_offset = header->descriptors_offset;
    segment->descriptor_capacity = header->descriptor_capacity;
    segment->values_offset = header->values_offset;
    segment->values_length = header->values_length;
    segment->audit_ring_offset = header->audit_ring_offset;
    segment->audit_ring_capacity = header->audit_ring_capacity;
    segment->log_ring_offset = header->log_ring_offset;
    segment->log_ring_capacity = header->log_ring_capacity;
}

typedef enum hftel_ring_kind {
    HFTEL_AUDIT_RING = 0,
    HFTEL_LOG_RING = 1
} hftel_ring_kind;

/* The audit or log ring of a checked segment (capacity 0 when the segment has none). */
static inline hftel_ring hftel_segment_ring(const hftel_segment *segment, hftel_ring_kind kind)
{
    hftel_ring ring;
    memset(&ring, 0, sizeof ring);
    uint64_t offset = kind == HFTEL_AUDIT_RING ? segment->audit_ring_offset : segment->log_ring_offset;
    uint64_t capacity = kind == HFTEL_AUDIT_RING ? segment->audit_ring_capacity : segment->log_ring_capacity;
    if (offset != 0u && capacity != 0u) {
        ring.header = (hftel_ring_header *)(segment->base + offset);
        ring.data = segment->base + offset + HFTEL_RING_HEADER_LENGTH;
        ring.capacity = capacity;
        ring.mask = capacity - 1u;
        ring.max_record_length = hftel_ring_max_record_length(capacity);
    }
    return ring;
}

/* Checks the header again, and that its geometry is still the one this mapping took. */
static inline hftel_status hftel_segment_recheck(const hftel_segment *segment, hftel_error *error)
{
    hftel_status status = hftel_segment_check_header(segment->base, segment->length, error);
    if (status != HFTEL_OK) {
        return status;
    }
    const hftel_header *header = hftel_segment_header(segment);
    if (header->descriptors_offset != segment->descriptors_offset ||
        header->descriptor_capacity != segment->descriptor_capacity ||
        header->values_offset != segment->values_offset || header->values_length != segment->values_length ||
        header->audit_ring_offset != segment->audit_ring_offset ||
        header->audit_ring_capacity != segment->audit_ring_capacity ||
        header->log_ring_offset != segment->log_ring_offset || header->log_ring_capacity != segment->log_ring_capacity) {
        return hftel_fail(error, HFTEL_ERROR_CORRUPT, "the header's geometry changed after it was attached (forged)");
    }
    return HFTEL_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Creating, attaching, closing.
 * ------------------------------------------------------------------------------------------ */

static inline uint64_t hftel_new_epoch(void)
{
    uint64_t epoch = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, &epoch, sizeof epoch) != (ssize_t)sizeof epoch) {
            epoch = 0;
        }
        close(fd);
    }
    epoch ^= hftel_monotonic_ns() ^ ((uint64_t)getpid() << 32);
    return epoch == 0u ? 1u : epoch;
}

/* Maps an open file. Takes ownership of fd (closes it). */
static inline hftel_status hftel_segment_map(int fd, const char *path, int writable, hftel_segment *out,
                                             hftel_error *error)
{
    struct stat info;
    if (fstat(fd, &info) != 0) {
        int saved = errno;
        close(fd);
        return hftel_fail(error, HFTEL_ERROR_IO, "cannot stat segment: %s: %s", strerror(saved), path);
    }
    if ((uint64_t)info.st_size < HFTEL_HEADER_LENGTH) {
        close(fd);
        return hftel_fail(error, HFTEL_ERROR_CORRUPT, "truncated: %lld bytes, the header alone is %u (segment %s)",
                          (long long)info.st_size, HFTEL_HEADER_LENGTH, path);
    }
    void *base = mmap(NULL, (size_t)info.st_size, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, fd, 0);
    int saved = errno;
    close(fd);
    if (base == MAP_FAILED) {
        return hftel_fail(error, HFTEL_ERROR_IO, "cannot map segment: %s: %s", strerror(saved), path);
    }
    out->base = (uint8_t *)base;
    out->length = (uint64_t)info.st_size;
    out->writable = writable;
    out->device = (uint64_t)info.st_dev;
    out->inode = (uint64_t)info.st_ino;
    return HFTEL_OK;
}

static inline void hftel_segment_close(hftel_segment *segment)
{
    if (segment->base != NULL) {
        munmap(segment->base, (size_t)segment->length);
        segment->base = NULL;
        segment->length = 0;
    }
}

/* Maps an existing segment and checks its header. writable=0 maps it read-only (the exporter). */
static inline hftel_status hftel_segment_attach(const char *path, int writable, hftel_segment *out,
                                                hftel_error *error)
{
    memset(out, 0, sizeof *out);
    int fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (fd < 0) {
        return hftel_fail(error, HFTEL_ERROR_IO, "cannot open segment: %s: %s", strerror(errno), path);
    }
    hftel_status status = hftel_segment_map(fd, path, writable, out, error);
    if (status != HFTEL_OK) {
        return status;
    }
    hftel_error detail;
    status = hftel_segment_check_header(out->base, out->length, &detail);
    if (status != HFTEL_OK) {
        hftel_segment_close(out);
        return hftel_fail(error, status, "%s (segment %s)", detail.message, path);
    }
    hftel_segment_take_geometry(out);
    return HFTEL_OK;
}

/* Creates a new segment at path, replacing any file there atomically (a new epoch): readers still
 * mapping the old file see it unlinked and can reattach. The file is built under a temporary name
 * and renamed into place after its layout version is published. */
static inline hftel_status hftel_segment_create(const char *path, const hftel_segment_options *options,
                                                hftel_segment *out, hftel_error *error)
{
    memset(out, 0, sizeof *out);
    if (options->descriptor_capacity == 0u || options->descriptor_capacity > HFTEL_MAX_DESCRIPTOR_CAPACITY) {
        return hftel_fail(error, HFTEL_ERROR_INVALID, "descriptor capacity %u is outside 1..%u",
                          options->descriptor_capacity, HFTEL_MAX_DESCRIPTOR_CAPACITY);
    }
    if (options->values_length == 0u || options->values_length > (1ull << 40)) {
        return hftel_fail(error, HFTEL_ERROR_INVALID, "values length %llu is outside 1..2^40",
                          (unsigned long long)options->values_length);
    }
    if ((options->mode & ~0777u) || (options->mode & 0600u) != 0600u) {
        return hftel_fail(error, HFTEL_ERROR_INVALID,
                          "mode %o must stay within 0777 and let the owner read and write (0600 or 0640)",
                          options->mode);
    }
    uint64_t descriptors_offset = HFTEL_HEADER_LENGTH;
    uint64_t values_offset = hftel_align(descriptors_offset + (uint64_t)options->descriptor_capacity *
                                         HFTEL_DESCRIPTOR_LENGTH, HFTEL_VALUE_ALIGNMENT);
    if (hftel_check_ring_capacity("audit", options->audit_ring_capacity, error) != HFTEL_OK ||
        hftel_check_ring_capacity("log", options->log_ring_capacity, error) != HFTEL_OK) {
        return HFTEL_ERROR_INVALID;
    }
    uint64_t values_length = hftel_align(options->values_length, HFTEL_VALUE_ALIGNMENT);
    uint64_t length = hftel_align(values_offset + values_length, HFTEL_HEADER_LENGTH);
    uint64_t audit_ring_offset = 0u;
    uint64_t log_ring_offset = 0u;
    if (options->audit_ring_capacity != 0u) {
        audit_ring_offset = length;
        length = hftel_align(length + HFTEL_RING_HEADER_LENGTH + options->audit_ring_capacity, HFTEL_HEADER_LENGTH);
    }
    if (options->log_ring_capacity != 0u) {
        log_ring_offset = length;
        length = hftel_align(length + HFTEL_RING_HEADER_LENGTH + options->log_ring_capacity, HFTEL_HEADER_LENGTH);
    }

    char temporary[4096];
    int written = snprintf(temporary, sizeof temporary, "%s.tmp-%ld", path, (long)getpid());
    if (written < 0 || (size_t)written >= sizeof temporary) {
        return hftel_fail(error, HFTEL_ERROR_INVALID, "path is too long: %s", path);
    }
    unlink(temporary);
    int fd = open(temporary, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)options->mode);
    if (fd < 0) {
        return hftel_fail(error, HFTEL_ERROR_IO, "cannot create segment: %s: %s", strerror(errno), temporary);
    }
    /* The umask may have narrowed the mode; set exactly what was asked for. */
    if (fchmod(fd, (mode_t)options->mode) != 0 || ftruncate(fd, (off_t)length) != 0) {
        int saved = errno;
        close(fd);
        unlink(temporary);
        return hftel_fail(error, HFTEL_ERROR_IO, "cannot size segment to %llu bytes: %s: %s",
                          (unsigned long long)length, strerror(saved), temporary);
    }
    hftel_status status = hftel_segment_map(fd, temporary, 1, out, error);
    if (status != HFTEL_OK) {
        unlink(temporary);
        return status;
    }
    hftel_header *header = hftel_segment_header(out);
    header->magic = HFTEL_MAGIC;
    header->header_length = HFTEL_HEADER_LENGTH;
    header->segment_length = length;
    header->epoch = hftel_new_epoch();
    header->creator_pid = (int64_t)getpid();
    header->start_time_ns = hftel_realtime_ns();
    header->descriptors_offset = descriptors_offset;
    header->descriptor_length = HFTEL_DESCRIPTOR_LENGTH;
    header->descriptor_capacity = options->descriptor_capacity;
    header->values_offset = values_offset;
    header->values_length = values_length;
    header->audit_ring_offset = audit_ring_offset;
    header->audit_ring_capacity = options->audit_ring_capacity;
    header->log_ring_offset = log_ring_offset;
    header->log_ring_capacity = options->log_ring_capacity;
    header->heartbeat_ns = header->start_time_ns;
    header->engine_state = HFTEL_ENGINE_RUNNING;
    __atomic_store_n(&header->layout_version, HFTEL_LAYOUT_VERSION, __ATOMIC_RELEASE);
    hftel_segment_take_geometry(out);
    if (rename(temporary, path) != 0) {
        int saved = errno;
        hftel_segment_close(out);
        unlink(temporary);
        return hftel_fail(error, HFTEL_ERROR_IO, "cannot move segment into place: %s: %s", strerror(saved), path);
    }
    return HFTEL_OK;
}

static inline void hftel_segment_heartbeat(const hftel_segment *segment, uint64_t now_ns)
{
    __atomic_store_n(&hftel_segment_header(segment)->heartbeat_ns, now_ns, __ATOMIC_RELEASE);
}

static inline void hftel_segment_set_engine_state(const hftel_segment *segment, uint32_t state)
{
    __atomic_store_n(&hftel_segment_header(segment)->engine_state, state, __ATOMIC_RELEASE);
}

/* ---------------------------------------------------------------------------------------------
 * Registration.
 * ------------------------------------------------------------------------------------------ */

static inline int hftel_process_is_dead(int64_t pid)
{
    return pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

static inline hftel_status hftel_lock_registration(const hftel_segment *segment, hftel_error *error)
{
    int64_t *lock = &hftel_segment_header(segment)->registration_lock;
    int64_t self = (int64_t)getpid();
    uint64_t deadline = hftel_monotonic_ns() + HFTEL_LOCK_TIMEOUT_NS;
    for (;;) {
        int64_t holder = 0;
        if (__atomic_compare_exchange_n(lock, &holder, self, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
            return HFTEL_OK;
        }
        /* A holder killed mid-registration would otherwise wedge every later registration. */
        if (holder != self && hftel_process_is_dead(holder) &&
            __atomic_compare_exchange_n(lock, &holder, self, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
            return HFTEL_OK;
        }
        if (hftel_monotonic_ns() > deadline) {
            return hftel_fail(error, HFTEL_ERROR_BUSY, "the registration lock is held by live pid %lld",
                              (long long)holder);
        }
        struct timespec pause = {0, 50000};
        nanosleep(&pause, NULL);
    }
}

static inline void hftel_unlock_registration(const hftel_segment *segment)
{
    __atomic_store_n(&hftel_segment_header(segment)->registration_lock, (int64_t)0, __ATOMIC_RELEASE);
}

/* Compares a field of a shared descriptor; a forged length longer than its field never matches. */
static inline int hftel_same_text(const char *stored, uint16_t stored_length, uint32_t field_length,
                                  const char *text, size_t length)
{
    return stored_length == length && length <= field_length && memcmp(stored, text, length) == 0;
}

static inline const char *hftel_type_name(uint16_t type)
{
    switch (type) {
    case HFTEL_COUNTER: return "a counter";
    case HFTEL_GAUGE_INT: return "an integer gauge";
    case HFTEL_GAUGE_FLOAT: return "a float gauge";
    case HFTEL_HISTOGRAM: return "a histogram";
    default: return "an unknown type";
    }
}

static inline int hftel_same_buckets(const hftel_segment *segment, const hftel_descriptor *d,
                                     const hftel_metric_spec *spec, const uint64_t *bounds)
{
    if (d->bucket_scheme != spec->bucket_scheme || d->bucket_count != spec->bucket_count) {
        return 0;
    }
    const uint64_t *stored = (const uint64_t *)hftel_value_at(segment, d->value_offset);
    return memcmp(stored, bounds, (size_t)spec->bucket_count * HFTEL_SIZE_OF_LONG) == 0;
}

static inline hftel_status hftel_check_spec(const hftel_metric_spec *spec, size_t name_length, size_t labels_length,
                                            size_t help_length, hftel_error *error)
{
    if (spec->type < HFTEL_COUNTER || spec->type > HFTEL_HISTOGRAM) {
        return hftel_fail(error, HFTEL_ERROR_INVALID, "unknown metric type %u", spec->type);
    }
    if (name_length > HFTEL_NAME_MAX_LENGTH || !hftel_valid_name(spec->name, name_length, 1)) {
        return hftel_fail(error, HFTEL_ERROR_INVALID,
                          "invalid metric name '%.*s': use [a-zA-Z_:][a-zA-Z0-9_:]*, at most %u characters",
                          (int)(name_length > 200u ? 200u : name_length), spec->name, HFTEL_NAME_MAX_LENGTH);
    }
    if (labels_length > HFTEL_LABELS_MAX_LENGTH || !hftel_valid_labels(spec->labels, labels_length)) {
        return hftel_fail(error, HFTEL_ERROR_INVALID, "labels of '%s' are malformed or longer than %u bytes rendered",
                          spec->name, HFTEL_LABELS_MAX_LENGTH);
    }
    if (help_length > HFTEL_HELP_MAX_LENGTH) {
        return hftel_fail(error, HFTEL_ERROR_INVALID, "help of '%s' is %zu bytes, at most %u", spec->name,
                          help_length, HFTEL_HELP_MAX_LENGTH);
    }
    if (spec->type == HFTEL_HISTOGRAM) {
        hftel_error detail;
        if (hftel_check_buckets(spec->bucket_scheme, spec->bucket_count,
                                spec->bucket_scheme == HFTEL_BUCKETS_EXPLICIT ? spec->bounds : NULL,
                                spec->low_exponent, spec->high_exponent, spec->sub_bucket_bits,
                                &detail) != HFTEL_OK) {
            return hftel_fail(error, HFTEL_ERROR_INVALID, "histogram '%s': %s", spec->name, detail.message);
        }
        if (spec->bucket_scheme == HFTEL_BUCKETS_EXPLICIT && spec->bounds == NULL) {
            return hftel_fail(error, HFTEL_ERROR_INVALID, "histogram '%s' has an explicit layout but no bounds",
                              spec->name);
        }
    } else if (spec->bucket_scheme != HFTEL_BUCKETS_NONE) {
        return hftel_fail(error, HFTEL_ERROR_INVALID, "'%s' is not a histogram but has buckets", spec->name);
    }
    return HFTEL_OK;
}

/* Finds the published series with this name and rendered labels. Returns 1 and sets *index if so. */
static inline int hftel_find(const hftel_segment *segment, const char *name, const char *labels, uint32_t *index)
{
    uint32_t count = hftel_segment_descriptor_count(segment);
    size_t name_length = strlen(name);
    size_t labels_length = strlen(labels);
    for (uint32_t i = 0; i < count; i++) {
        const hftel_descriptor *d = hftel_descriptor_at(segment, i);
        if (__atomic_load_n(&d->state, __ATOMIC_ACQUIRE) == HFTEL_DESCRIPTOR_PUBLISHED &&
            hftel_same_text(d->name, d->name_length, HFTEL_NAME_MAX_LENGTH, name, name_length) &&
            hftel_same_text(d->labels, d->labels_length, HFTEL_LABELS_MAX_LENGTH, labels, labels_length)) {
            *index = i;
            return 1;
        }
    }
    return 0;
}

/* Registers a series, or returns the one already registered with the same name and labels (from
 * this process or another). Registering a name again with another type, or a histogram with
 * other buckets, is a conflict. */
static inline hftel_status hftel_register(const hftel_segment *segment, const hftel_metric_spec *spec,
                                          uint32_t *index, hftel_error *error)
{
    if (!segment->writable) {
        return hftel_fail(error, HFTEL_ERROR_INVALID, "the segment is attached read-only");
    }
    size_t name_length = strlen(spec->name);
    size_t labels_length = strlen(spec->labels);
    size_t help_length = strlen(spec->help);
    hftel_status status = hftel_check_spec(spec, name_length, labels_length, help_length, error);
    if (status != HFTEL_OK) {
        return status;
    }
    uint64_t derived[HFTEL_MAX_BUCKETS];
    const uint64_t *bounds = spec->bounds;
    if (spec->type == HFTEL_HISTOGRAM && spec->bucket_scheme == HFTEL_BUCKETS_LOG_LINEAR) {
        for (uint32_t i = 0; i < spec->bucket_count; i++) {
            derived[i] = hftel_log_linear_bound(spec->low_exponent, spec->sub_bucket_bits, i);
        }
        bounds = derived;
    }

    status = hftel_lock_registration(segment, error);
    if (status != HFTEL_OK) {
        return status;
    }
    hftel_header *header = hftel_segment_header(segment);
    uint32_t count = hftel_segment_descriptor_count(segment);
    for (uint32_t i = 0; i < count; i++) {
        const hftel_descriptor *shared = hftel_descriptor_at(segment, i);
        if (__atomic_load_n(&shared->state, __ATOMIC_ACQUIRE) != HFTEL_DESCRIPTOR_PUBLISHED ||
            !hftel_same_text(shared->name, shared->name_length, HFTEL_NAME_MAX_LENGTH, spec->name, name_length)) {
            continue;
        }
        hftel_descriptor checked;
        const hftel_descriptor *d = &checked;
        status = hftel_segment_read_descriptor(segment, i, &checked, error);
        if (status != HFTEL_OK) {
            hftel_unlock_registration(segment);
            return status;
        }
        if (d->type != spec->type) {
            hftel_unlock_registration(segment);
            return hftel_fail(error, HFTEL_ERROR_CONFLICT, "'%s' is already registered as %s, not %s",
                              spec->name, hftel_type_name(d->type), hftel_type_name(spec->type));
        }
        if (spec->type == HFTEL_HISTOGRAM && !hftel_same_buckets(segment, d, spec, bounds)) {
            hftel_unlock_registration(segment);
            return hftel_fail(error, HFTEL_ERROR_CONFLICT, "histogram '%s' is already registered with other buckets",
                              spec->name);
        }
        if (hftel_same_text(d->labels, d->labels_length, HFTEL_LABELS_MAX_LENGTH, spec->labels, labels_length)) {
            hftel_unlock_registration(segment);
            *index = i;
            return HFTEL_OK;
        }
    }

    uint64_t value_length = spec->type == HFTEL_HISTOGRAM ? hftel_histogram_block_length(spec->bucket_count)
                                                          : HFTEL_VALUE_ALIGNMENT;
    if (count >= segment->descriptor_capacity) {
        hftel_unlock_registration(segment);
        return hftel_fail(error, HFTEL_ERROR_FULL, "cannot register '%s': the descriptor table is full (%u series)",
                          spec->name, segment->descriptor_capacity);
    }
    uint64_t values_used = header->values_used;
    if (values_used > segment->values_length || value_length > segment->values_length - values_used) {
        hftel_unlock_registration(segment);
        return hftel_fail(error, HFTEL_ERROR_FULL,
                          "cannot register '%s': the values area is full (%llu of %llu bytes used)", spec->name,
                          (unsigned long long)values_used, (unsigned long long)segment->values_length);
    }
    hftel_descriptor *d = hftel_descriptor_at(segment, count);
    __atomic_store_n(&d->state, (int32_t)HFTEL_DESCRIPTOR_ALLOCATED, __ATOMIC_RELAXED);
    __atomic_store_n(&header->descriptor_count, count + 1u, __ATOMIC_RELEASE);
    uint64_t value_offset = values_used;
    __atomic_store_n(&header->values_used, value_offset + value_length, __ATOMIC_RELEASE);

    d->type = spec->type;
    d->bucket_scheme = spec->bucket_scheme;
    d->value_offset = value_offset;
    d->value_length = (uint32_t)value_length;
    d->bucket_count = spec->type == HFTEL_HISTOGRAM ? spec->bucket_count : 0u;
    d->low_exponent = spec->low_exponent;
    d->high_exponent = spec->high_exponent;
    d->sub_bucket_bits = spec->sub_bucket_bits;
    d->name_length = (uint16_t)name_length;
    d->labels_length = (uint16_t)labels_length;
    d->help_length = (uint16_t)help_length;
    memcpy(d->name, spec->name, name_length);
    memcpy(d->labels, spec->labels, labels_length);
    memcpy(d->help, spec->help, help_length);
    if (spec->type == HFTEL_HISTOGRAM) {
        memcpy(hftel_value_at(segment, value_offset), bounds, (size_t)spec->bucket_count * HFTEL_SIZE_OF_LONG);
    }
    __atomic_store_n(&d->state, (int32_t)HFTEL_DESCRIPTOR_PUBLISHED, __ATOMIC_RELEASE);
    hftel_unlock_registration(segment);
    *index = count;
    return HFTEL_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Binding handles to published descriptors. Each checks the descriptor first, so a handle bound
 * to a forged segment never points outside it.
 * ------------------------------------------------------------------------------------------ */

static inline hftel_status hftel_bind_checked(const hftel_segment *segment, uint32_t index, uint16_t type,
                                              hftel_descriptor *d, hftel_error *error)
{
    hftel_status status = hftel_segment_read_descriptor(segment, index, d, error);
    if (status != HFTEL_OK) {
        return status;
    }
    if (d->type != type) {
        return hftel_fail(error, HFTEL_ERROR_CONFLICT, "'%.*s' is %s, not %s", (int)d->name_length, d->name,
                          hftel_type_name(d->type), hftel_type_name(type));
    }
    return HFTEL_OK;
}

static inline hftel_status hftel_bind_counter(const hftel_segment *segment, uint32_t index, hftel_counter *out,
                                              hftel_error *error)
{
    hftel_descriptor checked;
    const hftel_descriptor *d = &checked;
    hftel_status status = hftel_bind_checked(segment, index, HFTEL_COUNTER, &checked, error);
    if (status == HFTEL_OK) {
        out->value = (uint64_t *)hftel_value_at(segment, d->value_offset);
    }
    return status;
}

static inline hftel_status hftel_bind_gauge(const hftel_segment *segment, uint32_t index, hftel_gauge *out,
                                            hftel_error *error)
{
    hftel_descriptor checked;
    const hftel_descriptor *d = &checked;
    hftel_status status = hftel_bind_checked(segment, index, HFTEL_GAUGE_INT, &checked, error);
    if (status == HFTEL_OK) {
        out->value = (int64_t *)hftel_value_at(segment, d->value_offset);
    }
    return status;
}

static inline hftel_status hftel_bind_float_gauge(const hftel_segment *segment, uint32_t index,
                                                  hftel_float_gauge *out, hftel_error *error)
{
    hftel_descriptor checked;
    const hftel_descriptor *d = &checked;
    hftel_status status = hftel_bind_checked(segment, index, HFTEL_GAUGE_FLOAT, &checked, error);
    if (status == HFTEL_OK) {
        out->bits = (uint64_t *)hftel_value_at(segment, d->value_offset);
    }
    return status;
}

static inline hftel_status hftel_bind_histogram(const hftel_segment *segment, uint32_t index,
                                                hftel_histogram *out, hftel_error *error)
{
    hftel_descriptor checked;
    const hftel_descriptor *d = &checked;
    hftel_status status = hftel_bind_checked(segment, index, HFTEL_HISTOGRAM, &checked, error);
    if (status == HFTEL_OK) {
        uint8_t *block = hftel_value_at(segment, d->value_offset);
        out->bounds = (const uint64_t *)block;
        out->counts = (uint64_t *)(block + hftel_histogram_counts_offset(d->bucket_count));
        out->sum = out->counts + d->bucket_count + 1u;
        out->bucket_count = d->bucket_count;
        out->bucket_scheme = d->bucket_scheme;
        out->low_exponent = d->low_exponent;
        out->high_exponent = d->high_exponent;
        out->sub_bucket_bits = d->sub_bucket_bits;
    }
    return status;
}

#ifdef __cplusplus
}
#endif

#endif /* HFTEL_REGISTRY_H */
