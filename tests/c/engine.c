/* A C engine writing into a segment that Python created: tests/test_c_engine.py runs it.
 *
 *   engine SEGMENT THREADS ITERATIONS
 *
 * Each of THREADS threads adds ITERATIONS times to the shared atomic counter and histogram; the
 * main thread alone drives the single-writer counter and histogram, sets the gauges, and
 * registers one series of its own. Exit status 0 on success, 1 with a message on failure. */
#include "hftel_registry.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static hftel_counter shared_counter;
static hftel_histogram shared_histogram;
static long iterations;

static void die(const char *what, const hftel_error *error)
{
    fprintf(stderr, "%s: %s\n", what, error->message);
    exit(1);
}

static uint32_t find(const hftel_segment *segment, const char *name, const char *labels)
{
    uint32_t index;
    if (!hftel_find(segment, name, labels, &index)) {
        fprintf(stderr, "series %s{%s} not found\n", name, labels);
        exit(1);
    }
    return index;
}

static void *work(void *unused)
{
    (void)unused;
    for (long i = 0; i < iterations; i++) {
        hftel_counter_add_atomic(&shared_counter, 1);
        hftel_histogram_observe_atomic(&shared_histogram, (uint64_t)(i % 1000) * 1000u);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: engine SEGMENT THREADS ITERATIONS\n");
        return 2;
    }
    int threads = atoi(argv[2]);
    iterations = atol(argv[3]);
    hftel_segment segment;
    hftel_error error;
    if (hftel_segment_attach(argv[1], 1, &segment, &error) != HFTEL_OK) {
        die("attach", &error);
    }
    if (hftel_bind_counter(&segment, find(&segment, "c_orders", "side=\"buy\""), &shared_counter, &error) ||
        hftel_bind_histogram(&segment, find(&segment, "c_latency_ns", ""), &shared_histogram, &error)) {
        die("bind", &error);
    }
    hftel_counter owned;
    hftel_histogram owned_histogram;
    hftel_gauge position;
    hftel_float_gauge pnl;
    if (hftel_bind_counter(&segment, find(&segment, "c_owned", ""), &owned, &error) ||
        hftel_bind_histogram(&segment, find(&segment, "c_owned_latency_ns", ""), &owned_histogram, &error) ||
        hftel_bind_gauge(&segment, find(&segment, "c_position", ""), &position, &error) ||
        hftel_bind_float_gauge(&segment, find(&segment, "c_pnl", ""), &pnl, &error)) {
        die("bind", &error);
    }
    /* A handle of the wrong type is refused. */
    hftel_gauge wrong;
    if (hftel_bind_gauge(&segment, find(&segment, "c_owned", ""), &wrong, &error) != HFTEL_ERROR_CONFLICT) {
        fprintf(stderr, "binding a counter as a gauge was not refused\n");
        return 1;
    }

    pthread_t ids[64];
    for (int t = 0; t < threads && t < 64; t++) {
        pthread_create(&ids[t], NULL, work, NULL);
    }
    for (long i = 0; i < iterations; i++) {
        hftel_counter_add(&owned, 2);
        hftel_histogram_observe(&owned_histogram, 100);
    }
    hftel_gauge_set(&position, -7);
    hftel_gauge_add_atomic(&position, 2);
    hftel_float_gauge_set(&pnl, 1234.5);
    hftel_float_gauge_add_atomic(&pnl, 0.25);
    for (int t = 0; t < threads && t < 64; t++) {
        pthread_join(ids[t], NULL);
    }

    /* A series the C engine registers itself. */
    hftel_metric_spec spec = {0};
    spec.type = HFTEL_COUNTER;
    spec.name = "c_registered";
    spec.labels = "origin=\"c\"";
    spec.help = "Registered from C.";
    uint32_t index = 0;
    hftel_counter registered;
    if (hftel_register(&segment, &spec, &index, &error) != HFTEL_OK ||
        hftel_bind_counter(&segment, index, &registered, &error) != HFTEL_OK) {
        die("register", &error);
    }
    hftel_counter_add_atomic(&registered, 99);
    hftel_segment_close(&segment);
    return 0;
}
