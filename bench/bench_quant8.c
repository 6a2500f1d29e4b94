/* bench_quant8.c - the 8-bit Adam step against the float32 Adam step, and
 * both against this machine's memory bandwidth.
 *
 * First the fast path is checked against the reference (a few steps on
 * 70,001 parameters, parameters and states bitwise equal); then a
 * STREAM-style triad (a = b + s*c) measures the bandwidth at 1 and 2
 * threads; then adam (float32 states) and adam8bit take full
 * dsc_optimizer_step()s on 1M and 100M parameters, interleaved (best of 50
 * or 5 each: the build machine is shared, so minima are what compare). Bytes moved per
 * parameter are what the step touches: p read and written (8), the gradient
 * read by the driver's scan and by the kernel (4 + 4), every state read and
 * written: adam 2 x 8, adam8bit 2 x (2 codes + 8/256 absmax). Printed: ns
 * per parameter for the whole step and for the family's kernel alone (the
 * driver's gradient scan is the same for both), GB/s, the fraction of the
 * triad, and the ratio 8-bit / float32 (target: at most 1.5).
 *
 * usage: bench_quant8 [--quick]    --quick: 1M parameters only */
#include "descent.h"
#include "core/internal.h"

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
        const dsc_param *a = o[0]->params[0], *b = o[1]->params[0];
        for (int s = 0; s < a->nslots; s++)
            same &= !memcmp(a->slots[s].data, b->slots[s].data,
                            a->slots[s].count * dsc_dtype_size(a->slots[s].dtype));
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

/* adam and adam8bit on the same buffers, their steps interleaved so both
 * see the same machine (the build machine is shared): best of `reps`. */
static void time_pair(float *w, const float *g, size_t n, int reps, timing *t32, timing *t8)
{
    const char *spec[2] = {"adam", "adam8bit"};
    timing *out[2] = {t32, t8};
    dsc_optimizer *o[2];
    double best[2] = {1e30, 1e30}, best_k[2] = {1e30, 1e30};
    for (int k = 0; k < 2; k++) {
        o[k] = make(spec[k], w, g, n, 0);
        if (!o[k]) return;
        dsc_optimizer_step(o[k]); /* touch the states */
    }
    for (int r = 0; r < reps; r++)
        for (int k = 0; k < 2; k++) {
            double t0 = bench_now();
            dsc_optimizer_step(o[k]);
            double dt = bench_now() - t0;
            if (dt < best[k]) best[k] = dt;
            /* The family alone: the driver's scan and hyperparameters left out. */
            dsc_group *grp = o[k]->groups[0];
            dsc_step_ctx ctx = {0, o[k]->step};
            t0 = bench_now();
            grp->family->step(grp, &ctx);
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
    int quick = argc > 1 && !strcmp(argv[1], "--quick");
    if (!dsc_optimizer_kind_find("adam")) {
        fprintf(stderr, "bench_quant8: the float32 adam family is not registered\n");
        return 1;
    }
    if (!check_against_ref("adam8bit") || !check_against_ref("adam")) return 1;

    const size_t sizes[2] = {1000000, 100000000};
    const double bytes32 = 8 + 8 + 2 * 8.0, bytes8 = 8 + 8 + 2 * (2 + 8.0 / 256);
    double triad[3];
    for (int th = 1; th <= 2; th++) triad[th] = bench_triad_gbs(32u << 20, th, 5);
    printf("triad (3 x 128 MiB): %.2f GB/s at 1 thread, %.2f GB/s at 2 threads\n", triad[1],
           triad[2]);
    printf("bytes moved per parameter: adam %.1f, adam8bit %.2f\n\n", bytes32, bytes8);
    printf("%-10s %5s %3s | %9s %9s %7s %6s | %9s\n", "optimizer", "n", "thr", "step ns/p",
           "kernel ns", "GB/s", "triad", "8bit/f32");
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
        int reps = n > 10000000 ? 5 : 50;
        for (int th = 1; th <= 2; th++) {
            dsc_set_num_threads(th);
            timing t32 = {0, 0}, t8 = {0, 0};
            time_pair(w, g, n, reps, &t32, &t8);
            const char *label = n >= 100000000 ? "100M" : "1M";
            double gb32 = bytes32 / t32.step_ns, gb8 = bytes8 / t8.step_ns;
            printf("%-10s %5s %3d | %9.3f %9.3f %7.2f %5.0f%% |\n", "adam", label, th,
                   t32.step_ns, t32.kernel_ns, gb32, 100 * gb32 / triad[th]);
            printf("%-10s %5s %3d | %9.3f %9.3f %7.2f %5.0f%% | %4.2f (kernel %4.2f)\n",
                   "adam8bit", label, th, t8.step_ns, t8.kernel_ns, gb8,
                   100 * gb8 / triad[th], t8.step_ns / t32.step_ns,
                   t8.kernel_ns / t32.kernel_ns);
            if (si == (quick ? 0 : 1)) { /* the largest size run: make bench's summary */
                char what[96];
                snprintf(what, sizeof what, "adam8bit / adam step time, %s params, %d thread%s",
                         label, th, th > 1 ? "s" : "");
                bench_summary("1 quant8", what, t8.step_ns / t32.step_ns, "<=", 1.3);
            }
        }
        free(w);
        free(g);
    }
    dsc_set_num_threads(0);
    return 0;
}
