/* gemm.c - dsc_gemm and dsc_syrk: CBLAS with a fixed split, or portable
 * blocked C. The contract (row-major, beta == 0 semantics, determinism) is
 * in gemm.h. */
#include "gemm.h"

#include "vec.h"

#include <limits.h>
#include <math.h>
#include <string.h>
#ifdef DSC_HAVE_CBLAS
#include <cblas.h>
#endif

/* ------------------------------------------------------------- portable */

/* Register tile MR x NR, panels KC deep and NC wide. A packed op(B) panel
 * (KC x NC floats, 256 KiB) stays in L2 while every 4-row tile of op(A)
 * streams over it; the 4 x 8 accumulator tile fits the 16 SSE registers of
 * the x86-64 baseline with room for the loads. */
#define MR 4
#define NR 8
#define KC 256
#define NC 256
#define LOCAL_NC 32 /* panel width when the caller gives no workspace */
#define PAR_MIN_FLOPS 262144.0 /* m * nc * kc below this: one thread */

typedef struct {
    dsc_trans ta, tb;
    size_t m, n, k;
    float alpha, beta;
    const float *a, *b;
    size_t lda, ldb, ldc;
    float *c;
    int upper; /* syrk: skip tiles strictly below the diagonal */
} gemm_job;

size_t dsc_gemm_work_floats(void) { return (size_t)KC * NC; }

const char *dsc_gemm_backend(void)
{
#ifdef DSC_HAVE_CBLAS
    return "openblas";
#else
    return "portable";
#endif
}

static size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }

/* op(B)[pc : pc+kc, jc : jc+nc] as panels of NR columns, each kc x NR
 * row-major; columns past nc are zero. */
static void pack_b(const gemm_job *g, size_t pc, size_t kc, size_t jc, size_t nc,
                   float *restrict bp)
{
    for (size_t jp = 0; jp < nc; jp += NR) {
        float *restrict dst = bp + jp * kc;
        size_t w = min_sz(NR, nc - jp);
        if (g->tb == DSC_NO_TRANS) {
            for (size_t p = 0; p < kc; p++) {
                const float *src = g->b + (pc + p) * g->ldb + jc + jp;
                size_t j = 0;
                for (; j < w; j++) dst[p * NR + j] = src[j];
                for (; j < NR; j++) dst[p * NR + j] = 0.0f;
            }
        } else {
            for (size_t j = 0; j < NR; j++) {
                const float *src = g->b + (jc + jp + j) * g->ldb + pc;
                if (j < w)
                    for (size_t p = 0; p < kc; p++) dst[p * NR + j] = src[p];
                else
                    for (size_t p = 0; p < kc; p++) dst[p * NR + j] = 0.0f;
            }
        }
    }
}

/* op(A)[i0 : i0+MR, pc : pc+kc] as kc x MR (k-major); rows past m are zero. */
static void pack_a(const gemm_job *g, size_t i0, size_t pc, size_t kc, float *restrict ap)
{
    size_t h = min_sz(MR, g->m - i0);
    if (g->ta == DSC_NO_TRANS) {
        for (size_t r = 0; r < MR; r++) {
            const float *src = g->a + (i0 + r) * g->lda + pc;
            if (r < h)
                for (size_t p = 0; p < kc; p++) ap[p * MR + r] = src[p];
            else
                for (size_t p = 0; p < kc; p++) ap[p * MR + r] = 0.0f;
        }
    } else {
        for (size_t p = 0; p < kc; p++) {
            const float *src = g->a + (pc + p) * g->lda + i0;
            size_t r = 0;
            for (; r < h; r++) ap[p * MR + r] = src[r];
            for (; r < MR; r++) ap[p * MR + r] = 0.0f;
        }
    }
}

/* acc = sum over p of ap[p, :]^T bp[p, :], p in increasing order. The j loop
 * vectorizes; each element's sum keeps its order, so the vector width does
 * not change the bits. */
static void micro_kernel(size_t kc, const float *restrict ap, const float *restrict bp,
                         float acc[MR][NR])
{
    float c[MR][NR];
    memset(c, 0, sizeof c);
    for (size_t p = 0; p < kc; p++) {
        const float *restrict a = ap + p * MR;
        const float *restrict b = bp + p * NR;
        for (int r = 0; r < MR; r++)
            for (int j = 0; j < NR; j++) c[r][j] += a[r] * b[j];
    }
    memcpy(acc, c, sizeof c);
}

/* C tile += alpha acc; the first k-panel also applies beta. */
static void store_tile(const gemm_job *g, size_t i0, size_t j0, size_t w, int first,
                       float acc[MR][NR])
{
    size_t h = min_sz(MR, g->m - i0);
    for (size_t r = 0; r < h; r++) {
        float *crow = g->c + (i0 + r) * g->ldc + j0;
        for (size_t j = 0; j < w; j++) {
            float v = g->alpha * acc[r][j];
            if (!first) crow[j] += v;
            else if (g->beta == 0.0f) crow[j] = v;
            else crow[j] = g->beta * crow[j] + v;
        }
    }
}

static void scale_c(const gemm_job *g)
{
    for (size_t i = 0; i < g->m; i++) {
        float *crow = g->c + i * g->ldc;
        for (size_t j = 0; j < g->n; j++) crow[j] = g->beta == 0.0f ? 0.0f : g->beta * crow[j];
    }
}

/* Lower triangle of a square C from its upper triangle. */
static void mirror_upper(float *c, size_t n, size_t ldc)
{
#pragma omp parallel for schedule(static) num_threads(dsc_threads()) if (n * n >= DSC_PAR_MIN)
    for (size_t i = 1; i < n; i++)
        for (size_t j = 0; j < i; j++) c[i * ldc + j] = c[j * ldc + i];
}

static void gemm_blocked(const gemm_job *g, float *work)
{
    float local[KC * LOCAL_NC];
    float *bp = work ? work : local;
    size_t ncmax = work ? NC : LOCAL_NC;
    if (g->m == 0 || g->n == 0) return;
    if (g->k == 0) {
        scale_c(g);
        return;
    }
    size_t ntiles = (g->m + MR - 1) / MR;
    for (size_t jc = 0; jc < g->n; jc += ncmax) {
        size_t nc = min_sz(ncmax, g->n - jc);
        /* syrk: tiles whose first row is past this panel's last column are skipped */
        size_t nt = g->upper ? min_sz(ntiles, (jc + nc - 1) / MR + 1) : ntiles;
        for (size_t pc = 0; pc < g->k; pc += KC) {
            size_t kc = min_sz(KC, g->k - pc);
            int first = pc == 0;
            pack_b(g, pc, kc, jc, nc, bp);
            double flops = (double)(nt * MR) * (double)nc * (double)kc;
#pragma omp parallel for schedule(dynamic, 4) num_threads(dsc_threads()) if (flops >= PAR_MIN_FLOPS)
            for (size_t t = 0; t < nt; t++) {
                size_t i0 = t * MR;
                float ap[MR * KC];
                float acc[MR][NR];
                pack_a(g, i0, pc, kc, ap);
                for (size_t jp = 0; jp < nc; jp += NR) {
                    if (g->upper && i0 > jc + jp + NR - 1) continue;
                    micro_kernel(kc, ap, bp + jp * kc, acc);
                    store_tile(g, i0, jc + jp, min_sz(NR, nc - jp), first, acc);
                }
            }
        }
    }
}

void dsc_gemm_portable(dsc_trans ta, dsc_trans tb, size_t m, size_t n, size_t k, float alpha,
                       const float *a, size_t lda, const float *b, size_t ldb, float beta,
                       float *c, size_t ldc, float *work)
{
    gemm_job g = {ta, tb, m, n, k, alpha, beta, a, b, lda, ldb, ldc, c, 0};
    gemm_blocked(&g, work);
}

void dsc_syrk_portable(size_t n, size_t k, float alpha, const float *a, size_t lda, float beta,
                       float *c, size_t ldc, float *work)
{
    gemm_job g = {DSC_NO_TRANS, DSC_TRANS, n, n, k, alpha, beta, a, a, lda, lda, ldc, c, 1};
    gemm_blocked(&g, work);
    mirror_upper(c, n, ldc);
}

/* ---------------------------------------------------------------- CBLAS */

#ifdef DSC_HAVE_CBLAS

/* The split of one call: the larger dimension of C cut into a power of two
 * of chunks, at most CHUNK_MAX, none narrower than CHUNK_MIN, starts rounded
 * down to 16. It depends on the shape only, never on the thread count, and a
 * power of two divides evenly among 1, 2, 4 or 8 threads.
 *
 * Why not more, smaller chunks: each chunk is its own BLAS call, which packs
 * the whole of the other operand again (op(A) when C is cut by columns).
 * With AVX-512 a float is multiplied in about 1/32 of a cycle but packed in
 * about 1/2, so a chunk w columns wide spends roughly 16/w of its time
 * repacking: 12% at w = 128, 4-6% at w = 256-384 (measured on GPT-2 shapes,
 * one thread, CPU time per call). */
#define CHUNK_MIN 256
#define CHUNK_MAX 8
#define SMALL_FLOPS 2097152.0 /* below this, one call */

static int chunk_count(size_t big, double flops)
{
    if (flops < SMALL_FLOPS) return 1;
    int c = 1;
    while (c < CHUNK_MAX && big / (2 * (size_t)c) >= CHUNK_MIN) c *= 2;
    return c;
}

static size_t chunk_start(size_t big, int c, int nch)
{
    if (c <= 0) return 0;
    if (c >= nch) return big;
    return (big * (size_t)c / (size_t)nch) & ~(size_t)15;
}

/* The same for the upper triangle of a syrk: column chunk c costs about
 * (j_{c+1}^2 - j_c^2) / 2 rows x columns, so equal work puts the starts at
 * n sqrt(c / nch), rounded to a multiple of 16: two chunks split at 0.71 n. */
static size_t tri_chunk_start(size_t n, int c, int nch)
{
    if (c <= 0) return 0;
    if (c >= nch) return n;
    return ((size_t)((double)n * sqrt((double)c / (double)nch)) + 8) & ~(size_t)15;
}

static int fits_int(size_t a, size_t b, size_t c, size_t d, size_t e, size_t f)
{
    return a <= INT_MAX && b <= INT_MAX && c <= INT_MAX && d <= INT_MAX && e <= INT_MAX &&
           f <= INT_MAX;
}


static void blas_gemm(dsc_trans ta, dsc_trans tb, size_t m, size_t n, size_t k, float alpha,
                      const float *a, size_t lda, const float *b, size_t ldb, float beta,
                      float *c, size_t ldc)
{
    enum CBLAS_TRANSPOSE TA = ta == DSC_TRANS ? CblasTrans : CblasNoTrans;
    enum CBLAS_TRANSPOSE TB = tb == DSC_TRANS ? CblasTrans : CblasNoTrans;
    int by_cols = n >= m;
    size_t big = by_cols ? n : m;
    int nch = chunk_count(big, (double)m * (double)n * (double)k);
    int saved = dsc_blas_single_begin();
#pragma omp parallel for schedule(dynamic, 1) num_threads(dsc_threads()) if (nch > 1)
    for (int ch = 0; ch < nch; ch++) {
        size_t s0 = chunk_start(big, ch, nch), s1 = chunk_start(big, ch + 1, nch);
        if (s1 <= s0) continue;
        if (by_cols) {
            const float *bs = tb == DSC_TRANS ? b + s0 * ldb : b + s0;
            cblas_sgemm(CblasRowMajor, TA, TB, (int)m, (int)(s1 - s0), (int)k, alpha, a,
                        (int)lda, bs, (int)ldb, beta, c + s0, (int)ldc);
        } else {
            const float *as = ta == DSC_TRANS ? a + s0 : a + s0 * lda;
            cblas_sgemm(CblasRowMajor, TA, TB, (int)(s1 - s0), (int)n, (int)k, alpha, as,
                        (int)lda, b, (int)ldb, beta, c + s0 * ldc, (int)ldc);
        }
    }
    dsc_blas_single_end(saved);
}

/* Upper triangle by column chunks of equal work: the block above the
 * diagonal with sgemm, the diagonal block with ssyrk. */
static void blas_syrk(size_t n, size_t k, float alpha, const float *a, size_t lda, float beta,
                      float *c, size_t ldc)
{
    int nch = chunk_count(n, (double)n * (double)n * (double)k * 0.5);
    int saved = dsc_blas_single_begin();
#pragma omp parallel for schedule(dynamic, 1) num_threads(dsc_threads()) if (nch > 1)
    for (int ch = 0; ch < nch; ch++) {
        size_t j0 = tri_chunk_start(n, ch, nch), j1 = tri_chunk_start(n, ch + 1, nch);
        if (j1 <= j0) continue;
        if (j0 > 0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)j0, (int)(j1 - j0), (int)k,
                        alpha, a, (int)lda, a + j0 * lda, (int)lda, beta, c + j0, (int)ldc);
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)(j1 - j0), (int)k, alpha,
                    a + j0 * lda, (int)lda, beta, c + j0 * ldc + j0, (int)ldc);
    }
    dsc_blas_single_end(saved);
    mirror_upper(c, n, ldc);
}

#endif /* DSC_HAVE_CBLAS */

/* OpenBLAS runs single-threaded inside our calls (see gemm.h). */
int dsc_blas_single_begin(void)
{
#ifdef DSC_HAVE_CBLAS
    int n = openblas_get_num_threads();
    if (n != 1) openblas_set_num_threads(1);
    return n;
#else
    return 1;
#endif
}

void dsc_blas_single_end(int saved)
{
#ifdef DSC_HAVE_CBLAS
    if (saved != 1) openblas_set_num_threads(saved);
#else
    (void)saved;
#endif
}

/* ------------------------------------------------------------ dispatch */

void dsc_gemm(dsc_trans ta, dsc_trans tb, size_t m, size_t n, size_t k, float alpha,
              const float *a, size_t lda, const float *b, size_t ldb, float beta, float *c,
              size_t ldc, float *work)
{
    if (m == 0 || n == 0) return;
#ifdef DSC_HAVE_CBLAS
    if (k > 0 && fits_int(m, n, k, lda, ldb, ldc)) {
        blas_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
#endif
    dsc_gemm_portable(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, work);
}

void dsc_syrk(size_t n, size_t k, float alpha, const float *a, size_t lda, float beta, float *c,
              size_t ldc, float *work)
{
    if (n == 0) return;
#ifdef DSC_HAVE_CBLAS
    if (k > 0 && fits_int(n, k, lda, ldc, 0, 0)) {
        blas_syrk(n, k, alpha, a, lda, beta, c, ldc);
        return;
    }
#endif
    dsc_syrk_portable(n, k, alpha, a, lda, beta, c, ldc, work);
}
