/* test_bench_hooks.c - the benchmark hooks at the end of descent.h, through
 * the public header only (as bench/ uses them): the GEMM against a plain
 * triple loop in every transpose combination; the Gram matrix against its
 * definition; the top-k eigen route against the full one and both against
 * the Jacobi SVD's singular values; and dsc_bench_group_update, which must
 * apply exactly the update a second step with the same gradient applies
 * (SGD with momentum: parameters and state bitwise), refuse what its
 * contract refuses, and change nothing when it does. */
#include "check.h"
#include "descent.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t state = 12345;
static double draw(void) /* uniform in [-1, 1), an LCG is plenty here */
{
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(state >> 11) * 0x1.0p-52 - 1.0;
}

static void test_gemm(void)
{
    const size_t m = 37, n = 29, k = 53;
    float *a = malloc(m * k * sizeof *a), *b = malloc(k * n * sizeof *b);
    float *c = malloc(m * n * sizeof *c);
    float *work = malloc(dsc_bench_gemm_work_floats() * sizeof *work);
    for (size_t i = 0; i < m * k; i++) a[i] = (float)draw();
    for (size_t i = 0; i < k * n; i++) b[i] = (float)draw();
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            /* The same numbers stored transposed where op() transposes. */
            float *at = malloc(m * k * sizeof *at), *bt = malloc(k * n * sizeof *bt);
            for (size_t i = 0; i < m; i++)
                for (size_t p = 0; p < k; p++) at[ta ? p * m + i : i * k + p] = a[i * k + p];
            for (size_t p = 0; p < k; p++)
                for (size_t j = 0; j < n; j++) bt[tb ? j * k + p : p * n + j] = b[p * n + j];
            for (size_t i = 0; i < m * n; i++) c[i] = 1.0f;
            dsc_bench_gemm(ta, tb, m, n, k, 0.5f, at, ta ? m : k, bt, tb ? k : n, 2.0f, c, n,
                           (ta + tb) % 2 ? NULL : work);
            double worst = 0;
            for (size_t i = 0; i < m; i++)
                for (size_t j = 0; j < n; j++) {
                    double s = 0;
                    for (size_t p = 0; p < k; p++) s += (double)a[i * k + p] * b[p * n + j];
                    worst = fmax(worst, fabs(c[i * n + j] - (0.5 * s + 2.0)));
                }
            CHECK(worst < 1e-4);
            free(at);
            free(bt);
        }
    free(a);
    free(b);
    free(c);
    free(work);
}

static void test_eigen(void)
{
    const size_t r = 24, len = 40, top = 5;
    double *x = malloc(r * len * sizeof *x), *c = malloc(r * r * sizeof *c);
    double *c2 = malloc(r * r * sizeof *c2), *w = malloc(r * sizeof *w);
    double *wt = malloc(top * sizeof *wt), *vecs = malloc(top * r * sizeof *vecs);
    double *s = malloc(r * sizeof *s), *u = malloc(r * r * sizeof *u);
    for (size_t i = 0; i < r * len; i++) x[i] = draw();
    dsc_bench_gram_f64(r, len, x, c);
    double worst = 0;
    for (size_t i = 0; i < r; i++)
        for (size_t j = 0; j < r; j++) {
            double d = 0;
            for (size_t p = 0; p < len; p++) d += x[i * len + p] * x[j * len + p];
            worst = fmax(worst, fabs(c[i * r + j] - d));
        }
    CHECK(worst < 1e-10);
    memcpy(c2, c, r * r * sizeof *c);
    void *wf = malloc(dsc_bench_sym_eig_work_bytes(r, 0));
    void *wk = malloc(dsc_bench_sym_eig_work_bytes(r, top));
    CHECK_EQ_INT(dsc_bench_sym_eig(r, 0, c, w, NULL, wf), 0);
    CHECK_EQ_INT(dsc_bench_sym_eig(r, top, c2, wt, vecs, wk), 0);
    CHECK_STATUS(dsc_bench_svd_jacobi(r, len, x, s, u), DSC_OK, NULL);
    for (size_t j = 0; j < top; j++) {
        CHECK_NEAR(wt[j], w[j], 1e-9 * w[0]);
        CHECK_NEAR(w[j], s[j] * s[j], 1e-9 * w[0]); /* eigenvalues of X X^T = sigma^2 */
        /* Same vector up to rounding: both carry the sign convention. */
        double d = 0;
        for (size_t i = 0; i < r; i++) d = fmax(d, fabs(vecs[j * r + i] - c[j * r + i]));
        CHECK(d < 1e-7);
    }
    free(x); free(c); free(c2); free(w); free(wt); free(vecs); free(s); free(u);
    free(wf); free(wk);
}

static dsc_optimizer *sgd(float *w, const float *g, size_t n)
{
    dsc_optimizer *o = dsc_optimizer_new();
    int64_t shape[1] = {(int64_t)n};
    CHECK_STATUS(dsc_optimizer_add_group(o, "g", "sgd:lr=0.1,momentum=0.9"), DSC_OK, o);
    CHECK_STATUS(dsc_optimizer_add_param(o, "w", w, g, 1, shape, DSC_ROLE_VECTOR, "g"), DSC_OK, o);
    return o;
}

static void test_group_update(void)
{
    enum { N = 1000 };
    static float w1[N], w2[N], g[N], buf[2][N];
    for (int i = 0; i < N; i++) {
        w1[i] = w2[i] = (float)draw();
        g[i] = (float)draw();
    }
    dsc_optimizer *a = sgd(w1, g, N), *b = sgd(w2, g, N);
    CHECK_STATUS(dsc_bench_group_update(NULL, 0), DSC_NULL_POINTER, NULL);
    CHECK_STATUS(dsc_bench_group_update(a, 0), DSC_STATE, a); /* no step yet */
    CHECK(!memcmp(w1, w2, sizeof w1));
    CHECK_STATUS(dsc_optimizer_step(a), DSC_OK, a);
    CHECK_STATUS(dsc_optimizer_step(b), DSC_OK, b);
    CHECK_STATUS(dsc_bench_group_update(a, 1), DSC_INVALID_ARGUMENT, a);
    CHECK_STATUS(dsc_bench_group_update(a, -1), DSC_INVALID_ARGUMENT, a);
    CHECK(!memcmp(w1, w2, sizeof w1)); /* refusals changed nothing */
    /* The hook on a, a second step on b: the same update rule, same
     * gradient, same hyperparameters (no schedule), so the same bits. */
    CHECK_STATUS(dsc_bench_group_update(a, 0), DSC_OK, a);
    CHECK_STATUS(dsc_optimizer_step(b), DSC_OK, b);
    CHECK(!memcmp(w1, w2, sizeof w1));
    CHECK_STATUS(dsc_optimizer_read_slot(a, "w", 0, "momentum_buffer", buf[0], sizeof buf[0]),
                 DSC_OK, a);
    CHECK_STATUS(dsc_optimizer_read_slot(b, "w", 0, "momentum_buffer", buf[1], sizeof buf[1]),
                 DSC_OK, b);
    CHECK(!memcmp(buf[0], buf[1], sizeof buf[0]));
    CHECK_EQ_INT(dsc_optimizer_step_count(a), 1); /* the driver's count is not touched */
    dsc_optimizer_free(a);
    dsc_optimizer_free(b);
}

int main(void)
{
    test_gemm();
    test_eigen();
    test_group_update();
    return check_report("test_bench_hooks");
}
