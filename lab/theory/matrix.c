/* matrix.c - experiment 6: the matrix version of `scaling`: Muon (the
 * orthogonalized, "matrix sign" update) against SGD in nuclear-norm
 * stationarity, with the noise on one singular direction or spread over all
 * (Tao, Yu, Zhang, arXiv 2605.06615, section on Muon: the trace/nuclear
 * norm plays the role of the l1 norm, the spectral norm that of l_inf).
 *
 * f(W) = 1/2 tr(W^T A W) for W in R^{m x m}, A = diag(1, 1/(m-1), ...):
 * one stiff row direction and m - 1 flat ones with tr A = 2 for every m,
 * the analogue of the stiff vector instance; grad f = A W. W0 = diag(u),
 * u_i ~ U[0.5, 1.5]. Noise of Frobenius size 1: `rank-one` S xi e_1 e_1^T
 * (all on the stiff singular direction, density 1/m) or `spread` with iid
 * N(0, 1/m^2) entries (every direction). Target: the seed-mean of
 * ||grad f(W_t)||_* (one-sided Jacobi SVD in float64) <= 0.1 ||grad f(W0)||_*,
 * checked every step up to 64 and every t/64 steps after; cost = steps. SGD (no momentum) and Muon (momentum 0,
 * so each step is lr times the Newton-Schulz polar factor of the gradient:
 * matrix sign descent) each get their best lr on 2^-j, as in `scaling`.
 * Sizes: TEST m in {4, 8, 16}, 4 seeds (rank-one 8); DEFAULT {4, 8, 16, 32},
 * 8 seeds (rank-one 16); FULL adds 64. */
#include "theory.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Sum of singular values of the m x n matrix a (column-major copy in w,
 * m*n doubles), by one-sided Jacobi rotations of column pairs until every
 * pair is orthogonal to 1e-12. */
static double nuclear_norm(const double *a, int m, int n, double *w)
{
    memcpy(w, a, sizeof(double) * (size_t)m * (size_t)n);
    for (int sweep = 0; sweep < 60; sweep++) {
        int rotated = 0;
        for (int p = 0; p < n - 1; p++)
            for (int q = p + 1; q < n; q++) {
                double *cp = w + (size_t)p * m, *cq = w + (size_t)q * m;
                double al = 0, be = 0, ga = 0;
                for (int i = 0; i < m; i++) al += cp[i] * cp[i], be += cq[i] * cq[i],
                                            ga += cp[i] * cq[i];
                if (fabs(ga) <= 1e-12 * sqrt(al * be) || ga == 0.0) continue;
                rotated = 1;
                double zeta = (be - al) / (2 * ga);
                double t = (zeta >= 0 ? 1.0 : -1.0) / (fabs(zeta) + sqrt(1 + zeta * zeta));
                double cs = 1 / sqrt(1 + t * t), sn = cs * t;
                for (int i = 0; i < m; i++) {
                    double u = cp[i], v = cq[i];
                    cp[i] = cs * u - sn * v;
                    cq[i] = sn * u + cs * v;
                }
            }
        if (!rotated) break;
    }
    double s = 0;
    for (int p = 0; p < n; p++) {
        double nn = 0;
        for (int i = 0; i < m; i++) nn += w[(size_t)p * m + i] * w[(size_t)p * m + i];
        s += sqrt(nn);
    }
    return s;
}

typedef struct {
    int m, spread, seeds;
    double *a, *u, eps;
    uint64_t seed;
} minst;

static long mat_hit(const minst *in, const char *spec, long cap, int *err)
{
    int m = in->m, R = in->seeds;
    size_t mm = (size_t)m * m;
    float *w = calloc(mm * (size_t)R, sizeof(float)), *g = calloc(mm * (size_t)R, sizeof(float));
    double *G = malloc(sizeof(double) * mm), *wk = malloc(sizeof(double) * mm);
    dsc_optimizer **o = calloc((size_t)R, sizeof *o);
    th_rng *rng = malloc(sizeof(th_rng) * (size_t)R);
    long hit = -1;
    *err = 0;
    char msg[256];
    if (!w || !g || !G || !wk || !o || !rng) {
        *err = 1;
        goto done;
    }
    int64_t shape[2] = {m, m};
    for (int r = 0; r < R; r++) {
        for (int i = 0; i < m; i++) w[(size_t)r * mm + (size_t)i * m + i] = (float)in->u[i];
        th_rng_seed(&rng[r], in->seed, 11000 + (uint64_t)r);
        o[r] = th_opt_new(spec, w + (size_t)r * mm, g + (size_t)r * mm, 2, shape, msg, sizeof msg);
        if (!o[r]) {
            *err = 1;
            goto done;
        }
    }
    double low = INFINITY;
    long t_low = 0;
    double nsd = 1.0 / m;
    for (long t = 0; t <= cap; t++) {
        /* The SVD dominates the cost: check every step up to 64, then every
         * t/64 steps (counts are resolved to within 1.6%). */
        int check = t < 64 || t == cap || t % (t / 64) == 0;
        double nuc = 0;
        for (int r = 0; r < R; r++) {
            float *wr = w + (size_t)r * mm, *gr = g + (size_t)r * mm;
            for (int i = 0; i < m; i++)       /* row i, row-major */
                for (int j = 0; j < m; j++) {
                    double v = in->a[i] * (double)wr[(size_t)i * m + j];
                    G[(size_t)j * m + i] = v; /* column-major for the SVD */
                    if (in->spread) v += nsd * th_rng_normal(&rng[r]);
                    gr[(size_t)i * m + j] = (float)v;
                }
            if (!in->spread) gr[0] = (float)((double)gr[0] + th_rng_normal(&rng[r]));
            if (check) nuc += nuclear_norm(G, m, m, wk);
        }
        if (!check) {
            for (int r = 0; r < R; r++) dsc_optimizer_step(o[r]);
            continue;
        }
        nuc /= R;
        if (nuc <= in->eps) {
            hit = t;
            break;
        }
        if (!isfinite(nuc) || t == cap) break;
        if (nuc < low) low = nuc, t_low = t;
        else if (t > 2 * t_low + 500) break;
        for (int r = 0; r < R; r++) dsc_optimizer_step(o[r]);
    }
done:
    if (*err) fprintf(stderr, "matrix: %s\n", msg);
    if (o)
        for (int r = 0; r < R; r++) dsc_optimizer_free(o[r]);
    free(w), free(g), free(G), free(wk), free(o), free(rng);
    return hit;
}

static double mat_tune(const minst *in, int muon, long budget, double *best_lr, int *err)
{
    long best = -1;
    int worse = 0;
    *best_lr = NAN;
    for (int j = -1; j <= 30; j++) {
        double lr = ldexp(1.0, -j);
        char spec[128];
        if (muon) snprintf(spec, sizeof spec, "muon:lr=%.17g,momentum=0,nesterov=0", lr);
        else snprintf(spec, sizeof spec, "sgd:lr=%.17g", lr);
        long t = mat_hit(in, spec, best >= 0 ? best : budget, err);
        if (*err) return NAN;
        if (t >= 0 && (best < 0 || t < best)) best = t, *best_lr = lr, worse = 0;
        else if (best >= 0 && ++worse >= 2) break;
    }
    return best >= 0 ? (double)best : NAN;
}

int th_run_matrix(const th_ctx *c, th_matrix_result *res)
{
    th_matrix_result local;
    if (!res) res = &local;
    memset(res, 0, sizeof *res);
    static const int m_test[] = {4, 8, 16}, m_def[] = {4, 8, 16, 32}, m_full[] = {4, 8, 16, 32, 64};
    const int *ms = m_def;
    int nm = 4, seeds = 8;
    if (c->size == TH_SIZE_TEST) ms = m_test, nm = 3, seeds = 4;
    if (c->size == TH_SIZE_FULL) ms = m_full, nm = 5, seeds = 16;
    res->nm = nm;
    th_say(c, "\n## matrix: Muon vs SGD, noise on one singular direction vs spread\n\n"
              "f(W) = 1/2 tr(W^T A W), W in R^{m x m}, A = diag(1, 1/(m-1), ...) (tr A = 2), "
              "W0 = diag(U[0.5, 1.5]); noise of Frobenius norm 1, rank-one on the stiff "
              "direction (density 1/m) or iid entries (spread); target: seed-mean nuclear norm "
              "of the true gradient <= 0.1 of its start; SGD vs Muon (momentum 0), lr tuned on "
              "2^-j. Bound ratio: m for rank-one noise, O(1) for spread noise.\n\n");
    if (!th_have("muon") || !th_have("sgd")) {
        th_say(c, "muon is not registered in this build: skipped.\n");
        return 1;
    }
    res->ran = 1;
    th_say(c, "| noise | m | SGD grads (lr) | Muon grads (lr) | SGD/Muon |\n|---|---|---|---|---|\n");
    void *h;
    FILE *csv = th_csv_open(c, "matrix.csv", &h);
    if (csv) fprintf(csv, "noise,m,sgd_grads,sgd_lr,muon_grads,muon_lr,ratio\n");
    double mx[TH_MAT_MAX], col[2][TH_MAT_MAX];
    for (int a = 0; a < nm; a++) {
        int m = ms[a];
        res->m[a] = m;
        mx[a] = m;
        double av[64], uv[64];
        minst in = {m, 0, seeds, av, uv, 0, c->seed};
        th_rng r;
        th_rng_seed(&r, c->seed, 10000 + (uint64_t)m);
        double nuc0 = 0;
        for (int i = 0; i < m; i++) {
            av[i] = i == 0 ? 1.0 : 1.0 / (m - 1);
            uv[i] = 0.5 + th_rng_uniform(&r);
            nuc0 += av[i] * uv[i];
        }
        in.eps = 0.1 * nuc0;
        for (int sp = 0; sp < 2; sp++) {
            in.spread = sp;
            in.seeds = sp ? seeds : 2 * seeds;
            double lr[2], n[2];
            int err = 0;
            long budget = 2000L + 1000L * m;
            n[0] = mat_tune(&in, 0, budget, &lr[0], &err);
            if (!err) n[1] = mat_tune(&in, 1, budget, &lr[1], &err);
            if (err) {
                th_say(c, "error: could not run sgd or muon (see stderr)\n");
                if (csv) th_csv_close(c, h);
                return -1;
            }
            res->n_sgd[a][sp] = n[0], res->n_muon[a][sp] = n[1];
            res->ratio[a][sp] = col[sp][a] = n[0] / n[1];
            th_say(c, "| %s | %d | %.0f (2^%d) | %.0f (2^%d) | %.3g |\n",
                   sp ? "spread" : "rank-one", m, n[0], (int)lround(log2(lr[0])), n[1],
                   (int)lround(log2(lr[1])), res->ratio[a][sp]);
            if (csv)
                fprintf(csv, "%s,%d,%.0f,%.9g,%.0f,%.9g,%.9g\n", sp ? "spread" : "rank-one", m,
                        n[0], lr[0], n[1], lr[1], res->ratio[a][sp]);
        }
    }
    if (csv) th_csv_close(c, h);
    res->slope_rank1 = th_loglog_slope(mx, col[0], nm);
    res->slope_spread = th_loglog_slope(mx, col[1], nm);
    th_say(c, "\nFitted log-log slope of SGD/Muon in m: rank-one noise **%.2f**, spread noise "
              "**%.2f**.\n",
           res->slope_rank1, res->slope_spread);
    lab_series s[3] = {{"rank-one noise", nm, mx, col[0], NULL, NULL},
                       {"spread noise", nm, mx, col[1], NULL, NULL},
                       {"m (bound ratio, rank-one)", nm, mx, mx, NULL, NULL}};
    lab_plot p = {"matrix: SGD / Muon stochastic gradients to nuclear-norm stationarity", "m",
                  "SGD grads / Muon grads", 1, 1, 3, s};
    th_plot(c, &p, "matrix");
    return 0;
}
