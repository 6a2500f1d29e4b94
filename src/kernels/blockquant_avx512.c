/* blockquant_avx512.c - the 8-bit optimizer steps on AVX-512 (see
 * blockquant.h): dequantize, update, absmax and encode of one block of 256
 * elements, 16 lanes at a time, the same bits as the portable bodies of
 * quant8.c.
 *
 * Why these kernels exist: the portable step spends most of its time on
 * the two map operations, not on the arithmetic. A dequantize is a load
 * from a 256-entry table per element and an encode two dependent table
 * loads (bucket, then threshold); baseline x86-64 has no gather, so each is
 * a scalar load and the step runs at a third to a half of the memory
 * bandwidth. Here neither touches memory:
 *
 *   dequantize  the 256 floats of a map are 16 zmm registers; vpermt2ps
 *               looks up 32 entries of a register pair by the code's low 5
 *               bits, and three rounds of blends on bits 5, 6, 7 pick the
 *               pair. Values are copied, never computed: exact.
 *   encode      code = the number of thresholds up[k] (blockquant.c: the
 *               least float whose code is above k) with x >= up[k]: the
 *               codes ascend with x, so that count is the search's answer
 *               for every non-NaN x, and 0 for NaN (every comparison is
 *               false), as the search gives. The count is found by a
 *               branch-free binary search over the 255 thresholds held
 *               level by level in registers: a level is a permute (or
 *               blend) of its thresholds by the decisions so far, a
 *               comparison, and one masked OR that records the decision
 *               both as the next permute index and as a bit of the code
 *               (search()). Then
 *               the sign fix of the signed map, which comes
 *               down to two masked moves (encode()). Only comparisons: no
 *               new exception (the table's signaling NaN bucket does not
 *               exist here).
 *
 * The arithmetic is the portable body's, operation by operation: separate
 * _mm512_mul_ps / _mm512_add_ps / _mm512_div_ps / _mm512_sqrt_ps, never a
 * fused multiply-add (the build is ISO C, where GCC does not contract;
 * clang contracts within one expression unless told, hence the pragma for
 * the few scalar lines). Every block is checked: the finite-gradient
 * selects and the NaN-skipping absmax cost one mask operation each here,
 * so there is no unchecked variant.
 *
 * Compiled only for x86-64 with GCC or clang, with target attributes on
 * the functions (the library itself stays baseline x86-64); elsewhere this
 * file is empty and the portable path runs. */
#include "blockquant.h"

#ifdef DSC_HAVE_AVX512_KERNELS

#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#define TARGET_ISA "avx512f,avx512bw,avx512vl,avx512dq"
#define TGT __attribute__((target(TARGET_ISA)))
#define TGT_INLINE static inline __attribute__((always_inline, target(TARGET_ISA)))

/* ------------------------------------------------------------ choice */

static int detected;     /* CPU has the ISA and DESCENT_KERNELS allows it */
static int allowed = 1;  /* tests switch the kernels off with this */
static pthread_once_t detect_once = PTHREAD_ONCE_INIT;

/* The thresholds of each map by search level, in the order the search
 * indexes them (see search()): level L (0..7) has the 2^L thresholds that
 * split the codes into runs of 2^(8-L); position i of the level (from the
 * left) splits at up[(2i + 1) * 2^(7-L) - 1] and is stored at the bit
 * reversal of i in L bits, at offset tree_off[L]. Built with the
 * detection. */
enum { TREE_SIZE = 304 };
static const int tree_off[8] = {0, 16, 32, 48, 64, 80, 112, 176};
static float tree[2][TREE_SIZE] __attribute__((aligned(64)));

static unsigned reverse_bits(unsigned v, int nbits)
{
    unsigned r = 0;
    for (int b = 0; b < nbits; b++) r |= ((v >> b) & 1u) << (nbits - 1 - b);
    return r;
}

static void detect(void)
{
    for (int sgn = 0; sgn < 2; sgn++) {
        const float *up = dsc_qtable_get(sgn)->up;
        for (int j = 0; j < TREE_SIZE; j++) tree[sgn][j] = 0.0f; /* never read */
        for (int level = 0; level < 8; level++)
            for (unsigned i = 0; i < (1u << level); i++)
                tree[sgn][tree_off[level] + (int)reverse_bits(i, level)] =
                    up[(2 * i + 1) * (1u << (7 - level)) - 1];
    }
    const char *k = getenv("DESCENT_KERNELS");
    int off = k && (strcmp(k, "portable") == 0 || strcmp(k, "ref") == 0);
    __builtin_cpu_init();
    detected = !off && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}

int dsc_bq_avx512(void)
{
    pthread_once(&detect_once, detect);
    return detected && allowed;
}

int dsc_bq_avx512_allow(int allow)
{
    allowed = allow != 0;
    return dsc_bq_avx512();
}

/* -------------------------------------------------------- primitives */

typedef struct {
    __m512 r[16]; /* map[16i .. 16i+15] */
} qmap;

typedef struct {
    __m512 root;         /* level 0, broadcast */
    __m512 b1[2], b2[4]; /* levels 1 and 2: each threshold broadcast */
    __m512 l3, l4;       /* levels 3 and 4: 8 and 16 */
    __m512 l5[2];        /* level 5: 32 */
    __m512 l6[4];        /* level 6: 64 */
    __m512 l7[8];        /* level 7: 128 */
} qtree;

TGT_INLINE void load_map(qmap *m, const float *map)
{
    for (int i = 0; i < 16; i++) m->r[i] = _mm512_loadu_ps(map + 16 * i);
}

TGT_INLINE void load_tree(qtree *t, int is_signed)
{
    const float *e = tree[is_signed];
    t->root = _mm512_set1_ps(e[0]);
    for (int i = 0; i < 2; i++) t->b1[i] = _mm512_set1_ps(e[tree_off[1] + i]);
    for (int i = 0; i < 4; i++) t->b2[i] = _mm512_set1_ps(e[tree_off[2] + i]);
    t->l3 = _mm512_load_ps(e + tree_off[3]);
    t->l4 = _mm512_load_ps(e + tree_off[4]);
    for (int i = 0; i < 2; i++) t->l5[i] = _mm512_load_ps(e + tree_off[5] + 16 * i);
    for (int i = 0; i < 4; i++) t->l6[i] = _mm512_load_ps(e + tree_off[6] + 16 * i);
    for (int i = 0; i < 8; i++) t->l7[i] = _mm512_load_ps(e + tree_off[7] + 16 * i);
}

/* map[c] for 16 codes 0..255 (in 32-bit lanes). vpermt2ps reads only the
 * low 5 bits of each index, so each pair gives the right entry for its 32
 * codes; bits 5, 6, 7 then choose among the eight candidates. */
TGT_INLINE __m512 lookup(const qmap *m, __m512i c)
{
    __m512 q[8];
    for (int k = 0; k < 8; k++) q[k] = _mm512_permutex2var_ps(m->r[2 * k], c, m->r[2 * k + 1]);
    __mmask16 b5 = _mm512_test_epi32_mask(c, _mm512_set1_epi32(32));
    __mmask16 b6 = _mm512_test_epi32_mask(c, _mm512_set1_epi32(64));
    __mmask16 b7 = _mm512_test_epi32_mask(c, _mm512_set1_epi32(128));
    __m512 l0 = _mm512_mask_blend_ps(b5, q[0], q[1]), l1 = _mm512_mask_blend_ps(b5, q[2], q[3]);
    __m512 l2 = _mm512_mask_blend_ps(b5, q[4], q[5]), l3 = _mm512_mask_blend_ps(b5, q[6], q[7]);
    __m512 h0 = _mm512_mask_blend_ps(b6, l0, l1), h1 = _mm512_mask_blend_ps(b6, l2, l3);
    return _mm512_mask_blend_ps(b7, h0, h1);
}

/* dsc_qsearch(x) for 16 lanes: the number of thresholds up[k] <= x, by a
 * branch-free binary search. Level L compares x with the threshold that
 * splits the codes left after the levels before; the decision d_L = (x >=
 * t), false for a NaN x as the search's comparisons are, is bit 7-L of the
 * code. _CMP_GE_OQ compares only: no new exception.
 *
 * One register r carries both the table index and the code, so that a
 * level costs a permute, a comparison and one masked OR (an index kept as
 * a node number, n = 2n + d, costs an add and a masked add):
 *
 *   bit L of r      = d_L: the decisions so far, in reverse order; they are
 *                     the low bits of r, which is what vpermps (4 bits) and
 *                     vpermt2ps (5 bits) read, so each level's table stores
 *                     its thresholds at bit-reversed positions (tree_off);
 *   bit 15 - L of r = d_L: the code, bits 15..8 (code = r >> 8).
 *
 * Higher bits of r do not disturb the permutes: they read only their low
 * 4 or 5 bits. Levels 6 and 7 span 2 and 4 register pairs; bit 5 (d_5)
 * and bit 6 (d_6) of the index choose the pair, and those are the masks
 * of the comparisons at levels 5 and 6, so they need no bit tests.
 *
 * The permutes are what limits the search (on the AMD EPYC this was measured
 * on, taking the four of level 7 out saves a fifth of its time), while a
 * masked blend is cheap: levels 1 and 2 (2 and 4 thresholds) choose among
 * broadcast registers with blends on d_0 and d_1 instead of permuting,
 * which cut the encoder's time by about a tenth; level 3 the same way (7
 * blends) gained nothing more. */
TGT_INLINE __m512i decide(__m512i r, __m512 x, __m512 t, int level, __mmask16 *d)
{
    *d = _mm512_cmp_ps_mask(x, t, _CMP_GE_OQ);
    return _mm512_mask_or_epi32(r, *d, r, _mm512_set1_epi32((1 << level) | (1 << (15 - level))));
}

TGT_INLINE __m512i search(const qtree *t, __m512 x)
{
    __mmask16 d, d0, d1, d5, d6;
    d0 = _mm512_cmp_ps_mask(x, t->root, _CMP_GE_OQ);
    __m512i r = _mm512_maskz_mov_epi32(d0, _mm512_set1_epi32(1 | 1 << 15));
    r = decide(r, x, _mm512_mask_blend_ps(d0, t->b1[0], t->b1[1]), 1, &d1);
    __m512 u0 = _mm512_mask_blend_ps(d0, t->b2[0], t->b2[1]);
    __m512 u1 = _mm512_mask_blend_ps(d0, t->b2[2], t->b2[3]);
    r = decide(r, x, _mm512_mask_blend_ps(d1, u0, u1), 2, &d);
    r = decide(r, x, _mm512_permutexvar_ps(r, t->l3), 3, &d);
    r = decide(r, x, _mm512_permutexvar_ps(r, t->l4), 4, &d);
    r = decide(r, x, _mm512_permutex2var_ps(t->l5[0], r, t->l5[1]), 5, &d5);
    __m512 a = _mm512_permutex2var_ps(t->l6[0], r, t->l6[1]);
    __m512 b = _mm512_permutex2var_ps(t->l6[2], r, t->l6[3]);
    r = decide(r, x, _mm512_mask_blend_ps(d5, a, b), 6, &d6);
    __m512 q0 = _mm512_permutex2var_ps(t->l7[0], r, t->l7[1]);
    __m512 q1 = _mm512_permutex2var_ps(t->l7[2], r, t->l7[3]);
    __m512 q2 = _mm512_permutex2var_ps(t->l7[4], r, t->l7[5]);
    __m512 q3 = _mm512_permutex2var_ps(t->l7[6], r, t->l7[7]);
    __m512 lo = _mm512_mask_blend_ps(d5, q0, q1), hi = _mm512_mask_blend_ps(d5, q2, q3);
    r = decide(r, x, _mm512_mask_blend_ps(d6, lo, hi), 7, &d);
    return _mm512_srli_epi32(r, 8);
}

TGT_INLINE __mmask16 live_mask(int left)
{
    return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
}

/* 16 codes (or the live ones) widened to 32-bit lanes. */
TGT_INLINE __m512i load_codes(const uint8_t *c, __mmask16 live)
{
    return _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(live, c));
}

/* dsc_bq_encode_fast's codes for s[0..n): x = s / absmax (IEEE division),
 * the search, and for the signed map the reference's sign fix: where the
 * sign of QS[c] (negative for c < 127; QS[127] is +0) differs from the
 * sign bit of s, c moves one up for s > 0 and one down otherwise, wrapping
 * as a uchar. */
TGT_INLINE void encode(const qtree *t, int is_signed, const float *s, int n, float absmax,
                       uint8_t *codes)
{
    /* 0, Inf or NaN absmax: rare, the reference does it (as on the
     * portable path). */
    if (!(absmax > 0.0f && absmax <= FLT_MAX)) {
        dsc_bq_encode_ref(s, n, absmax, is_signed, codes);
        return;
    }
    const __m512 va = _mm512_set1_ps(absmax);
    for (int i = 0; i < n; i += 16) {
        __mmask16 live = live_mask(n - i);
        __m512 sv = _mm512_maskz_loadu_ps(live, s + i);
        __m512i c = search(t, _mm512_div_ps(sv, va));
        if (is_signed) {
            /* The sign fix, worked out case by case (x has the sign of s,
             * absmax being positive): a negative s (-0 included) has x <=
             * -0, below up[127] > 0, so c <= 127, and only c = 127 (QS[127]
             * is +0) moves, down to 126; a positive s has x >= +0 > up[126],
             * so c >= 127 and nothing moves; a NaN has c = 0, kept under a
             * negative sign and moved to 0 - 1 = 255 under a positive one.
             * Integer tests of the bits of s: no exception. */
            __m512i bits = _mm512_castps_si512(sv);
            __mmask16 neg = _mm512_test_epi32_mask(bits, _mm512_set1_epi32((int)0x80000000u));
            __mmask16 pnan = _mm512_cmpgt_epi32_mask(bits, _mm512_set1_epi32(0x7F800000));
            c = _mm512_mask_min_epu32(c, neg, c, _mm512_set1_epi32(126));
            c = _mm512_mask_mov_epi32(c, pnan, _mm512_set1_epi32(255));
        }
        _mm512_mask_cvtepi32_storeu_epi8(codes + i, live, c);
    }
}

/* All ones where x is finite (exponent not all ones). */
TGT_INLINE __mmask16 finite_lanes(__m512 x)
{
    const __m512i e = _mm512_set1_epi32(0x7F800000);
    return _mm512_cmpneq_epi32_mask(_mm512_and_si512(_mm512_castps_si512(x), e), e);
}

/* The block max as the portable bodies keep it: max over the bits of |x|
 * (ordered as |x|), NaN lanes skipped; -1 while only NaNs were seen. */
TGT_INLINE __m512i absmax_step(__m512i best, __m512 x, __mmask16 live)
{
    __m512i k = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(0x7FFFFFFF));
    __mmask16 num = _mm512_mask_cmple_epi32_mask(live, k, _mm512_set1_epi32(0x7F800000));
    return _mm512_mask_max_epi32(best, num, best, k);
}

static float absmax_of(int32_t best)
{
    if (best < 0) return -FLT_MAX; /* only NaN: the reference's start value */
    float r;
    memcpy(&r, &best, sizeof r);
    return r;
}

static float amax_of(float m, float x) { return x > m ? x : m; }

/* ---------------------------------------------------------------- Adam */

/* quant8.c adam8_body, 16 lanes at a time. */
TGT_INLINE void adam_block(const dsc_bq_coef *k, const qmap *qs, const qmap *qu,
                           const qtree *ts, const qtree *tu, float *restrict p,
                           const float *restrict g, uint8_t *restrict c1, uint8_t *restrict c2,
                           float *a1, float *a2, const int nb)
{
    float m[DSC_QBLOCK] __attribute__((aligned(64))), v[DSC_QBLOCK] __attribute__((aligned(64)));
    const float old1 = *a1, old2 = *a2;
    const __m512 o1 = _mm512_set1_ps(old1), o2 = _mm512_set1_ps(old2);
    const __m512 b1 = _mm512_set1_ps(k->beta1), b2 = _mm512_set1_ps(k->beta2);
    const __m512 omb1 = _mm512_set1_ps(k->omb1), omb2 = _mm512_set1_ps(k->omb2);
    const __m512 ss = _mm512_set1_ps(k->step_size), c2eps = _mm512_set1_ps(k->c2eps);
    const __m512 dec = _mm512_set1_ps(k->dec);
    __m512i best1 = _mm512_set1_epi32(-1), best2 = best1;
    for (int i = 0; i < nb; i += 16) {
        __mmask16 live = live_mask(nb - i);
        __m512 gi = _mm512_maskz_loadu_ps(live, g + i), p0 = _mm512_maskz_loadu_ps(live, p + i);
        __m512 dv = _mm512_mul_ps(lookup(qu, load_codes(c2 + i, live)), o2);
        __m512 dm = _mm512_mul_ps(lookup(qs, load_codes(c1 + i, live)), o1);
        /* v = (QU[c2]*old2)*b2 + ((omb2*g)*g); m = (QS[c1]*old1)*b1 + omb1*g */
        __m512 vi = _mm512_add_ps(_mm512_mul_ps(dv, b2),
                                  _mm512_mul_ps(_mm512_mul_ps(omb2, gi), gi));
        __m512 mi = _mm512_add_ps(_mm512_mul_ps(dm, b1), _mm512_mul_ps(omb1, gi));
        /* p = (p + ss*(m/(sqrt(v) + c2eps))) * dec */
        __m512 den = _mm512_add_ps(_mm512_sqrt_ps(vi), c2eps);
        __m512 pi = _mm512_mul_ps(
            _mm512_add_ps(p0, _mm512_mul_ps(ss, _mm512_div_ps(mi, den))), dec);
        __mmask16 ok = finite_lanes(gi);
        vi = _mm512_maskz_mov_ps(ok, vi); /* +0 where g is NaN or Inf */
        mi = _mm512_maskz_mov_ps(ok, mi);
        pi = _mm512_mask_mov_ps(p0, ok, pi);
        _mm512_mask_storeu_ps(p + i, live, pi);
        _mm512_store_ps(m + i, mi);
        _mm512_store_ps(v + i, vi);
        best1 = absmax_step(best1, mi, live);
        best2 = absmax_step(best2, vi, live);
    }
    float max1 = absmax_of(_mm512_reduce_max_epi32(best1));
    float max2 = absmax_of(_mm512_reduce_max_epi32(best2));
    if (nb < DSC_QBLOCK) { /* padding lanes: code 128 / 0, gradient 0 */
        float pm = dsc_qmap_signed[128] * old1, pv = dsc_qmap_unsigned[0] * old2;
        pm = pm * k->beta1 + k->omb1 * 0.0f;
        pv = pv * k->beta2 + k->omb2 * 0.0f * 0.0f;
        max1 = amax_of(max1, fabsf(pm));
        max2 = amax_of(max2, fabsf(pv));
    }
    *a1 = max1;
    *a2 = max2;
    encode(ts, 1, m, nb, max1, c1);
    encode(tu, 0, v, nb, max2, c2);
}

TGT void dsc_bq_adam8_avx512(const dsc_bq_coef *k, float *p, const float *g, uint8_t *c1,
                             uint8_t *c2, float *a1, float *a2, size_t n, size_t j0, size_t j1)
{
    qmap qs, qu;
    qtree ts, tu;
    load_map(&qs, dsc_qmap_signed);
    load_map(&qu, dsc_qmap_unsigned);
    load_tree(&ts, 1);
    load_tree(&tu, 0);
    for (size_t j = j0; j < j1; j++) {
        size_t b0 = j * DSC_QBLOCK, left = n - b0;
        if (left >= DSC_QBLOCK)
            adam_block(k, &qs, &qu, &ts, &tu, p + b0, g + b0, c1 + b0, c2 + b0, a1 + j, a2 + j,
                       DSC_QBLOCK);
        else
            adam_block(k, &qs, &qu, &ts, &tu, p + b0, g + b0, c1 + b0, c2 + b0, a1 + j, a2 + j,
                       (int)left);
    }
}

/* ------------------------------------------------------------ Momentum */

/* quant8.c sgd8_body: L2 term only with decay (g + p*0 could turn -0 into
 * +0), b = g at t = 1, p - lr*b. */
TGT_INLINE void sgd_block(const dsc_bq_coef *k, const qmap *qs, const qtree *ts,
                          float *restrict p, const float *restrict g, uint8_t *restrict c,
                          float *a, const int nb, const int has_wd, const int first)
{
    float b[DSC_QBLOCK] __attribute__((aligned(64)));
    const float old = *a;
    const __m512 o = _mm512_set1_ps(old), mu = _mm512_set1_ps(k->beta1);
    const __m512 lr = _mm512_set1_ps(k->lr), wd = _mm512_set1_ps(k->wd);
    __m512i best = _mm512_set1_epi32(-1);
    for (int i = 0; i < nb; i += 16) {
        __mmask16 live = live_mask(nb - i);
        __m512 g0 = _mm512_maskz_loadu_ps(live, g + i), p0 = _mm512_maskz_loadu_ps(live, p + i);
        __m512 gi = has_wd ? _mm512_add_ps(g0, _mm512_mul_ps(p0, wd)) : g0;
        __m512 bi = gi;
        if (!first)
            bi = _mm512_add_ps(
                _mm512_mul_ps(_mm512_mul_ps(lookup(qs, load_codes(c + i, live)), o), mu), gi);
        __m512 pi = _mm512_sub_ps(p0, _mm512_mul_ps(lr, bi));
        __mmask16 ok = finite_lanes(g0);
        bi = _mm512_maskz_mov_ps(ok, bi);
        pi = _mm512_mask_mov_ps(p0, ok, pi);
        _mm512_mask_storeu_ps(p + i, live, pi);
        _mm512_store_ps(b + i, bi);
        best = absmax_step(best, bi, live);
    }
    float max1 = absmax_of(_mm512_reduce_max_epi32(best));
    if (nb < DSC_QBLOCK) {
        float pb = dsc_qmap_signed[128] * old;
        pb = first ? 0.0f : pb * k->beta1 + 0.0f;
        max1 = amax_of(max1, fabsf(pb));
    }
    *a = max1;
    encode(ts, 1, b, nb, max1, c);
}

TGT_INLINE void sgd_blocks(const dsc_bq_coef *k, const qmap *qs, const qtree *ts, float *p,
                           const float *g, uint8_t *c, float *a, size_t n, size_t j0, size_t j1,
                           const int has_wd, const int first)
{
    for (size_t j = j0; j < j1; j++) {
        size_t b0 = j * DSC_QBLOCK, left = n - b0;
        if (left >= DSC_QBLOCK)
            sgd_block(k, qs, ts, p + b0, g + b0, c + b0, a + j, DSC_QBLOCK, has_wd, first);
        else
            sgd_block(k, qs, ts, p + b0, g + b0, c + b0, a + j, (int)left, has_wd, first);
    }
}

TGT void dsc_bq_sgd8_avx512(const dsc_bq_coef *k, float *p, const float *g, uint8_t *c, float *a,
                            size_t n, size_t j0, size_t j1)
{
    qmap qs;
    qtree ts;
    load_map(&qs, dsc_qmap_signed);
    load_tree(&ts, 1);
    if (k->has_wd) {
        if (k->first) sgd_blocks(k, &qs, &ts, p, g, c, a, n, j0, j1, 1, 1);
        else sgd_blocks(k, &qs, &ts, p, g, c, a, n, j0, j1, 1, 0);
    } else {
        if (k->first) sgd_blocks(k, &qs, &ts, p, g, c, a, n, j0, j1, 0, 1);
        else sgd_blocks(k, &qs, &ts, p, g, c, a, n, j0, j1, 0, 0);
    }
}

/* ---------------------------------------------------------------- Lion */

/* quant8.c lion8_body: p*dec - lr*sign(mo*b1 + omb1*g), m = mo*b2 + omb2*g.
 * sign() is (x > 0) - (x < 0) as a float: +0 for zeros and NaN. */
TGT_INLINE void lion_block(const dsc_bq_coef *k, const qmap *qs, const qtree *ts,
                           float *restrict p, const float *restrict g, uint8_t *restrict c,
                           float *a, const int nb)
{
    float m[DSC_QBLOCK] __attribute__((aligned(64)));
    const float old = *a;
    const __m512 o = _mm512_set1_ps(old), lr = _mm512_set1_ps(k->lr), dec = _mm512_set1_ps(k->dec);
    const __m512 b1 = _mm512_set1_ps(k->beta1), b2 = _mm512_set1_ps(k->beta2);
    const __m512 omb1 = _mm512_set1_ps(k->omb1), omb2 = _mm512_set1_ps(k->omb2);
    const __m512 zero = _mm512_setzero_ps();
    __m512i best = _mm512_set1_epi32(-1);
    for (int i = 0; i < nb; i += 16) {
        __mmask16 live = live_mask(nb - i);
        __m512 gi = _mm512_maskz_loadu_ps(live, g + i), p0 = _mm512_maskz_loadu_ps(live, p + i);
        __m512 mo = _mm512_mul_ps(lookup(qs, load_codes(c + i, live)), o);
        __m512 u = _mm512_add_ps(_mm512_mul_ps(mo, b1), _mm512_mul_ps(omb1, gi));
        __m512 sg = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(u, zero, _CMP_GT_OQ),
                                        _mm512_set1_ps(1.0f));
        sg = _mm512_mask_mov_ps(sg, _mm512_cmp_ps_mask(u, zero, _CMP_LT_OQ), _mm512_set1_ps(-1.0f));
        __m512 pi = _mm512_sub_ps(_mm512_mul_ps(p0, dec), _mm512_mul_ps(lr, sg));
        __m512 mi = _mm512_add_ps(_mm512_mul_ps(mo, b2), _mm512_mul_ps(omb2, gi));
        __mmask16 ok = finite_lanes(gi);
        mi = _mm512_maskz_mov_ps(ok, mi);
        pi = _mm512_mask_mov_ps(p0, ok, pi);
        _mm512_mask_storeu_ps(p + i, live, pi);
        _mm512_store_ps(m + i, mi);
        best = absmax_step(best, mi, live);
    }
    float max1 = absmax_of(_mm512_reduce_max_epi32(best));
    if (nb < DSC_QBLOCK) {
        float pm = dsc_qmap_signed[128] * old;
        pm = pm * k->beta2 + k->omb2 * 0.0f;
        max1 = amax_of(max1, fabsf(pm));
    }
    *a = max1;
    encode(ts, 1, m, nb, max1, c);
}

TGT void dsc_bq_lion8_avx512(const dsc_bq_coef *k, float *p, const float *g, uint8_t *c,
                             float *a, size_t n, size_t j0, size_t j1)
{
    qmap qs;
    qtree ts;
    load_map(&qs, dsc_qmap_signed);
    load_tree(&ts, 1);
    for (size_t j = j0; j < j1; j++) {
        size_t b0 = j * DSC_QBLOCK, left = n - b0;
        if (left >= DSC_QBLOCK)
            lion_block(k, &qs, &ts, p + b0, g + b0, c + b0, a + j, DSC_QBLOCK);
        else
            lion_block(k, &qs, &ts, p + b0, g + b0, c + b0, a + j, (int)left);
    }
}

/* --------------------------------------------------------- for tests */

TGT void dsc_bq_encode_avx512(int is_signed, const float *s, int n, float absmax, uint8_t *codes)
{
    pthread_once(&detect_once, detect); /* the trees */
    qtree t;
    load_tree(&t, is_signed != 0);
    if (is_signed) encode(&t, 1, s, n, absmax, codes);
    else encode(&t, 0, s, n, absmax, codes);
}

TGT void dsc_bq_decode_avx512(int is_signed, const uint8_t *codes, int n, float absmax,
                              float *out)
{
    qmap m;
    load_map(&m, dsc_qmap(is_signed));
    const __m512 va = _mm512_set1_ps(absmax);
    for (int i = 0; i < n; i += 16) {
        __mmask16 live = live_mask(n - i);
        __m512 v = _mm512_mul_ps(lookup(&m, load_codes(codes + i, live)), va);
        _mm512_mask_storeu_ps(out + i, live, v);
    }
}

#else
/* ISO C wants at least one declaration in a translation unit. */
typedef int dsc_blockquant_avx512_unused;
#endif /* DSC_HAVE_AVX512_KERNELS */
