/* newton_schulz.c - ns5 (docs/matrix.md, Newton-Schulz), reference loops and GEMM path.
 * Contract in newton_schulz.h. */
#include "newton_schulz.h"

#include "vec.h"
#include "gemm.h"

#include <math.h>
#include <string.h>

size_t dsc_ns5_work_floats(size_t m, size_t n)
{
    size_t r = m < n ? m : n, c = m < n ? n : m;
    return 2 * r * c + 2 * r * r + dsc_gemm_work_floats();
}

/* One iteration on the r x c iterate X (r <= c), result in Y. Plain loops,
 * sums in double, stored in float where the GEMM path stores. */
static void ns_iter_ref(size_t r, size_t c, const float *X, float *Y, float *A, float *B)
{
    for (size_t i = 0; i < r; i++) /* A = X X^T */
        for (size_t j = 0; j < r; j++) {
            double s = 0.0;
            for (size_t k = 0; k < c; k++) s += (double)X[i * c + k] * (double)X[j * c + k];
            A[i * r + j] = (float)s;
        }
    for (size_t i = 0; i < r; i++) /* B = b A + c A A */
        for (size_t j = 0; j < r; j++) {
            double s = 0.0;
            for (size_t k = 0; k < r; k++) s += (double)A[i * r + k] * (double)A[k * r + j];
            B[i * r + j] = DSC_NS_B * A[i * r + j] + DSC_NS_C * (float)s;
        }
    for (size_t i = 0; i < r; i++) /* Y = a X + B X */
        for (size_t j = 0; j < c; j++) {
            double s = 0.0;
            for (size_t k = 0; k < r; k++) s += (double)B[i * r + k] * (double)X[k * c + j];
            Y[i * c + j] = DSC_NS_A * X[i * c + j] + (float)s;
        }
}

/* The same iteration with symmetric products: A = syrk(X); B = syrk(A) with
 * beta = b over a copy of A (A A^T = A A as A is exactly symmetric);
 * Y = a X + B X over a copy of X. */
static void ns_iter_fast(size_t r, size_t c, const float *X, float *Y, float *A, float *B,
                         float *pack)
{
    dsc_syrk(r, c, 1.0f, X, c, 0.0f, A, r, pack);
    memcpy(B, A, r * r * sizeof(float));
    dsc_syrk(r, r, DSC_NS_C, A, r, DSC_NS_B, B, r, pack);
    memcpy(Y, X, r * c * sizeof(float));
    dsc_gemm(DSC_NO_TRANS, DSC_NO_TRANS, r, c, r, 1.0f, B, r, X, c, DSC_NS_A, Y, c, pack);
}

static double sumsq_ref(const float *x, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * (double)x[i];
    return s;
}

/* X = G / (||G||_F + eps), transposed when the slice is tall. */
static void load_normalized(const float *g, size_t m, size_t n, int reference, float *X)
{
    double nrm = sqrt(reference ? sumsq_ref(g, m * n) : dsc_vec_sumsq(g, m * n));
    const float d = (float)(nrm + DSC_NS_EPS);
    if (m > n) {
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++) X[j * m + i] = g[i * n + j] / d;
    } else {
        size_t len = m * n;
#pragma omp parallel for simd schedule(static) num_threads(dsc_threads()) if (!reference && len >= DSC_PAR_MIN)
        for (size_t i = 0; i < len; i++) X[i] = g[i] / d;
    }
}

static void store_result(const float *X, size_t m, size_t n, float *out)
{
    if (m > n) {
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++) out[i * n + j] = X[j * m + i];
    } else {
        memcpy(out, X, m * n * sizeof(float));
    }
}

void dsc_ns5(const float *g, float *out, size_t batch, size_t m, size_t n, int steps,
             int reference, float *work)
{
    if (m == 0 || n == 0) return;
    size_t r = m < n ? m : n, c = m < n ? n : m;
    float *X = work, *Y = X + r * c, *A = Y + r * c, *B = A + r * r, *pack = B + r * r;
    for (size_t s = 0; s < batch; s++) {
        const float *gs = g + s * m * n;
        float *os = out + s * m * n;
        float *x = X, *y = Y;
        load_normalized(gs, m, n, reference, x);
        for (int it = 0; it < steps; it++) {
            if (reference) ns_iter_ref(r, c, x, y, A, B);
            else ns_iter_fast(r, c, x, y, A, B, pack);
            float *t = x;
            x = y;
            y = t;
        }
        store_result(x, m, n, os);
    }
}
