/* newton_schulz.c - ns5 (docs/matrix.md, Newton-Schulz), reference loops and GEMM path.
 * Contract in newton_schulz.h. */
#include "newton_schulz.h"

#include "vec.h"
#include "gemm.h"
#include "bf16gemm.h"
#include "bf16.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

size_t dsc_ns5_work_floats(size_t m, size_t n)
{
    size_t r = m < n ? m : n, c = m < n ? n : m;
    /* the last part is shared: the portable GEMM's panel, or the bf16
     * kernel's packed operands (the largest of the three products) */
    size_t pack = dsc_gemm_work_floats(), p1 = dsc_gemm_bf16_work_floats(0, r, c),
           p3 = dsc_gemm_bf16_work_floats(r, c, r);
    if (p1 > pack) pack = p1;
    if (p3 > pack) pack = p3; /* covers A A (0, r, r) too */
    return 2 * r * c + 2 * r * r + pack;
}

/* x rounded to the nearest bfloat16 (ties to even, kernels/bf16.h), kept
 * as a float; the largest finite floats round to infinity, as any float ->
 * bf16 conversion does, and NaN stays a (quiet) NaN. */
static inline float round_bf16(float x) { return dsc_bf16_widen(dsc_bf16_round(x)); }

/* The reference loops read every product input through this. */
static inline float ns_in(float x, int bf16) { return bf16 ? round_bf16(x) : x; }

/* One iteration on the r x c iterate X (r <= c), result in Y. Plain loops,
 * sums in double, stored in float where the GEMM path stores; with bf16
 * the inputs of the three products are rounded to bf16 first. */
static void ns_iter_ref(size_t r, size_t c, const float *X, float *Y, float *A, float *B,
                        int bf16)
{
    for (size_t i = 0; i < r; i++) /* A = X X^T */
        for (size_t j = 0; j < r; j++) {
            double s = 0.0;
            for (size_t k = 0; k < c; k++)
                s += (double)ns_in(X[i * c + k], bf16) * (double)ns_in(X[j * c + k], bf16);
            A[i * r + j] = (float)s;
        }
    for (size_t i = 0; i < r; i++) /* B = b A + c A A */
        for (size_t j = 0; j < r; j++) {
            double s = 0.0;
            for (size_t k = 0; k < r; k++)
                s += (double)ns_in(A[i * r + k], bf16) * (double)ns_in(A[k * r + j], bf16);
            B[i * r + j] = DSC_NS_B * A[i * r + j] + DSC_NS_C * (float)s;
        }
    for (size_t i = 0; i < r; i++) /* Y = a X + B X */
        for (size_t j = 0; j < c; j++) {
            double s = 0.0;
            for (size_t k = 0; k < r; k++)
                s += (double)ns_in(B[i * r + k], bf16) * (double)ns_in(X[k * c + j], bf16);
            Y[i * c + j] = DSC_NS_A * X[i * c + j] + (float)s;
        }
}

static void round_bf16_all(float *x, size_t n)
{
#pragma omp parallel for simd schedule(static) num_threads(dsc_threads()) if (n >= DSC_PAR_MIN)
    for (size_t i = 0; i < n; i++) x[i] = round_bf16(x[i]);
}

/* The same iteration with symmetric products: A = syrk(X); B = syrk(A) with
 * beta = b over a copy of A (A A^T = A A as A is exactly symmetric);
 * Y = a X + B X over a copy of X.
 *
 * bf16, where the CPU has AVX512-BF16 (bf16gemm.h): the same three products
 * by the bf16 kernel, which packs its inputs as bf16 and sums each element
 * in float32 by VDPBF16PS's chain; b A and a X come in as the products'
 * beta terms from the float32 A and X, so no copy and no rounding in place.
 *
 * bf16 elsewhere (the fallback): each product fed bf16-rounded inputs with
 * float32 sums by the float32 GEMM. The copies for the b A and a X terms
 * are taken first, then A, B and X are rounded in place (X is not needed
 * afterwards: the iterate lives on in Y). A product of two bf16 numbers
 * (8-bit significands) is exact in float32 (24 bits), so float32 GEMMs on
 * the rounded values differ from a bf16 GEMM only in the order of the
 * float32 sums (and in a few subnormal cases). */
static void ns_iter_fast(size_t r, size_t c, float *X, float *Y, float *A, float *B,
                         float *pack, int bf16)
{
    if (!bf16) {
        dsc_syrk(r, c, 1.0f, X, c, 0.0f, A, r, pack);
        memcpy(B, A, r * r * sizeof(float));
        dsc_syrk(r, r, DSC_NS_C, A, r, DSC_NS_B, B, r, pack);
        memcpy(Y, X, r * c * sizeof(float));
        dsc_gemm(DSC_NO_TRANS, DSC_NO_TRANS, r, c, r, 1.0f, B, r, X, c, DSC_NS_A, Y, c, pack);
        return;
    }
    if (dsc_bf16gemm_available()) {
        dsc_syrk_bf16(r, c, 1.0f, X, c, 0.0f, NULL, 0, A, r, pack);
        dsc_syrk_bf16(r, r, DSC_NS_C, A, r, DSC_NS_B, A, r, B, r, pack);
        dsc_gemm_bf16(DSC_NO_TRANS, r, c, r, 1.0f, B, r, X, c, DSC_NS_A, X, c, Y, c, pack);
        return;
    }
    memcpy(Y, X, r * c * sizeof(float));
    round_bf16_all(X, r * c);
    dsc_syrk(r, c, 1.0f, X, c, 0.0f, A, r, pack);
    memcpy(B, A, r * r * sizeof(float));
    round_bf16_all(A, r * r);
    dsc_syrk(r, r, DSC_NS_C, A, r, DSC_NS_B, B, r, pack);
    round_bf16_all(B, r * r);
    dsc_gemm(DSC_NO_TRANS, DSC_NO_TRANS, r, c, r, 1.0f, B, r, X, c, DSC_NS_A, Y, c, pack);
}

static double sumsq_ref(const float *x, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * (double)x[i];
    return s;
}

/* Transposes go by TILE x TILE blocks (both sides stay in cache), the
 * blocks of output rows shared among threads. */
#define TILE 32

/* X = G / (||G||_F + eps), transposed when the slice is tall. */
static void load_normalized(const float *g, size_t m, size_t n, int reference, float *X)
{
    double nrm = sqrt(reference ? sumsq_ref(g, m * n) : dsc_vec_sumsq(g, m * n));
    const float d = (float)(nrm + DSC_NS_EPS);
    if (m > n) {
#pragma omp parallel for schedule(static) num_threads(dsc_threads()) if (!reference && m * n >= DSC_PAR_MIN)
        for (size_t j0 = 0; j0 < n; j0 += TILE)
            for (size_t i0 = 0; i0 < m; i0 += TILE)
                for (size_t j = j0; j < j0 + TILE && j < n; j++)
                    for (size_t i = i0; i < i0 + TILE && i < m; i++)
                        X[j * m + i] = g[i * n + j] / d;
    } else {
        size_t len = m * n;
#pragma omp parallel for simd schedule(static) num_threads(dsc_threads()) if (!reference && len >= DSC_PAR_MIN)
        for (size_t i = 0; i < len; i++) X[i] = g[i] / d;
    }
}

static void store_result(const float *X, size_t m, size_t n, int reference, float *out)
{
    if (m > n) {
#pragma omp parallel for schedule(static) num_threads(dsc_threads()) if (!reference && m * n >= DSC_PAR_MIN)
        for (size_t i0 = 0; i0 < m; i0 += TILE)
            for (size_t j0 = 0; j0 < n; j0 += TILE)
                for (size_t i = i0; i < i0 + TILE && i < m; i++)
                    for (size_t j = j0; j < j0 + TILE && j < n; j++)
                        out[i * n + j] = X[j * m + i];
    } else {
        memcpy(out, X, m * n * sizeof(float));
    }
}

void dsc_ns5(const float *g, float *out, size_t batch, size_t m, size_t n, int steps,
             int reference, int bf16, float *work)
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
            if (reference) ns_iter_ref(r, c, x, y, A, B, bf16);
            else ns_iter_fast(r, c, x, y, A, B, pack, bf16);
            float *t = x;
            x = y;
            y = t;
        }
        store_result(x, m, n, reference, os);
    }
}
