/* elementwise.c - how close each element-wise optimizer step runs to
 * this machine's memory bandwidth.
 *
 * First a STREAM-style triad (a = b + s*c) and an in-place update
 * (a = a + s*b) measure the bandwidth the machine actually delivers at 1
 * and 2 threads. Then every registered
 * non-matrix optimizer (and a few modes its default spec leaves out, such as
 * row-wise AdaGrad-Norm) takes full dsc_optimizer_step()s on 1M and 100M
 * parameters; bytes moved per parameter are counted from what the step
 * really touches: the parameter read and written (8), the gradient read by
 * the driver's finite/norm scan and by the kernel (4 + 4), and every state
 * slot read and written (2 x state bytes). Printed: ns per parameter, GB/s,
 * the fractions of the triad and update bandwidths at the same thread
 * count, and the step's compute bound (the same step on parameters that
 * stay in cache, see cache_ns).
 *
 * Where the byte count above is not all a step moves: a step that needs a
 * whole-tensor (or whole-group) number before its first update reads its
 * inputs once more, and the "of update" column cannot reach 100%. Where
 * that first read includes all of g, it is the family's prescan, made in
 * place of the driver's scan (dsc_family.prescan in src/core/internal.h;
 * since 2026-12-03), so only what it reads beyond g is extra:
 *   sgdp, adamp     the projection decision needs every row's sums of the
 *                   pre-step p and g: the prescan, +4 bytes (p), ceiling
 *                   24/28 = 86% (sgdp) and 32/36 = 89% (adamp);
 *   adagradnorm     the global accumulator needs sum g^2 first: the
 *                   prescan, nothing extra (row-wise: rows fit in cache);
 *   adam_clip/0.1   the clipping threshold is a rank statistic of |g| over
 *                   the group: one pass over g, the prescan (a sample
 *                   brackets it, the pass gathers the ~1% of g in the
 *                   bracket, a select in cache finds it; formerly three
 *                   radix passes, +8 bytes): nothing extra;
 *   stable_spam     max |g| and the norm of g in one prescan; the clipped
 *                   norm takes a pass of its own only in a step with a
 *                   spike (max |g| above its running average; here, with
 *                   the same gradient every step, none): nothing extra.
 * A state the step holds but does not touch is not counted: stable_spam's
 * max_exp_avg_sq (only amsgrad uses it). Those rows take their count from
 * the table `unseen` below, the others from the state bytes the library
 * reports. (Until 2026-12-03 every row took the latter: stable_spam counted
 * 40 bytes, and adagradnorm/row, then run without momentum, counted its
 * untouched momentum buffer, 24 bytes for 16, its GB/s 1.5 times too high;
 * it now runs with momentum, as the adagradnorm row does.)
 * The "cache ns" column shows whether the arithmetic keeps up (see
 * cache_ns). The "shape" column is the memory system's own limit for the
 * step's traffic pattern: the same passes (the scan, the extra reads of
 * the table `unseen`, the in-place pass over p and the states, float32 or
 * 8-bit codes with their block scales) with next to no arithmetic
 * (bench_shape_gbs), as a fraction of the update stream;
 * more arrays streamed at once run slower than the update's two. "of
 * shape" is the step's GB/s over it, and "reading" says, from these
 * numbers, what holds a step under 90% of the update stream: its
 * arithmetic, its traffic pattern, the two one after the other (serial:
 * the step takes about the sum of its in-cache time and its pattern's
 * time), or none (code that is slower than the memory traffic it needs).
 *
 * usage: descent bench elementwise [--quick] [--only NAME]
 *        (or build/bench_elementwise with the same options)
 *   --quick  1M parameters only (seconds instead of a minute) */
#include "bench.h"
#include "descent.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A spec that the family accepts: lr, momentum where the family has it (so
 * SGD-like steps really carry a buffer), keys some families require; or,
 * for a variant row, lr and exactly the given extra keys. */
static dsc_optimizer *make(const char *name, const char *extra, float *w, float *g,
                           int64_t rows, int64_t cols)
{
    const char *extras[] = {",momentum=0.9", "", ",rank=4"};
    size_t nextras = sizeof extras / sizeof extras[0];
    for (size_t e = 0; e < (extra ? 1 : nextras); e++) {
        char spec[160];
        snprintf(spec, sizeof spec, "%s:lr=0.001%s", name, extra ? extra : extras[e]);
        dsc_optimizer *opt = dsc_optimizer_new();
        int64_t shape[2] = {rows, cols};
        if (dsc_optimizer_add_group(opt, "g", spec) == DSC_OK &&
            dsc_optimizer_add_param(opt, "w", w, g, 2, shape, DSC_ROLE_MATRIX, "g") == DSC_OK)
            return opt;
        dsc_optimizer_free(opt);
    }
    return NULL;
}

/* Modes the default spec leaves out, each timed as its own row. */
static const struct {
    const char *family, *label, *extra;
} variants[] = {
    {"adagradnorm", "adagradnorm/row", ",rowwise=1,momentum=0.9"},
    {"spam", "spam/sparse", ",density=0.25"},
    {"adam_clip", "adam_clip/0.1", ",coordinate_clip=0.1"},
};

/* The float32 states a step really touches and its read passes before the
 * update, for the rows whose state bytes say otherwise (the header above).
 * The other rows touch every state they hold and read nothing more. */
static const struct {
    const char *label;
    int states, extra;
} unseen[] = {
    {"sgdp", 1, 1},          /* momentum; p in the prescan's row sums */
    {"adamp", 2, 1},         /* m, v; p in the prescan's row sums */
    {"adagradnorm", 1, 0},   /* momentum (the accumulator is a scalar); sum g^2 is the prescan */
    {"adam_clip/0.1", 2, 0}, /* m, v; the threshold's one pass over g is the prescan */
    {"stable_spam", 2, 0},   /* m, v (max_exp_avg_sq only with amsgrad); no spike: no pass */
};

/* bench_shape_gbs for a pattern (states of `width` bytes: 4 or 1), measured
 * once per run and thread count, for the header lines. */
static double shape_gbs(int states, int width, int extra, int t, int threads)
{
    static double memo[2][4][4][2];
    if (states > 3 || extra > 3) return 0.0;
    double *m = &memo[width == 1][states][extra][t];
    if (*m == 0.0) *m = bench_shape_gbs(BENCH_LIMIT_ELEMENTS, states, width, extra, threads, 5);
    return *m;
}

typedef struct {
    float *w, *g;
    size_t n;
    int64_t rows, cols;
    const double *triad, *update;
    bench_update *const *stream; /* the in-place update, one per thread count */
    int summary; /* 1: the largest size of the run, rows for make bench's summary */
} bench_data;

/* The step's arithmetic alone: ns per parameter of full steps at one thread
 * on CACHE_PARAMS parameters, whose arrays stay in the caches (under 1 MiB
 * for 32 bytes per parameter), best of many. A step cannot run faster than
 * this however fast the memory, so the printed "cap" (memory time at the
 * in-place update's bandwidth over this time split across the threads) says
 * which fraction of the update stream the arithmetic allows: under 100% the
 * step is compute-bound at that thread count. */
#define CACHE_PARAMS 32768
static double cache_ns(const char *name, const char *extra)
{
    static float w[CACHE_PARAMS], g[CACHE_PARAMS];
    for (size_t i = 0; i < CACHE_PARAMS; i++) {
        w[i] = 0.01f * (float)((i * 2654435761u) % 1000) - 5.0f;
        g[i] = 0.001f * (float)((i * 40503u) % 2000) - 1.0f;
    }
    dsc_set_num_threads(1);
    dsc_optimizer *opt = make(name, extra, w, g, CACHE_PARAMS / 1024, 1024);
    if (!opt) return 0.0;
    double best = 1e30;
    for (int r = 0; r < 400; r++) {
        double t0 = bench_now();
        dsc_optimizer_step(opt);
        double dt = bench_now() - t0;
        if (r > 0 && dt < best) best = dt; /* step 0 takes first-step branches */
    }
    dsc_optimizer_free(opt);
    return best / CACHE_PARAMS * 1e9;
}

/* One table row per thread count: full steps, best of a few. */
static void bench_rows(const bench_data *d, const char *name, const char *label,
                       const char *extra)
{
    static const int threads[2] = {1, 2};
    double compute = cache_ns(name, extra);
    for (int t = 0; t < 2; t++) {
        dsc_set_num_threads(threads[t]);
        dsc_optimizer *opt = make(name, extra, d->w, d->g, d->rows, d->cols);
        if (!opt) {
            printf("%-15s (skipped: the spec was refused)\n", label);
            return;
        }
        size_t n = d->n;
        double state = (double)dsc_optimizer_state_bytes(opt) / (double)n;
        double bytes = 8.0 + 4.0 + 4.0 + 2.0 * state;
        dsc_optimizer_step(opt); /* first touch of state, first-step branches */
        /* The traffic pattern: k float32 states (from the state bytes, or
         * the table above), or k 8-bit states (a byte per element and a
         * float32 scale per block of 256), and the extra read passes. */
        int states = -1, width = 4, extra = 0;
        double state8 = (bench_shape_bytes(1, 1, 1) - 16.0) / 2.0; /* one 8-bit state */
        double k = state / 4.0, k8 = state / state8;
        if (k < 3.5 && fabs(k - floor(k + 0.5)) < 0.01) states = (int)(k + 0.5);
        else if (k8 > 0.5 && k8 < 2.5 && fabs(k8 - floor(k8 + 0.5)) < 0.01)
            states = (int)(k8 + 0.5), width = 1;
        for (size_t e = 0; e < sizeof unseen / sizeof unseen[0]; e++)
            if (!strcmp(label, unseen[e].label)) {
                states = unseen[e].states, extra = unseen[e].extra;
                bytes = bench_shape_bytes(1, states, width); /* the touched states only */
            }
        bench_shape *pattern =
            states >= 0 ? bench_shape_new(BENCH_LIMIT_ELEMENTS, states, width, extra, threads[t])
                        : NULL;
        /* Best of 7 at 100M: with 3, one slow step in a loaded minute moved
         * a row by 10% (measured: sgd 0.67 -> 0.82 of the update stream). */
        int reps = n > 10000000 ? 7 : 20;
        /* Each step follows one pass of the in-place update stream and
         * (the first 7) one pass of its own traffic pattern, and the row
         * divides the best step by the best passes: on a shared machine the
         * memory's speed drifts by a fifth within a minute, so limits
         * measured once at the start moved rows (and their readings) by as
         * much. */
        double best = 1e30, ubest = 1e30, sbest = 1e30;
        for (int r = 0; r < reps; r++) {
            double ut = bench_update_pass(d->stream[t]);
            if (ut < ubest) ubest = ut;
            if (pattern && r < 7) {
                double st = bench_shape_pass(pattern);
                if (st < sbest) sbest = st;
            }
            double t0 = bench_now();
            dsc_optimizer_step(opt);
            double dt = bench_now() - t0;
            if (dt < best) best = dt;
        }
        bench_shape_free(pattern);
        double update = bench_update_pass_bytes(d->stream[t]) / ubest / 1e9;
        double gbs = bytes * (double)n / best / 1e9;
        double mem_ns = bytes / update, cap = 100.0 * mem_ns / (compute / threads[t]);
        /* The pattern in the step's own byte count: the GB/s the step would
         * show if it took the pattern's time, so "of shape" is a ratio of
         * times whatever either count leaves out. */
        double shape = pattern ? bytes * (double)BENCH_LIMIT_ELEMENTS / sbest / 1e9 : 0.0;
        char shape_col[2][16] = {"-", "-"};
        if (shape > 0.0) {
            snprintf(shape_col[0], sizeof shape_col[0], "%.0f%%", 100.0 * shape / update);
            snprintf(shape_col[1], sizeof shape_col[1], "%.0f%%", 100.0 * gbs / shape);
        }
        /* What bounds the step, from these numbers: the line is 90% of the
         * update stream; under it, the arithmetic (cap), the memory
         * system's limit for this traffic pattern (shape), or neither. */
        /* A step cannot really outrun its own traffic with the arithmetic
         * taken out; one that ran over 115% of it met a slow pass of the
         * pattern, which then bounds nothing (open). */
        /* ns per parameter: the step, its arithmetic split across the
         * threads, its pattern (serial: the step takes about their sum). */
        double step_ns = best / (double)n * 1e9, arith_ns = compute / threads[t];
        double traffic_ns = shape > 0.0 ? bytes / shape : 0.0;
        const char *reading = "met";
        if (gbs < 0.9 * update) {
            if (cap < 100.0) reading = "arithmetic";
            else if (shape > 0.0 && gbs > 1.15 * shape) reading = "open";
            else if (shape > 0.0 && shape < 0.9 * update && gbs >= 0.9 * shape)
                reading = "pattern";
            else if (shape > 0.0 && bench_serial(step_ns, arith_ns, traffic_ns))
                reading = "serial";
            else if (shape > 0.0) reading = "code";
            else reading = "?";
        }
        printf("%-15s %10zu %3d %8.1f %10.3f %8.2f %8.0f%% %7.1f %9.0f%% %9.3f %6.0f%% %6s "
               "%8s  %s\n", label, n, threads[t], bytes, best / (double)n * 1e9, gbs,
               100.0 * gbs / d->triad[t], update, 100.0 * gbs / update, compute, cap,
               shape_col[0], shape_col[1], reading);
        if (d->summary && threads[t] == 2) {
            char what[96], why[160] = "";
            snprintf(what, sizeof what, "%s GB/s / in-place update stream, %zu params, 2 threads",
                     label, n);
            if (!strcmp(reading, "arithmetic"))
                snprintf(why, sizeof why, "arithmetic: in cache it allows %.0f%% of the stream",
                         cap);
            else if (!strcmp(reading, "serial"))
                snprintf(why, sizeof why, "serial: its arithmetic in cache %.3f ns/param at 2 "
                         "threads and its traffic alone %.3f (%.0f%% of the stream) add to "
                         "%.0f%% of the step's %.3f", arith_ns, traffic_ns,
                         100.0 * shape / update, 100.0 * (arith_ns + traffic_ns) / step_ns,
                         step_ns);
            else if (shape > 0.0)
                snprintf(why, sizeof why, "%s: its traffic alone %.0f%% of the stream, the "
                         "step %.0f%% of its traffic", reading, 100.0 * shape / update,
                         100.0 * gbs / shape);
            else if (!strcmp(reading, "?"))
                snprintf(why, sizeof why, "open: no traffic pattern for these states");
            bench_summary_why("2 elementwise", what, gbs / update, ">=", 0.9, why);
        }
        dsc_optimizer_free(opt);
    }
}

int bench_elementwise_main(int argc, char **argv)
{
    /* getopt_long: --only NAME and --only=NAME; optind = 0 restarts glibc's
     * parser for this argv. */
    static const struct option longs[] = {{"quick", no_argument, 0, 'q'},
                                          {"only", required_argument, 0, 'o'},
                                          {0, 0, 0, 0}};
    int quick = 0, c;
    const char *only = NULL;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longs, NULL)) != -1) {
        if (c == 'q') quick = 1;
        else if (c == 'o') only = optarg;
        else {
            fprintf(stderr, "descent bench elementwise: bad option \"%s\"\n"
                    "usage: descent bench elementwise [--quick] [--only NAME]\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "descent bench elementwise: unexpected argument \"%s\"\n"
                "usage: descent bench elementwise [--quick] [--only NAME]\n", argv[optind]);
        return 2;
    }
    dsc_build_info_t bi = dsc_build_info();
    printf("descent %s, blas %s, openmp %d, kernels %s\n", bi.version, bi.blas, bi.openmp,
           bi.kernels);
    size_t sizes[2] = {1u << 20, 100000000u};
    int nsizes = quick ? 1 : 2;
    int threads[2] = {1, 2};
    double triad[2], update[2];
    bench_update *stream[2] = {NULL, NULL};
    for (int t = 0; t < 2; t++) {
        triad[t] = bench_triad_gbs(BENCH_LIMIT_ELEMENTS, threads[t], 5);
        stream[t] = bench_update_new(BENCH_LIMIT_ELEMENTS, threads[t]);
        if (!stream[t]) {
            fprintf(stderr, "cannot allocate the update stream's arrays\n");
            bench_update_free(stream[0]);
            return 1;
        }
        double ubest = 1e30;
        for (int r = 0; r < 5; r++) {
            double ut = bench_update_pass(stream[t]);
            ubest = ut < ubest ? ut : ubest;
        }
        update[t] = bench_update_pass_bytes(stream[t]) / ubest / 1e9;
        printf("triad bandwidth, %d thread%s: %.2f GB/s; in-place update: %.2f GB/s\n",
               threads[t], t ? "s" : "", triad[t], update[t]);
        printf("  a step's traffic, no arithmetic (scan g, then p and k float32 states in "
               "place), of update:");
        for (int k = 0; k < 4; k++)
            printf(" k=%d %.0f%%", k, 100.0 * shape_gbs(k, 4, 0, t, threads[t]) / update[t]);
        printf("; 8-bit states:");
        for (int k = 1; k < 3; k++)
            printf(" k=%d %.0f%%", k, 100.0 * shape_gbs(k, 1, 0, t, threads[t]) / update[t]);
        printf("\n");
    }
    printf("(a triad's destination is read before it is written, so a step that updates in\n"
           " place can pass 100%% of triad; the in-place update is its real ceiling)\n");
    printf("(cache ns: ns/param of the same step at 1 thread on %d parameters that stay in\n"
           " cache, its arithmetic alone; cap: the fraction of the update stream that\n"
           " arithmetic allows at this thread count, under 100%% = compute-bound)\n",
           CACHE_PARAMS);
    printf("(shape: the same traffic with no arithmetic, as a fraction of the update stream;\n"
           " of shape: the step's GB/s over it. reading, under 90%% of the update stream:\n"
           " arithmetic = cap under 100%%; pattern = the traffic itself is under 90%% and the\n"
           " step within 90%% of it; serial = the step takes its arithmetic time (cache ns\n"
           " over the threads) plus its pattern's time, within 10%%: the two are not\n"
           " overlapped; code = none of these, the step is slower than its traffic;\n"
           " open = the step ran over 115%% of its pattern, which then bounds nothing;\n"
           " ? = states of another kind, no pattern measured; the pattern is timed once\n"
           " before each of the row's first 7 steps, as the stream)\n");
    printf("(stream: the in-place update's GB/s, best of one pass before each of the row's\n"
           " steps; of update, cap and the readings use it)\n");
    printf("\n%-15s %10s %3s %8s %10s %8s %9s %7s %10s %9s %7s %6s %8s  %s\n", "optimizer",
           "params", "thr", "B/param", "ns/param", "GB/s", "of triad", "stream", "of update",
           "cache ns", "cap", "shape", "of shape", "reading");
    for (int s = 0; s < nsizes; s++) {
        size_t n = sizes[s];
        int64_t cols = 1024, rows = (int64_t)(n / 1024);
        n = (size_t)(rows * cols);
        float *w = malloc(n * sizeof *w), *g = malloc(n * sizeof *g);
        if (!w || !g) {
            fprintf(stderr, "cannot allocate %zu parameters\n", n);
            free(w);
            free(g);
            for (int t = 0; t < 2; t++) bench_update_free(stream[t]);
            return 1;
        }
        for (size_t i = 0; i < n; i++) {
            w[i] = 0.01f * (float)((i * 2654435761u) % 1000) - 5.0f;
            g[i] = 0.001f * (float)((i * 40503u) % 2000) - 1.0f;
        }
        bench_data d = {w, g, n, rows, cols, triad, update, stream, s == nsizes - 1};
        for (int k = 0; k < dsc_optimizer_kind_count(); k++) {
            const dsc_optimizer_info *info = dsc_optimizer_kind(k);
            if (info->matrix || (only && strcmp(only, info->name))) continue;
            bench_rows(&d, info->name, info->name, NULL);
        }
        for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++)
            if (!only || !strcmp(only, variants[v].family))
                bench_rows(&d, variants[v].family, variants[v].label, variants[v].extra);
        free(w);
        free(g);
    }
    for (int t = 0; t < 2; t++) bench_update_free(stream[t]);
    dsc_set_num_threads(0);
    return 0;
}
