/*
 * hftel_exposition.h -- the exporter's scrape path: render mapped segment values as Prometheus text.
 *
 * Everything about a series that does not change is decided once, when the exporter discovers it
 * (the slow path, in Python): its HELP and TYPE lines and, for every sample line, the text in front
 * of the value -- `name_total{engine="e",side="buy"} `. That work is kept in a render plan: an array
 * of operations, each pointing into a mapped segment. A scrape walks the plan, loads each value and
 * writes prefix, value and newline into one buffer. No allocation, no lock, no Python object.
 *
 *   hftel_render_op, one per family header or series:
 *  +---------------------------------------------------------------+
 *  |  Value (const u64 *): the counter or gauge word, or a          |  NULL for literal text
 *  |  histogram's counts (bucket_count + 1 words, +Inf last)        |
 *  +---------------------------------------------------------------+
 *  |  Sum (const u64 *): a histogram's sum word                     |
 *  +---------------------------------------------------------------+
 *  |  Text (const char *): the literal, or the line prefixes of the |
 *  |  series back to back (histogram: each bucket, +Inf, _count,    |
 *  |  _sum; otherwise one)                                          |
 *  +---------------------------------------------------------------+
 *  |  Prefix Ends (const u32 *): histogram only, where each prefix  |
 *  |  ends in Text (bucket_count + 3 entries)                       |
 *  +-------------------------------+-------------------------------+
 *  |  Text Length (u32)            |  Bucket Count (u32)            |
 *  +-------------------------------+-------------------------------+
 *  |  Kind (u16): LITERAL 0, or the   |  Flags (u16): SECONDS 1        |
 *  |  metric type of hftel.h          |                                |
 *  +-------------------------------+-------------------------------+
 *
 * SECONDS marks a histogram recorded in integer nanoseconds and exposed in seconds, as Prometheus
 * names want (`*_seconds`): its `le` bounds are already seconds in the prefixes, and its sum is
 * divided by 1e9 when written.
 *
 * A histogram's lines are made from one pass over its counts: cumulative buckets never decrease and
 * _count equals the +Inf bucket, whatever the writers do meanwhile (the same rule as the reader).
 */
#ifndef HFTEL_EXPOSITION_H
#define HFTEL_EXPOSITION_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hftel.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HFTEL_RENDER_LITERAL 0u
#define HFTEL_RENDER_SECONDS 1u

/* The longest value text: "-9223372036854775808", "18446744073709551615" or a %.17g double. */
#define HFTEL_RENDER_VALUE_MAX 32u

typedef struct hftel_render_op {
    const uint64_t *value;
    const uint64_t *sum;
    const char *text;
    const uint32_t *prefix_ends;
    uint32_t text_length;
    uint32_t bucket_count;
    uint16_t kind;
    uint16_t flags;
} hftel_render_op;

/* Writes the decimal digits of value at out; returns how many. */
static inline size_t hftel_format_u64(uint64_t value, char *out)
{
    static const char pairs[201] =
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
        "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
        "8081828384858687888990919293949596979899";
    char digits[20];
    size_t at = sizeof digits;
    while (value >= 100u) {
        unsigned pair = (unsigned)(value % 100u) * 2u;
        value /= 100u;
        digits[--at] = pairs[pair + 1u];
        digits[--at] = pairs[pair];
    }
    if (value >= 10u) {
        unsigned pair = (unsigned)value * 2u;
        digits[--at] = pairs[pair + 1u];
        digits[--at] = pairs[pair];
    } else {
        digits[--at] = (char)('0' + value);
    }
    memcpy(out, digits + at, sizeof digits - at);
    return sizeof digits - at;
}

static inline size_t hftel_format_i64(int64_t value, char *out)
{
    if (value >= 0) {
        return hftel_format_u64((uint64_t)value, out);
    }
    out[0] = '-';
    return 1u + hftel_format_u64(0u - (uint64_t)value, out + 1);
}

/* A double as Prometheus writes it: NaN, +Inf, -Inf, an integer when it is one, else the shortest
 * of %.15g, %.16g and %.17g that reads back as the same double. */
static inline size_t hftel_format_double(double value, char *out)
{
    if (isnan(value)) {
        memcpy(out, "NaN", 3);
        return 3;
    }
    if (isinf(value)) {
        memcpy(out, value > 0 ? "+Inf" : "-Inf", 4);
        return 4;
    }
    if (value == (double)(int64_t)value && fabs(value) < 9007199254740992.0) {
        return hftel_format_i64((int64_t)value, out);
    }
    char text[HFTEL_RENDER_VALUE_MAX];
    int length = 0;
    for (int precision = 15; precision <= 17; precision++) {
        length = snprintf(text, sizeof text, "%.*g", precision, value);
        if (strtod(text, NULL) == value) {
            break;
        }
    }
    memcpy(out, text, (size_t)length);
    return (size_t)length;
}

/* How many sample lines an operation writes. */
static inline uint32_t hftel_render_lines(const hftel_render_op *op)
{
    if (op->kind == HFTEL_RENDER_LITERAL) {
        return 0;
    }
    return op->kind == HFTEL_HISTOGRAM ? op->bucket_count + 3u : 1u;
}

/* An upper bound on the bytes hftel_render writes for these operations. */
static inline size_t hftel_render_bound(const hftel_render_op *ops, size_t count)
{
    size_t bound = 0;
    for (size_t i = 0; i < count; i++) {
        bound += ops[i].text_length + (size_t)hftel_render_lines(&ops[i]) * (HFTEL_RENDER_VALUE_MAX + 1u);
    }
    return bound;
}

static inline char *hftel_render_line(char *out, const char *prefix, size_t prefix_length, const char *value,
                                      size_t value_length)
{
    memcpy(out, prefix, prefix_length);
    out += prefix_length;
    memcpy(out, value, value_length);
    out += value_length;
    *out++ = '\n';
    return out;
}

static inline char *hftel_render_histogram(const hftel_render_op *op, char *out)
{
    uint64_t counts[HFTEL_MAX_BUCKETS + 1u];
    uint32_t buckets = op->bucket_count + 1u;
    for (uint32_t i = 0; i < buckets; i++) {
        counts[i] = __atomic_load_n(&op->value[i], __ATOMIC_ACQUIRE);
    }
    uint64_t sum = __atomic_load_n(op->sum, __ATOMIC_ACQUIRE);
    char value[HFTEL_RENDER_VALUE_MAX];
    uint64_t cumulative = 0;
    uint32_t start = 0;
    for (uint32_t i = 0; i < buckets; i++) {
        cumulative += counts[i];
        size_t length = hftel_format_u64(cumulative, value);
        out = hftel_render_line(out, op->text + start, op->prefix_ends[i] - start, value, length);
        start = op->prefix_ends[i];
    }
    size_t length = hftel_format_u64(cumulative, value); /* _count: the +Inf bucket */
    out = hftel_render_line(out, op->text + start, op->prefix_ends[buckets] - start, value, length);
    start = op->prefix_ends[buckets];
    length = (op->flags & HFTEL_RENDER_SECONDS) ? hftel_format_double((double)sum / 1e9, value)
                                                : hftel_format_u64(sum, value);
    return hftel_render_line(out, op->text + start, op->prefix_ends[buckets + 1u] - start, value, length);
}

/* Renders the operations into out, which holds at least hftel_render_bound() bytes. Returns the
 * number of bytes written. Safe to run while writers record: it only loads. */
static inline size_t hftel_render(const hftel_render_op *ops, size_t count, char *out)
{
    char *start = out;
    char value[HFTEL_RENDER_VALUE_MAX];
    for (size_t i = 0; i < count; i++) {
        const hftel_render_op *op = &ops[i];
        size_t length;
        switch (op->kind) {
        case HFTEL_COUNTER:
            length = hftel_format_u64(__atomic_load_n(op->value, __ATOMIC_ACQUIRE), value);
            break;
        case HFTEL_GAUGE_INT:
            length = hftel_format_i64((int64_t)__atomic_load_n(op->value, __ATOMIC_ACQUIRE), value);
            break;
        case HFTEL_GAUGE_FLOAT:
            length = hftel_format_double(hftel_bits_to_double(__atomic_load_n(op->value, __ATOMIC_ACQUIRE)),
                                         value);
            break;
        case HFTEL_HISTOGRAM:
            out = hftel_render_histogram(op, out);
            continue;
        default: /* HFTEL_RENDER_LITERAL */
            memcpy(out, op->text, op->text_length);
            out += op->text_length;
            continue;
        }
        out = hftel_render_line(out, op->text, op->text_length, value, length);
    }
    return (size_t)(out - start);
}

#ifdef __cplusplus
}
#endif

#endif /* HFTEL_EXPOSITION_H */
