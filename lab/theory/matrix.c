/* matrix.c - experiment 6: the matrix version of `scaling`: Muon (the
 * orthogonalized, "matrix sign" update) against SGD in nuclear-norm
 * stationarity (Tao, Yu, Zhang, arXiv 2605.06615, section on Muon: the
 * nuclear norm plays the role of the l1 norm, the spectral norm that of
 * l_inf), with the same controls as `scaling`.
 *
 * f(W) = 1/2 tr(W^T A W) for W in R^{m x m}, grad f = A W, A diagonal with
 * tr A = 2 at every m:
 *   stiff   A = diag(1, 1/(m-1), ..., 1/(m-1))   (one stiff row direction)
 *   graded  A_i proportional to 1/i              (a spread spectrum)
 * W0 = diag(u), u_i ~ U[0.5, 1.5] per draw. Noise, Gaussian, scaled per
 * draw so that its nuclear-norm size is sqrt(10) eps (noise-dominated, as in
 * `scaling`): `none` (the baseline), `rank-one` s xi e_1 e_1^T on the stiff
 * direction (the analogue of phi = 1/m) or `spread` with iid entries (every
 * direction, the analogue of phi ~ 1). Target: ||grad f(W_t)||_* (one-sided
 * Jacobi SVD in float64) <= eps = 0.1 ||grad f(W0)||_*, checked every step
 * up to 64 and every t/64 steps after (counts resolved to 1.6%); cost =
 * steps, +INF if not within the budget. SGD (no momentum) and Muon (momentum
 * 0: each step is lr times the Newton-Schulz polar factor of the gradient)
 * are tuned per cell by the shared tuner (SGD capped at 0.99 * 2/max A_i);
 * 10 draws per cell, medians with bootstrap 90% intervals, slopes in m with
 * stratified bootstrap intervals.
 *
 * Prediction (the analogue of scaling's, docs/theory.md): with L_s = tr A
 * (spectral-to-nuclear smoothness), L_F = max A_i, D = f(W0), S_* the noise's
 * nuclear size and S_F its Frobenius size (S_* = S_F for rank-one noise,
 * S_* = sqrt(m) S_F for spread noise),
 *   N_muon = L_s D / eps^2 + S_*^2 L_s D / eps^4
 *   N_sgd  = m L_F D / eps^2 + m S_F^2 L_s D / eps^4.
 * A measured slope above the predicted one is reported as a disagreement.
 * Sizes: TEST m in {4, 8, 16}; DEFAULT {4, 8, 16, 32}; LARGE adds 64. */
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

#define MAXM 64
#define NGEO 2
#define NNOISE 3
static const char *const geo_names[NGEO] = {"stiff", "graded"};
static const char *const noise_names[NNOISE] = {"none", "rank-one", "spread"};

typedef struct {
    int m, g, noise, draws;
    double a[MAXM];
    double *u;      /* draws x m */
    double *eps;    /* per draw */
    uint64_t seed, stream;
    float *w, *gr;
    double *G, *wk;
    char err[256];
} mcell;

/* Noise size per draw: nuclear size sqrt(10) eps. Rank-one: s = that;
 * spread: iid N(0, s^2) entries with expected nuclear norm ~ (8 / 3 pi)
 * m^1.5 s, so s = sqrt(10) eps / ((8 / 3 pi) m^1.5). */
static double noise_scale(const mcell *c, int draw)
{
    double e = c->eps[draw] * sqrt(10.0);
    if (c->noise == 1) return e;
    if (c->noise == 2) return e / (8.0 / (3.0 * 3.14159265358979323846) * pow(c->m, 1.5));
    return 0.0;
}

static int mat_hit(void *user, int method, double lr, int draw, long cap, double *steps)
{
    mcell *c = user;
    int m = c->m;
    size_t mm = (size_t)m * m;
    char spec[128];
    if (method) snprintf(spec, sizeof spec, "muon:lr=%.17g,momentum=0,nesterov=0", lr);
    else snprintf(spec, sizeof spec, "sgd:lr=%.17g", lr);
    memset(c->w, 0, sizeof(float) * mm);
    for (int i = 0; i < m; i++) c->w[(size_t)i * m + i] = (float)c->u[(size_t)draw * m + (size_t)i];
    int64_t shape[2] = {m, m};
    dsc_optimizer *o = th_opt_new(spec, c->w, c->gr, 2, shape, c->err, sizeof c->err);
    if (!o) return -1;
    th_rng r;
    th_rng_seed(&r, c->seed, c->stream + (uint64_t)draw);
    double s = noise_scale(c, draw), eps = c->eps[draw], low = INFINITY;
    long t_low = 0;
    *steps = INFINITY;
    for (long t = 0; t <= cap; t++) {
        /* The SVD dominates the cost: check every step up to 64, then every
         * t/64 steps. */
        int check = t < 64 || t == cap || t % (t / 64) == 0;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < m; j++) {
                double v = c->a[i] * (double)c->w[(size_t)i * m + j];
                c->G[(size_t)j * m + i] = v; /* column-major for the SVD */
                if (c->noise == 2) v += s * th_rng_normal(&r);
                c->gr[(size_t)i * m + j] = (float)v;
            }
        if (c->noise == 1) c->gr[0] = (float)((double)c->gr[0] + s * th_rng_normal(&r));
        if (check) {
            double nuc = nuclear_norm(c->G, m, m, c->wk);
            if (nuc <= eps) {
                *steps = (double)t;
                break;
            }
            if (!isfinite(nuc) || t == cap) break;
            if (nuc < low) low = nuc, t_low = t;
            else if (t > 2 * t_low + 500) break;
        }
        dsc_optimizer_step(o);
    }
    dsc_optimizer_free(o);
    return 0;
}

static double mat_predict(const mcell *c, int draw)
{
    int m = c->m;
    double ls = 0, lf = 0, D = 0;
    for (int i = 0; i < m; i++) {
        double u = c->u[(size_t)draw * m + (size_t)i];
        ls += c->a[i], lf = fmax(lf, c->a[i]), D += 0.5 * c->a[i] * u * u;
    }
    double e = c->eps[draw], e2 = e * e, e4 = e2 * e2, sn = 0, sf = 0;
    if (c->noise == 1) sn = sf = sqrt(10.0) * e;
    if (c->noise == 2) sn = sqrt(10.0) * e, sf = sn / sqrt((double)m);
    double n_muon = ls * D / e2 + sn * sn * ls * D / e4;
    double n_sgd = m * lf * D / e2 + m * sf * sf * ls * D / e4;
    return n_sgd / n_muon;
}

int th_run_matrix(const th_ctx *c, th_matrix_result *res)
{
    th_matrix_result local;
    if (!res) res = &local;
    memset(res, 0, sizeof *res);
    static const int m_test[] = {4, 8, 16}, m_def[] = {4, 8, 16, 32}, m_large[] = {4, 8, 16, 32, 64};
    const int *ms = m_def;
    int nm = 4;
    const int draws = 10;
    if (c->size == TH_SIZE_TEST) ms = m_test, nm = 3;
    if (c->size == TH_SIZE_LARGE) ms = m_large, nm = 5;
    res->nm = nm, res->draws = draws;
    th_verdicts V;
    th_verdicts_init(&V, "matrix");
    th_say(c, "\n## matrix: Muon vs SGD with the controls of `scaling`\n\n"
              "f(W) = 1/2 tr(W^T A W), W in R^{m x m}, tr A = 2: `stiff` A = diag(1, 1/(m-1), ...) "
              "or `graded` A_i ~ 1/i; W0 = diag(U[0.5, 1.5]); Gaussian noise of nuclear size "
              "sqrt(10) eps: none (baseline), rank-one on the stiff direction, or spread iid "
              "entries. Cost: steps until ||grad f(W_t)||_* <= eps = 0.1 ||grad f(W0)||_*. SGD "
              "vs Muon (momentum 0), each tuned per cell (4 lrs per decade, SGD capped at "
              "0.99 * 2/max A_i, extended until interior); %d draws; median [90%% bootstrap "
              "interval]; `pred` = the bounds' factor from the draw's own constants.\n\n"
              "| geometry | noise | m | SGD lr | Muon lr | SGD steps | Muon steps | SGD/Muon | "
              "noise-only | pred |\n|---|---|---|---|---|---|---|---|---|---|\n", draws);
    if (!th_have("muon") || !th_have("sgd")) {
        th_say(c, "muon is not registered in this build: skipped.\n");
        return 1;
    }
    res->ran = 1;
    int mmax = ms[nm - 1];
    size_t mm = (size_t)mmax * mmax;
    double *u = malloc(sizeof(double) * (size_t)draws * mmax), *eps = malloc(sizeof(double) * draws);
    float *w = malloc(sizeof(float) * mm), *gr = malloc(sizeof(float) * mm);
    double *G = malloc(sizeof(double) * mm), *wk = malloc(sizeof(double) * mm);
    if (!u || !eps || !w || !gr || !G || !wk) {
        free(u), free(eps), free(w), free(gr), free(G), free(wk);
        return -1;
    }
    void *h;
    FILE *csv = th_csv_open(c, "matrix.csv", &h);
    if (csv) fprintf(csv, "geometry,noise,m,draw,sgd_lr,sgd_steps,muon_lr,muon_steps,ratio,noise_only,predicted\n");
    int rc = 0;
    double prev_lr[NGEO][NNOISE][2];
    for (int a = 0; a < nm && rc == 0; a++) {
        int m = ms[a];
        res->m[a] = m;
        for (int j = 0; j < draws; j++) {
            th_rng r;
            th_rng_seed(&r, c->seed, 10000 + 100 * (uint64_t)m + (uint64_t)j);
            for (int i = 0; i < m; i++) u[(size_t)j * m + (size_t)i] = 0.5 + th_rng_uniform(&r);
        }
        for (int g = 0; g < NGEO && rc == 0; g++) {
            mcell ce;
            memset(&ce, 0, sizeof ce);
            ce.m = m, ce.g = g, ce.draws = draws, ce.u = u, ce.eps = eps, ce.seed = c->seed;
            ce.w = w, ce.gr = gr, ce.G = G, ce.wk = wk;
            double hsum = 0;
            for (int i = 0; i < m; i++) hsum += 1.0 / (i + 1);
            for (int i = 0; i < m; i++)
                ce.a[i] = g == 0 ? (i == 0 ? 1.0 : 1.0 / (m - 1)) : 2.0 / ((i + 1) * hsum);
            for (int j = 0; j < draws; j++) {
                double nuc0 = 0;
                for (int i = 0; i < m; i++) nuc0 += ce.a[i] * u[(size_t)j * m + (size_t)i];
                eps[j] = 0.1 * nuc0;
            }
            for (int nz = 0; nz < NNOISE && rc == 0; nz++) {
                ce.noise = nz;
                ce.stream = 20000 + 1000 * (uint64_t)m + 100 * (uint64_t)(g * NNOISE + nz);
                char key[96], buf[8192];
                snprintf(key, sizeof key, "matrix-g%d-n%d-m%d-r%d", g, nz, m, draws);
                double *h0 = res->hits[g][nz][a][0], *h1 = res->hits[g][nz][a][1];
                double lr[2];
                int edge[2] = {0, 0}, cap_[2] = {0, 0};
                int cached = 0;
                if (th_cache_get(c, key, buf, sizeof buf)) {
                    char *p = buf, *end;
                    cached = 1;
                    for (int k = 0; k < 2 && cached; k++) {
                        double *hk = k ? h1 : h0;
                        lr[k] = strtod(p, &end);
                        if (end == p) cached = 0;
                        p = end;
                        edge[k] = (int)strtol(p, &end, 10);
                        p = end;
                        cap_[k] = (int)strtol(p, &end, 10);
                        p = end;
                        for (int j = 0; j < draws && cached; j++) {
                            hk[j] = strtod(p, &end);
                            if (end == p) cached = 0;
                            p = end;
                        }
                    }
                }
                double amax = 0;
                for (int i = 0; i < m; i++) amax = fmax(amax, ce.a[i]);
                for (int k = 0; k < 2; k++) {
                    lab_tune_result tr;
                    char what[96];
                    snprintf(what, sizeof what, "matrix %s %s m=%d %s", geo_names[g],
                             noise_names[nz], m, k ? "muon" : "sgd");
                    if (cached) {
                        memset(&tr, 0, sizeof tr);
                        tr.best = isnan(lr[k]) ? -1 : 0;
                        tr.best_lr = lr[k], tr.edge = edge[k], tr.at_cap = cap_[k];
                        th_tuned(c, &V, what, &tr);
                        continue;
                    }
                    lab_tune_opts o = lab_tune_defaults();
                    if (k == 0) o.lr_cap = 0.99 * 2.0 / amax;
                    if (a > 0 && isfinite(prev_lr[g][nz][k]))
                        o.lr_lo = prev_lr[g][nz][k] / sqrt(10.0), o.lr_hi = prev_lr[g][nz][k] * sqrt(10.0);
                    else if (k == 0)
                        o.lr_lo = o.lr_cap / 100, o.lr_hi = o.lr_cap;
                    else
                        o.lr_lo = 1e-3, o.lr_hi = 1e-1;
                    if (o.lr_cap > 0 && o.lr_lo > o.lr_cap) o.lr_lo = o.lr_cap / 10;
                    o.lr_floor = 1e-9, o.max_evals = 24;
                    long budget = 20000L + 4000L * m;
                    if (th_tune_hits(&ce, mat_hit, k, draws, budget, &o, &tr, k ? h1 : h0) != 0) {
                        th_say(c, "error: %s\n", ce.err[0] ? ce.err : "tuning failed");
                        rc = -1;
                        break;
                    }
                    th_tuned(c, &V, what, &tr);
                    lr[k] = tr.best_lr, edge[k] = tr.edge, cap_[k] = tr.at_cap;
                }
                if (rc) break;
                if (!cached) {
                    size_t len = 0;
                    for (int k = 0; k < 2; k++) {
                        len += (size_t)snprintf(buf + len, sizeof buf - len, "%.17g %d %d", lr[k],
                                                edge[k], cap_[k]);
                        for (int j = 0; j < draws; j++)
                            len += (size_t)snprintf(buf + len, sizeof buf - len, " %.17g",
                                                    (k ? h1 : h0)[j]);
                        len += (size_t)snprintf(buf + len, sizeof buf - len, "\n");
                    }
                    th_cache_put(c, key, buf);
                }
                prev_lr[g][nz][0] = lr[0], prev_lr[g][nz][1] = lr[1];
                double ratio[16], no[16], pred[16];
                for (int j = 0; j < draws; j++) {
                    ratio[j] = h0[j] / h1[j];
                    if (isnan(ratio[j])) ratio[j] = INFINITY;
                    res->draw_ratio[g][nz][a][j] = ratio[j];
                    no[j] = nz == 0 ? 1.0 : ratio[j] / res->draw_ratio[g][0][a][j];
                    if (isnan(no[j])) no[j] = INFINITY;
                    res->draw_noise_only[g][nz][a][j] = no[j];
                    pred[j] = mat_predict(&ce, j);
                }
                lab_ci c0, c1;
                lab_bootstrap_median(h0, draws, TH_BOOT, TH_LEVEL, c->seed + 1, &c0);
                lab_bootstrap_median(h1, draws, TH_BOOT, TH_LEVEL, c->seed + 2, &c1);
                lab_bootstrap_median(ratio, draws, TH_BOOT, TH_LEVEL, c->seed + 3, &res->ratio[g][nz][a]);
                lab_bootstrap_median(no, draws, TH_BOOT, TH_LEVEL, c->seed + 4, &res->noise_only[g][nz][a]);
                res->predicted[g][nz][a] = lab_median(pred, draws);
                char l0[48], l1[48], s0[64], s1[64], sr[64], sn[64], sp[32];
                snprintf(l0, sizeof l0, "%.3g%s", lr[0], edge[0] ? " EDGE" : cap_[0] ? " cap" : "");
                snprintf(l1, sizeof l1, "%.3g%s", lr[1], edge[1] ? " EDGE" : "");
                th_say(c, "| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s |\n", geo_names[g],
                       noise_names[nz], m, l0, l1, th_fmt_ci(s0, sizeof s0, c0),
                       th_fmt_ci(s1, sizeof s1, c1), th_fmt_ci(sr, sizeof sr, res->ratio[g][nz][a]),
                       nz ? th_fmt_ci(sn, sizeof sn, res->noise_only[g][nz][a]) : "1",
                       th_fmt(sp, sizeof sp, res->predicted[g][nz][a]));
                if (csv)
                    for (int j = 0; j < draws; j++)
                        fprintf(csv, "%s,%s,%d,%d,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g\n", geo_names[g],
                                noise_names[nz], m, j, lr[0], h0[j], lr[1], h1[j], ratio[j], no[j],
                                pred[j]);
            }
        }
    }
    if (csv) th_csv_close(c, h);
    if (rc == 0) {
        double mx[TH_MAT_MAX], *y = malloc(sizeof(double) * (size_t)nm * draws), pv[TH_MAT_MAX];
        if (!y) rc = -1;
        for (int a = 0; a < nm; a++) mx[a] = ms[a];
        th_say(c, "\nSlopes in m (log-log through per-m medians, stratified bootstrap 90%% "
                  "interval):\n\n| geometry | noise | slope of SGD/Muon | pred | slope of "
                  "noise-only | pred |\n|---|---|---|---|---|---|\n");
        for (int g = 0; g < NGEO && y; g++)
            for (int nz = 0; nz < NNOISE; nz++) {
                double pn[TH_MAT_MAX];
                for (int a = 0; a < nm; a++) {
                    for (int j = 0; j < draws; j++)
                        y[(size_t)a * draws + (size_t)j] = res->draw_ratio[g][nz][a][j];
                    pv[a] = res->predicted[g][nz][a];
                    pn[a] = pv[a] / res->predicted[g][0][a];
                }
                uint64_t sd = c->seed + 50 + (uint64_t)(g * NNOISE + nz);
                lab_bootstrap_loglog_slope(mx, nm, y, draws, TH_BOOT, TH_LEVEL, sd, &res->slope[g][nz]);
                res->pred_slope[g][nz] = lab_loglog_slope(mx, pv, nm);
                for (int a = 0; a < nm; a++)
                    for (int j = 0; j < draws; j++)
                        y[(size_t)a * draws + (size_t)j] = res->draw_noise_only[g][nz][a][j];
                lab_bootstrap_loglog_slope(mx, nm, y, draws, TH_BOOT, TH_LEVEL, sd + 9,
                                           &res->slope_noise[g][nz]);
                res->pred_slope_noise[g][nz] = lab_loglog_slope(mx, pn, nm);
                char s1[64], s2[64], p1[32], p2[32];
                th_say(c, "| %s | %s | %s | %s | %s | %s |\n", geo_names[g], noise_names[nz],
                       th_fmt_ci(s1, sizeof s1, res->slope[g][nz]),
                       th_fmt(p1, sizeof p1, res->pred_slope[g][nz]),
                       nz ? th_fmt_ci(s2, sizeof s2, res->slope_noise[g][nz]) : "-",
                       nz ? th_fmt(p2, sizeof p2, res->pred_slope_noise[g][nz]) : "-");
            }
        free(y);
        /* Claims: every slope within 0.25 of the bounds' slope; a measured
         * slope whose interval lies above that band is a disagreement. */
        for (int g = 0; g < NGEO && rc == 0; g++)
            for (int nz = 0; nz < NNOISE; nz++) {
                char cl[240];
                double pr = res->pred_slope[g][nz];
                snprintf(cl, sizeof cl, "%s geometry, %s: slope in m of SGD/Muon follows the "
                         "bounds", geo_names[g], nz ? (nz == 1 ? "rank-one noise" : "spread noise")
                                                    : "no noise");
                th_claim_add(&V, cl, LAB_CLAIM_WITHIN, pr - 0.25, pr + 0.25, res->slope[g][nz], pr);
                if (res->slope[g][nz].lo > pr + 0.25)
                    th_say(c, "\nDISAGREEMENT: %s geometry, %s noise: the measured slope %.2f "
                              "[%.2f, %.2f] lies above the bounds' %.2f. The bounds are worst "
                              "cases up to constants; a steeper measured slope means SGD does "
                              "worse (or Muon better) on this instance than the bounds' rates "
                              "say, e.g. because the flat directions' rate lr * A_i, not the "
                              "bounds' eps-dependence, sets SGD's cost here.\n",
                           geo_names[g], noise_names[nz], res->slope[g][nz].est,
                           res->slope[g][nz].lo, res->slope[g][nz].hi, pr);
                if (nz) {
                    pr = res->pred_slope_noise[g][nz];
                    snprintf(cl, sizeof cl, "%s geometry, %s noise: slope in m of the noise-only "
                             "factor follows the bounds", geo_names[g], noise_names[nz]);
                    th_claim_add(&V, cl, LAB_CLAIM_WITHIN, pr - 0.25, pr + 0.25,
                                 res->slope_noise[g][nz], pr);
                }
            }
        double ym[NGEO * NNOISE][TH_MAT_MAX], yl[NGEO * NNOISE][TH_MAT_MAX], yh[NGEO * NNOISE][TH_MAT_MAX];
        lab_series s[NGEO * NNOISE];
        char names[NGEO * NNOISE][40];
        int ns = 0;
        for (int g = 0; g < NGEO; g++)
            for (int nz = 0; nz < NNOISE; nz++) {
                for (int a = 0; a < nm; a++) {
                    ym[ns][a] = res->ratio[g][nz][a].est;
                    yl[ns][a] = res->ratio[g][nz][a].lo;
                    yh[ns][a] = res->ratio[g][nz][a].hi;
                }
                snprintf(names[ns], sizeof names[ns], "%s, %s noise", geo_names[g], noise_names[nz]);
                s[ns] = (lab_series){names[ns], nm, mx, ym[ns], yl[ns], yh[ns]};
                ns++;
            }
        lab_plot p = {"matrix: SGD / Muon steps to nuclear-norm stationarity (median, 90% interval)",
                      "m", "SGD steps / Muon steps", 1, 1, ns, s};
        if (rc == 0) th_plot(c, &p, "matrix");
        res->edge_hits = V.edge_hits;
        if (rc == 0 && th_verdicts_finish(c, &V) != 0) rc = -1;
    }
    free(u), free(eps), free(w), free(gr), free(G), free(wk);
    return rc;
}
