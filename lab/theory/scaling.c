/* scaling.c - experiment 3: how SGD's and SignSGD's sample complexities for
 * l1-stationarity scale with the dimension d and the noise density phi
 * (Tao, Yu, Zhang, arXiv 2605.06615; beyond the paper's toy models).
 *
 * The bounds compared (theory-notes.md): on l_inf-smooth functions with
 * separable noise of per-coordinate standard deviations sigma_i, the noise
 * term of SignSGD's upper bound scales with ||sigma||_1^2 and that of SGD's
 * lower bound with d ||sigma||_2^2, so their ratio is
 *     d ||sigma||_2^2 / ||sigma||_1^2 = 1 / phi,
 * d at phi = 1/d (all the noise on one coordinate) and 1 at phi = 1.
 *
 * SGD's lower bound is a worst case over the class, so the instance matters.
 * Main instance ("stiff"): f(x) = 1/2 sum L_i x_i^2 with one stiff
 * coordinate L_1 = 1 and d - 1 flat ones L_i = 1/(d-1), so the l_inf
 * smoothness constant sum_i L_i = 2 and the l2 constant max_i L_i = 1 do
 * not change with d; x0_i uniform in [0.5, 1.5] (away from the lr grid's
 * multiples, so sign descent cannot land on 0 exactly). The noise
 * ||sigma||_2 = 1 is spread equally over k coordinates, the stiff one and
 * k - 1 flat ones: phi = k/d, from 1/d (k = 1) through about d^-1/2 to 1.
 * SGD must keep lr * sigma_1^2 small for the stiff coordinate while its
 * flat coordinates contract at rate lr / (d-1); sign descent moves every
 * coordinate at speed lr. Control instance ("isotropic"): L_i = 2/d, noise
 * on one coordinate; here tuned SGD has no d-fold handicap (theory-notes).
 *
 * Measurement: R seeds run in lockstep; a run reaches the target at the
 * first step t where the seed-mean of ||grad f(x_t)||_1 (true gradient,
 * float64) is <= eps = 0.1 ||grad f(x0)||_1: an estimate of
 * min_t E||grad f(x_t)||_1 <= eps, the quantity the bounds are about (a
 * single run's minimum can be hit by a lucky draw of one noisy coordinate).
 * Cost = t stochastic gradients (batch 1). Each method's lr is searched on
 * the grid 2^0, 2^-1, ... downward until two lrs in a row do not improve on
 * the best; runs stop once they exceed the best count so far. The table
 * flags a best lr at the top of the grid and counts censored at the budget.
 * Sizes: TEST d in {10, 30, 100}, R = 4; DEFAULT {10, 100, 1000}, R = 8;
 * FULL adds d = 10000. */
#include "theory.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int d, k;          /* dimension, noisy coordinates (the first k) */
    int iso;           /* 1: isotropic control */
    double *L, *x0, sigma; /* sigma: per noisy coordinate */
    double Lmax;
    double eps;
    int seeds;
    uint64_t seed;
} instance;

/* Steps until the seed-mean l1 gradient norm is <= eps, or -1 if not within
 * `cap` steps. */
static long hit_time(const instance *in, const char *opt, double lr, long cap, int *err)
{
    int d = in->d, R = in->seeds;
    float *x = malloc(sizeof(float) * (size_t)d * (size_t)R);
    float *g = malloc(sizeof(float) * (size_t)d * (size_t)R);
    dsc_optimizer **o = calloc((size_t)R, sizeof *o);
    th_rng *rng = malloc(sizeof(th_rng) * (size_t)R);
    long hit = -1;
    *err = 0;
    if (!x || !g || !o || !rng) {
        *err = 1;
        goto done;
    }
    char spec[96], msg[256];
    snprintf(spec, sizeof spec, "%s:lr=%.17g", opt, lr);
    int64_t shape[1] = {d};
    for (int r = 0; r < R; r++) {
        float *xr = x + (size_t)r * (size_t)d;
        for (int i = 0; i < d; i++) xr[i] = (float)in->x0[i];
        th_rng_seed(&rng[r], in->seed, 5000 + (uint64_t)r);
        o[r] = th_opt_new(spec, xr, g + (size_t)r * (size_t)d, 1, shape, msg, sizeof msg);
        if (!o[r]) {
            *err = 1;
            goto done;
        }
    }
    double low = INFINITY;
    long t_low = 0;
    for (long t = 0; t <= cap; t++) {
        double l1 = 0.0;
        for (int r = 0; r < R; r++) {
            float *xr = x + (size_t)r * (size_t)d, *gr = g + (size_t)r * (size_t)d;
            for (int i = 0; i < d; i++) {
                double gi = in->L[i] * (double)xr[i];
                l1 += fabs(gi);
                if (i < in->k) gi += in->sigma * th_rng_normal(&rng[r]);
                gr[i] = (float)gi;
            }
        }
        l1 /= R;
        if (l1 <= in->eps) {
            hit = t;
            break;
        }
        if (!isfinite(l1) || t == cap) break;
        /* Plateau: no new low in the second half of the run (lr too large
         * for the noise floor): give up. */
        if (l1 < low) low = l1, t_low = t;
        else if (t > 2 * t_low + 500) break;
        for (int r = 0; r < R; r++) dsc_optimizer_step(o[r]);
    }
done:
    if (o)
        for (int r = 0; r < R; r++) dsc_optimizer_free(o[r]);
    free(x), free(g), free(o), free(rng);
    return hit;
}

/* Best count over the lr grid; *best_lr, *edge (best at the grid's top). */
static double tune(const instance *in, const char *opt, long budget, double *best_lr, int *edge,
                   int *err)
{
    long best = -1;
    int worse = 0;
    *best_lr = NAN;
    *edge = 0;
    int top = (int)floor(log2(2.0 / in->Lmax)); /* the stability limit 2/max L_i */
    for (int j = -top; j <= 30; j++) {
        double lr = ldexp(1.0, -j);
        long cap = best >= 0 ? best : budget;
        long t = hit_time(in, opt, lr, cap, err);
        if (*err) return NAN;
        if (t >= 0 && (best < 0 || t < best)) {
            best = t, *best_lr = lr, *edge = j == -top;
            worse = 0;
        } else if (best >= 0 && ++worse >= 2) {
            break;
        }
    }
    return best >= 0 ? (double)best : NAN;
}

static void make_instance(instance *in, int d, int k, int iso, int seeds, uint64_t seed)
{
    in->d = d, in->k = k, in->iso = iso, in->seeds = seeds, in->seed = seed;
    th_rng r;
    th_rng_seed(&r, seed, 4000 + (uint64_t)d);
    double l1 = 0.0;
    for (int i = 0; i < d; i++) {
        in->L[i] = iso ? 2.0 / d : (i == 0 ? 1.0 : 1.0 / (d - 1));
        in->Lmax = i == 0 || in->L[i] > in->Lmax ? in->L[i] : in->Lmax;
        in->x0[i] = 0.5 + th_rng_uniform(&r);
        l1 += in->L[i] * in->x0[i];
    }
    in->sigma = k > 0 ? 1.0 / sqrt((double)k) : 0.0; /* ||sigma||_2 = 1 */
    in->eps = 0.1 * l1;
}

int th_run_scaling(const th_ctx *c, th_scaling_result *res)
{
    th_scaling_result local;
    if (!res) res = &local;
    memset(res, 0, sizeof *res);
    static const int dims_test[] = {10, 30, 100}, dims_def[] = {10, 100, 1000},
                     dims_full[] = {10, 100, 1000, 10000};
    const int *dims = dims_def;
    int nd = 3, seeds = 16;
    if (c->size == TH_SIZE_TEST) dims = dims_test, seeds = 8;
    if (c->size == TH_SIZE_FULL) dims = dims_full, nd = 4;
    res->nd = nd;
    res->nphi = 3;
    th_say(c, "\n## scaling: stochastic gradients to l1-stationarity vs d and phi\n\n"
              "Instance `stiff`: f = 1/2 sum L_i x_i^2, L_1 = 1, L_i = 1/(d-1) else (sum L_i = 2 "
              "for every d), x0_i ~ U[0.5, 1.5]; noise N(0, sigma_i^2) with ||sigma||_2 = 1 "
              "spread equally over k coordinates (x_1 and k-1 flat ones), phi = k/d. Control "
              "`isotropic`: L_i = 2/d, noise on x_1 (phi = 1/d). Target: seed-mean of "
              "||grad f(x_t)||_1 <= 0.1 ||grad f(x0)||_1 over up to %d seeds; cost = steps (batch 1); "
              "lr tuned on 2^-j (from the stability limit 2/max L_i down) for each method. `bound` = d ||sigma||_2^2 / ||sigma||_1^2 = "
              "1/phi, the ratio of SGD's lower to SignSGD's upper bound.\n\n",
              seeds);
    if (!th_have("sgd") || !th_have("signsgd")) {
        th_say(c, "sgd or signsgd is not registered in this build: skipped.\n");
        return 1;
    }
    res->ran = 1;
    th_say(c, "| instance | d | phi | SGD grads (lr) | SignSGD grads (lr) | SGD/SignSGD | bound |\n"
              "|---|---|---|---|---|---|---|\n");
    void *h;
    FILE *csv = th_csv_open(c, "scaling.csv", &h);
    if (csv)
        fprintf(csv, "instance,d,k,phi,sgd_grads,sgd_lr,signsgd_grads,signsgd_lr,ratio,bound\n");
    double dd[TH_SCALE_MAX_D], col[5][TH_SCALE_MAX_D], bound1[TH_SCALE_MAX_D];
    for (int a = 0; a < nd; a++) {
        int d = dims[a];
        res->d[a] = d;
        dd[a] = d;
        instance in;
        in.L = malloc(sizeof(double) * (size_t)d);
        in.x0 = malloc(sizeof(double) * (size_t)d);
        if (!in.L || !in.x0) {
            free(in.L), free(in.x0);
            if (csv) th_csv_close(c, h);
            return -1;
        }
        int ks[5] = {1, (int)lround(sqrt((double)d)), d, 1, 0};
        for (int b = 0; b < 5; b++) {
            int iso = b == 3;
            /* Seeds: the noisy part of ||grad f||_1 sums k terms, so its
             * relative spread is ~ 1/sqrt(k R): sparse noise needs the most. */
            int R = ks[b] == 0 ? 1 : ks[b] < 4 ? seeds : ks[b] < 32 ? seeds / 2 : 4;
            make_instance(&in, d, ks[b], iso, R, c->seed);
            long budget = 2000L + 1000L * d;
            double lr[2], n[2];
            int edge[2], err = 0;
            n[0] = tune(&in, "sgd", budget, &lr[0], &edge[0], &err);
            if (!err) n[1] = tune(&in, "signsgd", budget, &lr[1], &edge[1], &err);
            if (err) {
                th_say(c, "error: could not run the optimizers\n");
                free(in.L), free(in.x0);
                if (csv) th_csv_close(c, h);
                return -1;
            }
            double phi = (double)ks[b] / d, ratio = n[0] / n[1];
            if (b == 4) {
                res->ratio_clean[a] = ratio;
            } else if (!iso) {
                res->phi[a][b] = phi;
                res->n_sgd[a][b] = n[0];
                res->n_sign[a][b] = n[1];
                res->ratio[a][b] = ratio;
            } else {
                res->ratio_iso[a] = ratio;
            }
            col[b][a] = ratio;
            bound1[a] = d;
            char s0[64], s1[64];
            if (isnan(n[0])) snprintf(s0, sizeof s0, "> %ld", budget);
            else snprintf(s0, sizeof s0, "%.0f (2^%d%s)", n[0], (int)lround(log2(lr[0])),
                          edge[0] ? ", grid top" : "");
            if (isnan(n[1])) snprintf(s1, sizeof s1, "> %ld", budget);
            else snprintf(s1, sizeof s1, "%.0f (2^%d%s)", n[1], (int)lround(log2(lr[1])),
                          edge[1] ? ", grid top" : "");
            const char *iname = iso ? "isotropic" : b == 4 ? "stiff, no noise" : "stiff";
            if (b == 4)
                th_say(c, "| %s | %d | - | %s | %s | %.3g | - |\n", iname, d, s0, s1, ratio);
            else
                th_say(c, "| %s | %d | %.3g | %s | %s | %.3g | %.3g |\n", iname, d, phi, s0, s1,
                       ratio, 1.0 / phi);
            if (csv)
                fprintf(csv, "%s,%d,%d,%.9g,%.0f,%.9g,%.0f,%.9g,%.9g,%.9g\n", iname, d, ks[b],
                        phi, n[0], lr[0], n[1], lr[1], ratio, b == 4 ? NAN : 1.0 / phi);
        }
        free(in.L), free(in.x0);
    }
    if (csv) th_csv_close(c, h);
    res->slope_sparse = th_loglog_slope(dd, col[0], nd);
    res->slope_dense = th_loglog_slope(dd, col[2], nd);
    res->slope_iso = th_loglog_slope(dd, col[3], nd);
    res->slope_clean = th_loglog_slope(dd, col[4], nd);
    double mid = th_loglog_slope(dd, col[1], nd);
    th_say(c, "\nFitted log-log slope of SGD/SignSGD in d (bound: 1 at phi = 1/d, 0.5 at phi = "
              "d^-1/2, 0 at phi = 1):\n"
              "- stiff, phi = 1/d: **%.2f**\n- stiff, phi = d^-1/2: %.2f\n"
              "- stiff, phi = 1: **%.2f**\n- isotropic control, phi = 1/d: %.2f\n"
              "- stiff without noise (conditioning alone): %.2f\n",
              res->slope_sparse, mid, res->slope_dense, res->slope_iso, res->slope_clean);
    th_say(c, "\nReading: on the stiff instance the ratio at phi = 1/d grows with d (slope %.2f), "
              "but the same instance without noise gives slope %.2f, so most of that factor "
              "comes from SGD's step being capped by the stiff coordinate while the loss sits "
              "in the flat ones (theory-notes.md); spreading the same ||sigma||_2 over every "
              "coordinate (phi = 1) removes it (slope %.2f), and on the isotropic control "
              "tuned SGD shows no d-fold handicap (slope %.2f).\n",
           res->slope_sparse, res->slope_clean, res->slope_dense, res->slope_iso);
    lab_series s[6] = {
        {"stiff, phi = 1/d", nd, dd, col[0], NULL, NULL},
        {"stiff, phi = d^-1/2", nd, dd, col[1], NULL, NULL},
        {"stiff, phi = 1", nd, dd, col[2], NULL, NULL},
        {"isotropic, phi = 1/d", nd, dd, col[3], NULL, NULL},
        {"stiff, no noise", nd, dd, col[4], NULL, NULL},
        {"bound ratio at phi = 1/d (= d)", nd, dd, bound1, NULL, NULL},
    };
    lab_plot p = {"scaling: SGD / SignSGD stochastic gradients to l1-stationarity", "d",
                  "SGD grads / SignSGD grads", 1, 1, 6, s};
    th_plot(c, &p, "scaling");
    return 0;
}
