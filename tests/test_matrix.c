/* test_matrix.c - the matrix families and their kernels.
 *
 *   1. GEMM: CBLAS and portable paths against double loops, all transposes,
 *      alpha/beta, ragged sizes; syrk symmetric; portable bits at 1/2/4 threads.
 *   2. ns5 (docs/matrix.md): singular values of ns5(G) for Gaussian 4x6, 16x5,
 *      64x16 in [0.68, 1.21]; U^T ns5(G) V diagonal; tall = wide transposed;
 *      zero in, zero out; 1x1, 1xN and Nx1 follow the scalar quintic; the
 *      reference and GEMM paths agree.
 *   2b. The bf16 product kernel (bf16gemm.h): the float -> bf16 conversion
 *      on its edge cases; the reference loops against double sums; where
 *      the CPU has AVX512-BF16, one VDPBF16PS against its emulation on
 *      random bit patterns (subnormals, tiny products at the FTZ boundary,
 *      infinities, NaNs), the kernel against the reference loops bit for
 *      bit (ragged shapes, odd k, subnormal, huge and NaN inputs, beta,
 *      aliasing) at 1, 2 and 3 threads, and ns5 through the kernel against
 *      the fallback and against float32.
 *   3. Families: fast vs reference, same bits at 1, 2 and 4 threads, no
 *      allocation in a step (counting allocator), checkpoint round trip.
 *   4. Shapes: 1-D rejected with DSC_SHAPE by muon, normuon, sinkgd, lanton;
 *      moonlight's backup for 1-D; conv filters flattened with the kH/kW
 *      shape scale; normuon's per-row state; routing by use_split.
 * Golden trajectories are replayed by ctest (golden_<name>). */
#include "check.h"
#include "descent.h"
#include "kernels/bf16gemm.h"
#include "kernels/gemm.h"
#include "kernels/newton_schulz.h"
#include "kernels/nuclear.h"
#include "polar.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------- helpers */

static uint64_t rng = 12345;

static double gauss(void)
{
    uint64_t z1 = (rng += 0x9E3779B97F4A7C15ull), z2 = (rng += 0x9E3779B97F4A7C15ull);
    z1 = (z1 ^ (z1 >> 30)) * 0xBF58476D1CE4E5B9ull;
    z1 = (z1 ^ (z1 >> 27)) * 0x94D049BB133111EBull;
    z1 ^= z1 >> 31;
    z2 = (z2 ^ (z2 >> 30)) * 0xBF58476D1CE4E5B9ull;
    z2 = (z2 ^ (z2 >> 27)) * 0x94D049BB133111EBull;
    z2 ^= z2 >> 31;
    double u1 = ((double)(z1 >> 11) + 0.5) / 9007199254740992.0;
    double u2 = (double)(z2 >> 11) / 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static void fill(float *x, size_t n, double scale)
{
    for (size_t i = 0; i < n; i++) x[i] = (float)(scale * gauss());
}

static float *falloc(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

/* ---------------------------------------------------------------- GEMM */

static double gemm_check(dsc_trans ta, dsc_trans tb, size_t m, size_t n, size_t k,
                         float alpha, float beta, int portable)
{
    size_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 2, ldc = n + 1;
    size_t arows = ta ? k : m, brows = tb ? n : k;
    float *a = falloc(arows * lda), *b = falloc(brows * ldb), *c = falloc(m * ldc),
          *c0 = falloc(m * ldc), *work = falloc(dsc_gemm_work_floats());
    fill(a, arows * lda, 1.0);
    fill(b, brows * ldb, 1.0);
    fill(c, m * ldc, 1.0);
    memcpy(c0, c, m * ldc * sizeof(float));
    if (portable) dsc_gemm_portable(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, work);
    else dsc_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, work);
    double worst = 0;
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double s = 0, mag = 0;
            for (size_t p = 0; p < k; p++) {
                double x = ta ? a[p * lda + i] : a[i * lda + p];
                double y = tb ? b[j * ldb + p] : b[p * ldb + j];
                s += x * y;
                mag += fabs(x * y);
            }
            double want = alpha * s + (beta == 0.0f ? 0.0 : beta * (double)c0[i * ldc + j]);
            double scale = fabs(alpha) * mag + fabs(beta * (double)c0[i * ldc + j]) + 1e-30;
            double e = fabs((double)c[i * ldc + j] - want) / scale;
            if (e > worst) worst = e;
        }
    free(a); free(b); free(c); free(c0); free(work);
    return worst;
}

static void test_gemm(void)
{
    static const size_t sizes[][3] = {{1, 1, 1}, {4, 8, 1},   {5, 9, 13}, {13, 7, 300},
                                      {33, 65, 17}, {70, 130, 260}, {129, 257, 40}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int t = 0; t < 4; t++)
            for (int portable = 0; portable < 2; portable++) {
                double e = gemm_check((dsc_trans)(t & 1), (dsc_trans)(t >> 1), sizes[s][0],
                                      sizes[s][1], sizes[s][2], 0.75f, t == 2 ? 0.0f : -0.5f,
                                      portable);
                CHECK(e < 1e-6);
                if (!(e < 1e-6))
                    fprintf(stderr, "  gemm %zux%zux%zu trans %d portable %d: rel err %g\n",
                            sizes[s][0], sizes[s][1], sizes[s][2], t, portable, e);
            }
    /* beta = 0 must not read C (NaN there does not survive) */
    float a[6] = {1, 2, 3, 4, 5, 6}, c[4] = {NAN, NAN, NAN, NAN};
    dsc_gemm_portable(DSC_NO_TRANS, DSC_TRANS, 2, 2, 3, 1.0f, a, 3, a, 3, 0.0f, c, 2, NULL);
    CHECK(c[0] == 14.0f && c[1] == 32.0f && c[2] == 32.0f && c[3] == 77.0f);

    /* syrk: symmetric, equal to gemm(A, A^T) up to rounding, both paths */
    size_t n = 150, k = 77;
    float *x = falloc(n * k), *c1 = falloc(n * n), *c2 = falloc(n * n), *c3 = falloc(n * n);
    float *work = falloc(dsc_gemm_work_floats());
    fill(x, n * k, 1.0);
    dsc_syrk(n, k, 1.0f, x, k, 0.0f, c1, n, work);
    dsc_syrk_portable(n, k, 1.0f, x, k, 0.0f, c2, n, work);
    dsc_gemm_portable(DSC_NO_TRANS, DSC_TRANS, n, n, k, 1.0f, x, k, x, k, 0.0f, c3, n, work);
    int sym = 1;
    double worst = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            if (c1[i * n + j] != c1[j * n + i] || c2[i * n + j] != c2[j * n + i]) sym = 0;
            double e1 = fabs(c1[i * n + j] - c3[i * n + j]), e2 = fabs(c2[i * n + j] - c3[i * n + j]);
            if (e1 > worst) worst = e1;
            if (e2 > worst) worst = e2;
        }
    CHECK(sym);
    CHECK(worst < 1e-4);
    /* portable path: the same bits at 1, 2 and 4 threads */
    size_t M = 203, N = 301, K = 157;
    float *A = falloc(M * K), *B = falloc(K * N), *C[3];
    fill(A, M * K, 1.0);
    fill(B, K * N, 1.0);
    for (int t = 0; t < 3; t++) {
        dsc_set_num_threads(1 << t);
        C[t] = falloc(M * N);
        dsc_gemm_portable(DSC_NO_TRANS, DSC_NO_TRANS, M, N, K, 1.0f, A, K, B, N, 0.0f, C[t], N,
                          work);
    }
    dsc_set_num_threads(0);
    CHECK(!memcmp(C[0], C[1], M * N * sizeof(float)));
    CHECK(!memcmp(C[0], C[2], M * N * sizeof(float)));
    for (int t = 0; t < 3; t++) free(C[t]);
    free(A); free(B); free(x); free(c1); free(c2); free(c3); free(work);
}

/* dsc_gemm / dsc_syrk: the same bits at 1, 2, 3 and 4 threads on shapes
 * that the CBLAS path cuts into 2, 4 and 8 chunks (by columns and by rows)
 * and a syrk cut into two triangle chunks; the portable path runs the same
 * calls in a build without CBLAS. */
static void test_gemm_threads(void)
{
    static const size_t shapes[][3] = {{40, 600, 100}, {64, 1100, 64}, {24, 2100, 48},
                                       {1100, 40, 64}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        float *a = falloc(m * k), *b = falloc(k * n), *c[4];
        fill(a, m * k, 1.0);
        fill(b, k * n, 1.0);
        for (int t = 0; t < 4; t++) {
            dsc_set_num_threads(t + 1);
            c[t] = falloc(m * n);
            dsc_gemm(DSC_NO_TRANS, DSC_NO_TRANS, m, n, k, 1.0f, a, k, b, n, 0.0f, c[t], n, NULL);
        }
        for (int t = 1; t < 4; t++) CHECK(!memcmp(c[0], c[t], m * n * sizeof(float)));
        for (int t = 0; t < 4; t++) free(c[t]);
        free(a);
        free(b);
    }
    size_t n = 600, k = 50;
    float *x = falloc(n * k), *c[4];
    fill(x, n * k, 1.0);
    for (int t = 0; t < 4; t++) {
        dsc_set_num_threads(t + 1);
        c[t] = falloc(n * n);
        dsc_syrk(n, k, 0.5f, x, k, 0.0f, c[t], n, NULL);
    }
    dsc_set_num_threads(0);
    for (int t = 1; t < 4; t++) CHECK(!memcmp(c[0], c[t], n * n * sizeof(float)));
    double worst = 0; /* and still x x^T / 2 */
    for (size_t i = 0; i < n; i += 7)
        for (size_t j = 0; j < n; j += 5) {
            double d = 0;
            for (size_t p = 0; p < k; p++) d += (double)x[i * k + p] * x[j * k + p];
            worst = fmax(worst, fabs(c[0][i * n + j] - 0.5 * d));
        }
    CHECK(worst < 1e-4);
    for (int t = 0; t < 4; t++) free(c[t]);
    free(x);
}

/* ----------------------------------------------------------------- ns5 */

static float *ns5_of_dtype(const float *g, size_t m, size_t n, int steps, int reference,
                           int bf16)
{
    float *o = falloc(m * n), *work = falloc(dsc_ns5_work_floats(m, n));
    dsc_ns5(g, o, 1, m, n, steps, reference, bf16, work);
    free(work);
    return o;
}

static float *ns5_of(const float *g, size_t m, size_t n, int steps, int reference)
{
    float *o = falloc(m * n), *work = falloc(dsc_ns5_work_floats(m, n));
    dsc_ns5(g, o, 1, m, n, steps, reference, 0, work);
    free(work);
    return o;
}

static void test_ns5_band(void)
{
    static const size_t shapes[][3] = {{4, 6, 20}, {16, 5, 20}, {64, 16, 5}};
    for (size_t s = 0; s < 3; s++)
        for (int ref = 0; ref < 2; ref++) {
            size_t m = shapes[s][0], n = shapes[s][1], k = m < n ? m : n;
            double lo = INFINITY, hi = 0, offdiag = 0;
            for (size_t d = 0; d < shapes[s][2]; d++) {
                float *g = falloc(m * n);
                fill(g, m * n, 1.0);
                float *o = ns5_of(g, m, n, 5, ref);
                double *gd = malloc(m * n * sizeof *gd), *od = malloc(m * n * sizeof *od);
                double *u = malloc(m * k * sizeof *u), *sv = malloc(k * sizeof *sv),
                       *v = malloc(n * k * sizeof *v);
                for (size_t i = 0; i < m * n; i++) {
                    gd[i] = g[i];
                    od[i] = o[i];
                }
                CHECK(polar_svd(od, m, n, u, sv, v) == 0);
                if (sv[k - 1] < lo) lo = sv[k - 1];
                if (sv[0] > hi) hi = sv[0];
                /* U^T ns5(G) V with U, V from G: diagonal */
                CHECK(polar_svd(gd, m, n, u, sv, v) == 0);
                for (size_t a = 0; a < k; a++)
                    for (size_t b = 0; b < k; b++) {
                        if (a == b) continue;
                        double t = 0;
                        for (size_t i = 0; i < m; i++)
                            for (size_t j = 0; j < n; j++) t += u[i * k + a] * od[i * n + j] * v[j * k + b];
                        if (fabs(t) > offdiag) offdiag = fabs(t);
                    }
                free(g); free(o); free(gd); free(od); free(u); free(sv); free(v);
            }
            CHECK(lo >= 0.68 && hi <= 1.21);
            CHECK(offdiag < 2e-6);
            if (!(lo >= 0.68 && hi <= 1.21) || !(offdiag < 2e-6))
                fprintf(stderr, "  ns5 %zux%zu ref %d: sv [%g, %g], off-diagonal %g\n", m, n, ref,
                        lo, hi, offdiag);
        }
}

/* The Jacobi SVD written for the tests agrees with LAPACKE (when built). */
static void test_polar_helpers(void)
{
    size_t m = 9, n = 5;
    double a[45], u1[45], s1[5], v1[25], u2[45], s2[5], v2[25], p[45];
    for (int i = 0; i < 45; i++) a[i] = gauss();
    CHECK(polar_svd(a, m, n, u1, s1, v1) == 0);
    CHECK(polar_svd_jacobi(a, m, n, u2, s2, v2) == 0);
    for (int i = 0; i < 5; i++) CHECK_NEAR(s1[i], s2[i], 1e-12);
    CHECK(polar_factor(a, m, n, p) == 0);
    for (size_t i = 0; i < n; i++) /* P^T P = I */
        for (size_t j = 0; j < n; j++) {
            double t = 0;
            for (size_t r = 0; r < m; r++) t += p[r * n + i] * p[r * n + j];
            CHECK_NEAR(t, i == j ? 1.0 : 0.0, 1e-12);
        }
    /* nuclear norm kernel against the SVD */
    float af[45];
    double nuc_svd = 0;
    for (int i = 0; i < 45; i++) af[i] = (float)a[i];
    for (int i = 0; i < 45; i++) a[i] = af[i];
    CHECK(polar_svd(a, m, n, u1, s1, v1) == 0);
    for (int i = 0; i < 5; i++) nuc_svd += s1[i];
    void *work = malloc(dsc_nuclear_work_bytes(m, n));
    CHECK_NEAR(dsc_nuclear_norm(af, m, n, 1, work), nuc_svd, 1e-10 * nuc_svd);
    float at[45];
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) at[j * m + i] = af[i * n + j];
    CHECK_NEAR(dsc_nuclear_norm(at, n, m, 0, work), nuc_svd, 1e-10 * nuc_svd);
    free(work);
    /* larger: Jacobi (reference) and tridiagonal QL (fast) against LAPACK/Jacobi SVD */
    size_t bm = 90, bn = 40;
    float *big = falloc(bm * bn);
    double *bd = malloc(bm * bn * sizeof *bd), *bu = malloc(bm * bn * sizeof *bu),
           *bs = malloc(bn * sizeof *bs), *bv = malloc(bn * bn * sizeof *bv);
    void *nw = malloc(dsc_nuclear_work_bytes(bm, bn));
    fill(big, bm * bn, 1.0);
    big[0] = 1e3f; /* a wide spread of singular values */
    for (size_t i = 0; i < bm * bn; i++) bd[i] = big[i];
    CHECK(polar_svd(bd, bm, bn, bu, bs, bv) == 0);
    double want = 0;
    for (size_t i = 0; i < bn; i++) want += bs[i];
    CHECK_NEAR(dsc_nuclear_norm(big, bm, bn, 1, nw), want, 1e-11 * want);
    CHECK_NEAR(dsc_nuclear_norm(big, bm, bn, 0, nw), want, 1e-11 * want);
    free(big); free(bd); free(bu); free(bs); free(bv); free(nw);
}

static double quintic(double s, int steps)
{
    for (int i = 0; i < steps; i++)
        s = 3.4445 * s - 4.7750 * s * s * s + 2.0315 * s * s * s * s * s;
    return s;
}

static void test_ns5_shapes(void)
{
    for (int ref = 0; ref < 2; ref++) {
        /* tall = wide transposed */
        size_t m = 16, n = 5;
        float g[80], gt[80];
        fill(g, 80, 1.0);
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++) gt[j * m + i] = g[i * n + j];
        float *o = ns5_of(g, m, n, 5, ref), *ot = ns5_of(gt, n, m, 5, ref);
        double worst = 0;
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++) worst = fmax(worst, fabs(o[i * n + j] - ot[j * m + i]));
        CHECK(worst < 1e-6);
        free(o);
        free(ot);
        /* zero in, exact zero out */
        float z[24] = {0};
        float *oz = ns5_of(z, 4, 6, 5, ref);
        int allzero = 1;
        for (int i = 0; i < 24; i++) allzero &= oz[i] == 0.0f;
        CHECK(allzero);
        free(oz);
        /* 1x1, 1xN, Nx1: one singular value through the scalar quintic */
        float one = -0.37f;
        float *o1 = ns5_of(&one, 1, 1, 5, ref);
        CHECK_NEAR(o1[0], -quintic(0.37 / (0.37 + 1e-7), 5), 2e-6);
        free(o1);
        float row[7];
        fill(row, 7, 1.0);
        double nrm = 0;
        for (int i = 0; i < 7; i++) nrm += (double)row[i] * row[i];
        nrm = sqrt(nrm);
        double s5 = quintic(nrm / (nrm + 1e-7), 5);
        float *orow = ns5_of(row, 1, 7, 5, ref), *ocol = ns5_of(row, 7, 1, 5, ref);
        for (int i = 0; i < 7; i++) {
            CHECK_NEAR(orow[i], s5 * row[i] / nrm, 2e-6);
            CHECK_NEAR(ocol[i], s5 * row[i] / nrm, 2e-6);
        }
        free(orow);
        free(ocol);
    }
    /* reference and GEMM paths agree on a larger matrix */
    size_t m = 70, n = 150;
    float *g = falloc(m * n);
    fill(g, m * n, 0.1);
    float *a = ns5_of(g, m, n, 5, 0), *b = ns5_of(g, m, n, 5, 1);
    double worst = 0;
    for (size_t i = 0; i < m * n; i++) worst = fmax(worst, fabs(a[i] - b[i]));
    CHECK(worst < 1e-5);
    free(g); free(a); free(b);
}

/* bf16 products (newton_schulz.h). Each product input is a bf16 number:
 * checked directly on one iteration, where A = X X^T with X rounded must
 * equal the double sum over the rounded entries to float32 accuracy.
 * Then the whole iteration: the GEMM path against the reference loops
 * (the same roundings; a sum order that differs can move an A or B entry
 * across a bf16 rounding boundary, so the tolerance is a few bf16 steps,
 * not float32's), and against float32 ns5: the relative Frobenius
 * difference is at bf16's level (docs/matrix.md states the figures), far
 * above float32's and far below the distance of ns5 to the polar factor. */
static double rel_frob(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return sqrt(num / den);
}

static void test_ns5_bf16(void)
{
    /* one step on a 2 x 3 matrix whose entries are not bf16 numbers: the
     * rounded X gives A, B and Y exactly predictable in double */
    float g[6] = {0.30017f, -0.5f, 0.20011f, 0.7f, 0.10003f, -0.40009f};
    double nrm = 0;
    for (int i = 0; i < 6; i++) nrm += (double)g[i] * g[i];
    float d = (float)(sqrt(nrm) + 1e-7), x[6], xb[6];
    for (int i = 0; i < 6; i++) {
        x[i] = g[i] / d;
        uint32_t u;
        memcpy(&u, &x[i], 4);
        u = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
        memcpy(&xb[i], &u, 4);
        CHECK(xb[i] != x[i]); /* the rounding is visible */
    }
    for (int ref = 0; ref < 2; ref++) {
        float *o = ns5_of_dtype(g, 2, 3, 1, ref, 1), *of = ns5_of_dtype(g, 2, 3, 1, ref, 0);
        double a[4], ab[4], bb[4], bm[4];
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++) {
                double s = 0;
                for (int k = 0; k < 3; k++) s += (double)xb[i * 3 + k] * xb[j * 3 + k];
                a[i * 2 + j] = (float)s;
                uint32_t u;
                float f = (float)s;
                memcpy(&u, &f, 4);
                u = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
                memcpy(&f, &u, 4);
                ab[i * 2 + j] = f;
            }
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++) {
                double s = 0;
                for (int k = 0; k < 2; k++) s += ab[i * 2 + k] * ab[k * 2 + j];
                float f = (float)(DSC_NS_B * a[i * 2 + j] + DSC_NS_C * s);
                bm[i * 2 + j] = f;
                uint32_t u;
                memcpy(&u, &f, 4);
                u = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
                memcpy(&f, &u, 4);
                bb[i * 2 + j] = f;
            }
        (void)bm;
        double worst = 0, apart = 0;
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++) {
                double s = 0;
                for (int k = 0; k < 2; k++) s += bb[i * 2 + k] * xb[k * 3 + j];
                double want = DSC_NS_A * x[i * 3 + j] + s;
                worst = fmax(worst, fabs(o[i * 3 + j] - want));
                apart = fmax(apart, fabs(of[i * 3 + j] - want));
            }
        CHECK(worst < 2e-6);   /* float32 rounding of the sums only */
        CHECK(apart > 1e-4);   /* float32 ns5 is a different number */
        if (!(worst < 2e-6) || !(apart > 1e-4))
            fprintf(stderr, "  ns5 bf16 one step ref %d: err %g, float32 apart %g\n", ref, worst,
                    apart);
        free(o);
        free(of);
    }
    /* GEMM path vs reference loops, and vs float32, on a wide and a tall shape */
    static const size_t shapes[][2] = {{70, 150}, {150, 70}};
    for (int s = 0; s < 2; s++) {
        size_t m = shapes[s][0], n = shapes[s][1];
        float *gg = falloc(m * n);
        fill(gg, m * n, 0.1);
        float *fast = ns5_of_dtype(gg, m, n, 5, 0, 1), *f32 = ns5_of_dtype(gg, m, n, 5, 0, 0);
        float *fast1 = ns5_of_dtype(gg, m, n, 1, 0, 1), *ref1 = ns5_of_dtype(gg, m, n, 1, 1, 1),
              *f321 = ns5_of_dtype(gg, m, n, 1, 0, 0);
        double paths = rel_frob(fast1, ref1, m * n), vs32_1 = rel_frob(fast1, f321, m * n),
               vs32 = rel_frob(fast, f32, m * n);
        /* one step: the paths agree (measured 1e-8; a sum landing on the other
         * side of a bf16 rounding boundary would move a few entries by a bf16
         * step, still well below 1e-5 of the whole), float32 does not (8e-5);
         * five steps amplify the bf16 noise to about 2.4e-2 here */
        CHECK(paths < 1e-5 && vs32_1 > 2e-5);
        CHECK(vs32 > 1e-3 && vs32 < 5e-2);
        if (!(paths < 1e-5 && vs32_1 > 2e-5) || !(vs32 > 1e-3 && vs32 < 5e-2))
            fprintf(stderr, "  ns5 bf16 %zux%zu: 1 step gemm vs ref %g, vs float32 %g; "
                    "5 steps vs float32 %g\n", m, n, paths, vs32_1, vs32);
        free(fast1); free(ref1); free(f321);
        /* the same bits at 1, 2 and 4 threads */
        for (int t = 1; t < 3; t++) {
            dsc_set_num_threads(1 << t);
            float *o = ns5_of_dtype(gg, m, n, 5, 0, 1);
            CHECK(!memcmp(o, fast, m * n * sizeof(float)));
            free(o);
        }
        dsc_set_num_threads(0);
        free(gg); free(fast); free(f32);
    }
    /* the public entry: flags, and an unknown flag refused without writing */
    float gp[12], op[12], *work = falloc(dsc_newton_schulz_work_floats(3, 4));
    fill(gp, 12, 1.0);
    float *want = ns5_of_dtype(gp, 3, 4, 5, 1, 1);
    CHECK(dsc_newton_schulz(gp, op, 1, 3, 4, 5, DSC_NS_REFERENCE | DSC_NS_BF16, work) == DSC_OK);
    CHECK(!memcmp(op, want, sizeof op));
    free(want);
    for (int i = 0; i < 12; i++) op[i] = 7.0f;
    CHECK(dsc_newton_schulz(gp, op, 1, 3, 4, 5, 4, work) == DSC_INVALID_ARGUMENT);
    CHECK(op[0] == 7.0f && op[11] == 7.0f);
    free(work);
}

/* ------------------------------------------------------ bf16 kernel */

static uint32_t fbits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static float bitsf(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* Same bits, or both NaN (the emulation does not promise NaN payloads). */
static int same_or_nan(const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fbits(a[i]) != fbits(b[i]) && !(isnan(a[i]) && isnan(b[i]))) return 0;
    return 1;
}

static uint64_t bits_rng = 99;
static uint32_t rbits(void)
{
    bits_rng = bits_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(bits_rng >> 32);
}

/* A bf16 of a given kind: 0 ordinary (|x| in [2^-7, 2^7)), 1 any bit
 * pattern, 2 subnormal or tiny (exponent field 0..3), 3 near 2^-64 (so
 * products land around 2^-128, across the FTZ boundary). */
static uint16_t bf16_of_kind(int kind)
{
    uint32_t r = rbits();
    uint32_t sign = (r >> 31) << 15, man = (r >> 8) & 0x7F;
    switch (kind) {
    case 0: return (uint16_t)(sign | ((120 + r % 14) << 7) | man);
    case 1: return (uint16_t)r;
    case 2: return (uint16_t)(sign | ((r % 4) << 7) | man);
    default: return (uint16_t)(sign | ((60 + r % 8) << 7) | man);
    }
}

static void test_bf16_kernel(void)
{
    /* the conversion: ties to even, carries, signed zeros, NaN quieted */
    CHECK(dsc_bf16_of(1.0f) == 0x3F80);
    CHECK(dsc_bf16_of(bitsf(0x3F808000u)) == 0x3F80); /* tie, even stays */
    CHECK(dsc_bf16_of(bitsf(0x3F818000u)) == 0x3F82); /* tie, odd rounds up */
    CHECK(dsc_bf16_of(bitsf(0x3F808001u)) == 0x3F81);
    CHECK(dsc_bf16_of(bitsf(0x3FFFFFFFu)) == 0x4000); /* carry into the exponent */
    CHECK(dsc_bf16_of(bitsf(0x7F7FFFFFu)) == 0x7F80); /* FLT_MAX to infinity */
    CHECK(dsc_bf16_of(bitsf(0x807FFFFFu)) == 0x8000); /* subnormal to -0 */
    CHECK(dsc_bf16_of(bitsf(0x00000001u)) == 0x0000);
    CHECK(dsc_bf16_of(bitsf(0x00800000u)) == 0x0080); /* least normal stays */
    CHECK(dsc_bf16_of(bitsf(0x7F800001u)) == 0x7FC0); /* signaling NaN quieted */
    CHECK(dsc_bf16_of(-INFINITY) == 0xFF80);

    /* the reference loops against double sums of the rounded inputs: a
     * float32 chain of k products is within k float32 roundings */
    {
        size_t m = 9, n = 13, k = 37;
        float *a = falloc(m * k), *b = falloc(k * n), *c = falloc(m * n), *cin = falloc(m * n);
        fill(a, m * k, 1.0);
        fill(b, k * n, 1.0);
        fill(cin, m * n, 1.0);
        dsc_gemm_bf16_ref(DSC_NO_TRANS, m, n, k, 0.5f, a, k, b, n, -2.0f, cin, n, c, n);
        double worst = 0;
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++) {
                double s = 0, mag = 0;
                for (size_t p = 0; p < k; p++) {
                    double x = bitsf((uint32_t)dsc_bf16_of(a[i * k + p]) << 16);
                    double y = bitsf((uint32_t)dsc_bf16_of(b[p * n + j]) << 16);
                    s += x * y;
                    mag += fabs(x * y);
                }
                double want = 0.5 * s - 2.0 * cin[i * n + j];
                worst = fmax(worst, fabs(c[i * n + j] - want) / (mag + fabs(cin[i * n + j])));
            }
        CHECK(worst < 4e-6 && worst > 0); /* float32 sums: not exact, not far */
        free(a); free(b); free(c); free(cin);
    }

    if (!dsc_bf16gemm_available()) {
        printf("bf16 kernel not in use (no AVX512-BF16, another compiler, or "
               "DESCENT_KERNELS): reference loops checked only\n");
        return;
    }
    printf("bf16 kernel: AVX512-BF16, checked against its reference loops\n");

    /* one instruction against its emulation */
    long bad = 0;
    for (int kind = 0; kind < 4; kind++)
        for (int it = 0; it < 20000; it++) {
            uint16_t a[32], b[32];
            float acc[16], want[16];
            for (int i = 0; i < 32; i++) {
                a[i] = bf16_of_kind(kind);
                b[i] = bf16_of_kind(kind);
            }
            for (int j = 0; j < 16; j++) {
                uint32_t r = rbits();
                if (kind == 0) acc[j] = (float)((int32_t)r) * 1e-9f;
                else if (kind == 1) acc[j] = bitsf(r);
                else acc[j] = bitsf((r & 0x807FFFFFu) | ((rbits() % 3) << 23)); /* near 2^-126 */
            }
            memcpy(want, acc, sizeof acc);
            dsc_bf16_dot16_hw(acc, a, b);
            dsc_bf16_dot16_ref(want, a, b);
            bad += !same_or_nan(acc, want, 16);
        }
    CHECK(bad == 0);
    if (bad) fprintf(stderr, "  vdpbf16ps vs emulation: %ld of 80000 vectors differ\n", bad);

    /* the kernel against the reference loops, bit for bit */
    static const size_t shapes[][3] = {{1, 1, 1},   {5, 7, 9},    {8, 48, 2},  {9, 49, 3},
                                       {70, 150, 33}, {96, 97, 130}, {130, 70, 64}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        size_t lda = k + 3, ldb = n + 5, ldbt = k + 1, ldc = n + 2;
        float *a = falloc(m * lda), *b = falloc(k * ldb), *bt = falloc(n * ldbt);
        float *cin = falloc(m * ldc), *want = falloc(m * ldc), *got = falloc(m * ldc);
        float *work = falloc(dsc_gemm_bf16_work_floats(m, n, k));
        fill(a, m * lda, 0.3);
        fill(b, k * ldb, 0.3);
        fill(bt, n * ldbt, 0.3);
        fill(cin, m * ldc, 1.0);
        if (s == 4) { /* subnormal, huge (products overflow) and NaN inputs */
            a[3] = bitsf(0x00400000u);
            a[4] = -1e-39f;
            b[ldb + 2] = 3e38f; /* times a[lda + 1]: overflows to infinity */
            a[lda + 1] = 2e38f;
            bt[7] = NAN;
            a[2 * lda] = bitsf(0x00FFFFFFu); /* rounds up to the least normal */
        }
        for (int variant = 0; variant < 4; variant++) {
            dsc_trans tb = variant & 1 ? DSC_TRANS : DSC_NO_TRANS;
            const float *bb = tb ? bt : b;
            size_t lb = tb ? ldbt : ldb;
            float beta = variant & 2 ? -0.75f : 0.0f;
            dsc_gemm_bf16_ref(tb, m, n, k, 1.5f, a, lda, bb, lb, beta, cin, ldc, want, ldc);
            for (int th = 1; th <= 3; th++) {
                dsc_set_num_threads(th);
                memset(got, 0, m * ldc * sizeof(float));
                dsc_gemm_bf16(tb, m, n, k, 1.5f, a, lda, bb, lb, beta, cin, ldc, got, ldc, work);
                int ok = 1;
                for (size_t i = 0; i < m; i++) ok &= same_or_nan(got + i * ldc, want + i * ldc, n);
                CHECK(ok);
                if (!ok)
                    fprintf(stderr, "  bf16 gemm %zux%zux%zu tb %d beta %g threads %d differs\n",
                            m, n, k, (int)tb, beta, th);
            }
            dsc_set_num_threads(0);
        }
        /* syrk of A (m x k), and C = alpha A A^T + beta C in place */
        float *sw = falloc(m * m), *sg = falloc(m * m), *sc = falloc(m * m);
        float *work2 = falloc(dsc_gemm_bf16_work_floats(0, m, k));
        fill(sc, m * m, 1.0);
        for (size_t i = 0; i < m; i++) /* a symmetric Cin */
            for (size_t j = 0; j < i; j++) sc[i * m + j] = sc[j * m + i];
        dsc_syrk_bf16_ref(m, k, 0.5f, a, lda, 2.0f, sc, m, sw, m);
        for (int th = 1; th <= 3; th++) {
            dsc_set_num_threads(th);
            memcpy(sg, sc, m * m * sizeof(float));
            dsc_syrk_bf16(m, k, 0.5f, a, lda, 2.0f, sg, m, sg, m, work2);
            CHECK(same_or_nan(sg, sw, m * m));
        }
        dsc_set_num_threads(0);
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < i; j++)
                CHECK(fbits(sw[i * m + j]) == fbits(sw[j * m + i]) || isnan(sw[i * m + j]));
        free(sw); free(sg); free(sc); free(work2);
        free(a); free(b); free(bt); free(cin); free(want); free(got); free(work);
    }

    /* ns5 through the kernel: the same bits at 1, 2 and 4 threads; against
     * the fallback (bf16-rounded inputs, float32 GEMM; only the sum order
     * and subnormals differ) and against float32, on a GPT-2 shape cut in
     * height (256 x 768): after 5 steps both bf16 paths are about 2% from
     * float32 and about as far from each other (the iteration amplifies
     * any difference of the first step alike); the orthogonality error
     * ||O O^T - I|| / sqrt(r) stays within 0.01 of float32's */
    {
        size_t m = 256, n = 768;
        float *g = falloc(m * n);
        fill(g, m * n, 1.0);
        float *k16 = ns5_of_dtype(g, m, n, 5, 0, 1), *f32 = ns5_of_dtype(g, m, n, 5, 0, 0);
        float *k16_1 = ns5_of_dtype(g, m, n, 1, 0, 1), *f32_1 = ns5_of_dtype(g, m, n, 1, 0, 0);
        for (int t = 1; t < 3; t++) {
            dsc_set_num_threads(1 << t);
            float *o = ns5_of_dtype(g, m, n, 5, 0, 1);
            CHECK(!memcmp(o, k16, m * n * sizeof(float)));
            free(o);
        }
        dsc_set_num_threads(0);
        dsc_bf16gemm_allow(0);
        float *fb = ns5_of_dtype(g, m, n, 5, 0, 1), *fb_1 = ns5_of_dtype(g, m, n, 1, 0, 1);
        dsc_bf16gemm_allow(1);
        double kf = rel_frob(k16, f32, m * n), bf = rel_frob(fb, f32, m * n),
               kb = rel_frob(k16, fb, m * n), kb1 = rel_frob(k16_1, fb_1, m * n),
               kf1 = rel_frob(k16_1, f32_1, m * n);
        float *gram = falloc(m * m);
        double orth[3];
        const float *outs[3] = {f32, k16, fb};
        for (int v = 0; v < 3; v++) {
            dsc_syrk(m, n, 1.0f, outs[v], n, 0.0f, gram, m, NULL);
            double e = 0;
            for (size_t i = 0; i < m; i++)
                for (size_t j = 0; j < m; j++) {
                    double d = gram[i * m + j] - (i == j ? 1.0 : 0.0);
                    e += d * d;
                }
            orth[v] = sqrt(e / (double)m);
        }
        int ok = kf > 1e-3 && kf < 5e-2 && bf < 5e-2 && kb < 5e-2 && kb1 < kf1 && kf1 < 1e-3 &&
                 fabs(orth[1] - orth[0]) < 0.01 && fabs(orth[2] - orth[0]) < 0.01;
        CHECK(ok);
        if (!ok || getenv("DESCENT_TEST_VERBOSE"))
            fprintf(stderr, "  ns5 256x768: kernel vs f32 %.3g, fallback vs f32 %.3g, kernel vs "
                    "fallback %.3g; 1 step: kernel vs fallback %.3g, vs f32 %.3g; orth f32 "
                    "%.4f kernel %.4f fallback %.4f\n", kf, bf, kb, kb1, kf1, orth[0], orth[1],
                    orth[2]);
        free(g); free(k16); free(f32); free(k16_1); free(f32_1); free(fb); free(fb_1); free(gram);
    }
}

/* ------------------------------------------------------------ families */

typedef struct {
    const char *spec;
    int vectors; /* accepts 1-D */
    int conv;    /* accepts 4-D */
    double fast_vs_ref; /* tolerance of test_fast_vs_ref; 0: 1e-5 */
} opt_case;

static const opt_case cases[] = {
    {"muon:lr=0.02,weight_decay=0.01", 0, 1, 0},
    {"muon:lr=0.02,nesterov=0,ns_steps=3", 0, 1, 0},
    /* bf16 products: a sum order that differs may move an entry across a
     * bf16 rounding boundary (test_ns5_bf16), so fast and reference agree to
     * bf16's precision in the update, times lr */
    {"muon:lr=0.02,ns_bf16=1", 0, 1, 2e-4},
    {"normuon:lr=0.02,ns_bf16=1", 0, 1, 2e-4},
    {"muon_moonlight:lr=0.01,ns_bf16=1", 1, 0, 2e-4},
    {"muon_moonlight:lr=0.01", 1, 0, 0},
    {"muonlight:lr=0.01,nesterov=0,weight_decay=0", 1, 0, 0},
    {"normuon:lr=0.02,weight_decay=0.1", 0, 1, 0},
    {"auon:lr=0.1,weight_decay=0.01", 1, 1, 0},
    {"auon_hybrid:lr=0.1,ns_steps=3", 1, 1, 0},
    {"sinkgd:lr=0.01,iters=3", 0, 1, 0},
    {"lanton:lr=0.02,weight_decay=0.01", 0, 1, 0},
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

typedef struct {
    int ndim;
    int64_t shape[4];
} pshape;

typedef struct {
    dsc_optimizer *opt;
    int np;
    float *w[8], *g[8];
    size_t n[8];
} rig;

static size_t numel_of(const pshape *s)
{
    size_t n = 1;
    for (int d = 0; d < s->ndim; d++) n *= (size_t)s->shape[d];
    return n;
}

/* An optimizer with one group "main" holding the shapes the case accepts;
 * weights from a fixed seed. */
static int rig_make(rig *r, const opt_case *c, const pshape *shapes, int ns, int reference)
{
    memset(r, 0, sizeof *r);
    r->opt = dsc_optimizer_new();
    if (dsc_optimizer_add_group(r->opt, "main", c->spec) != DSC_OK) {
        fprintf(stderr, "  %s: %s\n", c->spec, dsc_optimizer_error(r->opt));
        return 0;
    }
    dsc_optimizer_use_reference(r->opt, reference);
    uint64_t saved = rng;
    rng = 777;
    for (int i = 0; i < ns; i++) {
        if (shapes[i].ndim == 1 && !c->vectors) continue;
        if (shapes[i].ndim == 4 && !c->conv) continue;
        int k = r->np++;
        r->n[k] = numel_of(&shapes[i]);
        r->w[k] = falloc(r->n[k]);
        r->g[k] = falloc(r->n[k]);
        fill(r->w[k], r->n[k], 0.5);
        char name[16];
        snprintf(name, sizeof name, "p%d", i);
        if (dsc_optimizer_add_param(r->opt, name, r->w[k], r->g[k], shapes[i].ndim,
                                    shapes[i].shape, DSC_ROLE_AUTO, "main") != DSC_OK) {
            fprintf(stderr, "  %s: %s\n", c->spec, dsc_optimizer_error(r->opt));
            rng = saved;
            return 0;
        }
    }
    rng = saved;
    return 1;
}

/* Gradients of step s: the same for every rig. */
static void rig_grads(rig *r, int s)
{
    uint64_t saved = rng;
    rng = 1000 + (uint64_t)s;
    for (int k = 0; k < r->np; k++) fill(r->g[k], r->n[k], 1.0);
    rng = saved;
}

static int rig_steps(rig *r, int from, int to)
{
    for (int s = from; s < to; s++) {
        rig_grads(r, s);
        if (dsc_optimizer_step(r->opt) != DSC_OK) {
            fprintf(stderr, "  step: %s\n", dsc_optimizer_error(r->opt));
            return 0;
        }
    }
    return 1;
}

static void rig_free(rig *r)
{
    dsc_optimizer_free(r->opt);
    for (int k = 0; k < r->np; k++) {
        free(r->w[k]);
        free(r->g[k]);
    }
}

static double rig_diff(const rig *a, const rig *b)
{
    double worst = 0;
    for (int k = 0; k < a->np; k++)
        for (size_t i = 0; i < a->n[k]; i++)
            worst = fmax(worst, fabs(a->w[k][i] - b->w[k][i]) / (1.0 + fabs(b->w[k][i])));
    return worst;
}

static int rig_same_bits(const rig *a, const rig *b)
{
    for (int k = 0; k < a->np; k++)
        if (memcmp(a->w[k], b->w[k], a->n[k] * sizeof(float))) return 0;
    return 1;
}

static const pshape small_shapes[] = {
    {2, {7, 13}}, {2, {13, 7}}, {2, {33, 65}}, {4, {5, 3, 3, 3}}, {1, {11}}, {2, {1, 9}},
};

static void test_fast_vs_ref(void)
{
    for (int c = 0; c < NCASES; c++) {
        rig a, b;
        int ok = rig_make(&a, &cases[c], small_shapes, 6, 0) &&
                 rig_make(&b, &cases[c], small_shapes, 6, 1);
        CHECK(ok);
        if (ok) {
            CHECK(rig_steps(&a, 0, 3) && rig_steps(&b, 0, 3));
            double d = rig_diff(&a, &b), tol = cases[c].fast_vs_ref ? cases[c].fast_vs_ref : 1e-5;
            CHECK(d < tol);
            if (!(d < tol)) fprintf(stderr, "  %s: fast vs ref %g\n", cases[c].spec, d);
        }
        rig_free(&a);
        rig_free(&b);
    }
}

/* Large enough that every parallel loop, the CBLAS chunking and the syrk
 * split are active. */
static void test_threads(void)
{
    static const pshape big[] = {{2, {256, 300}}, {2, {300, 130}}, {4, {64, 32, 3, 3}},
                                 {1, {40000}}};
    for (int c = 0; c < NCASES; c++) {
        rig r[3];
        int ok = 1;
        for (int t = 0; t < 3; t++) {
            dsc_set_num_threads(1 << t);
            ok &= rig_make(&r[t], &cases[c], big, 4, 0) && rig_steps(&r[t], 0, 2);
        }
        dsc_set_num_threads(0);
        CHECK(ok);
        if (ok) {
            int same = rig_same_bits(&r[0], &r[1]) && rig_same_bits(&r[0], &r[2]);
            CHECK(same);
            if (!same) fprintf(stderr, "  %s: bits differ across thread counts\n", cases[c].spec);
        }
        for (int t = 0; t < 3; t++) rig_free(&r[t]);
    }
}

static size_t allocations;
static void *counting_alloc(size_t n)
{
    allocations++;
    return malloc(n);
}

static void test_no_alloc(void)
{
    dsc_set_allocator(counting_alloc, free);
    for (int c = 0; c < NCASES; c++)
        for (int ref = 0; ref < 2; ref++) {
            rig r;
            int ok = rig_make(&r, &cases[c], small_shapes, 6, ref);
            CHECK(ok);
            size_t before = allocations;
            if (ok) CHECK(rig_steps(&r, 0, 2));
            CHECK_EQ_INT(allocations - before, 0);
            rig_free(&r);
        }
    dsc_set_allocator(NULL, NULL);
}

static void test_checkpoint(void)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/descent_test_matrix_%d.safetensors", (int)getpid());
    for (int c = 0; c < NCASES; c++) {
        rig a, b;
        int ok = rig_make(&a, &cases[c], small_shapes, 6, 0) &&
                 rig_make(&b, &cases[c], small_shapes, 6, 0);
        CHECK(ok);
        if (ok) {
            CHECK(rig_steps(&a, 0, 2));
            CHECK_STATUS(dsc_optimizer_save(a.opt, path), DSC_OK, a.opt);
            CHECK_STATUS(dsc_optimizer_load(b.opt, path), DSC_OK, b.opt);
            for (int k = 0; k < a.np; k++) memcpy(b.w[k], a.w[k], a.n[k] * sizeof(float));
            CHECK(rig_steps(&a, 2, 4) && rig_steps(&b, 2, 4));
            CHECK(rig_same_bits(&a, &b));
        }
        rig_free(&a);
        rig_free(&b);
    }
    remove(path);
}

/* ---------------------------------------------------------------- shapes */

static void test_vectors_rejected(void)
{
    static const char *matrix_only[] = {"muon", "normuon", "sinkgd", "lanton"};
    float w[6] = {0}, g[6] = {0};
    int64_t s1[1] = {6}, s3[3] = {1, 2, 3};
    for (int i = 0; i < 4; i++) {
        dsc_optimizer *o = dsc_optimizer_new();
        CHECK_STATUS(dsc_optimizer_add_group(o, "m", matrix_only[i]), DSC_OK, o);
        CHECK_STATUS(dsc_optimizer_add_param(o, "bias", w, g, 1, s1, DSC_ROLE_AUTO, "m"),
                     DSC_SHAPE, o);
        CHECK(strstr(dsc_optimizer_error(o), "fallback") != NULL);
        CHECK(strstr(dsc_optimizer_error(o), "bias") != NULL);
        CHECK_EQ_INT(dsc_optimizer_param_count(o), 0);
        dsc_optimizer_free(o);
    }
    dsc_optimizer *o = dsc_optimizer_new();
    CHECK_STATUS(dsc_optimizer_add_group(o, "m", "muon_moonlight"), DSC_OK, o);
    CHECK_STATUS(dsc_optimizer_add_param(o, "bias", w, g, 1, s1, DSC_ROLE_AUTO, "m"), DSC_OK, o);
    CHECK_STATUS(dsc_optimizer_add_param(o, "t3", w, g, 3, s3, DSC_ROLE_AUTO, "m"), DSC_SHAPE, o);
    dsc_optimizer_free(o);
    CHECK(dsc_optimizer_kind_find("muonlight") == dsc_optimizer_kind_find("muon_moonlight"));
    CHECK(dsc_optimizer_kind_find("muon")->matrix == 1);
}

/* muon on a 4-D filter = muon on its O x (I kH kW) matrix when kH = kW, and
 * a 3x1 kernel moves sqrt(3) times further (shape scale from kH / kW). */
static void test_conv(void)
{
    int64_t s4[4] = {4, 2, 3, 3}, s2[2] = {4, 18}, k4[4] = {3, 2, 3, 1}, k2[2] = {3, 6};
    float w4[72], w2[72], g[72], v4[18], v2[18], w0[18], h[18];
    fill(w4, 72, 0.5);
    memcpy(w2, w4, sizeof w4);
    fill(v4, 18, 0.5);
    memcpy(v2, v4, sizeof v4);
    memcpy(w0, v4, sizeof v4);
    fill(h, 18, 1.0);
    dsc_optimizer *o = dsc_optimizer_new();
    CHECK_STATUS(dsc_optimizer_add_group(o, "m", "muon:lr=0.05"), DSC_OK, o);
    CHECK_STATUS(dsc_optimizer_add_param(o, "conv", w4, g, 4, s4, DSC_ROLE_AUTO, "m"), DSC_OK, o);
    CHECK_STATUS(dsc_optimizer_add_param(o, "flat", w2, g, 2, s2, DSC_ROLE_AUTO, "m"), DSC_OK, o);
    CHECK_STATUS(dsc_optimizer_add_param(o, "k31", v4, h, 4, k4, DSC_ROLE_AUTO, "m"), DSC_OK, o);
    CHECK_STATUS(dsc_optimizer_add_param(o, "k31flat", v2, h, 2, k2, DSC_ROLE_AUTO, "m"), DSC_OK, o);
    for (int s = 0; s < 2; s++) {
        fill(g, 72, 1.0);
        CHECK_STATUS(dsc_optimizer_step(o), DSC_OK, o);
    }
    CHECK(!memcmp(w4, w2, sizeof w4));
    /* one step only moved k31 and k31flat by the same O; ratio sqrt(3) */
    double num = 0, den = 0;
    for (int i = 0; i < 18; i++) {
        num += (w0[i] - v4[i]) * (w0[i] - v4[i]);
        den += (w0[i] - v2[i]) * (w0[i] - v2[i]);
    }
    CHECK_NEAR(sqrt(num / den), sqrt(3.0), 1e-5);
    dsc_optimizer_free(o);
    /* normuon keeps one second moment per row of the 4-D tensor: (4, 2, 3, 1) */
    size_t bytes = 0;
    CHECK_STATUS(dsc_state_bytes("normuon", 4, s4, &bytes), DSC_OK, NULL);
    CHECK_EQ_INT(bytes, (72 + 24) * sizeof(float));
    CHECK_STATUS(dsc_state_bytes("sinkgd", 2, s2, &bytes), DSC_OK, NULL);
    CHECK_EQ_INT(bytes, 0);
    CHECK_STATUS(dsc_state_bytes("lanton", 2, s2, &bytes), DSC_OK, NULL);
    CHECK_EQ_INT(bytes, 72 * sizeof(float) + sizeof(double));
}

/* The usual split: hidden matrices and conv filters to muon; the embedding,
 * the head and vectors to the fallback, vectors without weight decay. */
static void test_split(void)
{
    static const struct {
        const char *name;
        int ndim;
        int64_t shape[4];
        const char *group;
        int no_decay;
    } ps[] = {
        {"h0.attn.w", 2, {12, 8}, "matrix", 0}, {"h0.mlp.w", 2, {32, 8}, "matrix", 0},
        {"conv1", 4, {4, 2, 3, 3}, "matrix", 0}, {"wte", 2, {50, 8}, "fallback", 0},
        {"lm_head", 2, {50, 8}, "fallback", 0}, {"ln_f.g", 1, {8}, "fallback", 1},
        {"h0.attn.b", 1, {12}, "fallback", 1},
    };
    const int n = (int)(sizeof ps / sizeof ps[0]);
    const char *mats[] = {"muon:lr=0.02,weight_decay=0.01", "normuon", "sinkgd", "lanton"};
    for (int mi = 0; mi < 4; mi++) {
        dsc_optimizer *o = dsc_optimizer_new();
        CHECK_STATUS(dsc_optimizer_use_split(o, mats[mi], "adamw:lr=3e-4,weight_decay=0.01"),
                     DSC_OK, o);
        float *bufs[16];
        for (int i = 0; i < n; i++) {
            size_t len = 1;
            for (int d = 0; d < ps[i].ndim; d++) len *= (size_t)ps[i].shape[d];
            bufs[i] = falloc(len);
            CHECK_STATUS(dsc_optimizer_add_param(o, ps[i].name, bufs[i], bufs[i], ps[i].ndim,
                                                 ps[i].shape, DSC_ROLE_AUTO, NULL),
                         DSC_OK, o);
            dsc_param_info info;
            CHECK_STATUS(dsc_optimizer_param_info(o, i, &info), DSC_OK, o);
            CHECK(!strcmp(info.group, ps[i].group));
            CHECK_EQ_INT(info.no_decay, ps[i].no_decay);
        }
        CHECK_STATUS(dsc_optimizer_step(o), DSC_OK, o);
        dsc_optimizer_free(o);
        for (int i = 0; i < n; i++) free(bufs[i]);
    }
}

int main(void)
{
    test_gemm();
    test_polar_helpers();
    test_ns5_band();
    test_ns5_shapes();
    test_gemm_threads();
    test_ns5_bf16();
    test_bf16_kernel();
    test_vectors_rejected();
    test_conv();
    test_split();
    test_fast_vs_ref();
    test_no_alloc();
    test_checkpoint();
    test_threads();
    return check_report("test_matrix");
}
