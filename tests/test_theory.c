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
    }
}

static void test_deterministic(void)
{
    th_ctx c = quiet();
    th_det_result r;
    int rc = th_run_deterministic(&c, &r);
    CHECK(rc >= 0);
    if (!r.ran[0] || !r.ran[1]) return;
    CHECK(r.final_loss[0] <= r.start_loss && r.final_loss[1] <= r.start_loss);
    CHECK(r.final_loss[1] * 10.0 <= r.final_loss[0]); /* SignSGD >= 10x lower */
    CHECK_NEAR(r.best_lr[0], 1e-3, 1e-12);             /* SGD: capped by L_1 = 1000 */
}

static void test_sparse_noise(void)
{
    th_ctx c = quiet();
    th_sparse_result r;
    CHECK(th_run_sparse_noise(&c, &r) >= 0);
    if (!r.ran[0] || !r.ran[1]) return;
    CHECK(r.mean_final[1] * 2.0 <= r.mean_final[0]);
    CHECK(r.q90_final[1] < r.q90_final[0]);
    CHECK(r.mean_final[1] < 0.05 * r.start_mean);
}

static void test_scaling(void)
{
    th_ctx c = quiet();
    th_scaling_result r;
    CHECK(th_run_scaling(&c, &r) >= 0);
    if (!r.ran) return;
    int n = r.nd;
    /* phi = 1/d: the ratio grows with d (roughly like d on this instance) */
    for (int a = 1; a < n; a++) CHECK(r.ratio[a][0] > r.ratio[a - 1][0]);
    CHECK(r.ratio[n - 1][0] >= 3.0 * r.ratio[0][0]);
    CHECK(r.slope_sparse > 0.5);
    /* phi = 1: no d-fold advantage */
    CHECK(r.slope_dense < 0.3);
    for (int a = 0; a < n; a++) CHECK(r.ratio[a][2] < 2.0);
}

static void test_heavy_tail(void)
{
    th_ctx c = quiet();
    th_heavy_result r;
    CHECK(th_run_heavy_tail(&c, &r) >= 0);
    if (!r.ran[0] || !r.ran[2]) return;
    for (int a = 0; a < r.ncfg; a++) {
        if (r.alpha[a] != 1.2) continue;
        /* tail index 1.2: SGD stalls, SignSGD converges */
        CHECK(r.median[a][0] >= 10.0 * r.median[a][2]);
        CHECK(r.median[a][2] < 0.05 * r.start_loss);
    }
    for (int a = 0; a < r.ncfg; a++)
        if (r.alpha[a] == 2.0 && r.cfg_name[a][0] == 'a') /* Gaussian: SGD is fine */
            CHECK(r.median[a][0] <= 3.0 * r.median[a][2]);
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
    th_matrix_result r;
    CHECK(th_run_matrix(&c, &r) >= 0);
    if (!r.ran) return;
    CHECK(r.ratio[r.nm - 1][0] >= 1.5 * r.ratio[0][0]); /* rank-one: grows with m */
    CHECK(r.slope_rank1 > 0.3);
    for (int a = 0; a < r.nm; a++) CHECK(r.ratio[a][1] < 1.5); /* spread: no advantage */
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
    return check_report("test_theory");
}
