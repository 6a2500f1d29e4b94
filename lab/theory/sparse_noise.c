/* sparse_noise.c - experiment 2: SignSGD beats SGD when the gradient noise
 * sits on one coordinate (Tao, Yu, Zhang, arXiv 2605.06615, toy model
 * toy_models/sto.py of Dingzhen230/SignSGD_Outperforms_SGD).
 *
 * f(x) = 1/2 ||x||^2, d = 100, x0 ~ N(0, I); the stochastic gradient is
 * x + xi e_1 with xi ~ N(0, 100^2); 3000 steps; 42 seeds; SGD lr 1e-3,
 * SignSGD lr 1e-2 (the paper's values). Reported: the mean loss over seeds
 * with the 10th-90th percentile band. SGD's iterate keeps a variance of
 * about lr * 100^2 / 2 on the noisy coordinate; the sign of a noisy
 * coordinate moves it by at most lr, so SignSGD's loss stays near its
 * start there while every clean coordinate converges.
 * TEST size: 16 seeds, 1500 steps. */
#include "theory.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[2] = {"sgd", "signsgd"};
static const double paper_lr[2] = {1e-3, 1e-2};

int th_run_sparse_noise(const th_ctx *c, th_sparse_result *res)
{
    th_sparse_result local;
    if (!res) res = &local;
    memset(res, 0, sizeof *res);
    const int d = 100;
    const double noise = 100.0;
    int steps = 3000, seeds = 42;
    if (c->size == TH_SIZE_TEST) steps = 1500, seeds = 16;
    res->d = d, res->steps = steps, res->seeds = seeds;
    size_t npt = (size_t)(steps + 1);
    double *loss = malloc(sizeof(double) * npt * (size_t)seeds);
    double *stat = malloc(sizeof(double) * npt * 7); /* t, mean/lo/hi x 2 */
    double *col = malloc(sizeof(double) * (size_t)seeds);
    float x[100], g[100];
    if (!loss || !stat || !col) {
        free(loss), free(stat), free(col);
        return -1;
    }
    th_say(c, "\n## sparse-noise: noise on one coordinate\n\n"
              "f(x) = 1/2 ||x||^2, d = %d, gradient noise N(0, %g^2) on x_1 only, %d steps, "
              "%d seeds; SGD lr %g, SignSGD lr %g.\n\n",
              d, noise, steps, seeds, paper_lr[0], paper_lr[1]);
    th_say(c, "| optimizer | lr | mean final loss | 10th pct | 90th pct |\n"
              "|---|---|---|---|---|\n");
    int rc = 0;
    char err[512];
    for (int t = 0; t <= steps; t++) stat[t] = t;
    for (int k = 0; k < 2; k++) {
        if (!th_have(names[k])) {
            th_say(c, "| %s | - | (not registered in this build: skipped) | | |\n", names[k]);
            rc = 1;
            continue;
        }
        char spec[64];
        snprintf(spec, sizeof spec, "%s:lr=%g", names[k], paper_lr[k]);
        for (int s = 0; s < seeds; s++) {
            th_rng r;
            th_rng_seed(&r, c->seed, 1000 + (uint64_t)s); /* same x0 and noise for both */
            for (int i = 0; i < d; i++) x[i] = (float)th_rng_normal(&r);
            int64_t shape[1] = {d};
            dsc_optimizer *o = th_opt_new(spec, x, g, 1, shape, err, sizeof err);
            if (!o) {
                th_say(c, "error: %s\n", err);
                free(loss), free(stat), free(col);
                return -1;
            }
            for (int t = 0; t <= steps; t++) {
                double f = 0.0;
                for (int i = 0; i < d; i++) {
                    f += 0.5 * (double)x[i] * x[i];
                    g[i] = x[i];
                }
                loss[(size_t)s * npt + (size_t)t] = f;
                if (t == steps) break;
                g[0] = (float)((double)x[0] + noise * th_rng_normal(&r));
                dsc_optimizer_step(o);
            }
            dsc_optimizer_free(o);
        }
        for (int t = 0; t <= steps; t++) {
            double m = 0.0;
            for (int s = 0; s < seeds; s++) {
                col[s] = loss[(size_t)s * npt + (size_t)t];
                m += col[s];
            }
            stat[npt * (size_t)(1 + 3 * k) + (size_t)t] = m / seeds;
            stat[npt * (size_t)(2 + 3 * k) + (size_t)t] = th_quantile(col, seeds, 0.1);
            stat[npt * (size_t)(3 + 3 * k) + (size_t)t] = th_quantile(col, seeds, 0.9);
        }
        res->ran[k] = 1;
        res->start_mean = stat[npt * (size_t)(1 + 3 * k)];
        res->mean_final[k] = stat[npt * (size_t)(1 + 3 * k) + (size_t)steps];
        res->q10_final[k] = stat[npt * (size_t)(2 + 3 * k) + (size_t)steps];
        res->q90_final[k] = stat[npt * (size_t)(3 + 3 * k) + (size_t)steps];
        th_say(c, "| %s | %g | %.4g | %.4g | %.4g |\n", names[k], paper_lr[k],
               res->mean_final[k], res->q10_final[k], res->q90_final[k]);
    }
    th_say(c, "\nmean start loss %.4g", res->start_mean);
    if (res->ran[0] && res->ran[1])
        th_say(c, "; mean final loss SGD / SignSGD = %.3g.\n",
               res->mean_final[0] / res->mean_final[1]);
    else
        th_say(c, ".\n");

    void *h;
    FILE *f = th_csv_open(c, "sparse_noise.csv", &h);
    if (f) {
        fprintf(f, "step,sgd_mean,sgd_p10,sgd_p90,signsgd_mean,signsgd_p10,signsgd_p90\n");
        for (size_t t = 0; t < npt; t++) {
            fprintf(f, "%zu", t);
            for (int j = 1; j < 7; j++)
                if (res->ran[(j - 1) / 3]) fprintf(f, ",%.9g", stat[npt * (size_t)j + t]);
                else fprintf(f, ",");
            fprintf(f, "\n");
        }
        th_csv_close(c, h);
    }
    lab_series s[2];
    int ns = 0;
    for (int k = 0; k < 2; k++)
        if (res->ran[k])
            s[ns++] = (lab_series){names[k], (int)npt, stat, stat + npt * (size_t)(1 + 3 * k),
                                   stat + npt * (size_t)(2 + 3 * k),
                                   stat + npt * (size_t)(3 + 3 * k)};
    lab_plot p = {"sparse-noise: mean loss, 10th-90th percentile band over seeds", "step",
                  "loss", 0, 0, ns, s};
    if (ns) th_plot(c, &p, "sparse_noise");
    free(loss), free(stat), free(col);
    return rc;
}
