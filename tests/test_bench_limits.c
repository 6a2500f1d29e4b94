/* test_bench_limits.c - the traffic patterns that `make bench` reads its
 * rows against (bench/lib/limits.c, bench_shape_*): the byte count of each
 * pattern must be the traffic that the benchmarks count for the real step
 * it stands for (16 bytes of parameter and gradient plus each state read
 * and written, the state's size taken from the library itself, so a change
 * of the 8-bit block layout or of a state's width shows here), the
 * constructor must refuse the widths and counts it has no pattern for, and
 * every pattern must run on sizes that are not a whole number of blocks;
 * bench_serial reads a step as serial only within 10% of the sum. */
#include "bench.h"
#include "check.h"
#include "descent.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The state bytes the library keeps for one tensor of n under `spec`. */
static double state_bytes(const char *spec, size_t n)
{
    float *w = calloc(n, sizeof *w), *g = calloc(n, sizeof *g);
    dsc_optimizer *o = dsc_optimizer_new();
    int64_t shape[1] = {(int64_t)n};
    double bytes = -1.0;
    if (w && g && o && dsc_optimizer_add_group(o, "g", spec) == DSC_OK &&
        dsc_optimizer_add_param(o, "w", w, g, 1, shape, DSC_ROLE_VECTOR, "g") == DSC_OK)
        bytes = (double)dsc_optimizer_state_bytes(o);
    dsc_optimizer_free(o);
    free(w);
    free(g);
    return bytes;
}

/* Per element: the difference between two sizes of whole blocks, so that
 * a tensor's few scalar bytes (a step counter) drop out and the rest must
 * match exactly. */
static void test_bytes_match_the_steps(void)
{
    const size_t n1 = 256 * 1000, n2 = 256 * 1500;
    static const struct {
        const char *spec;
        int nstates, width;
    } rows[] = {
        {"sgd:lr=0.01,momentum=0.9", 1, 4},
        {"adamw:lr=1e-3", 2, 4},
        {"adamw:lr=1e-3,bf16_state=1", 2, 2},
        {"lion:lr=1e-4,bf16_state=2", 1, 2},
        {"sgd8bit:lr=0.01,momentum=0.9", 1, 1},
        {"lion8bit:lr=1e-4", 1, 1},
        {"adagrad8bit:lr=0.01", 1, 1},
        {"adam8bit:lr=1e-3", 2, 1},
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        double s1 = state_bytes(rows[r].spec, n1), s2 = state_bytes(rows[r].spec, n2);
        CHECK(s1 > 0 && s2 > 0);
        double counted = 16.0 * (double)(n2 - n1) + 2.0 * (s2 - s1);
        double pattern = bench_shape_bytes(n2, rows[r].nstates, rows[r].width) -
                         bench_shape_bytes(n1, rows[r].nstates, rows[r].width);
        if (fabs(counted - pattern) > 0.5)
            fprintf(stderr, "%s: the step counts %.0f bytes for %zu elements, its pattern %.0f\n",
                    rows[r].spec, counted, n2 - n1, pattern);
        CHECK(fabs(counted - pattern) <= 0.5);
    }
}

static void test_refused(void)
{
    CHECK(bench_shape_new(1000, 4, 4, 0, 1) == NULL);  /* at most 3 float32 states */
    CHECK(bench_shape_new(1000, -1, 4, 0, 1) == NULL);
    CHECK(bench_shape_new(1000, 1, 4, -1, 1) == NULL); /* negative extra passes */
    CHECK(bench_shape_new(1000, 1, 3, 0, 1) == NULL);  /* no 3-byte states */
    CHECK(bench_shape_new(1000, 3, 1, 0, 1) == NULL);  /* 8-bit: 1 or 2 states */
    CHECK(bench_shape_new(1000, 0, 1, 0, 1) == NULL);
    CHECK(bench_shape_new(1000, 3, 2, 0, 1) == NULL);  /* bf16: 1 or 2 states */
}

static void test_every_pattern_runs(void)
{
    static const int widths[3] = {4, 2, 1};
    for (int wi = 0; wi < 3; wi++)
        for (int k = 0; k <= 3; k++)
            for (int threads = 1; threads <= 2; threads++) {
                int ok = widths[wi] == 4 || (k >= 1 && k <= 2);
                bench_shape *s = bench_shape_new(1000 + 77, k, widths[wi], 1, threads);
                CHECK_EQ_INT(s != NULL, ok);
                if (!s) continue;
                double t = bench_shape_pass(s);
                CHECK(t >= 0.0 && isfinite(t));
                bench_shape_free(s);
                double gbs = bench_shape_gbs(1000 + 77, k, widths[wi], 0, threads, 2);
                CHECK(gbs > 0.0 && isfinite(gbs));
            }
    bench_shape_free(NULL);
}

/* serial: the step within 10% of the sum of its two measured times. */
static void test_serial(void)
{
    CHECK(bench_serial(1.0, 0.5, 0.5));
    CHECK(bench_serial(0.91, 0.5, 0.5));
    CHECK(bench_serial(1.09, 0.5, 0.5));
    CHECK(!bench_serial(0.89, 0.5, 0.5)); /* overlapped in part */
    CHECK(!bench_serial(1.11, 0.5, 0.5)); /* slower than both added */
    CHECK(!bench_serial(1.0, 0.0, 1.0));  /* a time not measured */
    CHECK(!bench_serial(1.0, 1.0, 0.0));
    char why[320];
    bench_why_split(why, sizeof why, 1.5, 0.7, 0.8, "8-bit step", "float32 step at 100M");
    CHECK(!strcmp(why, "serial: in cache the 8-bit step alone is 0.70x the float32 step at "
                       "100M, its memory traffic alone 0.80x; the two added 1.50x"));
    bench_why_split(why, sizeof why, 1.2, 0.7, 0.8, "8-bit step", "float32 step at 100M");
    CHECK(!strncmp(why, "open: ", 6));
}

int main(void)
{
    test_serial();
    test_bytes_match_the_steps();
    test_refused();
    test_every_pattern_runs();
    return check_report("test_bench_limits");
}
