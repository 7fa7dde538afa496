/*
 * hftel_writer.h -- what engine code writes audit rows and log events with.
 *
 *   hftel_audit_writer: stamps a row's timestamp, per-source sequence number and source id, and puts
 *     it in the audit ring. When the ring is full it appends the row to the engine-local spill file
 *     instead (a system call, but never a wait on the exporter), which the exporter ingests later.
 *   hftel_log_event + hftel_log_writer: encode a structured log event (an event name and typed
 *     key/value fields) and copy it into the log ring. A full log ring drops the event and counts it.
 *
 * One writer per thread: a writer's sequence numbers are its own, and rows reach the ring in
 * sequence order only when one thread writes them. Every overflow is counted in the ring header
 * (full, spilled, lost, truncated, violations), which the exporter turns into metrics.
 *
 * Spill file (append-only; one per segment path, shared by every process writing to the segment):
 *
 *  +---------------------------------------------------------------+  file header, 64 bytes,
 *  |  Magic "HFTELSPL" (u64) | Version (u32) | Header Length (u32)  |  written before the file
 *  |  Created (u64, ns since the Unix epoch) | Creator PID (i64)    |  appears under its name
 *  |  Reserved to 64                                                |
 *  +---------------------------------------------------------------+
 *  |  Frame: Sync (u32 "HFSF") | Payload Length (u32)               |  one write(2) per frame,
 *  |         Type (u16) | Flags (u16) | CRC-32 of the payload (u32) |  O_APPEND: frames from
 *  |         Payload (an audit row struct)                         ...  several processes never
 *  +---------------------------------------------------------------+  interleave
 *
 * A frame torn by a crash is detected by its length or CRC (zlib's CRC-32) and reported by the
 * reader, never decoded.
 * ------------------------------------------------------------------------------------------ */
#ifndef HFTEL_WRITER_H
#define HFTEL_WRITER_H

#include "hftel_registry.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HFTEL_SPILL_MAGIC 0x4c50534c45544648ull /* "HFTELSPL" */
#define HFTEL_SPILL_VERSION 1u
#define HFTEL_SPILL_HEADER_LENGTH 64u
#define HFTEL_SPILL_FRAME_SYNC 0x46534648u /* "HFSF" read as a little-endian 32-bit word */
#define HFTEL_SPILL_FRAME_HEADER_LENGTH 16u
#define HFTEL_SPILL_PATH_MAX 4096u

typedef struct hftel_spill_header {
    uint64_t magic;
    uint32_t version;
    uint32_t header_length;
    uint64_t created_ns;
    int64_t creator_pid;
    uint8_t reserved[32];
} hftel_spill_header;

typedef struct hftel_spill_frame {
    uint32_t sync;
    uint32_t payload_length;
    uint16_t type;
    uint16_t flags;
    uint32_t crc32;
} hftel_spill_frame;

HFTEL_STATIC_ASSERT(sizeof(hftel_spill_header) == HFTEL_SPILL_HEADER_LENGTH, "spill header length");
HFTEL_STATIC_ASSERT(sizeof(hftel_spill_frame) == HFTEL_SPILL_FRAME_HEADER_LENGTH, "spill frame length");

/* The first three fields of every audit row (hftel_audit.h); the writer fills them. */
typedef struct hftel_audit_row_prefix {
    uint64_t ts;
    uint64_t seq;
    uint64_t source_id;
} hftel_audit_row_prefix;

typedef struct hftel_audit_writer {
    hftel_ring ring;
    uint64_t source_id;
    uint64_t next_seq;
    int32_t pid;
    int spill_fd; /* -1 until the first spill */
    char spill_path[HFTEL_SPILL_PATH_MAX]; /* "" for none: a full ring then loses the row, counted */
} hftel_audit_writer;

typedef enum hftel_audit_result {
    HFTEL_AUDIT_WRITTEN = 0, /* in the ring */
    HFTEL_AUDIT_SPILLED = 1, /* the ring was full; appended to the spill file */
    HFTEL_AUDIT_LOST = -1    /* the ring was full and the spill file could not be written (counted) */
} hftel_audit_result;

/* zlib's CRC-32 (reflected 0xEDB88320), bit by bit: only the spill path uses it. */
static inline uint32_t hftel_crc32(const void *data, size_t length)
{
    const uint8_t *bytes = (const uint8_t *)data;
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < length; i++) {
        crc ^= bytes[i];
        for (int bit = 0; bit < 8; bit++) {
            crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
        }
    }
    return ~crc;
}

/* Opens the spill file for appending, creating it (0600, header first) if it is not there. A new
 * file is written under a temporary name and linked into place, so no process ever appends to a
 * file whose header is missing. Returns a file descriptor, or -1 with errno set. */
static inline int hftel_spill_open(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd >= 0 || errno != ENOENT) {
        return fd;
    }
    /* The address of a local tells threads of one process apart; the pid tells processes apart. */
    char temporary[HFTEL_SPILL_PATH_MAX + 64];
    if (snprintf(temporary, sizeof temporary, "%s.tmp-%ld-%p", path, (long)getpid(), (void *)temporary) >=
        (int)sizeof temporary) {
        errno = ENAMETOOLONG;
        return -1;
    }
    unlink(temporary);
    fd = open(temporary, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        return -1;
    }
    hftel_spill_header header;
    memset(&header, 0, sizeof header);
    header.magic = HFTEL_SPILL_MAGIC;
    header.version = HFTEL_SPILL_VERSION;
    header.header_length = HFTEL_SPILL_HEADER_LENGTH;
    header.created_ns = hftel_realtime_ns();
    header.creator_pid = (int64_t)getpid();
    int linked = write(fd, &header, sizeof header) == (ssize_t)sizeof header ? link(temporary, path) : -1;
    int saved = errno;
    unlink(temporary);
    if (linked != 0) {
        close(fd);
        if (saved != EEXIST) {
            errno = saved;
            return -1;
        }
        return open(path, O_WRONLY | O_APPEND | O_CLOEXEC); /* another process won the race */
    }
    return fd;
}

/* Appends one frame with a single writev(2). 0 on success, -1 with errno set. */
static inline int hftel_spill_append(int fd, uint16_t type, uint16_t flags, const void *payload, uint32_t length)
{
    hftel_spill_frame frame;
    frame.sync = HFTEL_SPILL_FRAME_SYNC;
    frame.payload_length = length;
    frame.type = type;
    frame.flags = flags;
    frame.crc32 = hftel_crc32(payload, length);
    struct iovec parts[2] = {{&frame, sizeof frame}, {(void *)payload, length}};
    ssize_t written = writev(fd, parts, 2);
    if (written != (ssize_t)(sizeof frame + length)) {
        if (written >= 0) {
            errno = ENOSPC; /* a short append: the reader will see a torn frame and report it */
        }
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Audit rows.
 * ------------------------------------------------------------------------------------------ */

/* spill_path may be NULL or "" (no spill file). The source id should be unique across every
 * writer that ever feeds the same database: hftel draws it at random. */
static inline void hftel_audit_writer_init(hftel_audit_writer *writer, const hftel_ring *ring, uint64_t source_id,
                                           const char *spill_path)
{
    memset(writer, 0, sizeof *writer);
    writer->ring = *ring;
    writer->source_id = source_id;
    writer->next_seq = 1u;
    writer->pid = (int32_t)getpid();
    writer->spill_fd = -1;
    if (spill_path != NULL) {
        snprintf(writer->spill_path, sizeof writer->spill_path, "%s", spill_path);
    }
}

static inline void hftel_audit_writer_close(hftel_audit_writer *writer)
{
    if (writer->spill_fd >= 0) {
        close(writer->spill_fd);
        writer->spill_fd = -1;
    }
}

/* The overflow path, kept out of line from the hot path. */
#if defined(__GNUC__)
__attribute__((noinline, cold, unused))
#endif
static hftel_audit_result hftel_audit_spill(hftel_audit_writer *writer, uint16_t type, const void *row,
                                            uint32_t length)
{
    hftel_ring_header *counters = writer->ring.header;
    if (counters != NULL) {
        hftel_ring_count(&counters->full, 1u);
    }
    if (writer->spill_fd < 0 && writer->spill_path[0] != '\0') {
        writer->spill_fd = hftel_spill_open(writer->spill_path);
    }
    if (writer->spill_fd >= 0 && hftel_spill_append(writer->spill_fd, type, 0u, row, length) == 0) {
        if (counters != NULL) {
            hftel_ring_count(&counters->spilled, 1u);
        }
        return HFTEL_AUDIT_SPILLED;
    }
    if (counters != NULL) {
        hftel_ring_count(&counters->lost, 1u);
    }
    return HFTEL_AUDIT_LOST;
}

/* Writes one audit row of `length` bytes whose struct starts with hftel_audit_row_prefix. Fills
 * its seq and source_id, and its ts when 0. Never blocks on the consumer. */
static inline hftel_audit_result hftel_audit_write(hftel_audit_writer *writer, uint16_t type, void *row,
                                                   uint32_t length)
{
    hftel_audit_row_prefix *prefix = (hftel_audit_row_prefix *)row;
    if (prefix->ts == 0u) {
        prefix->ts = hftel_realtime_ns();
    }
    prefix->seq = writer->next_seq++;
    prefix->source_id = writer->source_id;
    if (hftel_ring_write(&writer->ring, type, 0u, writer->pid, row, length) == 0) {
        return HFTEL_AUDIT_WRITTEN;
    }
    return hftel_audit_spill(writer, type, row, length);
}

/* ---------------------------------------------------------------------------------------------
 * Log events.
 *
 * Payload:
 *   ts (u64, ns since the Unix epoch) | level (u8: 10 debug, 20 info, 30 warning, 40 error,
 *   50 critical) | reserved (u8) | field count (u16) | reserved (u32)
 *   then per field: kind (u8) | key length (u8) | value length (u16) | key | value
 * The first field is always "event". Values: STR and INT_TEXT are UTF-8 text, INT an i64, FLOAT
 * an f64, BOOL one byte, NONE nothing, BYTES raw bytes.
 * ------------------------------------------------------------------------------------------ */

#define HFTEL_LOG_EVENT_HEADER_LENGTH 16u
#define HFTEL_LOG_FIELD_HEADER_LENGTH 4u
#define HFTEL_LOG_EVENT_MAX_LENGTH 4096u /* payload; a record is this plus RECORD_HEADER_LENGTH */
#define HFTEL_LOG_KEY_MAX_LENGTH 255u

enum hftel_log_kind {
    HFTEL_LOG_STR = 1,
    HFTEL_LOG_INT = 2,
    HFTEL_LOG_FLOAT = 3,
    HFTEL_LOG_BOOL = 4,
    HFTEL_LOG_NONE = 5,
    HFTEL_LOG_BYTES = 6,
    HFTEL_LOG_INT_TEXT = 7 /* an integer too large for i64, in decimal */
};

typedef struct hftel_log_event {
    uint32_t used;
    uint16_t count;
    uint16_t flags;
    uint8_t payload[HFTEL_LOG_EVENT_MAX_LENGTH];
} hftel_log_event;

typedef struct hftel_log_writer {
    hftel_ring ring;
    int32_t pid;
} hftel_log_writer;

static inline void hftel_log_writer_init(hftel_log_writer *writer, const hftel_ring *ring)
{
    writer->ring = *ring;
    writer->pid = (int32_t)getpid();
}

/* Appends one field; cuts a text or bytes value that does not fit (flagging the event TRUNCATED)
 * and drops a field with no room for its key. Returns 0, or -1 when the field was dropped. */
static inline int hftel_log_add(hftel_log_event *event, uint8_t kind, const char *key, size_t key_length,
                                const void *value, size_t value_length)
{
    if (key_length > HFTEL_LOG_KEY_MAX_LENGTH) {
        key_length = HFTEL_LOG_KEY_MAX_LENGTH;
        while (key_length > 0u && (((const uint8_t *)key)[key_length] & 0xc0u) == 0x80u) {
            key_length--; /* never cut a UTF-8 sequence in half */
        }
        event->flags |= HFTEL_RECORD_TRUNCATED;
    }
    size_t room = HFTEL_LOG_EVENT_MAX_LENGTH - event->used;
    if (room < HFTEL_LOG_FIELD_HEADER_LENGTH + key_length ||
        ((kind != HFTEL_LOG_STR && kind != HFTEL_LOG_BYTES) &&
         room < HFTEL_LOG_FIELD_HEADER_LENGTH + key_length + value_length)) {
        event->flags |= HFTEL_RECORD_TRUNCATED;
        return -1;
    }
    room -= HFTEL_LOG_FIELD_HEADER_LENGTH + key_length;
    if (value_length > room) {
        value_length = room;
        if (kind == HFTEL_LOG_STR) { /* never cut a UTF-8 sequence in half */
            while (value_length > 0u && (((const uint8_t *)value)[value_length] & 0xc0u) == 0x80u) {
                value_length--;
            }
        }
        event->flags |= HFTEL_RECORD_TRUNCATED;
    }
    uint8_t *field = event->payload + event->used;
    field[0] = kind;
    field[1] = (uint8_t)key_length;
    uint16_t stored = (uint16_t)value_length;
    memcpy(field + 2, &stored, sizeof stored);
    memcpy(field + HFTEL_LOG_FIELD_HEADER_LENGTH, key, key_length);
    memcpy(field + HFTEL_LOG_FIELD_HEADER_LENGTH + key_length, value, value_length);
    event->used += (uint32_t)(HFTEL_LOG_FIELD_HEADER_LENGTH + key_length + value_length);
    event->count++;
    return 0;
}

/* Starts an event: the header, then the "event" field. ts 0 means now. */
static inline void hftel_log_begin(hftel_log_event *event, uint8_t level, uint64_t ts, const char *name,
                                   size_t name_length)
{
    event->used = HFTEL_LOG_EVENT_HEADER_LENGTH;
    event->count = 0u;
    event->flags = 0u;
    if (ts == 0u) {
        ts = hftel_realtime_ns();
    }
    memcpy(event->payload, &ts, sizeof ts);
    event->payload[8] = level;
    memset(event->payload + 9, 0, HFTEL_LOG_EVENT_HEADER_LENGTH - 9u);
    hftel_log_add(event, HFTEL_LOG_STR, "event", 5u, name, name_length);
}

static inline void hftel_log_add_str(hftel_log_event *event, const char *key, const char *value)
{
    hftel_log_add(event, HFTEL_LOG_STR, key, strlen(key), value, strlen(value));
}

static inline void hftel_log_add_i64(hftel_log_event *event, const char *key, int64_t value)
{
    hftel_log_add(event, HFTEL_LOG_INT, key, strlen(key), &value, sizeof value);
}

static inline void hftel_log_add_f64(hftel_log_event *event, const char *key, double value)
{
    hftel_log_add(event, HFTEL_LOG_FLOAT, key, strlen(key), &value, sizeof value);
}

/* Copies the event into the log ring. 0 on success; -1 when the ring is full: dropped and counted. */
static inline int hftel_log_write(const hftel_log_writer *writer, hftel_log_event *event)
{
    memcpy(event->payload + 10, &event->count, sizeof event->count);
    hftel_ring_header *counters = writer->ring.header;
    if (counters != NULL && (event->flags & HFTEL_RECORD_TRUNCATED)) {
        hftel_ring_count(&counters->truncated, 1u);
    }
    if (counters != NULL && (event->flags & HFTEL_RECORD_SCHEMA_VIOLATION)) {
        hftel_ring_count(&counters->violations, 1u);
    }
    if (hftel_ring_write(&writer->ring, HFTEL_RECORD_LOG_EVENT, event->flags, writer->pid, event->payload,
                         event->used) == 0) {
        return 0;
    }
    if (counters != NULL) {
        hftel_ring_count(&counters->full, 1u);
        hftel_ring_count(&counters->lost, 1u);
    }
    return -1;
}

#ifdef __cplusplus
}
#endif

#endif /* HFTEL_WRITER_H */
