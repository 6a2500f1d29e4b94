/* limits.c - the machine's own limits, measured in the same run as a
 * benchmark, so figures are printed as fractions of what this machine can
 * do: a STREAM-style triad for memory bandwidth, and a monotonic clock. */
#include "bench.h"

#include <stdlib.h>
#include <time.h>

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Best of `reps` passes over n floats, in GB/s, 12 bytes counted per
 * element as STREAM does: the triad a <- b + s*c, or (in_place) the update
 * a <- a + s*c. The triad writes a third array, which the cache first reads
 * (write-allocate): it moves 16 bytes for the 12 it counts, so a step that
 * updates its arrays in place, as every optimizer does, can beat "100% of
 * triad". The in-place update is the limit such a step can really reach. */
static double stream_gbs(size_t n, int threads, int reps, int in_place)
{
    float *a = malloc(n * sizeof *a), *c = malloc(n * sizeof *c);
    float *b = in_place ? a : malloc(n * sizeof *b);
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
    if (!in_place) free(b);
    free(a);
    free(c);
    return best < 1e30 ? 3.0 * (double)n * sizeof(float) / best / 1e9 : 0.0;
}

double bench_triad_gbs(size_t n, int threads, int reps) { return stream_gbs(n, threads, reps, 0); }

double bench_update_gbs(size_t n, int threads, int reps) { return stream_gbs(n, threads, reps, 1); }
