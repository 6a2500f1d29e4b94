/* bf16.c - bf16 parameters (master copy, stochastic rounding) against the
 * same optimizer on float32 parameters: time per parameter, bytes of memory
 * per parameter, and the fraction of this machine's in-place update
 * bandwidth (measured in the same run).
 *
 * Memory per parameter counts everything a training step keeps: the
 * caller's parameter and gradient (4 + 4 bytes in float32, 2 + 2 in bf16),
 * descent's checkpointed state (dsc_param_info.state_bytes: with a master,
 * 4 more) and its other buffers (work_bytes: the widened gradient, and for
 * stochastic rounding the widened parameter).
 * Traffic per parameter, for the GB/s column, counts what a step touches:
 * float32: parameter read+write 8, gradient read twice 8, state 2 x state;
 * bf16 adds the gradient widened (read 2, write 4) and the float32 result
 * narrowed (read 4, write 2), and, stochastic, the parameter widened
 * (read 2, write 4); with a master, the master is the parameter the step
 * reads and writes.
 *
 * The second table keeps float32 parameters and stores the optimizer state
 * in bf16 (the group key bf16_state: 1 rounded to nearest, 2 stochastically):
 * AdamW's state falls from 8 to 4 bytes per parameter, so its step moves 24
 * bytes instead of 32. Its SUMMARY row is the time of the bf16-state step
 * over the float32-state step at 2 threads: below 1 where the step is bound
 * by memory traffic, as it should be at this size.
 *
 * usage: descent bench bf16 [--quick]  (or build/bench_bf16) */
#include "bench.h"
#include "descent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint16_t bf16_of(float x)
{
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    return (uint16_t)((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
}

typedef struct {
    float *w, *g;
    uint16_t *wb, *gb;
    size_t n;
    double update_gbs[2];
} bf_data;

/* mode -1: float32; else a dsc_bf16_mode. The best step time, or -1. */
static double row(const bf_data *d, const char *spec, int mode, int t, int threads)
{
    dsc_set_num_threads(threads);
    dsc_optimizer *opt = dsc_optimizer_new();
    int64_t shape[1] = {(int64_t)d->n};
    dsc_status st = dsc_optimizer_add_group(opt, "g", spec);
    if (st == DSC_OK)
        st = mode < 0 ? dsc_optimizer_add_param(opt, "w", d->w, d->g, 1, shape, DSC_ROLE_AUTO, "g")
                      : dsc_optimizer_add_param_bf16(opt, "w", d->wb, d->gb, 1, shape,
                                                     DSC_ROLE_AUTO, "g", (dsc_bf16_mode)mode);
    if (st != DSC_OK) {
        printf("%s: %s\n", spec, dsc_optimizer_error(opt));
        dsc_optimizer_free(opt);
        return -1;
    }
    dsc_param_info info;
    dsc_optimizer_param_info(opt, 0, &info);
    double n = (double)d->n, state = (double)info.state_bytes / n;
    double mem = (mode < 0 ? 8.0 : 4.0) + state + (double)info.work_bytes / n;
    /* float32: p r+w 8, g read twice 8, state r+w. Master: the master plays
     * p's part (not counted again in the state), gradient widened 2+4,
     * master narrowed 4+2. Stochastic: gradient and parameter widened 6+6,
     * narrowed 6. */
    double traffic = 16.0 + 2.0 * (mode == DSC_BF16_MASTER ? state - 4.0 : state);
    if (mode == DSC_BF16_MASTER) traffic += 12.0;
    if (mode == DSC_BF16_STOCHASTIC) traffic += 18.0;
    dsc_optimizer_step(opt);
    double best = 1e30;
    for (int r = 0; r < 10; r++) {
        double t0 = bench_now();
        dsc_optimizer_step(opt);
        double dt = bench_now() - t0;
        if (dt < best) best = dt;
    }
    double gbs = traffic * n / best / 1e9;
    static const char *modes[3] = {"float32", "bf16 master", "bf16 stoch."};
    printf("%-36s %-12s %3d %10.3f %9.1f %8.1f %8.2f %9.0f%%\n", spec, modes[mode + 1], threads,
           best / n * 1e9, mem, traffic, gbs, 100.0 * gbs / d->update_gbs[t]);
    dsc_optimizer_free(opt);
    return best;
}

int bench_bf16_main(int argc, char **argv)
{
    int quick = argc > 1 && !strcmp(argv[1], "--quick");
    if (argc > 1 && !quick) {
        fprintf(stderr, "usage: descent bench bf16 [--quick]\n");
        return 2;
    }
    bf_data d;
    d.n = quick ? (size_t)1 << 20 : (size_t)16 << 20;
    d.w = malloc(d.n * sizeof *d.w);
    d.g = malloc(d.n * sizeof *d.g);
    d.wb = malloc(d.n * sizeof *d.wb);
    d.gb = malloc(d.n * sizeof *d.gb);
    if (!d.w || !d.g || !d.wb || !d.gb) {
        fprintf(stderr, "bench bf16: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < d.n; i++) {
        d.w[i] = 0.01f * (float)((i * 2654435761u) % 1000) - 5.0f;
        d.g[i] = 0.001f * (float)((i * 40503u) % 2000) - 1.0f;
        d.wb[i] = bf16_of(d.w[i]);
        d.gb[i] = bf16_of(d.g[i]);
    }
    int threads[2] = {1, 2};
    for (int t = 0; t < 2; t++) {
        d.update_gbs[t] = bench_update_gbs(BENCH_LIMIT_ELEMENTS, threads[t], 5);
        printf("in-place update bandwidth, %d thread%s: %.2f GB/s\n", threads[t], t ? "s" : "",
               d.update_gbs[t]);
    }
    printf("%zu parameters\n%-36s %-12s %3s %10s %9s %8s %8s %10s\n", d.n, "optimizer",
           "parameters", "thr", "ns/param", "B memory", "B moved", "GB/s", "of update");
    const char *specs[2] = {"adamw:lr=1e-3", "sgd:lr=0.01,momentum=0.9"};
    for (int s = 0; s < 2; s++)
        for (int t = 0; t < 2; t++)
            for (int mode = -1; mode <= 1; mode++) row(&d, specs[s], mode, t, threads[t]);

    printf("\nbf16 optimizer states, float32 parameters (bf16_state)\n");
    const char *state_specs[2][3] = {
        {"adamw:lr=1e-3", "adamw:lr=1e-3,bf16_state=1", "adamw:lr=1e-3,bf16_state=2"},
        {"lion:lr=1e-4", "lion:lr=1e-4,bf16_state=1", "lion:lr=1e-4,bf16_state=2"},
    };
    for (int s = 0; s < 2; s++)
        for (int t = 0; t < 2; t++) {
            double best[3];
            for (int k = 0; k < 3; k++) best[k] = row(&d, state_specs[s][k], -1, t, threads[t]);
            if (s == 0 && t == 1 && best[0] > 0 && best[1] > 0 && best[2] > 0) {
                /* The reading of a row over 1: the bf16-state step on the
                 * first 1M parameters (in cache) per parameter, over the
                 * float32-state step at full size; over 1, its arithmetic
                 * (the rounding) alone misses the goal. Not in --quick
                 * (the full size is the cache size there). */
                double cached[3] = {0, 0, 0};
                bf_data small = d;
                small.n = (size_t)1 << 20;
                if (!quick) {
                    printf("the same on %zu parameters (in cache), for the readings:\n",
                           small.n);
                    for (int k = 1; k < 3; k++)
                        cached[k] = row(&small, state_specs[s][k], -1, t, threads[t]);
                }
                for (int k = 1; k < 3; k++) {
                    char what[64], why[320] = "";
                    snprintf(what, sizeof what, "adamw bf16_state=%d / float32 state, 2 thr", k);
                    double ratio = best[k] / best[0];
                    double in_cache =
                        cached[k] / (double)small.n / (best[0] / (double)d.n);
                    if (ratio > 1.0 && cached[k] > 0 && in_cache > 1.0)
                        snprintf(why, sizeof why, "arithmetic: with its data in cache the "
                                 "bf16-state step alone is %.2fx the float32-state step at "
                                 "%zu params", in_cache, d.n);
                    else if (ratio > 1.0 && cached[k] > 0) {
                        /* The traffic of a step with two bf16 states alone
                         * (bench_shape_gbs: the same bytes, no arithmetic) over
                         * the float32-state step: how much of the rest memory
                         * explains. */
                        double gbs = bench_shape_gbs(BENCH_LIMIT_ELEMENTS, 2, 2, 0,
                                                     threads[t], 5);
                        double traffic = gbs > 0 ? bench_shape_bytes(1, 2, 2) / gbs /
                                                       (best[0] * 1e9 / (double)d.n)
                                                 : 0.0;
                        char base[64];
                        snprintf(base, sizeof base, "float32-state step at %zu params", d.n);
                        bench_why_split(why, sizeof why, ratio, in_cache, traffic,
                                        "bf16-state step", base);
                    }
                    bench_summary_why("18 bf16 states", what, ratio, "<=", 1.0, why);
                }
            }
        }
    dsc_set_num_threads(0);
    free(d.w);
    free(d.g);
    free(d.wb);
    free(d.gb);
    return 0;
}
