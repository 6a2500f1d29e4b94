/* bf16gemm.c - bf16 x bf16 -> float32 products: the AVX512-BF16 kernel and
 * the plain loops that give the same bits. What is computed is in
 * bf16gemm.h; how, here.
 *
 * Why a kernel of our own: the OpenBLAS of Debian 12 (0.3.21) has no
 * sbgemm, and a float32 GEMM on bf16-rounded inputs multiplies at the
 * float32 rate. VDPBF16PS does 32 bf16 products per 512-bit instruction
 * into 16 float32 sums, twice the products of a float32 FMA, so the same
 * register tile does twice the work per instruction.
 *
 * Layout. Each operand is packed once per product as "pair rows": row i
 * of the operand (a row of A, or a column of op(B)) as ceil(k/2) 32-bit
 * pairs (bf16 of element 2p in the low half, 2p+1 in the high half, which
 * is how VDPBF16PS reads a lane), rows grouped in panels of NR = 48:
 * pair p of row i sits at (i / NR) NR kp + p NR + i % NR. A zmm load at
 * p NR + 16 v of a panel is then pair p of 16 consecutive rows, the B side
 * of the micro-kernel; the A side broadcasts one pair of each of its MR = 8
 * rows from the same layout (stride NR). Padding (rows past the end, the
 * second half of the last pair when k is odd) is bf16 zero and is part of
 * the chain the reference loops follow.
 *
 * Micro-kernel: an 8 x 48 tile of C in 24 zmm accumulators; per pair, 3
 * loads of B, 8 broadcasts of A, 24 VDPBF16PS. Each element's chain runs
 * over all of k inside one call (no k blocking, so no partial sums to park):
 * the 48-row panel of B, 48 to 288 KiB for the Newton-Schulz shapes, stays
 * in L2 while the row tiles of A stream past it, and at one VDPBF16PS per
 * cycle (AMD Zen 4) the loads are far from the limit.
 *
 * Threads: dsc_parallel_items over the output tiles, numbered panel by
 * panel (a thread's consecutive tiles share the B panel); packing over
 * panels. Each tile is computed whole by one thread, so the split does not
 * change the bits. */
#include "bf16gemm.h"
#include "bf16.h"

#include "parallel.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#define MR 8
#define NV 3
#define NR (16 * NV)
#define PAR_MIN_MACS 2097152.0 /* below this many multiply-adds: one thread */

static size_t packed_words(size_t rows, size_t k)
{
    if (rows == 0) return 0;
    return (rows + NR - 1) / NR * NR * ((k + 1) / 2);
}

size_t dsc_gemm_bf16_work_floats(size_t m, size_t n, size_t k)
{
    return packed_words(m, k) + packed_words(n, k) + 16; /* + 16: 64-byte alignment */
}

/* ----------------------------------------------------------- reference */

/* The bit helpers and the exact widening are kernels/bf16.h's; the
 * narrowing here is the instruction's own (DAZ, NaN payload kept), not the
 * torch rounding of bf16.h. */

/* VCVTNE2PS2BF16 on one float: zero and subnormal to a signed zero, NaN
 * to a quiet NaN (the top half with the quiet bit set), else round to
 * nearest even on the integer bits (the carry may reach the exponent,
 * which is the correct rounding up to the next binade or to infinity). */
uint16_t dsc_bf16_of(float x)
{
    uint32_t b = dsc_float_bits(x);
    if ((b & 0x7F800000u) == 0) return (uint16_t)((b >> 16) & 0x8000u);
    if ((b & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((b >> 16) | 0x0040u);
    return (uint16_t)((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
}

/* A subnormal as a zero of its sign: the instruction's DAZ on its inputs
 * and FTZ on its result (neither depends on MXCSR). */
static inline float flush(float x)
{
    uint32_t b = dsc_float_bits(x);
    if ((b & 0x7F800000u) == 0) b &= 0x80000000u;
    return dsc_bits_float(b);
}

/* One multiply-add of the chain. fmaf rounds once, in the current rounding
 * mode, which the library never changes from nearest even; tininess is
 * judged on fmaf's rounded result, as the instruction does (the FTZ
 * boundary cases are in the tests). NaN results are NaN, though their
 * payload may differ from the instruction's. */
static inline float dp_step(float acc, float x, float y)
{
    return flush(fmaf(flush(x), flush(y), flush(acc)));
}

void dsc_bf16_dot16_ref(float acc[16], const uint16_t a[32], const uint16_t b[32])
{
    for (int j = 0; j < 16; j++) {
        float s = dp_step(acc[j], dsc_bf16_widen(a[2 * j + 1]), dsc_bf16_widen(b[2 * j + 1]));
        acc[j] = dp_step(s, dsc_bf16_widen(a[2 * j]), dsc_bf16_widen(b[2 * j]));
    }
}

/* The chain of one element: rows a (stride as) and b (stride bs) of k. */
static float chain_ref(size_t k, const float *a, size_t as, const float *b, size_t bs)
{
    float acc = 0.0f;
    for (size_t p = 0; p < k; p += 2) {
        float ah = 0.0f, bh = 0.0f;
        if (p + 1 < k) {
            ah = dsc_bf16_widen(dsc_bf16_of(a[(p + 1) * as]));
            bh = dsc_bf16_widen(dsc_bf16_of(b[(p + 1) * bs]));
        }
        acc = dp_step(acc, ah, bh);
        acc = dp_step(acc, dsc_bf16_widen(dsc_bf16_of(a[p * as])), dsc_bf16_widen(dsc_bf16_of(b[p * bs])));
    }
    return acc;
}

/* alpha acc + beta cin: two products, then the sum (no contraction: ISO C
 * under GCC, the pragma above under clang). */
static inline float finish(float acc, float alpha, float beta, float cin)
{
    float t = alpha * acc;
    if (beta == 0.0f) return t;
    float u = beta * cin;
    return t + u;
}

void dsc_gemm_bf16_ref(dsc_trans tb, size_t m, size_t n, size_t k, float alpha, const float *a,
                       size_t lda, const float *b, size_t ldb, float beta, const float *cin,
                       size_t ldcin, float *c, size_t ldc)
{
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            float acc = tb == DSC_TRANS ? chain_ref(k, a + i * lda, 1, b + j * ldb, 1)
                                        : chain_ref(k, a + i * lda, 1, b + j, ldb);
            c[i * ldc + j] = finish(acc, alpha, beta, beta == 0.0f ? 0.0f : cin[i * ldcin + j]);
        }
}

static void mirror_rows(float *c, size_t ldc, size_t lo, size_t hi)
{
    for (size_t i = lo; i < hi; i++)
        for (size_t j = 0; j < i; j++) c[i * ldc + j] = c[j * ldc + i];
}

void dsc_syrk_bf16_ref(size_t n, size_t k, float alpha, const float *a, size_t lda, float beta,
                       const float *cin, size_t ldcin, float *c, size_t ldc)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = i; j < n; j++) {
            float acc = chain_ref(k, a + i * lda, 1, a + j * lda, 1);
            c[i * ldc + j] = finish(acc, alpha, beta, beta == 0.0f ? 0.0f : cin[i * ldcin + j]);
        }
    mirror_rows(c, ldc, 1, n);
}

/* ------------------------------------------------------------- choice */

#if defined(__x86_64__) && ((defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 10) || \
                            (defined(__clang__) && __clang_major__ >= 9))
#define HAVE_KERNEL 1
#include <cpuid.h>
#include <immintrin.h>
#endif

static int detected;    /* CPU has the ISA and DESCENT_KERNELS allows it */
static int allowed = 1; /* tests switch the kernel off with this */
static pthread_once_t detect_once = PTHREAD_ONCE_INIT;

static void detect(void)
{
#ifdef HAVE_KERNEL
    const char *k = getenv("DESCENT_KERNELS");
    int off = k && (strcmp(k, "portable") == 0 || strcmp(k, "ref") == 0);
    /* AVX512_BF16 is CPUID leaf 7, sub-leaf 1, EAX bit 5; the avx512f test
     * of the compiler's runtime also checks that the OS saves zmm state. */
    unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
    int bf16 = __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) && (eax & (1u << 5));
    __builtin_cpu_init();
    detected = !off && bf16 && __builtin_cpu_supports("avx512f") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
#endif
}

int dsc_bf16gemm_available(void)
{
    pthread_once(&detect_once, detect);
    return detected && allowed;
}

int dsc_bf16gemm_allow(int allow)
{
    allowed = allow != 0;
    return dsc_bf16gemm_available();
}

/* ------------------------------------------------------------- kernel */

#ifdef HAVE_KERNEL

#define TGT __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

/* The packed words alias the caller's float workspace. */
typedef uint32_t __attribute__((may_alias)) pword;

TGT void dsc_bf16_dot16_hw(float acc[16], const uint16_t a[32], const uint16_t b[32])
{
    __m512 s = _mm512_loadu_ps(acc);
    __m512i va = _mm512_loadu_si512(a), vb = _mm512_loadu_si512(b);
    s = _mm512_dpbf16_ps(s, (__m512bh)va, (__m512bh)vb);
    _mm512_storeu_ps(acc, s);
}

typedef struct {
    const float *x;
    size_t rows, k, ld; /* pack_rows: x is rows x k; pack_cols: x is k x rows */
    pword *dst;
} pack_job;

/* Rows [q NR, q NR + NR) of x (rows x k) as pair rows: 32 floats of a row
 * at a time become 16 pairs (one conversion), parked in `t` and written out
 * with the panel's stride. */
TGT static void pack_rows_range(const void *ctx, size_t lo, size_t hi)
{
    const pack_job *J = ctx;
    const size_t kp = (J->k + 1) / 2;
    uint32_t t[NR][16] __attribute__((aligned(64)));
    for (size_t q = lo; q < hi; q++) {
        pword *panel = J->dst + q * NR * kp;
        for (size_t p0 = 0; p0 < kp; p0 += 16) {
            size_t e0 = 2 * p0, left = J->k - e0; /* floats of a row from e0 */
            __mmask16 m0 = left >= 16 ? 0xFFFFu : (__mmask16)((1u << left) - 1u);
            __mmask16 m1 = left >= 32 ? 0xFFFFu
                           : left <= 16 ? 0
                                        : (__mmask16)((1u << (left - 16)) - 1u);
            for (size_t r = 0; r < NR; r++) {
                size_t i = q * NR + r;
                __m512i v = _mm512_setzero_si512();
                if (i < J->rows) {
                    const float *src = J->x + i * J->ld + e0;
                    __m512 f0 = _mm512_maskz_loadu_ps(m0, src);
                    __m512 f1 = _mm512_maskz_loadu_ps(m1, src + 16);
                    v = (__m512i)_mm512_cvtne2ps_pbh(f1, f0); /* f0 in the low half */
                }
                _mm512_store_si512(t[r], v);
            }
            size_t np = kp - p0 < 16 ? kp - p0 : 16;
            for (size_t s = 0; s < np; s++)
                for (size_t r = 0; r < NR; r++) panel[(p0 + s) * NR + r] = t[r][s];
        }
    }
}

/* Columns [q NR, q NR + NR) of x (k x rows) as pair rows: rows 2p and
 * 2p+1 of x, 16 columns at a time, converted together and interleaved by
 * 16-bit element into 16 pairs. */
TGT static void pack_cols_range(const void *ctx, size_t lo, size_t hi)
{
    const pack_job *J = ctx;
    const size_t kp = (J->k + 1) / 2;
    const __m512i inter = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9,
                                           24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17,
                                           1, 16, 0);
    for (size_t q = lo; q < hi; q++) {
        pword *panel = J->dst + q * NR * kp;
        for (int v = 0; v < NV; v++) {
            size_t j0 = q * NR + 16 * (size_t)v;
            size_t w = j0 >= J->rows ? 0 : J->rows - j0;
            __mmask16 m = w >= 16 ? 0xFFFFu : (__mmask16)((1u << w) - 1u);
            for (size_t p = 0; p < kp; p++) {
                const float *even = J->x + 2 * p * J->ld + j0;
                __m512 f0 = _mm512_maskz_loadu_ps(m, even);
                __m512 f1 = 2 * p + 1 < J->k ? _mm512_maskz_loadu_ps(m, even + J->ld)
                                             : _mm512_setzero_ps();
                __m512i h = (__m512i)_mm512_cvtne2ps_pbh(f1, f0);
                _mm512_storeu_si512(panel + p * NR + 16 * v, _mm512_permutexvar_epi16(inter, h));
            }
        }
    }
}

typedef struct {
    size_t m, n, kp;
    int sym;
    float alpha, beta;
    const pword *pa, *pb;
    const float *cin;
    size_t ldcin, ldc;
    float *c;
} tile_job;

/* One 8 x 48 tile: rows i0.., columns of panel q. */
TGT static void tile(const tile_job *J, size_t i0, size_t q)
{
    const size_t kp = J->kp;
    const pword *a = J->pa + (i0 / NR) * NR * kp + i0 % NR;
    const pword *b = J->pb + q * NR * kp;
    __m512 acc[MR][NV];
    for (int r = 0; r < MR; r++)
        for (int v = 0; v < NV; v++) acc[r][v] = _mm512_setzero_ps();
    for (size_t p = 0; p < kp; p++) {
        const pword *bp = b + p * NR, *ap = a + p * NR;
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(bp);
        __m512bh b1 = (__m512bh)_mm512_loadu_si512(bp + 16);
        __m512bh b2 = (__m512bh)_mm512_loadu_si512(bp + 32);
        for (int r = 0; r < MR; r++) {
            __m512bh x = (__m512bh)_mm512_set1_epi32((int)ap[r]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], x, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], x, b1);
            acc[r][2] = _mm512_dpbf16_ps(acc[r][2], x, b2);
        }
    }
    const size_t j0 = q * NR;
    const size_t h = J->m - i0 < MR ? J->m - i0 : MR;
    const __m512 va = _mm512_set1_ps(J->alpha), vb = _mm512_set1_ps(J->beta);
    for (size_t r = 0; r < h; r++) {
        for (int v = 0; v < NV; v++) {
            size_t j = j0 + 16 * (size_t)v;
            if (j >= J->n) break;
            size_t w = J->n - j;
            __mmask16 m = w >= 16 ? 0xFFFFu : (__mmask16)((1u << w) - 1u);
            __m512 t = _mm512_mul_ps(va, acc[r][v]);
            if (J->beta != 0.0f) {
                __m512 u = _mm512_mul_ps(
                    vb, _mm512_maskz_loadu_ps(m, J->cin + (i0 + r) * J->ldcin + j));
                t = _mm512_add_ps(t, u);
            }
            _mm512_mask_storeu_ps(J->c + (i0 + r) * J->ldc + j, m, t);
        }
    }
}

/* Row tiles of panel q: all of them, or for a symmetric product those
 * that reach the diagonal or above (first row <= the panel's last column). */
static size_t tiles_in_panel(const tile_job *J, size_t q)
{
    size_t rows = J->m;
    if (J->sym) {
        size_t last = (q + 1) * NR < J->n ? (q + 1) * NR : J->n; /* columns < last */
        rows = last < rows ? last : rows;
    }
    return (rows + MR - 1) / MR;
}

/* Tiles [lo, hi) in the order panel by panel, row tiles down each. */
static void tiles_range(const void *ctx, size_t lo, size_t hi)
{
    const tile_job *J = ctx;
    size_t q = 0, first = 0, cnt = tiles_in_panel(J, 0);
    while (first + cnt <= lo) {
        first += cnt;
        cnt = tiles_in_panel(J, ++q);
    }
    for (size_t t = lo; t < hi; t++) {
        while (t >= first + cnt) {
            first += cnt;
            cnt = tiles_in_panel(J, ++q);
        }
        tile(J, (t - first) * MR, q);
    }
}

typedef struct {
    float *c;
    size_t ldc;
} mirror_job;

static void mirror_range(const void *ctx, size_t lo, size_t hi)
{
    const mirror_job *J = ctx;
    mirror_rows(J->c, J->ldc, lo > 0 ? lo : 1, hi);
}

static pword *aligned_words(float *work)
{
    uintptr_t u = (uintptr_t)work;
    return (pword *)(void *)(work + ((64 - (u & 63)) & 63) / sizeof(float));
}

static void run_tiles(tile_job *J, double macs)
{
    size_t nq = (J->n + NR - 1) / NR, total = 0;
    for (size_t q = 0; q < nq; q++) total += tiles_in_panel(J, q);
    dsc_parallel_items(total, macs >= PAR_MIN_MACS, tiles_range, J);
}

void dsc_syrk_bf16(size_t n, size_t k, float alpha, const float *a, size_t lda, float beta,
                   const float *cin, size_t ldcin, float *c, size_t ldc, float *work)
{
    if (n == 0) return;
    pword *pa = aligned_words(work);
    double macs = (double)n * (double)n * (double)k * 0.5;
    pack_job P = {a, n, k, lda, pa};
    dsc_parallel_items((n + NR - 1) / NR, macs >= PAR_MIN_MACS, pack_rows_range, &P);
    tile_job J = {n, n, (k + 1) / 2, 1, alpha, beta, pa, pa, cin, ldcin, ldc, c};
    run_tiles(&J, macs);
    mirror_job M = {c, ldc};
    dsc_parallel_items(n, (double)n * (double)n >= DSC_PAR_MIN, mirror_range, &M);
}

void dsc_gemm_bf16(dsc_trans tb, size_t m, size_t n, size_t k, float alpha, const float *a,
                   size_t lda, const float *b, size_t ldb, float beta, const float *cin,
                   size_t ldcin, float *c, size_t ldc, float *work)
{
    if (m == 0 || n == 0) return;
    pword *pa = aligned_words(work), *pb = pa + packed_words(m, k);
    double macs = (double)m * (double)n * (double)k;
    int par = macs >= PAR_MIN_MACS;
    pack_job PA = {a, m, k, lda, pa};
    dsc_parallel_items((m + NR - 1) / NR, par, pack_rows_range, &PA);
    pack_job PB = {b, n, k, ldb, pb};
    dsc_parallel_items((n + NR - 1) / NR, par, tb == DSC_TRANS ? pack_rows_range : pack_cols_range,
                       &PB);
    tile_job J = {m, n, (k + 1) / 2, 0, alpha, beta, pa, pb, cin, ldcin, ldc, c};
    run_tiles(&J, macs);
}

#else /* no kernel in this build: never called (dsc_bf16gemm_available() is 0) */

void dsc_bf16_dot16_hw(float acc[16], const uint16_t a[32], const uint16_t b[32])
{
    dsc_bf16_dot16_ref(acc, a, b);
}

void dsc_syrk_bf16(size_t n, size_t k, float alpha, const float *a, size_t lda, float beta,
                   const float *cin, size_t ldcin, float *c, size_t ldc, float *work)
{
    (void)work;
    dsc_syrk_bf16_ref(n, k, alpha, a, lda, beta, cin, ldcin, c, ldc);
}

void dsc_gemm_bf16(dsc_trans tb, size_t m, size_t n, size_t k, float alpha, const float *a,
                   size_t lda, const float *b, size_t ldb, float beta, const float *cin,
                   size_t ldcin, float *c, size_t ldc, float *work)
{
    (void)work;
    dsc_gemm_bf16_ref(tb, m, n, k, alpha, a, lda, b, ldb, beta, cin, ldcin, c, ldc);
}

#endif /* HAVE_KERNEL */
