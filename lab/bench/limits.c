/* limits.c - the machine's own limits, measured in the same run as a
 * benchmark, so figures are printed as fractions of what this machine can
 * do: a STREAM-style triad for memory bandwidth, and a monotonic clock. */
#include "bench/bench.h"

#include <stdlib.h>
#include <time.h>

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Best of `reps` triads over n floats, in GB/s (STREAM counts 3 arrays). */
double bench_triad_gbs(size_t n, int threads, int reps)
{
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *c = malloc(n * sizeof *c);
    if (!a || !b || !c) return 0;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (size_t i = 0; i < n; i++) {
        a[i] = 0;
        b[i] = 1;
        c[i] = 2;
    }
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now();
#pragma omp parallel for num_threads(threads) schedule(static)
        for (size_t i = 0; i < n; i++) a[i] = b[i] + 0.5f * c[i];
        double dt = bench_now() - t0;
        if (dt < best) best = dt;
    }
    volatile float sink = a[n / 2];
    (void)sink;
    free(a);
    free(b);
    free(c);
    return 3.0 * (double)n * sizeof(float) / best / 1e9;
}

/* Best of `reps` in-place updates a <- a + s*b over n floats, in GB/s
 * (8 bytes read and 4 written per element). The triad writes a third array,
 * which the cache first reads (write-allocate): it moves 16 bytes for the 12
 * STREAM counts, so a step that updates its arrays in place, as every
 * optimizer does, can beat "100% of triad". This in-place stream is the
 * limit such a step can really reach. */
double bench_update_gbs(size_t n, int threads, int reps)
{
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    if (!a || !b) {
        free(a);
        free(b);
        return 0;
    }
#pragma omp parallel for num_threads(threads) schedule(static)
    for (size_t i = 0; i < n; i++) {
        a[i] = 0;
        b[i] = 1;
    }
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now();
#pragma omp parallel for num_threads(threads) schedule(static)
        for (size_t i = 0; i < n; i++) a[i] = a[i] + 0.5f * b[i];
        double dt = bench_now() - t0;
        if (dt < best) best = dt;
    }
    volatile float sink = a[n / 2];
    (void)sink;
    free(a);
    free(b);
    return 3.0 * (double)n * sizeof(float) / best / 1e9;
}
