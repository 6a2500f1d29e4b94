/* heavy_tail.c - experiment 4: sign-based optimizers under heavy-tailed
 * gradient noise (Yu, Tao et al., "Sign-Based Optimizers Are Effective
 * Under Heavy-Tailed Noise", arXiv 2602.07425), against tuned baselines.
 *
 * f(x) = 1/2 ||x||^2, d = 100, x0 ~ N(0, I); every coordinate of the
 * stochastic gradient gets independent symmetric noise of scale 1:
 * Student-t with nu = tail index (infinite variance for nu <= 2) or
 * symmetric alpha-stable (Chambers-Mallows-Stuck; infinite variance for
 * alpha < 2; alpha = 2 is Gaussian with variance 2, the light-tailed
 * control). Cost of a run: the first step with f(x_t) <= 0.05 f(x0) (true
 * loss), "did not reach" if not within the budget.
 *
 * Methods. Sign-based: signsgd, signum (momentum 0.9), lion (betas 0.9,
 * 0.99). Non-sign baselines: sgd; sgd with global-norm clipping
 * (dsc_optimizer_set_clip), whose clip level is tuned on its own grid (3 per
 * decade, extended like the lr grid) with the lr tuned at every level; and
 * normalized SGD (the lab hands sgd the gradient divided by its l2 norm).
 * Every lr is tuned by the shared tuner on the median cost over the seeds
 * (4 per decade, extended until interior); all methods see the same x0 and
 * the same noise (common random numbers). The comparison is the best sign
 * method against the best tuned baseline, per seed: steps of the baseline
 * over steps of the sign method, median with a bootstrap 90% interval. A
 * baseline that never reaches the target gives no ratio: the table says
 * "did not reach" and the claim's interval has no upper end.
 * Why SGD suffers: its stationary iterate is a weighted sum of the noise,
 * alpha-stable with scale ~ lr^(1 - 1/alpha), so at alpha = 1.2 shrinking
 * lr tenfold shrinks the scale by only 10^(1/6); a sign step is bounded by
 * lr whatever the noise. Clipping and normalization also bound the step,
 * which is why they are the fair baselines.
 * Sizes: TEST budget 1500 steps, 10 seeds; DEFAULT 3000, 12; LARGE 5000, 20. */
#include "theory.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const th_heavy_opt_names[TH_HT_NOPT] = {"sgd", "sgd+clip", "nsgd",
                                                    "signsgd", "signum", "lion"};
#define FIRST_SIGN 3

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

typedef struct {
    int d, seeds;
    long budget;
    const float *noise;  /* seeds x budget x d */
    const double *x0;    /* seeds x d */
    double *target;      /* per seed */
    double clip;         /* for sgd+clip */
    char err[256];
} ht_cell;

static void spec_for(int k, double lr, char *spec, size_t n)
{
    switch (k) {
    case 4: snprintf(spec, n, "signum:lr=%.17g,momentum=0.9", lr); break;
    case 5: snprintf(spec, n, "lion:lr=%.17g,beta1=0.9,beta2=0.99", lr); break;
    case 3: snprintf(spec, n, "signsgd:lr=%.17g", lr); break;
    default: snprintf(spec, n, "sgd:lr=%.17g", lr); break;
    }
}

static int ht_hit(void *user, int k, double lr, int s, long cap, double *steps)
{
    ht_cell *c = user;
    int d = c->d;
    float x[100], g[100];
    char spec[128];
    spec_for(k, lr, spec, sizeof spec);
    for (int i = 0; i < d; i++) x[i] = (float)c->x0[(size_t)s * d + (size_t)i];
    int64_t shape[1] = {d};
    dsc_optimizer *o = th_opt_new(spec, x, g, 1, shape, c->err, sizeof c->err);
    if (!o) return -1;
    if (k == 1) dsc_optimizer_set_clip(o, DSC_CLIP_NORM, c->clip);
    const float *nz = c->noise + (size_t)s * (size_t)c->budget * (size_t)d;
    *steps = INFINITY;
    if (cap > c->budget) cap = c->budget;
    for (long t = 0; t <= cap; t++) {
        double f = 0.0;
        for (int i = 0; i < d; i++) f += 0.5 * (double)x[i] * x[i];
        if (f <= c->target[s]) {
            *steps = (double)t;
            break;
        }
        if (!isfinite(f) || t == cap) break;
        double n2 = 0.0;
        for (int i = 0; i < d; i++) {
            double gi = (double)x[i] + (double)nz[(size_t)t * d + (size_t)i];
            g[i] = (float)gi;
            n2 += gi * gi;
        }
        if (k == 2 && n2 > 0) { /* normalized SGD: the step has length lr */
            double inv = 1.0 / sqrt(n2);
            for (int i = 0; i < d; i++) g[i] = (float)((double)g[i] * inv);
        }
        dsc_optimizer_step(o);
    }
    dsc_optimizer_free(o);
    return 0;
}

/* The lr tuning of one method (clip fixed in the cell). */
static int tune_method(ht_cell *c, int k, lab_tune_result *r, double *hits)
{
    lab_tune_opts o = lab_tune_defaults();
    o.lr_lo = 1e-3, o.lr_hi = 1e-1;
    /* SGD: stability limit 2/L_max = 2; the others move at most ~lr per
     * coordinate per step, and x0 is O(1): lr above 10 is never sensible. */
    o.lr_cap = k == 0 || k == 1 ? 0.99 * 2.0 : 10.0;
    o.lr_floor = 1e-6;
    o.max_evals = 20;
    return th_tune_hits(c, ht_hit, k, c->seeds, c->budget, &o, r, hits);
}

/* Outer tuning of the clip level: the score of a level is the best median
 * cost over lrs at that level. */
typedef struct {
    ht_cell *c;
    double *hits;
    int failed;
} clip_job;

static int clip_score(double level, double bound, void *user, double *score)
{
    (void)bound;
    clip_job *j = user;
    j->c->clip = level;
    lab_tune_result r;
    if (tune_method(j->c, 1, &r, j->hits) != 0) {
        j->failed = 1;
        return -1;
    }
    *score = r.best_score;
    return 0;
}

int th_run_heavy_tail(const th_ctx *c, th_heavy_result *res)
{
    th_heavy_result local;
    if (!res) res = &local;
    memset(res, 0, sizeof *res);
    const int d = 100;
    long budget = 3000;
    int seeds = 12;
    if (c->size == TH_SIZE_TEST) budget = 1500, seeds = 10;
    if (c->size == TH_SIZE_LARGE) budget = 5000, seeds = 20;
    res->ncfg = NCFG, res->seeds = seeds, res->budget = budget;
    th_verdicts V;
    th_verdicts_init(&V, "heavy-tail");
    th_say(c, "\n## heavy-tail: sign methods against tuned baselines under heavy-tailed noise\n\n"
              "f(x) = 1/2 ||x||^2, d = %d, x0 ~ N(0, I), iid noise of scale 1 on every "
              "coordinate (Student-t with nu = tail index, or symmetric alpha-stable; tail "
              "index 2.0 is the light-tailed control). Cost: steps until f(x_t) <= 0.05 f(x0), "
              "budget %ld; %d seeds, the same x0 and noise for every method. Every lr tuned on "
              "the median cost (4 per decade, extended until interior); sgd+clip also tunes its "
              "global-norm clip level (3 per decade); nsgd = SGD on g/||g||_2. Cells: median "
              "steps [90%% bootstrap interval] (lr).\n\n",
              d, budget, seeds);
    for (int k = 0; k < TH_HT_NOPT; k++) {
        const char *kind = k <= 2 ? "sgd" : th_heavy_opt_names[k];
        res->ran[k] = th_have(kind);
    }
    if (!res->ran[0] || !res->ran[3]) {
        th_say(c, "sgd or signsgd is not registered in this build: skipped.\n");
        return 1;
    }
    size_t per_seed = (size_t)budget * d;
    float *noise = malloc(sizeof(float) * per_seed * (size_t)seeds);
    double *x0 = malloc(sizeof(double) * (size_t)d * (size_t)seeds);
    double *target = malloc(sizeof(double) * (size_t)seeds);
    double *hits = malloc(sizeof(double) * (size_t)seeds * TH_HT_NOPT);
    double *tmp = malloc(sizeof(double) * (size_t)seeds * 2);
    if (!noise || !x0 || !target || !hits || !tmp) {
        free(noise), free(x0), free(target), free(hits), free(tmp);
        return -1;
    }
    for (int s = 0; s < seeds; s++) {
        th_rng r;
        th_rng_seed(&r, c->seed, 7000 + (uint64_t)s);
        double f = 0;
        for (int i = 0; i < d; i++) {
            x0[(size_t)s * d + (size_t)i] = th_rng_normal(&r);
            f += 0.5 * x0[(size_t)s * d + (size_t)i] * x0[(size_t)s * d + (size_t)i];
        }
        target[s] = 0.05 * f;
    }
    int rc = 0;
    th_say(c, "| noise | tail index |");
    for (int k = 0; k < TH_HT_NOPT; k++)
        if (res->ran[k]) th_say(c, " %s |", th_heavy_opt_names[k]);
    th_say(c, " best baseline / best sign method |\n|---|---|");
    for (int k = 0; k < TH_HT_NOPT; k++)
        if (res->ran[k]) th_say(c, "---|");
    th_say(c, "---|\n");
    void *h;
    FILE *csv = th_csv_open(c, "heavy_tail.csv", &h);
    if (csv) fprintf(csv, "noise,tail_index,optimizer,lr,clip,seed,steps\n");
    for (int a = 0; a < NCFG && rc == 0; a++) {
        snprintf(res->cfg_name[a], sizeof res->cfg_name[a], "%s", cfgs[a].name);
        res->alpha[a] = cfgs[a].alpha;
        for (int s = 0; s < seeds; s++) {
            th_rng r;
            th_rng_seed(&r, c->seed, 8000 + 100 * (uint64_t)a + (uint64_t)s);
            float *nz = noise + (size_t)s * per_seed;
            for (size_t j = 0; j < per_seed; j++)
                nz[j] = (float)(cfgs[a].stable ? th_rng_stable(&r, cfgs[a].alpha)
                                               : th_rng_student_t(&r, cfgs[a].alpha));
        }
        ht_cell cell = {d, seeds, budget, noise, x0, target, 0, ""};
        th_say(c, "| %s | %.1f |", cfgs[a].name, cfgs[a].alpha);
        for (int k = 0; k < TH_HT_NOPT; k++) {
            double *hk = hits + (size_t)k * seeds;
            for (int s = 0; s < seeds; s++) hk[s] = INFINITY;
            res->best_lr[a][k] = NAN;
            res->median[a][k] = (lab_ci){INFINITY, INFINITY, INFINITY};
            if (!res->ran[k]) continue;
            lab_tune_result tr;
            char what[96];
            snprintf(what, sizeof what, "heavy-tail %s %.1f %s", cfgs[a].name, cfgs[a].alpha,
                     th_heavy_opt_names[k]);
            if (k == 1) {
                /* clip level: outer tuner; then the inner lr tuning at the best level */
                clip_job cj = {&cell, hk, 0};
                lab_tune_opts co = lab_tune_defaults();
                co.per_decade = 3, co.lr_lo = 1.0, co.lr_hi = 30.0, co.lr_floor = 1e-3;
                co.max_evals = 12;
                lab_tune_result cr;
                char err[160];
                if (lab_tune(&co, clip_score, &cj, &cr, err, sizeof err) != 0) {
                    th_say(c, "\nerror: %s %s\n", err, cell.err);
                    rc = -1;
                    break;
                }
                char cw[128];
                snprintf(cw, sizeof cw, "%s (clip level)", what);
                th_tuned(c, &V, cw, &cr);
                cell.clip = cr.best >= 0 ? cr.best_lr : 10.0;
                res->clip[a] = cell.clip;
                res->clip_edge[a] = cr.edge;
            }
            if (tune_method(&cell, k, &tr, hk) != 0) {
                th_say(c, "\nerror: %s\n", cell.err);
                rc = -1;
                break;
            }
            th_tuned(c, &V, what, &tr);
            res->best_lr[a][k] = tr.best_lr;
            res->lr_edge[a][k] = tr.edge;
            lab_bootstrap_median(hk, seeds, TH_BOOT, TH_LEVEL, c->seed + 30 + (uint64_t)k,
                                 &res->median[a][k]);
            char m[64], l[48];
            th_fmt_lr(l, sizeof l, &tr);
            if (k == 1)
                snprintf(l + strlen(l), sizeof l - strlen(l), ", clip %.3g%s", cell.clip,
                         res->clip_edge[a] ? " EDGE" : "");
            th_say(c, " %s (%s) |", th_fmt_ci(m, sizeof m, res->median[a][k]), l);
            if (csv)
                for (int s = 0; s < seeds; s++)
                    fprintf(csv, "%s,%.2f,%s,%.9g,%.9g,%d,%.9g\n", cfgs[a].name, cfgs[a].alpha,
                            th_heavy_opt_names[k], tr.best_lr, k == 1 ? cell.clip : NAN, s, hk[s]);
        }
        if (rc) break;
        /* Best baseline and best sign method by their median cost (ties: the
         * earlier in the table); per-seed ratio of their costs. */
        int bb = -1, bs = -1;
        for (int k = 0; k < TH_HT_NOPT; k++) {
            if (!res->ran[k]) continue;
            int *best = k < FIRST_SIGN ? &bb : &bs;
            if (*best < 0 || lab_tune_better(res->median[a][k].est, res->median[a][*best].est))
                *best = k;
        }
        res->best_base[a] = bb, res->best_sign[a] = bs;
        for (int s = 0; s < seeds; s++) {
            double nb = hits[(size_t)bb * seeds + (size_t)s], ns = hits[(size_t)bs * seeds + (size_t)s];
            tmp[s] = isinf(nb) && isinf(ns) ? NAN : nb / ns; /* both missed: no ratio */
        }
        /* seeds where neither reached carry no information on the ratio */
        int n = 0;
        for (int s = 0; s < seeds; s++)
            if (!isnan(tmp[s])) tmp[n++] = tmp[s];
        lab_ci rci = {NAN, NAN, NAN};
        if (n >= 2) lab_bootstrap_median(tmp, n, TH_BOOT, TH_LEVEL, c->seed + 40 + (uint64_t)a, &rci);
        res->ratio[a] = rci;
        char m[64];
        if (isinf(res->median[a][bb].est))
            th_say(c, " every baseline: did not reach (sign: %s) |\n", th_heavy_opt_names[bs]);
        else if (isinf(res->median[a][bs].est))
            th_say(c, " every sign method: did not reach |\n");
        else
            th_say(c, " %s (%s / %s) |\n", th_fmt_ci(m, sizeof m, rci), th_heavy_opt_names[bb],
                   th_heavy_opt_names[bs]);
    }
    if (csv) th_csv_close(c, h);
    if (rc == 0) {
        th_say(c, "\nRatio column: per seed, steps of the best tuned baseline over steps of "
                  "the best sign method (median [90%% interval]); `did not reach` is never "
                  "turned into a number.\n");
        for (int a = 0; a < NCFG; a++) {
            char cl[240];
            int bb = res->best_base[a], bs = res->best_sign[a];
            snprintf(cl, sizeof cl, "%s noise, tail index %.1f: the best sign method (%s) reaches "
                     "the target in fewer steps than the best tuned baseline (%s)%s",
                     cfgs[a].name, cfgs[a].alpha, th_heavy_opt_names[bs], th_heavy_opt_names[bb],
                     cfgs[a].alpha >= 2.0 ? " [light-tailed control]" : "");
            th_claim_add(&V, cl, LAB_CLAIM_ABOVE, 1.0, NAN, res->ratio[a], NAN);
        }
        /* Plot: median steps against the tail index, alpha-stable noise. */
        double al[3], med[TH_HT_NOPT][3], lo[TH_HT_NOPT][3], hi[TH_HT_NOPT][3];
        lab_series s[TH_HT_NOPT];
        int ns = 0;
        for (int k = 0; k < TH_HT_NOPT; k++) {
            if (!res->ran[k]) continue;
            for (int a = 3; a < 6; a++) {
                al[a - 3] = cfgs[a].alpha;
                med[k][a - 3] = res->median[a][k].est;
                lo[k][a - 3] = res->median[a][k].lo;
                hi[k][a - 3] = res->median[a][k].hi;
            }
            s[ns++] = (lab_series){th_heavy_opt_names[k], 3, al, med[k], lo[k], hi[k]};
        }
        lab_plot p = {"heavy-tail: alpha-stable noise, median steps to 0.05 f(x0) at the best lr "
                      "(90% interval; missing = did not reach)",
                      "tail index alpha", "steps", 0, 1, ns, s};
        if (ns) th_plot(c, &p, "heavy_tail");
        res->edge_hits = V.edge_hits;
        if (th_verdicts_finish(c, &V) != 0) rc = -1;
    }
    free(noise), free(x0), free(target), free(hits), free(tmp);
    return rc;
}
