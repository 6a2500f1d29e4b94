/* test_theory.c - the theory lab's claims at TEST sizes, with the margins
 * the claims imply, and the noise-density estimator (dsc_noise_density)
 * on synthetic noise with a known phi. Writes no files and needs no
 * gnuplot (the SVG writer is tested directly, into out/test_theory). */
#include "check.h"

#include "descent.h"
#include "labfile.h"
#include "plot.h"
#include "theory/theory.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static th_ctx quiet(void)
{
    th_ctx c = th_ctx_default();
    c.size = TH_SIZE_TEST;
    c.plot = LAB_PLOT_NONE;
    return c;
}

static void test_rng(void)
{
    th_rng r;
    th_rng_seed(&r, 42, 0);
    double m = 0, v = 0, s2 = 0;
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        double z = th_rng_normal(&r);
        m += z, v += z * z;
    }
    m /= n, v = v / n - m * m;
    CHECK_NEAR(m, 0.0, 0.01);
    CHECK_NEAR(v, 1.0, 0.02);
    for (int i = 0; i < n; i++) {
        double z = th_rng_stable(&r, 2.0); /* N(0, 2) */
        s2 += z * z;
    }
    CHECK_NEAR(s2 / n, 2.0, 0.05);
    /* Cauchy-like tails: median |t_1.2| and P(|X| > 10) */
    int big_t = 0, big_s = 0;
    for (int i = 0; i < n; i++) {
        big_t += fabs(th_rng_student_t(&r, 1.2)) > 10;
        big_s += fabs(th_rng_stable(&r, 1.2)) > 10;
    }
    CHECK(big_t > n / 100 && big_t < n / 10); /* heavy, but not absurd */
    CHECK(big_s > n / 100 && big_s < n / 10);
    th_rng a, b;
    th_rng_seed(&a, 7, 3);
    th_rng_seed(&b, 7, 3);
    CHECK(th_rng_u64(&a) == th_rng_u64(&b));
}

static void test_noise_density_api(void)
{
    enum { D = 500, K = 128 };
    static float buf[K][D];
    const float *rows[K];
    th_rng r;
    th_rng_seed(&r, 1, 1);
    /* 20 equal coordinates out of 500: phi = 20/500 */
    for (int k = 0; k < K; k++) {
        for (int i = 0; i < D; i++) buf[k][i] = (float)(i * 0.01 + (i < 20 ? th_rng_normal(&r) : 0));
        rows[k] = buf[k];
    }
    double phi = -1;
    CHECK_EQ_INT(dsc_noise_density(rows, K, D, &phi), DSC_OK);
    CHECK_NEAR(phi, 20.0 / 500.0, 0.04 * 20.0 / 500.0);
    CHECK_EQ_INT(dsc_noise_density(NULL, K, D, &phi), DSC_NULL_POINTER);
    CHECK_EQ_INT(dsc_noise_density(rows, K, D, NULL), DSC_NULL_POINTER);
    CHECK_EQ_INT(dsc_noise_density(rows, 1, D, &phi), DSC_INVALID_ARGUMENT);
    CHECK_EQ_INT(dsc_noise_density(rows, K, 0, &phi), DSC_INVALID_ARGUMENT);
    const float *same[2] = {buf[0], buf[0]};
    CHECK_EQ_INT(dsc_noise_density(same, 2, D, &phi), DSC_OK);
    CHECK(phi == 0.0); /* no noise */
    buf[3][7] = NAN;
    CHECK_EQ_INT(dsc_noise_density(rows, K, D, &phi), DSC_NONFINITE);
}

static void test_noise_density_experiment(void)
{
    th_ctx c = quiet();
    th_density_result r;
    CHECK_EQ_INT(th_run_noise_density(&c, &r), 0);
    CHECK(r.n == 6);
    for (int p = 0; p < r.n; p++) {
        /* the power law's few large sigma_i dominate ||sigma||_2: looser */
        double tol = p == 3 ? 0.15 : 0.05;
        CHECK(fabs(r.estimate[p] - r.exact[p]) <= tol * r.exact[p]);
        CHECK(r.rel_err[p].lo >= -tol && r.rel_err[p].hi <= tol);
    }
}

static void test_deterministic(void)
{
    th_ctx c = quiet();
    th_det_result r;
    int rc = th_run_deterministic(&c, &r);
    CHECK(rc >= 0);
    if (!r.ran[0] || !r.ran[1]) return;
    /* paper-exact run kept */
    CHECK(r.final_loss[0] <= r.start_loss && r.final_loss[1] <= r.start_loss);
    CHECK_NEAR(r.best_lr[0], 1e-3, 1e-12); /* the paper grid's SGD: capped by L_1 = 1000 */
    /* fair tuning over 10 draws: SignSGD still wins, SGD sits at its stability
     * cap, nothing on a grid edge, and the coarse grid inflates the factor */
    CHECK(r.fair_ratio.lo > 10.0);
    CHECK(r.fair_ratio.lo <= r.fair_ratio.est && r.fair_ratio.est <= r.fair_ratio.hi);
    CHECK_NEAR(r.fair_lr[0], 0.99 * 2.0 / 1000.0, 1e-12);
    CHECK(r.inflation.lo > 1.0);
    CHECK_EQ_INT(r.edge_hits, 0);
}

static void test_sparse_noise(void)
{
    th_ctx c = quiet();
    th_sparse_result r;
    CHECK(th_run_sparse_noise(&c, &r) >= 0);
    if (!r.ran[0] || !r.ran[1]) return;
    CHECK(r.mean_final[1] * 2.0 <= r.mean_final[0]); /* paper-exact */
    CHECK(r.paper_ratio.lo > 1.0);
    CHECK(r.fair_ratio.lo > 1.0);
    CHECK(r.fair_lr[0] > 0 && r.fair_lr[1] > 0);
    CHECK_EQ_INT(r.edge_hits, 0);
}

static void test_scaling(void)
{
    th_ctx c = quiet();
    th_scaling_result *r = calloc(1, sizeof *r);
    CHECK(r != NULL);
    if (!r) return;
    CHECK(th_run_scaling(&c, r) >= 0);
    if (!r->ran) {
        free(r);
        return;
    }
    int n = r->nd;
    CHECK_EQ_INT(r->draws, 10);
    CHECK_EQ_INT(r->edge_hits, 0);
    /* Controls. The geometry part alone (no noise): flat in d on the
     * isotropic instance, close to d on the stiff one, as d max L_i / sum L_i
     * predicts. */
    CHECK(fabs(r->slope_clean[0].est) < 0.1);
    CHECK(r->slope_clean[1].lo > 0.75 && r->slope_clean[1].hi < 1.25);
    CHECK(fabs(r->pred_slope_clean[1] - 1.0) < 0.01);
    for (int a = 0; a < n; a++) {
        CHECK(isfinite(r->clean[1][a].est) && r->clean[1][a].est > 0);
        /* predicted no-noise factor on the stiff geometry: d L_2 / L_inf = d / 2 */
        CHECK_NEAR(r->predicted_clean[1][a], r->d[a] / 2.0, 1e-9 * r->d[a]);
    }
    /* Dense noise on the isotropic instance: no growth with d. */
    CHECK(r->slope_total[0][0][2].hi < 0.3);
    /* Cells equal by symmetry carry the same numbers. */
    for (int a = 0; a < n; a++) {
        CHECK(r->ratio[0][1][0][a].est == r->ratio[0][0][0][a].est);
        CHECK(r->ratio[1][2][0][a].est == r->ratio[1][1][0][a].est);
        CHECK(r->ratio[1][1][2][a].est == r->ratio[1][0][2][a].est);
    }
    /* The noise-only factor is the noisy ratio over the same draw's no-noise
     * ratio. */
    CHECK_NEAR(r->draw_noise_only[1][0][0][0][3],
               r->draw_ratio[1][0][0][0][3] / r->draw_clean[1][0][3], 1e-12);
    free(r);
}

static void test_heavy_tail(void)
{
    th_ctx c = quiet();
    th_heavy_result r;
    CHECK(th_run_heavy_tail(&c, &r) >= 0);
    if (!r.ran[0] || !r.ran[3]) return;
    for (int a = 0; a < r.ncfg; a++) {
        /* the clip level was tuned, on an interior point of its grid */
        CHECK(r.clip[a] > 0 && r.clip_edge[a] == 0);
        /* the comparison is against the best tuned baseline */
        CHECK(r.best_base[a] >= 0 && r.best_base[a] < 3);
        CHECK(r.best_sign[a] >= 3);
        if (r.alpha[a] == 1.2) CHECK(r.ratio[a].lo > 1.0);            /* heavy tails */
        if (r.alpha[a] == 2.0 && r.cfg_name[a][0] == 'a')
            CHECK(r.ratio[a].hi < 1.5); /* Gaussian control: no clear sign advantage */
    }
    /* plain SGD under tail index 1.2 never reaches the target: reported as
     * +INF ("did not reach"), not as a number */
    CHECK(isinf(r.median[0][0].est));
}

static void test_lion_box(void)
{
    th_ctx c = quiet();
    th_lion_result r;
    CHECK(th_run_lion_box(&c, &r) >= 0);
    if (!r.ran) return;
    CHECK(r.unconstrained_scaled > 1.0);
    CHECK(r.max_scaled_inside <= 1.0 + 1e-5); /* the box is invariant */
    CHECK(r.enter_step > 0);
    CHECK(r.max_scaled_after <= 1.0 + 1e-3);
    for (int k = 0; k < 2; k++) CHECK(r.dist_inf[k] <= 5.0 * r.lr);
}

static void test_matrix(void)
{
    th_ctx c = quiet();
    th_matrix_result *r = calloc(1, sizeof *r);
    CHECK(r != NULL);
    if (!r) return;
    CHECK(th_run_matrix(&c, r) >= 0);
    if (r->ran) {
        int last = r->nm - 1;
        CHECK_EQ_INT(r->edge_hits, 0);
        /* geometry part: the no-noise factor grows with m on the stiff instance */
        CHECK(r->slope[0][0].est > 0.3);
        CHECK(r->ratio[0][0][last].est > r->ratio[0][0][0].est);
        /* spread noise costs Muon more than rank-one noise does */
        CHECK(r->ratio[0][2][last].est < r->ratio[0][1][last].est);
    }
    free(r);
}

/* The verdict lines and the JSON: made-up intervals give each verdict. */
static void test_verdicts_json(void)
{
    th_ctx c = quiet();
    c.out_dir = "out/test_theory";
    CHECK(lab_mkdirs(c.out_dir) == 0);
    th_verdicts v;
    th_verdicts_init(&v, "made-up");
    th_claim_add(&v, "a \"quoted\" claim above 1", LAB_CLAIM_ABOVE, 1.0, NAN,
                 (lab_ci){2.0, 1.5, 2.5}, 2.0);
    th_claim_add(&v, "below 1", LAB_CLAIM_BELOW, NAN, 1.0, (lab_ci){2.0, 1.5, 2.5}, NAN);
    th_claim_add(&v, "within", LAB_CLAIM_WITHIN, -0.25, 0.25, (lab_ci){0.1, -0.3, 0.2}, 0.0);
    th_claim_add(&v, "did not reach", LAB_CLAIM_ABOVE, 1.0, NAN,
                 (lab_ci){INFINITY, 3.0, INFINITY}, NAN);
    CHECK_EQ_INT(v.claims[0].verdict, LAB_SUPPORTED);
    CHECK_EQ_INT(v.claims[1].verdict, LAB_CONTRADICTED);
    CHECK_EQ_INT(v.claims[2].verdict, LAB_INCONCLUSIVE);
    CHECK_EQ_INT(v.claims[3].verdict, LAB_SUPPORTED);
    lab_tune_result edge = {0};
    edge.best = 0, edge.best_lr = 1e-3, edge.edge = LAB_TUNE_EDGE_LOW, edge.n = 1;
    th_tuned(&c, &v, "made-up sgd", &edge);
    CHECK_EQ_INT(v.edge_hits, 1);
    CHECK_EQ_INT(th_verdicts_finish(&c, &v), 0);
    FILE *f = fopen("out/test_theory/made-up.json", "r");
    CHECK(f != NULL);
    if (f) {
        char buf[8192];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = 0;
        fclose(f);
        CHECK(strstr(buf, "\"experiment\": \"made-up\"") != NULL);
        CHECK(strstr(buf, "\"verdict\": \"supported\"") != NULL);
        CHECK(strstr(buf, "\"verdict\": \"contradicted\"") != NULL);
        CHECK(strstr(buf, "\"verdict\": \"inconclusive\"") != NULL);
        CHECK(strstr(buf, "\"ci\": [1.5, 2.5]") != NULL);
        CHECK(strstr(buf, "\"measured\": null, \"ci\": [3, null]") != NULL);
        CHECK(strstr(buf, "a \\\"quoted\\\" claim") != NULL);
        CHECK(strstr(buf, "\"edge_hits\": 1") != NULL);
    }
}

/* th_tune_hits: a fake cell whose median cost is minimal at lr = 10^-2. */
static int fake_hit(void *cell, int method, double lr, int draw, long cap, double *steps)
{
    (void)cell, (void)method;
    double u = log10(lr) + 2.0;
    double s = 100.0 * (1.0 + u * u) + draw; /* draws differ a little */
    *steps = s <= (double)cap ? floor(s) : INFINITY;
    return 0;
}

static void test_tune_hits(void)
{
    lab_tune_opts o = lab_tune_defaults();
    o.lr_lo = 1.0, o.lr_hi = 10.0;
    lab_tune_result r;
    double hits[10];
    CHECK_EQ_INT(th_tune_hits(NULL, fake_hit, 0, 10, 100000, &o, &r, hits), 0);
    CHECK_NEAR(r.best_lr, 1e-2, 1e-12);
    CHECK_EQ_INT(r.edge, 0);
    for (int j = 0; j < 10; j++) CHECK_NEAR(hits[j], 100.0 + j, 0); /* rerun uncensored */
    CHECK_EQ_INT(th_tune_hits(NULL, fake_hit, 0, 10, 50, &o, &r, hits), 0);
    CHECK_EQ_INT(r.best, -1); /* nothing within a budget of 50 */
    CHECK(isinf(hits[0]));
}

static void test_plot_svg(void)
{
    double x[4] = {1, 10, 100, 1000}, y[4] = {1, 3, 0, 30}, lo[4] = {0.5, 2, 0, 20},
           hi[4] = {2, 4, 0, 40};
    lab_series s[1] = {{"a <b> & c", 4, x, y, lo, hi}};
    lab_plot p = {"t", "x", "y", 1, 1, 1, s};
    CHECK(lab_mkdirs("out/test_theory") == 0);
    CHECK(lab_plot_svg(&p, "out/test_theory/plot.svg") == 0);
    FILE *f = fopen("out/test_theory/plot.svg", "r");
    CHECK(f != NULL);
    if (f) {
        char buf[8192];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = 0;
        fclose(f);
        CHECK(strstr(buf, "<svg") && strstr(buf, "</svg>") && strstr(buf, "&lt;b&gt; &amp;"));
    }
    char path[1024], msg[256];
    CHECK(lab_plot_write(&p, "out/test_theory/none", LAB_PLOT_NONE, path, sizeof path, msg,
                         sizeof msg) == LAB_PLOT_NONE);
}

int main(void)
{
    dsc_set_num_threads(1);
    test_rng();
    test_noise_density_api();
    test_noise_density_experiment();
    test_plot_svg();
    test_deterministic();
    test_sparse_noise();
    test_lion_box();
    test_scaling();
    test_heavy_tail();
    test_matrix();
    test_verdicts_json();
    test_tune_hits();
    return check_report("test_theory");
}
