/* scaling.c - experiment 3: how the SGD/SignSGD cost factor for reaching
 * l1-stationarity depends on the geometry of the objective and on where and
 * how densely the gradient noise sits (Tao, Yu, Zhang, arXiv 2605.06615).
 *
 * The paper's bound predicts the factor from two parts: a geometry part
 * (SignSGD feels the l_inf smoothness constant sum_i L_i, SGD the l2
 * constant max_i L_i) and a noise part (||sigma||_1 against ||sigma||_2,
 * i.e. the noise density phi). A single instance cannot tell them apart, so
 * the experiment is a factorial design:
 *
 *   geometry  iso     L_i = 2/d                      (no stiff direction)
 *             stiff   L_1 = 1, L_i = 1/(d-1) else    (one stiff coordinate)
 *             graded  L_i proportional to 1/i        (a spread spectrum)
 *             every geometry has sum_i L_i = 2 at every d, so the l_inf
 *             constant is the same everywhere and only the l2 one moves;
 *   noise     split equally over k coordinates, phi = k/d with k = 1 (phi = 1/d),
 *             round(sqrt d) (phi ~ d^-1/2) or d (phi = 1); its size is set per draw so
 *             that ||sigma||_1 = sqrt(10) eps, i.e. SignSGD's noise term is 10 times its
 *             deterministic term: every noisy cell sits in the noise-dominated regime the
 *             1/phi reading is about, and SignSGD's cost stays bounded as d grows;
 *             placed on the k stiffest coordinates, the k flattest, or spread evenly
 *             through the spectrum (indices floor(j d / k); the middle one when k = 1);
 *   d         10, 100, 1000 (the large size adds 10^4);
 *
 * and every geometry at every d is also run without noise (the baseline):
 * the noise-only factor of a cell is its SGD/SignSGD ratio divided by the
 * baseline's ratio on the same draw. Cells that are the same problem by
 * symmetry (any placement on the isotropic geometry or at phi = 1; on the
 * stiff geometry a placement is only "includes the stiff coordinate" or
 * not) are run once and listed with the cell they equal.
 *
 * Each cell has 10 (large: 12) independent problem draws (x0_i ~ U[0.5, 1.5] and a
 * noise stream; the same x0 across geometries and noise settings at a d, and
 * the same noise stream for both methods). Cost of a run: the first step t
 * with ||grad f(x_t)||_1 <= eps = 0.01 ||grad f(x0)||_1 (the true gradient,
 * float64), +INF if not within the budget (or if the run has plateaued:
 * no new low since t/2 - 250). Each method's lr is tuned per cell by the
 * shared tuner on the median cost over the draws (4 lrs per decade; SGD
 * capped just under its stability limit 2 / max L_i), then the best lr's
 * draws are rerun with the full budget. The table reports medians with
 * bootstrap 90% intervals over draws; slopes in d are fitted through the
 * per-d medians with a stratified bootstrap interval.
 *
 * Prediction from each draw's own constants (docs/theory.md):
 *   N_sign = L_inf D / eps^2 + ||sigma||_1^2 L_inf D / eps^4
 *   N_sgd  = d L_2 D / eps^2 + d ||sigma||_2^2 L_inf D / eps^4
 * with L_inf = sum L_i, L_2 = max L_i, D = f(x0); predicted = N_sgd / N_sign. */
#include "theory.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The target: ||grad f(x_t)||_1 <= TARGET_FRAC ||grad f(x0)||_1. */
#define TARGET_FRAC 0.01
#define NG TH_SC_G
#define NP TH_SC_P
#define NB TH_SC_PHI

const char *const th_sc_geom_names[NG] = {"iso", "stiff", "graded"};
const char *const th_sc_place_names[NP] = {"stiff", "flat", "spread"};
const char *const th_sc_phi_names[NB] = {"1/d", "d^-1/2", "1"};

/* The cell that (g, p, b) equals by symmetry: its placement index. */
static int canonical_place(int g, int p, int b)
{
    if (b == 2 || g == 0) return 0;
    if (g == 1 && p == 2) return b == 0 ? 1 : 0; /* spread: the middle (flat) one, or incl. x_1 */
    return p;
}

typedef struct {
    int d, g, k;      /* k = 0: no noise */
    int p;            /* placement */
    int draws;
    double *L, *x0;   /* x0: draws x d */
    int *noisy;       /* k indices */
    double noise_mult; /* ||sigma||_1 = noise_mult * eps (per draw) */
    double *eps;      /* per draw */
    float *x, *gr;
    uint64_t seed, stream;
    char err[256];
} cell;

static void fill_geometry(double *L, int d, int g)
{
    double h = 0;
    for (int i = 0; i < d; i++) h += 1.0 / (i + 1);
    for (int i = 0; i < d; i++) {
        if (g == 0) L[i] = 2.0 / d;
        else if (g == 1) L[i] = i == 0 ? 1.0 : 1.0 / (d - 1);
        else L[i] = 2.0 / ((i + 1) * h);
    }
}

static int noise_count(int d, int b)
{
    return b == 0 ? 1 : b == 1 ? (int)lround(sqrt((double)d)) : d;
}

static void fill_noisy(int *idx, int d, int k, int p)
{
    for (int j = 0; j < k; j++) {
        if (p == 0) idx[j] = j;
        else if (p == 1) idx[j] = d - k + j;
        else idx[j] = k == 1 ? d / 2 : (int)((long long)j * d / k);
    }
}

/* method 0: sgd, 1: signsgd */
static int hit(void *user, int method, double lr, int draw, long cap, double *steps)
{
    cell *c = user;
    int d = c->d;
    const double *L = c->L, *x0 = c->x0 + (size_t)draw * (size_t)d;
    for (int i = 0; i < d; i++) c->x[i] = (float)x0[i];
    char spec[96];
    snprintf(spec, sizeof spec, "%s:lr=%.17g", method ? "signsgd" : "sgd", lr);
    int64_t shape[1] = {d};
    dsc_optimizer *o = th_opt_new(spec, c->x, c->gr, 1, shape, c->err, sizeof c->err);
    if (!o) return -1;
    th_rng r;
    th_rng_seed(&r, c->seed, c->stream + (uint64_t)draw);
    double eps = c->eps[draw], low = INFINITY;
    double sigma = c->k ? c->noise_mult * eps / c->k : 0.0; /* per noisy coordinate */
    long t_low = 0;
    *steps = INFINITY;
    for (long t = 0; t <= cap; t++) {
        double l1 = 0.0;
        for (int i = 0; i < d; i++) {
            double gi = L[i] * (double)c->x[i];
            l1 += fabs(gi);
            c->gr[i] = (float)gi;
        }
        if (l1 <= eps) {
            *steps = (double)t;
            break;
        }
        if (!isfinite(l1) || t == cap) break;
        if (l1 < low) low = l1, t_low = t;
        else if (t > 2 * t_low + 500) break; /* plateau above the target */
        for (int j = 0; j < c->k; j++) {
            int i = c->noisy[j];
            c->gr[i] = (float)((double)c->gr[i] + sigma * th_rng_normal(&r));
        }
        dsc_optimizer_step(o);
    }
    dsc_optimizer_free(o);
    return 0;
}

/* The prediction of one draw (see the header). */
static double predict(const cell *c, int draw)
{
    int d = c->d;
    double linf = 0, l2 = 0, D = 0;
    const double *x0 = c->x0 + (size_t)draw * (size_t)d;
    for (int i = 0; i < d; i++) {
        linf += c->L[i];
        l2 = fmax(l2, c->L[i]);
        D += 0.5 * c->L[i] * x0[i] * x0[i];
    }
    double e = c->eps[draw], sig = c->k ? c->noise_mult * e / c->k : 0.0;
    double s1 = c->k * sig, s2sq = c->k * sig * sig;
    double e2 = e * e, e4 = e2 * e2;
    double n_sign = linf * D / e2 + s1 * s1 * linf * D / e4;
    double n_sgd = d * l2 * D / e2 + d * s2sq * linf * D / e4;
    return n_sgd / n_sign;
}

typedef struct {
    double lr[2];
    int edge[2], at_cap[2], reached[2];
    double hits[2][TH_SC_MAXDRAWS];
} cell_out;

static int cell_to_text(const cell_out *o, int draws, char *buf, size_t n)
{
    size_t len = 0;
    for (int m = 0; m < 2; m++) {
        len += (size_t)snprintf(buf + len, n - len, "%.17g %d %d %d", o->lr[m], o->edge[m],
                                o->at_cap[m], o->reached[m]);
        for (int j = 0; j < draws && len < n; j++)
            len += (size_t)snprintf(buf + len, n - len, " %.17g", o->hits[m][j]);
        if (len < n) len += (size_t)snprintf(buf + len, n - len, "\n");
    }
    return len < n ? 0 : -1;
}

static int cell_from_text(cell_out *o, int draws, const char *buf)
{
    const char *s = buf;
    char *end;
    for (int m = 0; m < 2; m++) {
        o->lr[m] = strtod(s, &end);
        if (end == s) return -1;
        s = end;
        long v[3];
        for (int q = 0; q < 3; q++) {
            v[q] = strtol(s, &end, 10);
            if (end == s) return -1;
            s = end;
        }
        o->edge[m] = (int)v[0], o->at_cap[m] = (int)v[1], o->reached[m] = (int)v[2];
        for (int j = 0; j < draws; j++) {
            o->hits[m][j] = strtod(s, &end); /* strtod reads "inf" */
            if (end == s) return -1;
            s = end;
        }
    }
    return 0;
}

/* Runs (or loads) one cell: both methods tuned, hits per draw. `prev`
 * (NULL at the first d) centres the first grid on the previous d's best. */
static int run_cell(const th_ctx *c, th_verdicts *v, cell *ce, const double *prev_lr,
                    long budget, cell_out *out, const char *label)
{
    char key[96], buf[8192];
    snprintf(key, sizeof key, "scaling-g%d-p%d-k%d-d%d-r%d", ce->g, ce->p, ce->k, ce->d, ce->draws);
    if (th_cache_get(c, key, buf, sizeof buf) && cell_from_text(out, ce->draws, buf) == 0) {
        for (int m = 0; m < 2; m++) {
            lab_tune_result r;
            memset(&r, 0, sizeof r);
            r.best = out->reached[m] ? 0 : -1;
            r.best_lr = out->lr[m], r.edge = out->edge[m], r.at_cap = out->at_cap[m];
            char what[160];
            snprintf(what, sizeof what, "scaling %s %s", label, m ? "signsgd" : "sgd");
            th_tuned(c, v, what, &r);
        }
        return 0;
    }
    double lmax = 0;
    for (int i = 0; i < ce->d; i++) lmax = fmax(lmax, ce->L[i]);
    for (int m = 0; m < 2; m++) {
        lab_tune_opts o = lab_tune_defaults();
        if (m == 0) o.lr_cap = 0.99 * 2.0 / lmax;
        if (prev_lr && isfinite(prev_lr[m])) {
            o.lr_lo = prev_lr[m] / sqrt(10.0), o.lr_hi = prev_lr[m] * sqrt(10.0);
        } else if (m == 0) {
            o.lr_lo = o.lr_cap / 100, o.lr_hi = o.lr_cap;
        } else {
            o.lr_lo = 1e-3, o.lr_hi = 1e-1;
        }
        if (o.lr_cap > 0 && o.lr_lo > o.lr_cap) o.lr_lo = o.lr_cap / 10;
        o.lr_floor = 1e-9;
        o.max_evals = 24; /* a hard limit: a cell where nothing reaches stays affordable */
        lab_tune_result r;
        if (th_tune_hits(ce, hit, m, ce->draws, budget, &o, &r, out->hits[m]) != 0) {
            th_say(c, "error: %s\n", ce->err[0] ? ce->err : "tuning failed");
            return -1;
        }
        char what[160];
        snprintf(what, sizeof what, "scaling %s %s", label, m ? "signsgd" : "sgd");
        th_tuned(c, v, what, &r);
        out->lr[m] = r.best_lr, out->edge[m] = r.edge, out->at_cap[m] = r.at_cap;
        out->reached[m] = r.best >= 0;
    }
    if (cell_to_text(out, ce->draws, buf, sizeof buf) == 0) th_cache_put(c, key, buf);
    return 0;
}

static void fmt_lr(char *b, size_t n, const cell_out *o, int m)
{
    if (!o->reached[m]) snprintf(b, n, "none reached");
    else if (o->edge[m]) snprintf(b, n, "%.3g EDGE", o->lr[m]);
    else if (o->at_cap[m]) snprintf(b, n, "%.3g cap", o->lr[m]);
    else snprintf(b, n, "%.3g", o->lr[m]);
}

int th_run_scaling(const th_ctx *c, th_scaling_result *res)
{
    th_scaling_result *R = res ? res : calloc(1, sizeof *R);
    if (!R) return -1;
    memset(R, 0, sizeof *R);
    static const int dims_test[] = {10, 30, 100}, dims_def[] = {10, 100, 1000},
                     dims_large[] = {10, 100, 1000, 10000};
    const int *dims = dims_def;
    int nd = 3, draws = 10;
    if (c->size == TH_SIZE_TEST) dims = dims_test;
    if (c->size == TH_SIZE_LARGE) dims = dims_large, nd = 4, draws = 12;
    R->nd = nd, R->draws = draws;
    th_verdicts V;
    th_verdicts_init(&V, "scaling");
    th_say(c, "\n## scaling: geometry x noise placement x noise density x d\n\n"
              "Factorial design (docs/theory.md): geometry iso (L_i = 2/d), stiff (L_1 = 1, "
              "L_i = 1/(d-1)) or graded (L_i ~ 1/i), all with sum L_i = 2; Gaussian noise with "
              "||sigma||_1 = sqrt(10) eps split equally over k = 1, round(sqrt d) or d "
              "coordinates (phi = 1/d, ~d^-1/2, 1), placed on the "
              "stiffest, the flattest or spread through the spectrum; every geometry also "
              "without noise. %d problem draws per cell (x0_i ~ U[0.5, 1.5], own noise stream). "
              "Cost: steps until ||grad f(x_t)||_1 <= 0.01 ||grad f(x0)||_1. Each method's lr "
              "tuned per cell on the median cost (4 per decade, SGD capped at 0.99 * 2/max L_i, "
              "grid extended until the best is interior). Cells: median [90%% bootstrap "
              "interval] over draws. `noise-only` = ratio / the same draw's no-noise ratio. "
              "`pred` = the bounds' factor from the draw's own constants.\n\n",
              draws);
    if (!th_have("sgd") || !th_have("signsgd")) {
        th_say(c, "sgd or signsgd is not registered in this build: skipped.\n");
        if (!res) free(R);
        return 1;
    }
    R->ran = 1;
    int dmax = dims[nd - 1];
    double *L = malloc(sizeof(double) * (size_t)dmax);
    double *x0 = malloc(sizeof(double) * (size_t)dmax * (size_t)draws);
    double *eps = malloc(sizeof(double) * (size_t)draws);
    int *noisy = malloc(sizeof(int) * (size_t)dmax);
    float *x = malloc(sizeof(float) * (size_t)dmax), *gr = malloc(sizeof(float) * (size_t)dmax);
    cell_out *outs = calloc((size_t)nd * NG * (NP * NB + 1), sizeof *outs);
    if (!L || !x0 || !eps || !noisy || !x || !gr || !outs) {
        free(L), free(x0), free(eps), free(noisy), free(x), free(gr), free(outs);
        if (!res) free(R);
        return -1;
    }
    /* outs[(a * NG + g) * (NP*NB + 1) + q]: q = p * NB + b, or NP*NB for no noise */
#define OUT(a, g, q) outs[((size_t)(a) * NG + (size_t)(g)) * (NP * NB + 1) + (size_t)(q)]
    long budget = 0;
    void *h;
    FILE *csv = th_csv_open(c, "scaling.csv", &h);
    if (csv)
        fprintf(csv, "geometry,placement,phi,d,k,draw,sgd_lr,sgd_steps,signsgd_lr,signsgd_steps,"
                     "ratio,clean_ratio,noise_only,predicted,predicted_clean\n");
    int rc = 0;
    th_say(c, "| geometry | noise on | phi | d | SGD lr | SignSGD lr | SGD steps | SignSGD steps "
              "| SGD/SignSGD | noise-only | pred | measured/pred |\n"
              "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int a = 0; a < nd && rc == 0; a++) {
        int d = dims[a];
        R->d[a] = d;
        budget = 200000L + 200L * d;
        for (int j = 0; j < draws; j++) {
            th_rng r;
            th_rng_seed(&r, c->seed, 4000 + 100 * (uint64_t)d + (uint64_t)j);
            for (int i = 0; i < d; i++) x0[(size_t)j * d + (size_t)i] = 0.5 + th_rng_uniform(&r);
        }
        for (int g = 0; g < NG && rc == 0; g++) {
            fill_geometry(L, d, g);
            for (int j = 0; j < draws; j++) {
                double l1 = 0;
                for (int i = 0; i < d; i++) l1 += L[i] * x0[(size_t)j * d + (size_t)i];
                eps[j] = TARGET_FRAC * l1;
            }
            /* q = NP*NB first: the no-noise baseline, then the noisy cells. */
            for (int qq = 0; qq <= NP * NB && rc == 0; qq++) {
                int q = qq == 0 ? NP * NB : qq - 1;
                int clean = q == NP * NB, p = clean ? 0 : q / NB, b = clean ? 0 : q % NB;
                if (!clean && canonical_place(g, p, b) != p) continue; /* a duplicate */
                cell ce;
                memset(&ce, 0, sizeof ce);
                ce.d = d, ce.g = g, ce.p = p, ce.draws = draws, ce.L = L, ce.x0 = x0;
                ce.eps = eps, ce.x = x, ce.gr = gr, ce.noisy = noisy, ce.seed = c->seed;
                ce.k = clean ? 0 : noise_count(d, b);
                ce.noise_mult = sqrt(10.0);
                ce.stream = 50000 + 1000 * (uint64_t)d + 100 * (uint64_t)q;
                if (ce.k) fill_noisy(noisy, d, ce.k, p);
                char label[96];
                if (clean) snprintf(label, sizeof label, "%s, no noise, d=%d", th_sc_geom_names[g], d);
                else snprintf(label, sizeof label, "%s, noise on %s, phi=%s, d=%d",
                              th_sc_geom_names[g], th_sc_place_names[p], th_sc_phi_names[b], d);
                double prev[2];
                const double *pp = NULL;
                if (a > 0) {
                    cell_out *po = &OUT(a - 1, g, q);
                    prev[0] = po->reached[0] ? po->lr[0] : NAN;
                    prev[1] = po->reached[1] ? po->lr[1] : NAN;
                    pp = prev;
                }
                cell_out *co = &OUT(a, g, q);
                if (run_cell(c, &V, &ce, pp, budget, co, label) != 0) {
                    rc = -1;
                    break;
                }
                /* Figures of this cell. */
                double ratio[TH_SC_MAXDRAWS], no[TH_SC_MAXDRAWS], pred[TH_SC_MAXDRAWS];
                double mp[TH_SC_MAXDRAWS];
                cell_out *cl = &OUT(a, g, NP * NB);
                for (int j = 0; j < draws; j++) {
                    ratio[j] = co->hits[0][j] / co->hits[1][j];
                    if (isnan(ratio[j])) ratio[j] = INFINITY;
                    double cr = cl->hits[0][j] / cl->hits[1][j];
                    no[j] = clean ? 1.0 : ratio[j] / cr;
                    if (isnan(no[j])) no[j] = INFINITY;
                    pred[j] = predict(&ce, j);
                    mp[j] = ratio[j] / pred[j];
                }
                lab_ci cr_ci, cn_ci, c0, c1, cmp;
                lab_bootstrap_median(ratio, draws, TH_BOOT, TH_LEVEL, c->seed + 1, &cr_ci);
                lab_bootstrap_median(no, draws, TH_BOOT, TH_LEVEL, c->seed + 2, &cn_ci);
                lab_bootstrap_median(co->hits[0], draws, TH_BOOT, TH_LEVEL, c->seed + 3, &c0);
                lab_bootstrap_median(co->hits[1], draws, TH_BOOT, TH_LEVEL, c->seed + 4, &c1);
                lab_bootstrap_median(mp, draws, TH_BOOT, TH_LEVEL, c->seed + 5, &cmp);
                double pmed = lab_median(pred, draws);
                /* Store for this cell and every duplicate of it. */
                for (int p2 = 0; p2 < NP; p2++)
                    for (int b2 = 0; b2 < NB; b2++) {
                        if (clean) continue;
                        if (b2 != b || canonical_place(g, p2, b2) != p) continue;
                        R->ratio[g][p2][b2][a] = cr_ci;
                        R->noise_only[g][p2][b2][a] = cn_ci;
                        R->predicted[g][p2][b2][a] = pmed;
                        R->meas_over_pred[g][p2][b2][a] = cmp.est;
                        for (int j = 0; j < draws; j++) {
                            R->draw_ratio[g][p2][b2][a][j] = ratio[j];
                            R->draw_noise_only[g][p2][b2][a][j] = no[j];
                        }
                        if (p2 != p) OUT(a, g, p2 * NB + b2) = *co;
                    }
                if (clean) {
                    R->clean[g][a] = cr_ci;
                    R->predicted_clean[g][a] = pmed;
                    for (int j = 0; j < draws; j++) R->draw_clean[g][a][j] = ratio[j];
                }
                char s0[48], s1[48], l0[32], l1[32], sr[64], sn[64], sp[32], sm[32];
                fmt_lr(l0, sizeof l0, co, 0);
                fmt_lr(l1, sizeof l1, co, 1);
                char dup[64] = "";
                if (!clean)
                    for (int p2 = 0; p2 < NP; p2++)
                        if (p2 != p && canonical_place(g, p2, b) == p)
                            snprintf(dup + strlen(dup), sizeof dup - strlen(dup), "%s%s",
                                     dup[0] ? ", " : " (= ", th_sc_place_names[p2]);
                if (dup[0]) snprintf(dup + strlen(dup), sizeof dup - strlen(dup), ")");
                th_say(c, "| %s | %s%s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n",
                       th_sc_geom_names[g], clean ? "(no noise)" : g == 0 || b == 2 ? "any" : th_sc_place_names[p],
                       dup, clean ? "-" : th_sc_phi_names[b], d, l0, l1,
                       th_fmt_ci(s0, sizeof s0, c0), th_fmt_ci(s1, sizeof s1, c1),
                       th_fmt_ci(sr, sizeof sr, cr_ci),
                       clean ? "1" : th_fmt_ci(sn, sizeof sn, cn_ci), th_fmt(sp, sizeof sp, pmed),
                       th_fmt(sm, sizeof sm, cmp.est));
                if (csv)
                    for (int j = 0; j < draws; j++)
                        fprintf(csv, "%s,%s,%s,%d,%d,%d,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g\n",
                                th_sc_geom_names[g], clean ? "none" : th_sc_place_names[p],
                                clean ? "0" : th_sc_phi_names[b], d, ce.k, j, co->lr[0],
                                co->hits[0][j], co->lr[1], co->hits[1][j], ratio[j],
                                cl->hits[0][j] / cl->hits[1][j], no[j], pred[j],
                                R->predicted_clean[g][a]);
            }
        }
    }
    if (csv) th_csv_close(c, h);
    if (rc != 0) goto out;

    /* Slopes in d with stratified bootstrap intervals, and the verdicts. */
    double dd[TH_SCALE_MAX_D], pv[TH_SCALE_MAX_D];
    for (int a = 0; a < nd; a++) dd[a] = dims[a];
    double *y = malloc(sizeof(double) * (size_t)nd * (size_t)draws);
    if (!y) {
        rc = -1;
        goto out;
    }
    th_say(c, "\nSlopes of log(factor) in log(d): median over draws at each d, 90%% stratified "
              "bootstrap interval; `pred` = slope of the predicted factor.\n\n"
              "| geometry | noise on | phi | slope of SGD/SignSGD | pred | slope of noise-only "
              "| pred |\n|---|---|---|---|---|---|---|\n");
    for (int g = 0; g < NG; g++) {
        for (int a = 0; a < nd; a++) {
            for (int j = 0; j < draws; j++) y[(size_t)a * draws + (size_t)j] = R->draw_clean[g][a][j];
            pv[a] = R->predicted_clean[g][a];
        }
        lab_bootstrap_loglog_slope(dd, nd, y, draws, TH_BOOT, TH_LEVEL, c->seed + 10 + (uint64_t)g,
                                   &R->slope_clean[g]);
        R->pred_slope_clean[g] = lab_loglog_slope(dd, pv, nd);
        char s[64], p[32];
        th_say(c, "| %s | (no noise) | - | %s | %s | - | - |\n", th_sc_geom_names[g],
               th_fmt_ci(s, sizeof s, R->slope_clean[g]), th_fmt(p, sizeof p, R->pred_slope_clean[g]));
        for (int b = 0; b < NB; b++)
            for (int p2 = 0; p2 < NP; p2++) {
                if (canonical_place(g, p2, b) != p2) continue;
                double pn[TH_SCALE_MAX_D];
                for (int a = 0; a < nd; a++) {
                    for (int j = 0; j < draws; j++)
                        y[(size_t)a * draws + (size_t)j] = R->draw_ratio[g][p2][b][a][j];
                    pv[a] = R->predicted[g][p2][b][a];
                    pn[a] = pv[a] / R->predicted_clean[g][a];
                }
                uint64_t sd = c->seed + 100 + (uint64_t)(g * 16 + p2 * 4 + b);
                lab_bootstrap_loglog_slope(dd, nd, y, draws, TH_BOOT, TH_LEVEL, sd,
                                           &R->slope_total[g][p2][b]);
                for (int a = 0; a < nd; a++)
                    for (int j = 0; j < draws; j++)
                        y[(size_t)a * draws + (size_t)j] = R->draw_noise_only[g][p2][b][a][j];
                lab_bootstrap_loglog_slope(dd, nd, y, draws, TH_BOOT, TH_LEVEL, sd + 7,
                                           &R->slope_noise[g][p2][b]);
                R->pred_slope_total[g][p2][b] = lab_loglog_slope(dd, pv, nd);
                R->pred_slope_noise[g][p2][b] = lab_loglog_slope(dd, pn, nd);
                for (int p3 = 0; p3 < NP; p3++)
                    if (canonical_place(g, p3, b) == p2 && p3 != p2) {
                        R->slope_total[g][p3][b] = R->slope_total[g][p2][b];
                        R->slope_noise[g][p3][b] = R->slope_noise[g][p2][b];
                        R->pred_slope_total[g][p3][b] = R->pred_slope_total[g][p2][b];
                        R->pred_slope_noise[g][p3][b] = R->pred_slope_noise[g][p2][b];
                    }
                char s1[64], s2[64], p1[32], p2s[32];
                th_say(c, "| %s | %s | %s | %s | %s | %s | %s |\n", th_sc_geom_names[g],
                       g == 0 || b == 2 ? "any" : th_sc_place_names[p2], th_sc_phi_names[b],
                       th_fmt_ci(s1, sizeof s1, R->slope_total[g][p2][b]),
                       th_fmt(p1, sizeof p1, R->pred_slope_total[g][p2][b]),
                       th_fmt_ci(s2, sizeof s2, R->slope_noise[g][p2][b]),
                       th_fmt(p2s, sizeof p2s, R->pred_slope_noise[g][p2][b]));
            }
    }
    free(y);

    /* Claims (rules in docs/theory.md). Geometry part: the no-noise factor's
     * slope in d lies within 0.25 of the slope of d max L_i / sum L_i. Noise
     * part: the noise-only factor's slope lies within 0.25 of the slope the
     * bounds predict for it (in the noise-dominated regime that is the slope
     * of 1/phi minus the geometry slope). The paper's headline on the
     * isotropic geometry (no geometry part): at phi = 1/d the factor grows
     * with d (slope interval above 0), at phi = 1 it does not (interval within
     * [-0.25, 0.25]). */
    for (int g = 0; g < NG; g++) {
        char cl[240];
        double pr = R->pred_slope_clean[g];
        snprintf(cl, sizeof cl, "geometry part (%s, no noise): slope in d of SGD/SignSGD "
                 "follows d max L_i / sum L_i", th_sc_geom_names[g]);
        th_claim_add(&V, cl, LAB_CLAIM_WITHIN, pr - 0.25, pr + 0.25, R->slope_clean[g], pr);
    }
    {
        char cl[240];
        snprintf(cl, sizeof cl, "headline, sparse noise (iso, phi = 1/d): the SGD/SignSGD "
                 "factor grows with d (slope)");
        th_claim_add(&V, cl, LAB_CLAIM_ABOVE, 0.0, NAN, R->slope_total[0][0][0],
                     R->pred_slope_total[0][0][0]);
        snprintf(cl, sizeof cl, "headline, dense noise (iso, phi = 1): the SGD/SignSGD "
                 "factor does not grow with d (slope)");
        th_claim_add(&V, cl, LAB_CLAIM_WITHIN, -0.25, 0.25, R->slope_total[0][0][2],
                     R->pred_slope_total[0][0][2]);
    }
    for (int g = 0; g < NG; g++)
        for (int b = 0; b < NB; b++)
            for (int p2 = 0; p2 < NP; p2++) {
                if (canonical_place(g, p2, b) != p2) continue;
                char cl[240];
                double pr = R->pred_slope_noise[g][p2][b];
                snprintf(cl, sizeof cl, "noise part (%s, noise on %s, phi = %s): slope in d of "
                         "the noise-only factor follows the bounds", th_sc_geom_names[g],
                         g == 0 || b == 2 ? "any" : th_sc_place_names[p2], th_sc_phi_names[b]);
                th_claim_add(&V, cl, LAB_CLAIM_WITHIN, pr - 0.25, pr + 0.25,
                             R->slope_noise[g][p2][b], pr);
            }

    /* Plots: measured against predicted (log-log, identity line), and the
     * noise-only factor against d at phi = 1/d. */
    {
        double px[NG * NB][NP * TH_SCALE_MAX_D], py[NG * NB][NP * TH_SCALE_MAX_D];
        lab_series s[NG * NB + 1];
        char names[NG * NB][48];
        int ns = 0;
        double lo = INFINITY, hi = 0;
        for (int g = 0; g < NG; g++)
            for (int b = 0; b < NB; b++) {
                int n = 0;
                for (int p2 = 0; p2 < NP; p2++) {
                    if (canonical_place(g, p2, b) != p2) continue;
                    for (int a = 0; a < nd; a++) {
                        double xv = R->predicted[g][p2][b][a], yv = R->ratio[g][p2][b][a].est;
                        /* insertion in order of the prediction */
                        int pos = n;
                        while (pos > 0 && px[ns][pos - 1] > xv) {
                            px[ns][pos] = px[ns][pos - 1], py[ns][pos] = py[ns][pos - 1];
                            pos--;
                        }
                        px[ns][pos] = xv, py[ns][pos] = yv;
                        n++;
                        if (xv > 0 && isfinite(xv)) lo = fmin(lo, xv), hi = fmax(hi, xv);
                        if (yv > 0 && isfinite(yv)) lo = fmin(lo, yv), hi = fmax(hi, yv);
                    }
                }
                snprintf(names[ns], sizeof names[ns], "%s, phi=%s", th_sc_geom_names[g],
                         th_sc_phi_names[b]);
                s[ns] = (lab_series){names[ns], n, px[ns], py[ns], NULL, NULL};
                ns++;
            }
        double idx[2] = {lo, hi};
        s[ns++] = (lab_series){"identity", 2, idx, idx, NULL, NULL};
        lab_plot p = {"scaling: measured SGD/SignSGD factor against the bounds' prediction",
                      "predicted factor", "measured factor (median over draws)", 1, 1, ns, s};
        if (isfinite(lo)) th_plot(c, &p, "scaling_predicted");
    }
    {
        double ym[NG * NP][TH_SCALE_MAX_D], yl[NG * NP][TH_SCALE_MAX_D], yh[NG * NP][TH_SCALE_MAX_D];
        lab_series s[NG * NP];
        char names[NG * NP][48];
        int ns = 0;
        for (int g = 0; g < NG; g++)
            for (int p2 = 0; p2 < NP; p2++) {
                if (canonical_place(g, p2, 0) != p2) continue;
                for (int a = 0; a < nd; a++) {
                    ym[ns][a] = R->noise_only[g][p2][0][a].est;
                    yl[ns][a] = R->noise_only[g][p2][0][a].lo;
                    yh[ns][a] = R->noise_only[g][p2][0][a].hi;
                }
                snprintf(names[ns], sizeof names[ns], "%s, noise on %s", th_sc_geom_names[g],
                         g == 0 ? "any" : th_sc_place_names[p2]);
                s[ns] = (lab_series){names[ns], nd, dd, ym[ns], yl[ns], yh[ns]};
                ns++;
            }
        lab_plot p = {"scaling: noise-only factor at phi = 1/d (median, 90% interval)", "d",
                      "noisy ratio / no-noise ratio", 1, 1, ns, s};
        th_plot(c, &p, "scaling_noise_only");
    }
    R->edge_hits = V.edge_hits, R->tuned = V.tuned;
    if (th_verdicts_finish(c, &V) != 0) rc = -1;
out:
#undef OUT
    free(L), free(x0), free(eps), free(noisy), free(x), free(gr), free(outs);
    if (!res) free(R);
    return rc;
}
