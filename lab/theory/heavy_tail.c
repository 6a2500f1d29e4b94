/* heavy_tail.c - experiment 4: sign-based optimizers under heavy-tailed
 * gradient noise (Yu, Tao et al., "Sign-Based Optimizers Are Effective
 * Under Heavy-Tailed Noise", arXiv 2602.07425).
 *
 * f(x) = 1/2 ||x||^2, d = 100, x0 ~ N(0, I); every coordinate of the
 * stochastic gradient gets independent symmetric noise of scale 1:
 * Student-t with nu = tail index (infinite variance for nu <= 2) or
 * symmetric alpha-stable (Chambers-Mallows-Stuck; infinite variance for
 * alpha < 2, alpha = 2 is Gaussian with variance 2: the light-tailed
 * reference). Optimizers: sgd, sgd with global-norm clipping at sqrt(d)
 * (dsc_optimizer_set_clip), signsgd, signum (momentum 0.9), lion
 * (betas 0.9, 0.99), adamw (weight_decay 0). Each runs every lr of the grid
 * 10^0, 10^-0.5, ..., 10^-3.5 on the same x0 and the same noise (common
 * random numbers); the lr with the lowest median final loss is reported with
 * the 10th and 90th percentiles over seeds: with infinite variance, means
 * say nothing (theory-notes.md).
 * Why SGD suffers: its stationary iterate is a weighted sum of the noise,
 * alpha-stable with scale ~ lr^(1 - 1/alpha); at alpha = 1.2 shrinking lr
 * tenfold shrinks the scale by only 10^(1/6). A sign step is bounded by lr
 * whatever the noise, and its drift depends on the noise density at 0.
 * Sizes: TEST 400 steps, 8 seeds; DEFAULT 1000 steps, 16 seeds; FULL 3000
 * steps, 64 seeds. */
#include "theory.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const th_heavy_opt_names[TH_HT_NOPT] = {"sgd", "sgd+clip", "signsgd",
                                                    "signum", "lion", "adamw"};
static const char *const kinds[TH_HT_NOPT] = {"sgd", "sgd", "signsgd", "signum", "lion", "adamw"};
#define NLR 8

typedef struct {
    const char *name;
    int stable; /* 0: Student-t */
    double alpha;
} noise_cfg;

static const noise_cfg cfgs[] = {
    {"student-t", 0, 1.2}, {"student-t", 0, 1.5}, {"student-t", 0, 2.0},
    {"alpha-stable", 1, 1.2}, {"alpha-stable", 1, 1.5}, {"alpha-stable", 1, 2.0},
};
#define NCFG ((int)(sizeof cfgs / sizeof cfgs[0]))

static void spec_for(int k, double lr, char *spec, size_t n)
{
    switch (k) {
    case 3: snprintf(spec, n, "signum:lr=%.17g,momentum=0.9", lr); break;
    case 4: snprintf(spec, n, "lion:lr=%.17g,beta1=0.9,beta2=0.99", lr); break;
    case 5: snprintf(spec, n, "adamw:lr=%.17g,weight_decay=0", lr); break;
    default: snprintf(spec, n, "%s:lr=%.17g", kinds[k], lr); break;
    }
}

int th_run_heavy_tail(const th_ctx *c, th_heavy_result *res)
{
    th_heavy_result local;
    if (!res) res = &local;
    memset(res, 0, sizeof *res);
    const int d = 100;
    int steps = 1000, seeds = 16;
    if (c->size == TH_SIZE_TEST) steps = 400, seeds = 8;
    if (c->size == TH_SIZE_FULL) steps = 3000, seeds = 64;
    res->ncfg = NCFG;
    size_t per_seed = (size_t)steps * d;
    double *noise = malloc(sizeof(double) * per_seed * (size_t)seeds);
    double *x0 = malloc(sizeof(double) * (size_t)d * (size_t)seeds);
    double *fin = malloc(sizeof(double) * (size_t)seeds), *tmp = malloc(sizeof(double) * (size_t)seeds);
    float x[100], g[100];
    if (!noise || !x0 || !fin || !tmp) {
        free(noise), free(x0), free(fin), free(tmp);
        return -1;
    }
    th_say(c, "\n## heavy-tail: Student-t and symmetric alpha-stable gradient noise\n\n"
              "f(x) = 1/2 ||x||^2, d = %d, x0 ~ N(0, I), iid noise of scale 1 on every "
              "coordinate; %d steps, %d seeds; lr tuned on 10^0 .. 10^-3.5 (half decades) by "
              "the median final loss; sgd+clip clips the global norm at sqrt(d) = 10. Cells: "
              "median final loss [10th, 90th percentile] (lr).\n\n",
              d, steps, seeds);
    int rc = 0;
    for (int k = 0; k < TH_HT_NOPT; k++) {
        res->ran[k] = th_have(kinds[k]);
        if (!res->ran[k]) {
            th_say(c, "%s is not registered in this build: skipped.\n", kinds[k]);
            rc = 1;
        }
    }
    th_say(c, "| noise | tail index |");
    for (int k = 0; k < TH_HT_NOPT; k++)
        if (res->ran[k]) th_say(c, " %s |", th_heavy_opt_names[k]);
    th_say(c, "\n|---|---|");
    for (int k = 0; k < TH_HT_NOPT; k++)
        if (res->ran[k]) th_say(c, "---|");
    th_say(c, "\n");
    for (int s = 0; s < seeds; s++) {
        th_rng r;
        th_rng_seed(&r, c->seed, 7000 + (uint64_t)s);
        for (int i = 0; i < d; i++) x0[(size_t)s * d + (size_t)i] = th_rng_normal(&r);
    }
    double start = 0.0;
    for (int i = 0; i < d; i++) start += 0.5 * x0[i] * x0[i];
    res->start_loss = start;
    void *h;
    FILE *csv = th_csv_open(c, "heavy_tail.csv", &h);
    if (csv) fprintf(csv, "noise,tail_index,optimizer,lr,median,p10,p90,chosen\n");
    char err[512];
    for (int a = 0; a < NCFG; a++) {
        snprintf(res->cfg_name[a], sizeof res->cfg_name[a], "%s", cfgs[a].name);
        res->alpha[a] = cfgs[a].alpha;
        for (int s = 0; s < seeds; s++) {
            th_rng r;
            th_rng_seed(&r, c->seed, 8000 + 100 * (uint64_t)a + (uint64_t)s);
            double *nz = noise + (size_t)s * per_seed;
            for (size_t j = 0; j < per_seed; j++)
                nz[j] = cfgs[a].stable ? th_rng_stable(&r, cfgs[a].alpha)
                                       : th_rng_student_t(&r, cfgs[a].alpha);
        }
        th_say(c, "| %s | %.1f |", cfgs[a].name, cfgs[a].alpha);
        for (int k = 0; k < TH_HT_NOPT; k++) {
            if (!res->ran[k]) continue;
            double best_med = INFINITY;
            int best_j = -1;
            res->median[a][k] = res->q10[a][k] = res->q90[a][k] = res->best_lr[a][k] = NAN;
            for (int j = 0; j < NLR; j++) {
                double lr = pow(10.0, -0.5 * j);
                char spec[128];
                spec_for(k, lr, spec, sizeof spec);
                for (int s = 0; s < seeds; s++) {
                    for (int i = 0; i < d; i++) x[i] = (float)x0[(size_t)s * d + (size_t)i];
                    int64_t shape[1] = {d};
                    dsc_optimizer *o = th_opt_new(spec, x, g, 1, shape, err, sizeof err);
                    if (!o) {
                        th_say(c, "\nerror: %s\n", err);
                        free(noise), free(x0), free(fin), free(tmp);
                        if (csv) th_csv_close(c, h);
                        return -1;
                    }
                    if (k == 1) dsc_optimizer_set_clip(o, DSC_CLIP_NORM, sqrt((double)d));
                    const double *nz = noise + (size_t)s * per_seed;
                    for (int t = 0; t < steps; t++) {
                        for (int i = 0; i < d; i++)
                            g[i] = (float)((double)x[i] + nz[(size_t)t * d + (size_t)i]);
                        dsc_optimizer_step(o);
                    }
                    double f = 0.0;
                    for (int i = 0; i < d; i++) f += 0.5 * (double)x[i] * x[i];
                    fin[s] = isfinite(f) ? f : INFINITY;
                    dsc_optimizer_free(o);
                }
                memcpy(tmp, fin, sizeof(double) * (size_t)seeds);
                double med = th_quantile(tmp, seeds, 0.5), p10 = th_quantile(tmp, seeds, 0.1),
                       p90 = th_quantile(tmp, seeds, 0.9);
                int better = med < best_med;
                if (better) {
                    best_med = med;
                    best_j = j;
                    res->best_lr[a][k] = lr, res->median[a][k] = med;
                    res->q10[a][k] = p10, res->q90[a][k] = p90;
                }
                if (csv)
                    fprintf(csv, "%s,%.2f,%s,%.9g,%.9g,%.9g,%.9g,0\n", cfgs[a].name,
                            cfgs[a].alpha, th_heavy_opt_names[k], lr, med, p10, p90);
            }
            if (csv)
                fprintf(csv, "%s,%.2f,%s,%.9g,%.9g,%.9g,%.9g,1\n", cfgs[a].name, cfgs[a].alpha,
                        th_heavy_opt_names[k], res->best_lr[a][k], res->median[a][k],
                        res->q10[a][k], res->q90[a][k]);
            th_say(c, " %.3g [%.2g, %.2g] (%.2g%s) |", res->median[a][k], res->q10[a][k],
                   res->q90[a][k], res->best_lr[a][k],
                   best_j == 0 || best_j == NLR - 1 ? "*" : "");
        }
        th_say(c, "\n");
    }
    if (csv) th_csv_close(c, h);
    th_say(c, "\n(*: best lr at the edge of the grid.) Start loss (seed 0) %.3g. Median final loss of SGD over the best sign-based "
              "method (signsgd, signum, lion):\n\n",
           start);
    for (int a = 0; a < NCFG; a++) {
        double best_sign = INFINITY;
        for (int k = 2; k <= 4; k++)
            if (res->ran[k] && res->median[a][k] < best_sign) best_sign = res->median[a][k];
        if (res->ran[0] && isfinite(best_sign))
            th_say(c, "- %s %.1f: %.3gx\n", cfgs[a].name, cfgs[a].alpha,
                   res->median[a][0] / best_sign);
    }
    /* Plot: median final loss vs tail index for each optimizer, alpha-stable
     * noise, with the 10-90%% band. */
    double al[3], med[TH_HT_NOPT][3], lo[TH_HT_NOPT][3], hi[TH_HT_NOPT][3];
    lab_series s[TH_HT_NOPT];
    int ns = 0;
    for (int k = 0; k < TH_HT_NOPT; k++) {
        if (!res->ran[k]) continue;
        for (int a = 3; a < 6; a++) {
            al[a - 3] = cfgs[a].alpha;
            med[k][a - 3] = res->median[a][k];
            lo[k][a - 3] = res->q10[a][k];
            hi[k][a - 3] = res->q90[a][k];
        }
        s[ns++] = (lab_series){th_heavy_opt_names[k], 3, al, med[k], lo[k], hi[k]};
    }
    lab_plot p = {"heavy-tail: alpha-stable noise, median final loss at the best lr "
                  "(10-90% band)",
                  "tail index alpha", "final loss", 0, 1, ns, s};
    if (ns) th_plot(c, &p, "heavy_tail");
    free(noise), free(x0), free(fin), free(tmp);
    return rc;
}
