/* A C engine writing audit rows and log events into a segment Python created: test_c_writers.py.
 *
 *   audit_engine SEGMENT THREADS ROWS
 *
 * Each of THREADS threads is one source: it writes ROWS audit_orders rows (intent_id = seq) through
 * its own hftel_audit_writer, with the spill file next to the segment, and one log event at the
 * end. Exit status 0 on success, 1 with a message on failure. */
#include "hftel_audit.h"
#include "hftel_writer.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static hftel_segment segment;
static char spill[HFTEL_SPILL_PATH_MAX];
static long rows;

static void *produce(void *argument)
{
    uint64_t source_id = 1000u + (uint64_t)(uintptr_t)argument;
    hftel_ring ring = hftel_segment_ring(&segment, HFTEL_AUDIT_RING);
    hftel_audit_writer writer;
    hftel_audit_writer_init(&writer, &ring, source_id, spill);
    for (long i = 0; i < rows; i++) {
        hftel_audit_orders_row row;
        memset(&row, 0, sizeof row);
        row.intent_id = (uint64_t)i + 1u;
        row.side = HFTEL_AUDIT_ORDERS_SIDE_SELL;
        row.quantity = -(int64_t)i;
        row.price = 0.5 * (double)i;
        snprintf(row.strategy, sizeof row.strategy, "c%lu", (unsigned long)source_id);
        if (hftel_audit_write(&writer, HFTEL_AUDIT_ORDERS_TYPE_ID, &row, sizeof row) == HFTEL_AUDIT_LOST) {
            fprintf(stderr, "row lost: the spill file could not be written\n");
            exit(1);
        }
    }
    hftel_audit_writer_close(&writer);

    hftel_ring log_ring = hftel_segment_ring(&segment, HFTEL_LOG_RING);
    hftel_log_writer log;
    hftel_log_writer_init(&log, &log_ring);
    hftel_log_event event;
    hftel_log_begin(&event, 20, 0, "c_done", 6);
    hftel_log_add_str(&event, "component", "recorder");
    hftel_log_add_i64(&event, "source", (int64_t)source_id);
    hftel_log_add_f64(&event, "ratio", 0.25);
    if (hftel_log_write(&log, &event) != 0) {
        fprintf(stderr, "log event dropped\n");
        exit(1);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: audit_engine SEGMENT THREADS ROWS\n");
        return 1;
    }
    hftel_error error;
    if (hftel_segment_attach(argv[1], 1, &segment, &error) != HFTEL_OK) {
        fprintf(stderr, "attach: %s\n", error.message);
        return 1;
    }
    snprintf(spill, sizeof spill, "%s.spill", argv[1]);
    long threads = atol(argv[2]);
    rows = atol(argv[3]);
    pthread_t ids[64];
    for (long t = 0; t < threads && t < 64; t++) {
        pthread_create(&ids[t], NULL, produce, (void *)(uintptr_t)t);
    }
    for (long t = 0; t < threads && t < 64; t++) {
        pthread_join(ids[t], NULL);
    }
    hftel_segment_close(&segment);
    return 0;
}
