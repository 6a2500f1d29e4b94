/* limits.c - the machine's own limits, measured in the same run as a
 * benchmark, so figures are printed as fractions of what this machine can
 * do: a STREAM-style triad for memory bandwidth, and a monotonic clock. */
#include "bench.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The in-place update a <- a + s*c over n floats, kept allocated so that a
 * longer benchmark can time one pass beside each of its own (bench.h). */
struct bench_update {
    size_t n;
    int threads;
    float *a, *c;
};

bench_update *bench_update_new(size_t n, int threads)
{
    bench_update *u = calloc(1, sizeof *u);
    if (!u) return NULL;
    u->n = n;
    u->threads = threads;
    u->a = malloc(n * sizeof(float));
    u->c = malloc(n * sizeof(float));
    if (!u->a || !u->c) {
        bench_update_free(u);
        return NULL;
    }
    float *a = u->a, *c = u->c;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (size_t i = 0; i < n; i++) {
        a[i] = 0;
        c[i] = 2;
    }
    return u;
}

double bench_update_pass(bench_update *u)
{
    float *a = u->a;
    const float *c = u->c;
    size_t n = u->n;
    double t0 = bench_now();
#pragma omp parallel for num_threads(u->threads) schedule(static)
    for (size_t i = 0; i < n; i++) a[i] = a[i] + 0.5f * c[i];
    double dt = bench_now() - t0;
    volatile float sink = a[n / 2];
    (void)sink;
    return dt;
}

double bench_update_pass_bytes(const bench_update *u) { return 3.0 * (double)u->n * sizeof(float); }

void bench_update_free(bench_update *u)
{
    if (!u) return;
    free(u->a);
    free(u->c);
    free(u);
}

/* Best of `reps` passes over n floats, in GB/s, 12 bytes counted per
 * element as STREAM does: the triad a <- b + s*c, or the in-place update
 * a <- a + s*c (bench_update). The triad writes a third array, which the
 * cache first reads (write-allocate): it moves 16 bytes for the 12 it
 * counts, so a step that updates its arrays in place, as every optimizer
 * does, can beat "100% of triad". The in-place update is the limit such a
 * step can really reach. */
double bench_triad_gbs(size_t n, int threads, int reps)
{
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *c = malloc(n * sizeof *c);
    double best = 1e30;
    if (a && b && c) {
#pragma omp parallel for num_threads(threads) schedule(static)
        for (size_t i = 0; i < n; i++) {
            a[i] = 0;
            b[i] = 1;
            c[i] = 2;
        }
        for (int r = 0; r < reps; r++) {
            double t0 = bench_now();
#pragma omp parallel for num_threads(threads) schedule(static)
            for (size_t i = 0; i < n; i++) a[i] = b[i] + 0.5f * c[i];
            double dt = bench_now() - t0;
            if (dt < best) best = dt;
        }
        volatile float sink = a[n / 2];
        (void)sink;
    }
    free(a);
    free(b);
    free(c);
    return best < 1e30 ? 3.0 * (double)n * sizeof(float) / best / 1e9 : 0.0;
}

double bench_update_gbs(size_t n, int threads, int reps)
{
    bench_update *u = bench_update_new(n, threads);
    if (!u) return 0.0;
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double dt = bench_update_pass(u);
        if (dt < best) best = dt;
    }
    double gbs = bench_update_pass_bytes(u) / best / 1e9;
    bench_update_free(u);
    return gbs;
}

/* Non-finite count of x[0..n), integer work only (vectorizes without
 * -ffast-math), as the optimizer driver's gradient scan does. */
static size_t count_nonfinite(const float *x, size_t n, int threads)
{
    size_t bad = 0;
#pragma omp parallel for num_threads(threads) schedule(static) reduction(+ : bad)
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], sizeof u);
        bad += (u & 0x7f800000u) == 0x7f800000u;
    }
    return bad;
}

/* The in-place pass: p and each state updated from g, one multiply-add
 * each. One loop per state count, so each vectorizes on its own. */
static void shape_pass_f32(float *p, const float *g, float *const *st, int k, size_t n,
                           int threads)
{
    float *s0 = st[0], *s1 = st[1], *s2 = st[2];
    switch (k) {
    case 0:
#pragma omp parallel for num_threads(threads) schedule(static)
        for (size_t i = 0; i < n; i++) p[i] += 0.5f * g[i];
        break;
    case 1:
#pragma omp parallel for num_threads(threads) schedule(static)
        for (size_t i = 0; i < n; i++) {
            s0[i] = 0.9f * s0[i] + g[i];
            p[i] += 0.5f * s0[i];
        }
        break;
    case 2:
#pragma omp parallel for num_threads(threads) schedule(static)
        for (size_t i = 0; i < n; i++) {
            s0[i] = 0.9f * s0[i] + g[i];
            s1[i] = 0.9f * s1[i] + g[i];
            p[i] += 0.5f * s0[i] * s1[i];
        }
        break;
    default:
#pragma omp parallel for num_threads(threads) schedule(static)
        for (size_t i = 0; i < n; i++) {
            s0[i] = 0.9f * s0[i] + g[i];
            s1[i] = 0.9f * s1[i] + g[i];
            s2[i] = s2[i] > s1[i] ? s2[i] : s1[i];
            p[i] += 0.5f * s0[i] * s2[i];
        }
        break;
    }
}

/* The in-place pass over p and k = 1 or 2 narrow states of type T (bf16
 * or 8-bit codes): each state read and written, an integer add standing in
 * for its update. One loop per state count, each vectorizing on its own. */
#define NARROW_PASS(T, p, g, st, k, n, threads)                                  \
    do {                                                                         \
        T *s0_ = (st)[0], *s1_ = (st)[1];                                        \
        if ((k) == 1) {                                                          \
            _Pragma("omp parallel for num_threads(threads) schedule(static)")   \
            for (size_t i = 0; i < (n); i++) {                                   \
                s0_[i] = (T)(s0_[i] + 1u);                                       \
                (p)[i] += 0.5f * (g)[i];                                         \
            }                                                                    \
        } else {                                                                 \
            _Pragma("omp parallel for num_threads(threads) schedule(static)")   \
            for (size_t i = 0; i < (n); i++) {                                   \
                s0_[i] = (T)(s0_[i] + 1u);                                       \
                s1_[i] = (T)(s1_[i] + 3u);                                       \
                (p)[i] += 0.5f * (g)[i];                                         \
            }                                                                    \
        }                                                                        \
    } while (0)

/* bf16 states: 2 bytes per element. */
static void shape_pass_u16(float *p, const float *g, void *const *st, int k, size_t n,
                           int threads)
{
    NARROW_PASS(uint16_t, p, g, st, k, n, threads);
}

/* 8-bit states: one code byte per element and one float32 scale per block
 * of SHAPE_QBLOCK elements (the layout of the blockwise 8-bit states), both
 * read and written. */
#define SHAPE_QBLOCK 256
static void shape_pass_u8(float *p, const float *g, void *const *st, float *const *scale, int k,
                          size_t n, int threads)
{
    NARROW_PASS(uint8_t, p, g, st, k, n, threads);
    float *a0 = scale[0], *a1 = scale[1];
    size_t nblocks = (n + SHAPE_QBLOCK - 1) / SHAPE_QBLOCK;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (size_t b = 0; b < nblocks; b++) {
        a0[b] = 0.5f * a0[b] + 1.0f;
        if (k > 1) a1[b] = 0.5f * a1[b] + 1.0f;
    }
}

struct bench_shape {
    size_t n;
    int nstates, width, extra_reads, threads;
    float *p, *g;
    void *st[3];
    float *scale[3]; /* 8-bit states: one per block */
};

void bench_shape_free(bench_shape *s)
{
    if (!s) return;
    for (int k = 0; k < 3; k++) {
        free(s->st[k]);
        free(s->scale[k]);
    }
    free(s->p);
    free(s->g);
    free(s);
}

bench_shape *bench_shape_new(size_t n, int nstates, int width, int extra_reads, int threads)
{
    if (nstates < 0 || nstates > 3 || extra_reads < 0) return NULL;
    if (width != 4 && !((width == 2 || width == 1) && nstates >= 1 && nstates <= 2)) return NULL;
    bench_shape *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    *s = (bench_shape){.n = n, .nstates = nstates, .width = width, .extra_reads = extra_reads,
                       .threads = threads};
    size_t nblocks = (n + SHAPE_QBLOCK - 1) / SHAPE_QBLOCK;
    int ok = (s->p = malloc(n * sizeof(float))) != NULL &&
             (s->g = malloc(n * sizeof(float))) != NULL;
    for (int k = 0; k < nstates; k++) {
        ok = ok && (s->st[k] = malloc(n * (size_t)width)) != NULL;
        if (width == 1) ok = ok && (s->scale[k] = calloc(nblocks, sizeof(float))) != NULL;
    }
    if (!ok) {
        bench_shape_free(s);
        return NULL;
    }
    float *p = s->p, *g = s->g;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (size_t i = 0; i < n; i++) {
        p[i] = 1.0f;
        g[i] = 1e-3f;
    }
    /* the states' pages touched by the threads that will use them */
    for (int k = 0; k < nstates; k++) {
        unsigned char *b = s->st[k];
        size_t bytes = n * (size_t)width;
#pragma omp parallel for num_threads(threads) schedule(static)
        for (size_t i = 0; i < bytes; i++) b[i] = 0;
    }
    return s;
}

double bench_shape_pass(bench_shape *s)
{
    double t0 = bench_now();
    size_t bad = 0;
    for (int e = 0; e <= s->extra_reads; e++) bad += count_nonfinite(s->g, s->n, s->threads);
    if (!bad) {
        if (s->width == 4)
            shape_pass_f32(s->p, s->g, (float *const *)s->st, s->nstates, s->n, s->threads);
        else if (s->width == 2)
            shape_pass_u16(s->p, s->g, s->st, s->nstates, s->n, s->threads);
        else
            shape_pass_u8(s->p, s->g, s->st, s->scale, s->nstates, s->n, s->threads);
    }
    double dt = bench_now() - t0;
    volatile float sink = s->p[s->n / 2];
    (void)sink;
    return dt;
}

double bench_shape_bytes(size_t n, int nstates, int width)
{
    double state = width == 1 ? 1.0 + 4.0 / SHAPE_QBLOCK : (double)width;
    return (16.0 + 2.0 * state * nstates) * (double)n;
}

double bench_shape_gbs(size_t n, int nstates, int width, int extra_reads, int threads, int reps)
{
    bench_shape *s = bench_shape_new(n, nstates, width, extra_reads, threads);
    if (!s) return 0.0;
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double dt = bench_shape_pass(s);
        if (dt < best) best = dt;
    }
    bench_shape_free(s);
    return bench_shape_bytes(n, nstates, width) / best / 1e9;
}

int bench_serial(double step, double arithmetic, double traffic)
{
    double sum = arithmetic + traffic;
    return arithmetic > 0.0 && traffic > 0.0 && step >= 0.9 * sum && step <= 1.1 * sum;
}

void bench_why_split(char *why, size_t n, double ratio, double in_cache, double traffic,
                     const char *step, const char *base)
{
    const char *reading = bench_serial(ratio, in_cache, traffic) ? "serial" : "open";
    snprintf(why, n, "%s: in cache the %s alone is %.2fx the %s, its memory traffic alone "
             "%.2fx; the two added %.2fx", reading, step, in_cache, base, traffic,
             in_cache + traffic);
}
