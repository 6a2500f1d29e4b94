/* lion_box.c - experiment 5: Lion with decoupled weight decay lambda solves
 * the box-constrained problem min f(x) s.t. ||x||_inf <= 1/lambda ("Lion
 * Secretly Solves Constrained Optimization", Chen, Liu, Liang, Liu).
 *
 * Lion's step x <- x (1 - lr lambda) - lr sign(c) maps the box into itself:
 * |x| <= 1/lambda gives |x (1 - lr lambda) +- lr| <= 1/lambda. From outside,
 * lambda |x_i| - 1 shrinks at least by the factor (1 - lr lambda) per step
 * while the sign points outward, so iterates enter the box (geometrically),
 * then settle within O(lr) of the box-constrained optimum, which for the
 * separable f(x) = 1/2 ||x - c||^2 is the clip of c to the box.
 *
 * Set-up: d = 100, c_i = 4 z_i with z ~ N(0, I) (so about 60% of the c_i
 * lie outside the box), lambda = 0.5 (box radius 2), lr 0.01, betas 0.9,
 * 0.99, exact gradients x - c, 3000 steps. Run A starts at 0
 * (inside), run B at x0_i = +-3/lambda (outside). Reported: the largest
 * |x_i| lambda over the whole run (A) and after entering (B), the first
 * step with max |x_i| lambda <= 1 + 1e-3 (B), and the final distances to
 * the constrained optimum. */
#include "theory.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int th_run_lion_box(const th_ctx *c, th_lion_result *res)
{
    th_lion_result local;
    if (!res) res = &local;
    memset(res, 0, sizeof *res);
    const int d = 100;
    const double lambda = 0.5, lr = 0.01;
    int steps = 3000;
    res->lambda = lambda, res->lr = lr;
    th_say(c, "\n## lion-box: Lion with weight decay solves a box-constrained problem\n\n"
              "f(x) = 1/2 ||x - c||^2, d = %d, c = 4 z (z ~ N(0, I)); Lion lr %g, "
              "weight_decay lambda = %g (box ||x||_inf <= 1/lambda = %g), betas 0.9, 0.99, "
              "%d steps; x* = clip(c, -1/lambda, 1/lambda).\n\n",
              d, lr, lambda, 1.0 / lambda, steps);
    if (!th_have("lion")) {
        th_say(c, "lion is not registered in this build: skipped.\n");
        return 1;
    }
    res->ran = 1;
    double cc[100], xs[100];
    float x[100], g[100];
    th_rng r;
    th_rng_seed(&r, c->seed, 9000);
    double cmax = 0;
    for (int i = 0; i < d; i++) {
        cc[i] = 4.0 * th_rng_normal(&r);
        xs[i] = fmax(-1.0 / lambda, fmin(1.0 / lambda, cc[i]));
        cmax = fmax(cmax, fabs(cc[i]) * lambda);
    }
    res->unconstrained_scaled = cmax;
    size_t npt = (size_t)steps + 1;
    double *tr = malloc(sizeof(double) * npt * 5); /* t, maxA, distA, maxB, distB */
    if (!tr) return -1;
    char spec[128], err[512];
    snprintf(spec, sizeof spec, "lion:lr=%g,beta1=0.9,beta2=0.99,weight_decay=%g", lr, lambda);
    for (int run = 0; run < 2; run++) {
        for (int i = 0; i < d; i++)
            x[i] = run == 0 ? 0.0f : (float)((th_rng_uniform(&r) < 0.5 ? -3.0 : 3.0) / lambda);
        int64_t shape[1] = {d};
        dsc_optimizer *o = th_opt_new(spec, x, g, 1, shape, err, sizeof err);
        if (!o) {
            th_say(c, "error: %s\n", err);
            free(tr);
            return -1;
        }
        double maxrun = 0, after = 0;
        int enter = -1;
        for (int t = 0; t <= steps; t++) {
            double m = 0, dist = 0, d2 = 0;
            for (int i = 0; i < d; i++) {
                m = fmax(m, fabs((double)x[i]) * lambda);
                double e = fabs((double)x[i] - xs[i]);
                dist = fmax(dist, e);
                d2 += e * e;
                g[i] = (float)((double)x[i] - cc[i]);
            }
            tr[t] = t;
            tr[npt * (size_t)(1 + 2 * run) + (size_t)t] = m;
            tr[npt * (size_t)(2 + 2 * run) + (size_t)t] = dist * lambda;
            maxrun = fmax(maxrun, m);
            if (enter < 0 && m <= 1.0 + 1e-3) enter = t;
            if (enter >= 0) after = fmax(after, m);
            if (t == steps) {
                res->dist_inf[run] = dist;
                res->dist_2[run] = sqrt(d2);
                break;
            }
            dsc_optimizer_step(o);
        }
        dsc_optimizer_free(o);
        if (run == 0) res->max_scaled_inside = maxrun;
        else res->max_scaled_after = after, res->enter_step = enter;
    }
    th_say(c, "| run | max_t max_i abs(x_i) lambda | entered box at step | final max_i abs(x_i - x*_i) "
              "| final norm(x - x*)_2 |\n|---|---|---|---|---|\n");
    th_say(c, "| A: x0 = 0 (inside) | %.6f (whole run) | 0 | %.4g | %.4g |\n",
           res->max_scaled_inside, res->dist_inf[0], res->dist_2[0]);
    th_say(c, "| B: x0 = +-3/lambda (outside) | %.6f (after entering) | %d | %.4g | %.4g |\n",
           res->max_scaled_after, res->enter_step, res->dist_inf[1], res->dist_2[1]);
    th_say(c, "\nThe unconstrained optimum has max_i |c_i| lambda = %.3g (outside the box); "
              "both runs end within %.3g of x* (%.3g lr) in the l_inf norm.\n",
           cmax, fmax(res->dist_inf[0], res->dist_inf[1]),
           fmax(res->dist_inf[0], res->dist_inf[1]) / lr);
    void *h;
    FILE *csv = th_csv_open(c, "lion_box.csv", &h);
    if (csv) {
        fprintf(csv, "step,inside_max_scaled,inside_dist_inf_scaled,outside_max_scaled,"
                     "outside_dist_inf_scaled\n");
        for (size_t t = 0; t < npt; t++)
            fprintf(csv, "%zu,%.9g,%.9g,%.9g,%.9g\n", t, tr[npt + t], tr[2 * npt + t],
                    tr[3 * npt + t], tr[4 * npt + t]);
        th_csv_close(c, h);
    }
    lab_series s[4] = {
        {"A (start inside): max |x_i| lambda", (int)npt, tr, tr + npt, NULL, NULL},
        {"A: max |x_i - x*_i| lambda", (int)npt, tr, tr + 2 * npt, NULL, NULL},
        {"B (start outside): max |x_i| lambda", (int)npt, tr, tr + 3 * npt, NULL, NULL},
        {"B: max |x_i - x*_i| lambda", (int)npt, tr, tr + 4 * npt, NULL, NULL},
    };
    lab_plot p = {"lion-box: Lion with weight decay lambda stays in / enters ||x||_inf <= 1/lambda",
                  "step", "scaled by lambda", 0, 1, 4, s};
    th_plot(c, &p, "lion_box");
    free(tr);
    /* Claims. The runs are deterministic (exact gradients, one fixed c), so
     * each figure is exact: its interval is the point itself. */
    th_verdicts V;
    th_verdicts_init(&V, "lion-box");
    th_say(c, "\n(The runs use exact gradients: every figure below is exact, so its interval "
              "is the point itself.)\n");
    lab_ci a = {res->max_scaled_inside, res->max_scaled_inside, res->max_scaled_inside};
    th_claim_add(&V, "started inside, Lion with weight decay never leaves the box: max_t max_i "
                     "|x_i| lambda (1e-5 float32 slack)", LAB_CLAIM_BELOW, NAN, 1.0 + 1e-5, a, 1.0);
    lab_ci b = {res->max_scaled_after, res->max_scaled_after, res->max_scaled_after};
    th_claim_add(&V, "started outside, it enters the box and stays: max |x_i| lambda after "
                     "entering (1e-3 slack)", LAB_CLAIM_BELOW, NAN, 1.0 + 1e-3, b, 1.0);
    double dm = fmax(res->dist_inf[0], res->dist_inf[1]) / lr;
    lab_ci e = {dm, dm, dm};
    th_claim_add(&V, "both runs end within O(lr) of the box-constrained optimum: final "
                     "max_i |x_i - x*_i| / lr", LAB_CLAIM_BELOW, NAN, 5.0, e, NAN);
    return th_verdicts_finish(c, &V) == 0 ? 0 : -1;
}
