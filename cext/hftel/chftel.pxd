# A verbatim `cdef extern` of cext/hftel.h, hftel_ring.h, hftel_registry.h and hftel_writer.h: the C
# API, for Cython.
#
# Cython engines may cimport it to record with no Python in the way:
#
#     from hftel.chftel cimport hftel_counter_add_atomic
#     from hftel._core cimport Counter
#     cdef Counter orders = tel.counter("orders", "Orders sent.")
#     with nogil:
#         hftel_counter_add_atomic(&orders.handle, 1)
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t


cdef extern from "hftel.h" nogil:
    const uint32_t HFTEL_LAYOUT_VERSION
    const uint64_t HFTEL_MAGIC
    const uint32_t HFTEL_HEADER_LENGTH
    const uint32_t HFTEL_DESCRIPTOR_LENGTH
    const uint32_t HFTEL_NAME_MAX_LENGTH
    const uint32_t HFTEL_LABELS_MAX_LENGTH
    const uint32_t HFTEL_HELP_MAX_LENGTH
    const uint32_t HFTEL_MAX_BUCKETS
    const uint32_t HFTEL_VALUE_ALIGNMENT
    const uint32_t HFTEL_DEFAULT_LOW_EXPONENT
    const uint32_t HFTEL_DEFAULT_HIGH_EXPONENT
    const uint32_t HFTEL_DEFAULT_SUB_BUCKET_BITS

    enum hftel_engine_state:
        HFTEL_ENGINE_RUNNING
        HFTEL_ENGINE_CLOSED

    enum hftel_descriptor_state:
        HFTEL_DESCRIPTOR_UNUSED
        HFTEL_DESCRIPTOR_ALLOCATED
        HFTEL_DESCRIPTOR_PUBLISHED

    enum hftel_metric_type:
        HFTEL_COUNTER
        HFTEL_GAUGE_INT
        HFTEL_GAUGE_FLOAT
        HFTEL_HISTOGRAM

    enum hftel_bucket_scheme:
        HFTEL_BUCKETS_NONE
        HFTEL_BUCKETS_EXPLICIT
        HFTEL_BUCKETS_LOG_LINEAR

    ctypedef struct hftel_header:
        uint64_t magic
        uint32_t layout_version
        uint32_t header_length
        uint64_t segment_length
        uint64_t epoch
        int64_t creator_pid
        uint64_t start_time_ns
        uint64_t descriptors_offset
        uint32_t descriptor_length
        uint32_t descriptor_capacity
        uint64_t values_offset
        uint64_t values_length
        uint64_t audit_ring_offset
        uint64_t audit_ring_capacity
        uint64_t log_ring_offset
        uint64_t log_ring_capacity
        int64_t registration_lock
        uint32_t descriptor_count
        uint64_t values_used
        uint64_t heartbeat_ns
        uint32_t engine_state

    ctypedef struct hftel_descriptor:
        int32_t state
        uint16_t type
        uint16_t bucket_scheme
        uint64_t value_offset
        uint32_t value_length
        uint32_t bucket_count
        uint8_t low_exponent
        uint8_t high_exponent
        uint8_t sub_bucket_bits
        uint16_t name_length
        uint16_t labels_length
        uint16_t help_length
        char name[128]
        char labels[320]
        char help[512]

    ctypedef struct hftel_counter:
        uint64_t *value

    ctypedef struct hftel_gauge:
        int64_t *value

    ctypedef struct hftel_float_gauge:
        uint64_t *bits

    ctypedef struct hftel_histogram:
        uint64_t *counts
        uint64_t *sum
        const uint64_t *bounds
        uint32_t bucket_count
        uint16_t bucket_scheme
        uint8_t low_exponent
        uint8_t high_exponent
        uint8_t sub_bucket_bits

    uint64_t hftel_histogram_counts_offset(uint32_t bucket_count)
    uint64_t hftel_histogram_block_length(uint32_t bucket_count)

    void hftel_counter_add(const hftel_counter *counter, uint64_t amount)
    void hftel_counter_add_atomic(const hftel_counter *counter, uint64_t amount)
    uint64_t hftel_counter_get(const hftel_counter *counter)

    void hftel_gauge_set(const hftel_gauge *gauge, int64_t value)
    void hftel_gauge_add(const hftel_gauge *gauge, int64_t amount)
    void hftel_gauge_add_atomic(const hftel_gauge *gauge, int64_t amount)
    int64_t hftel_gauge_get(const hftel_gauge *gauge)

    void hftel_float_gauge_set(const hftel_float_gauge *gauge, double value)
    void hftel_float_gauge_add(const hftel_float_gauge *gauge, double amount)
    void hftel_float_gauge_add_atomic(const hftel_float_gauge *gauge, double amount)
    double hftel_float_gauge_get(const hftel_float_gauge *gauge)

    uint32_t hftel_log_linear_bucket_count(unsigned low, unsigned high, unsigned sub_bits)
    uint64_t hftel_log_linear_bound(unsigned low, unsigned sub_bits, uint32_t index)
    uint32_t hftel_log_linear_index(uint64_t value, unsigned low, unsigned high, unsigned sub_bits)
    uint32_t hftel_explicit_index(uint64_t value, const uint64_t *bounds, uint32_t count)
    uint32_t hftel_histogram_index(const hftel_histogram *histogram, uint64_t value)
    void hftel_histogram_observe(const hftel_histogram *histogram, uint64_t value)
    void hftel_histogram_observe_atomic(const hftel_histogram *histogram, uint64_t value)

    uint64_t hftel_load_u64(const uint64_t *word)


cdef extern from "hftel_registry.h" nogil:
    ctypedef enum hftel_status:
        HFTEL_OK
        HFTEL_ERROR_IO
        HFTEL_ERROR_CORRUPT
        HFTEL_ERROR_VERSION
        HFTEL_ERROR_INVALID
        HFTEL_ERROR_CONFLICT
        HFTEL_ERROR_FULL
        HFTEL_ERROR_BUSY

    ctypedef struct hftel_error:
        char message[256]

    ctypedef struct hftel_segment:
        uint8_t *base
        uint64_t length
        int writable
        uint64_t device
        uint64_t inode
        uint64_t descriptors_offset
        uint32_t descriptor_capacity
        uint64_t values_offset
        uint64_t values_length
        uint64_t audit_ring_offset
        uint64_t audit_ring_capacity
        uint64_t log_ring_offset
        uint64_t log_ring_capacity

    ctypedef struct hftel_segment_options:
        uint32_t descriptor_capacity
        uint64_t values_length
        uint32_t mode
        uint64_t audit_ring_capacity
        uint64_t log_ring_capacity

    ctypedef struct hftel_metric_spec:
        uint16_t type
        const char *name
        const char *labels
        const char *help
        uint16_t bucket_scheme
        uint32_t bucket_count
        const uint64_t *bounds
        uint8_t low_exponent
        uint8_t high_exponent
        uint8_t sub_bucket_bits

    hftel_header *hftel_segment_header(const hftel_segment *segment)
    hftel_descriptor *hftel_descriptor_at(const hftel_segment *segment, uint32_t index)
    uint8_t *hftel_value_at(const hftel_segment *segment, uint64_t value_offset)
    uint64_t hftel_realtime_ns()
    uint64_t hftel_monotonic_ns()
    int hftel_process_is_dead(int64_t pid)

    hftel_status hftel_segment_check_header(const uint8_t *base, uint64_t length, hftel_error *error)
    hftel_status hftel_segment_check_descriptor(const hftel_segment *segment, uint32_t index, hftel_error *error)
    hftel_status hftel_segment_read_descriptor(const hftel_segment *segment, uint32_t index,
                                               hftel_descriptor *out, hftel_error *error)
    hftel_status hftel_segment_recheck(const hftel_segment *segment, hftel_error *error)
    uint32_t hftel_segment_descriptor_count(const hftel_segment *segment)
    hftel_status hftel_segment_create(const char *path, const hftel_segment_options *options,
                                      hftel_segment *out, hftel_error *error)
    hftel_status hftel_segment_attach(const char *path, int writable, hftel_segment *out, hftel_error *error)
    void hftel_segment_close(hftel_segment *segment)
    void hftel_segment_heartbeat(const hftel_segment *segment, uint64_t now_ns)
    void hftel_segment_set_engine_state(const hftel_segment *segment, uint32_t state)
    hftel_status hftel_register(const hftel_segment *segment, const hftel_metric_spec *spec,
                                uint32_t *index, hftel_error *error)
    int hftel_find(const hftel_segment *segment, const char *name, const char *labels, uint32_t *index)
    hftel_status hftel_bind_counter(const hftel_segment *segment, uint32_t index, hftel_counter *out,
                                    hftel_error *error)
    hftel_status hftel_bind_gauge(const hftel_segment *segment, uint32_t index, hftel_gauge *out,
                                  hftel_error *error)
    hftel_status hftel_bind_float_gauge(const hftel_segment *segment, uint32_t index, hftel_float_gauge *out,
                                        hftel_error *error)
    hftel_status hftel_bind_histogram(const hftel_segment *segment, uint32_t index, hftel_histogram *out,
                                      hftel_error *error)


cdef extern from "hftel_ring.h" nogil:
    const uint32_t HFTEL_RING_HEADER_LENGTH
    const uint64_t HFTEL_RING_MIN_CAPACITY
    const uint64_t HFTEL_RING_MAX_CAPACITY
    const uint32_t HFTEL_RECORD_HEADER_LENGTH
    const uint32_t HFTEL_RECORD_ALIGNMENT
    const uint32_t HFTEL_RECORD_CLAIMED
    const uint32_t HFTEL_RECORD_COMMITTED
    const uint32_t HFTEL_RECORD_LOG_EVENT
    const uint32_t HFTEL_RECORD_PADDING
    const uint32_t HFTEL_RECORD_TRUNCATED
    const uint32_t HFTEL_RECORD_SCHEMA_VIOLATION

    ctypedef struct hftel_ring_header:
        uint64_t tail
        uint64_t head_cache
        uint64_t head
        uint64_t skipped_records
        uint64_t skipped_bytes
        uint64_t full
        uint64_t spilled
        uint64_t lost
        uint64_t truncated
        uint64_t violations

    ctypedef struct hftel_record_header:
        uint64_t tag
        uint32_t length
        uint16_t type
        uint16_t flags
        int32_t pid

    ctypedef struct hftel_ring:
        hftel_ring_header *header
        uint8_t *data
        uint64_t capacity
        uint64_t mask
        uint32_t max_record_length

    ctypedef enum hftel_peek:
        HFTEL_PEEK_EMPTY
        HFTEL_PEEK_RECORD
        HFTEL_PEEK_PADDING
        HFTEL_PEEK_PENDING
        HFTEL_PEEK_UNTAGGED
        HFTEL_PEEK_CORRUPT

    uint64_t hftel_record_tag(uint64_t position, uint32_t stage)
    hftel_record_header *hftel_ring_record(const hftel_ring *ring, uint64_t position)
    uint64_t hftel_ring_claim(const hftel_ring *ring, uint32_t length, uint16_t type, uint16_t flags, int32_t pid)
    uint8_t *hftel_ring_payload(const hftel_ring *ring, uint64_t position)
    void hftel_ring_commit(const hftel_ring *ring, uint64_t position)
    int hftel_ring_write(const hftel_ring *ring, uint16_t type, uint16_t flags, int32_t pid,
                         const void *payload, uint32_t payload_length)
    void hftel_ring_count(uint64_t *counter, uint64_t amount)
    uint64_t hftel_ring_load_tail(const hftel_ring *ring)
    uint64_t hftel_ring_load_head(const hftel_ring *ring)
    hftel_peek hftel_ring_peek(const hftel_ring *ring, uint64_t position, uint64_t tail,
                               hftel_record_header *out, uint64_t *skip)
    uint64_t hftel_ring_untagged_extent(const hftel_ring *ring, uint64_t position, uint64_t tail)
    void hftel_ring_advance(const hftel_ring *ring, uint64_t head)
    void hftel_ring_count_skip(const hftel_ring *ring, uint64_t bytes)


cdef extern from "hftel_registry.h" nogil:
    ctypedef enum hftel_ring_kind:
        HFTEL_AUDIT_RING
        HFTEL_LOG_RING

    hftel_ring hftel_segment_ring(const hftel_segment *segment, hftel_ring_kind kind)


cdef extern from "hftel_writer.h" nogil:
    const uint64_t HFTEL_SPILL_MAGIC
    const uint32_t HFTEL_SPILL_VERSION
    const uint32_t HFTEL_SPILL_HEADER_LENGTH
    const uint32_t HFTEL_SPILL_FRAME_SYNC
    const uint32_t HFTEL_SPILL_FRAME_HEADER_LENGTH
    const uint32_t HFTEL_SPILL_PATH_MAX
    const uint32_t HFTEL_LOG_EVENT_HEADER_LENGTH
    const uint32_t HFTEL_LOG_EVENT_MAX_LENGTH

    ctypedef struct hftel_audit_writer:
        hftel_ring ring
        uint64_t source_id
        uint64_t next_seq
        int32_t pid
        int spill_fd
        char spill_path[4096]

    ctypedef enum hftel_audit_result:
        HFTEL_AUDIT_WRITTEN
        HFTEL_AUDIT_SPILLED
        HFTEL_AUDIT_LOST

    enum hftel_log_kind:
        HFTEL_LOG_STR
        HFTEL_LOG_INT
        HFTEL_LOG_FLOAT
        HFTEL_LOG_BOOL
        HFTEL_LOG_NONE
        HFTEL_LOG_BYTES
        HFTEL_LOG_INT_TEXT

    ctypedef struct hftel_log_event:
        uint32_t used
        uint16_t count
        uint16_t flags
        uint8_t payload[4096]

    ctypedef struct hftel_log_writer:
        hftel_ring ring
        int32_t pid

    uint32_t hftel_crc32(const void *data, size_t length)
    int hftel_spill_open(const char *path)
    int hftel_spill_append(int fd, uint16_t type, uint16_t flags, const void *payload, uint32_t length)
    void hftel_audit_writer_init(hftel_audit_writer *writer, const hftel_ring *ring, uint64_t source_id,
                                 const char *spill_path)
    void hftel_audit_writer_close(hftel_audit_writer *writer)
    hftel_audit_result hftel_audit_write(hftel_audit_writer *writer, uint16_t type, void *row, uint32_t length)
    void hftel_log_writer_init(hftel_log_writer *writer, const hftel_ring *ring)
    int hftel_log_add(hftel_log_event *event, uint8_t kind, const char *key, size_t key_length,
                      const void *value, size_t value_length)
    void hftel_log_begin(hftel_log_event *event, uint8_t level, uint64_t ts, const char *name, size_t name_length)
    void hftel_log_add_str(hftel_log_event *event, const char *key, const char *value)
    void hftel_log_add_i64(hftel_log_event *event, const char *key, int64_t value)
    void hftel_log_add_f64(hftel_log_event *event, const char *key, double value)
    int hftel_log_write(const hftel_log_writer *writer, hftel_log_event *event)
