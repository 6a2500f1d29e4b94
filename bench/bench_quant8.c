/* bench_quant8.c - the 8-bit steps against the float32 steps of the same
 * optimizers, and both against this machine's memory bandwidth.
 *
 * First the fast path is checked against the reference (a few steps on
 * 70,001 parameters, parameters and states bitwise equal); then a
 * STREAM-style triad (a = b + s*c) measures the bandwidth at 1 and 2
 * threads; then each pair takes full dsc_optimizer_step()s on 1M and 100M
 * parameters, interleaved (best of 50 or 9 each: the build machine is
 * shared, so minima are what compare): adam (float32 states) against
 * adam8bit, and sgd8bit, lion8bit, adagrad8bit against themselves with
 * float32 states (min_8bit_size above the tensor: the same optimizer's
 * 32-bit kernels). Printed: ns per parameter for the whole step and for the
 * family's kernel alone (the driver's gradient scan is the same for both),
 * GB/s of the bytes the step touches (p read and written, the gradient read
 * by the driver's scan and the kernel, every state read and written: 8
 * bytes per float32 state, 2 + 8/256 per 8-bit state), the fraction of the
 * triad, and the ratio 8-bit / float32 (issue 15's target: at most 1.3).
 *
 * The SUMMARY rows name the code path: "avx512" when the 8-bit steps take
 * their AVX-512 kernels, else the portable C (built for whatever the build
 * targets: scripts/bench-quant8-paths.sh builds it for AVX2 and for the
 * x86-64 baseline and names them with --path).
 *
 * usage: bench_quant8 [--quick] [--path NAME]
 *   --quick      1M parameters only
 *   --path NAME  the path's name in the SUMMARY rows */
#include "descent.h"

#include "bench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


static uint64_t rng = 0x9E3779B97F4A7C15ull;

static float uniform(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(rng >> 40) / (double)(1ull << 23) - 1.0);
}

static dsc_optimizer *make(const char *spec, float *w, const float *g, size_t n, int ref)
{
    dsc_optimizer *o = dsc_optimizer_new();
    int64_t shape[1] = {(int64_t)n};
    if (!o || dsc_optimizer_add_group(o, "g", spec) != DSC_OK ||
        dsc_optimizer_add_param(o, "w", w, g, 1, shape, DSC_ROLE_VECTOR, "g") != DSC_OK) {
        fprintf(stderr, "bench_quant8: %s: %s\n", spec, o ? dsc_optimizer_error(o) : "no memory");
        dsc_optimizer_free(o);
        return NULL;
    }
    dsc_optimizer_use_reference(o, ref);
    return o;
}

/* Every state slot of the parameter "w" (what a checkpoint holds), read
 * through the public slot API and compared byte for byte. */
static int same_slots(dsc_optimizer *a, dsc_optimizer *b)
{
    int n = dsc_optimizer_slot_count(a, "w", 0), same = n == dsc_optimizer_slot_count(b, "w", 0);
    for (int s = 0; same && s < n; s++) {
        dsc_slot_info ia, ib;
        if (dsc_optimizer_slot_info(a, "w", 0, s, &ia) != DSC_OK ||
            dsc_optimizer_slot_info(b, "w", 0, s, &ib) != DSC_OK || ia.bytes != ib.bytes)
            return 0;
        unsigned char *x = malloc(ia.bytes), *y = malloc(ia.bytes);
        same = x && y && dsc_optimizer_read_slot(a, "w", 0, ia.name, x, ia.bytes) == DSC_OK &&
               dsc_optimizer_read_slot(b, "w", 0, ia.name, y, ia.bytes) == DSC_OK &&
               !memcmp(x, y, ia.bytes);
        free(x);
        free(y);
    }
    return same;
}

/* Fast path == reference, bitwise, before any timing. */
static int check_against_ref(const char *spec)
{
    size_t n = 70001;
    float *w[2], *g = calloc(n, sizeof *g); /* read at add time: start defined */
    dsc_optimizer *o[2];
    for (int k = 0; k < 2; k++) {
        w[k] = malloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++) w[k][i] = 0.001f * (float)(i % 1000);
        o[k] = make(spec, w[k], g, n, k);
        if (!o[k]) return 0;
    }
    int same = 1;
    for (int t = 0; t < 4; t++) {
        for (size_t i = 0; i < n; i++) g[i] = uniform();
        dsc_optimizer_step(o[0]);
        dsc_optimizer_step(o[1]);
        same &= !memcmp(w[0], w[1], n * sizeof(float));
        same &= same_slots(o[0], o[1]);
    }
    for (int k = 0; k < 2; k++) {
        dsc_optimizer_free(o[k]);
        free(w[k]);
    }
    free(g);
    printf("check %-10s fast == reference (4 steps, 70001 params, bitwise): %s\n", spec,
           same ? "yes" : "NO");
    return same;
}

typedef struct {
    double step_ns, kernel_ns; /* per parameter, best of the repetitions */
} timing;

/* One float32 / 8-bit pair: specs and the number of states. */
typedef struct {
    const char *name32, *spec32, *name8, *spec8;
    int nstates;
} pair;

#define F32_STATES "min_8bit_size=1000000000000"
static const pair pairs[] = {
    {"adam", "adam", "adam8bit", "adam8bit", 2},
    {"sgd8bit/f32", "sgd8bit:lr=0.01,momentum=0.9," F32_STATES, "sgd8bit",
     "sgd8bit:lr=0.01,momentum=0.9", 1},
    {"lion8bit/f32", "lion8bit:" F32_STATES, "lion8bit", "lion8bit", 1},
    {"adagrad8bit/f32", "adagrad8bit:" F32_STATES, "adagrad8bit", "adagrad8bit", 1},
};
#define NPAIRS ((int)(sizeof pairs / sizeof pairs[0]))

/* The two steps on the same buffers, interleaved so both see the same
 * machine (the build machine is shared): best of `reps`. */
static void time_pair(const pair *pr, float *w, const float *g, size_t n, int reps,
                      timing *t32, timing *t8)
{
    const char *spec[2] = {pr->spec32, pr->spec8};
    timing *out[2] = {t32, t8};
    dsc_optimizer *o[2];
    double best[2] = {1e30, 1e30}, best_k[2] = {1e30, 1e30};
    for (int k = 0; k < 2; k++) {
        o[k] = make(spec[k], w, g, n, 0);
        if (!o[k]) {
            if (k) dsc_optimizer_free(o[0]);
            return;
        }
        dsc_optimizer_step(o[k]); /* touch the states */
    }
    for (int r = 0; r < reps; r++)
        for (int k = 0; k < 2; k++) {
            double t0 = bench_now();
            dsc_optimizer_step(o[k]);
            double dt = bench_now() - t0;
            if (dt < best[k]) best[k] = dt;
            /* The family alone: the driver's scan and hyperparameters left out. */
            t0 = bench_now();
            dsc_bench_group_update(o[k], 0);
            dt = bench_now() - t0;
            if (dt < best_k[k]) best_k[k] = dt;
        }
    for (int k = 0; k < 2; k++) {
        dsc_optimizer_free(o[k]);
        out[k]->step_ns = best[k] * 1e9 / (double)n;
        out[k]->kernel_ns = best_k[k] * 1e9 / (double)n;
    }
}

int main(int argc, char **argv)
{
    int quick = 0;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            quick = 1;
        } else if (!strcmp(argv[i], "--path") && i + 1 < argc) {
            path = argv[++i];
        } else {
            fprintf(stderr, "usage: bench_quant8 [--quick] [--path NAME]\n");
            return 2;
        }
    }
    if (!path) path = strstr(dsc_build_info().kernels, "avx512 for 8-bit") ? "avx512" : "portable";
    printf("8-bit code path: %s (kernels: %s)\n", path, dsc_build_info().kernels);
    if (!dsc_optimizer_kind_find("adam")) {
        fprintf(stderr, "bench_quant8: the float32 adam family is not registered\n");
        return 1;
    }
    for (int k = 0; k < NPAIRS; k++)
        if (!check_against_ref(pairs[k].spec8) || !check_against_ref(pairs[k].spec32)) return 1;

    const size_t sizes[2] = {1000000, 100000000};
    double triad[3];
    for (int th = 1; th <= 2; th++) triad[th] = bench_triad_gbs(32u << 20, th, 5);
    printf("triad (3 x 128 MiB): %.2f GB/s at 1 thread, %.2f GB/s at 2 threads\n\n", triad[1],
           triad[2]);
    printf("%-16s %5s %3s | %9s %9s %7s %6s | %9s\n", "optimizer", "n", "thr", "step ns/p",
           "kernel ns", "GB/s", "triad", "8bit/f32");
    /* The 8-bit step on 1M parameters (in cache), per pair and thread
     * count: the 100M step cannot beat it, so over the 100M float32 step it
     * is a floor under the row's ratio, measured (see the reading below). */
    double cached8[NPAIRS][3] = {{0}};
    for (int si = 0; si < (quick ? 1 : 2); si++) {
        size_t n = sizes[si];
        float *w = malloc(n * sizeof *w), *g = malloc(n * sizeof *g);
        if (!w || !g) {
            printf("%zu parameters: not enough memory, skipped\n", n);
            free(w);
            free(g);
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            w[i] = uniform();
            g[i] = uniform();
        }
        int reps = n > 10000000 ? 9 : 50; /* 5 at 100M: rows moved by 0.5 between runs */
        const char *label = n >= 100000000 ? "100M" : "1M";
        for (int k = 0; k < NPAIRS; k++) {
            const pair *pr = &pairs[k];
            double bytes32 = bench_shape_bytes(1, pr->nstates, 4);
            double bytes8 = bench_shape_bytes(1, pr->nstates, 1);
            for (int th = 1; th <= 2; th++) {
                dsc_set_num_threads(th);
                timing t32 = {0, 0}, t8 = {0, 0};
                time_pair(pr, w, g, n, reps, &t32, &t8);
                double gb32 = bytes32 / t32.step_ns, gb8 = bytes8 / t8.step_ns;
                printf("%-16s %5s %3d | %9.3f %9.3f %7.2f %5.0f%% |\n", pr->name32, label, th,
                       t32.step_ns, t32.kernel_ns, gb32, 100 * gb32 / triad[th]);
                printf("%-16s %5s %3d | %9.3f %9.3f %7.2f %5.0f%% | %4.2f (kernel %4.2f)\n",
                       pr->name8, label, th, t8.step_ns, t8.kernel_ns, gb8,
                       100 * gb8 / triad[th], t8.step_ns / t32.step_ns,
                       t8.kernel_ns / t32.kernel_ns);
                if (si == 0) cached8[k][th] = t8.step_ns;
                if (si == (quick ? 0 : 1)) { /* the largest size run: make bench's summary */
                    char what[128], why[320] = "";
                    snprintf(what, sizeof what, "%s / %s step time, %s params, %d thread%s, %s",
                             pr->name8, pr->name32, label, th, th > 1 ? "s" : "", path);
                    double ratio = t8.step_ns / t32.step_ns;
                    double in_cache = cached8[k][th] / t32.step_ns;
                    /* Not met: is the 8-bit step's own work, data in cache, already over
                     * the line (arithmetic)? If not, the 8-bit step's memory traffic
                     * alone (bench_shape_gbs: the same bytes, codes and block scales,
                     * no arithmetic) says how much of the rest memory explains: where
                     * the step takes about the sum of the two (bench_serial), the core
                     * did not overlap them (serial); otherwise no bound was found
                     * (open). Only with both sizes measured. */
                    if (!quick && ratio > 1.3) {
                        if (in_cache > 1.3) {
                            snprintf(why, sizeof why, "arithmetic: with its data in cache the "
                                     "8-bit step alone is %.2fx the float32 step at %s",
                                     in_cache, label);
                        } else {
                            double gbs =
                                bench_shape_gbs(BENCH_LIMIT_ELEMENTS, pr->nstates, 1, 0, th, 5);
                            double traffic = gbs > 0 ? bytes8 / gbs / t32.step_ns : 0.0;
                            char base[48];
                            snprintf(base, sizeof base, "float32 step at %s", label);
                            bench_why_split(why, sizeof why, ratio, in_cache, traffic,
                                            "8-bit step", base);
                        }
                    }
                    bench_summary_why("1 quant8", what, ratio, "<=", 1.3, why);
                }
            }
        }
        free(w);
        free(g);
    }
    dsc_set_num_threads(0);
    return 0;
}
