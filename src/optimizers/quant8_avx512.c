/* quant8_avx512.c - the 8-bit optimizer steps on AVX-512: dequantize,
 * update, absmax and encode of one block of 256 elements, 16 lanes at a
 * time, with the same bits as the portable bodies of quant8.c (the
 * reference beside them; tests/test_quant8.c compares the paths). The map
 * lookups and the code search are the kernels' (src/kernels/
 * blockquant_avx512.h); this file only arranges the arithmetic of each
 * optimizer around them.
 *
 * The arithmetic is the portable body's, operation by operation: separate
 * _mm512_mul_ps / _mm512_add_ps / _mm512_div_ps / _mm512_sqrt_ps, never a
 * fused multiply-add (the build is ISO C, where GCC does not contract;
 * clang contracts within one expression unless told, hence the pragma for
 * the few scalar lines). Every block is checked: the finite-gradient
 * selects and the NaN-skipping absmax cost one mask operation each here,
 * so there is no unchecked variant. Compiled only where the kernels are
 * (x86-64 with GCC or clang); elsewhere this file is empty. */
#include "quant8.h"
#include "../kernels/blockquant_avx512.h"

#ifdef DSC_HAVE_AVX512_KERNELS

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

/* In an update loop at element i of the block: the codes' line of i ahead. */
TGT_INLINE void prefetch_codes(const dsc_bq_ahead *a, int i)
{
    if (a->c1 && (i & 63) == 0) {
        _mm_prefetch((const char *)(a->c1 + i), _MM_HINT_T0);
        if (a->c2) _mm_prefetch((const char *)(a->c2 + i), _MM_HINT_T0);
    }
}

/* ---------------------------------------------------------------- Adam */

/* quant8.c adam8_body, 16 lanes at a time. */
TGT_INLINE void adam_block(const dsc_bq_coef *k, const float *q1, const float *q2,
                           const qtree *ts, const qtree *tu, float *restrict p,
                           const float *restrict g, uint8_t *restrict c1, uint8_t *restrict c2,
                           float *a1, float *a2, const int nb, dsc_bq_ahead ah)
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
        prefetch_codes(&ah, i);
        __mmask16 live = live_mask(nb - i);
        __m512 gi = _mm512_maskz_loadu_ps(live, g + i), p0 = _mm512_maskz_loadu_ps(live, p + i);
        __m512 dv = _mm512_mul_ps(_mm512_load_ps(q2 + i), o2);
        __m512 dm = _mm512_mul_ps(_mm512_load_ps(q1 + i), o1);
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
    encode_pf(ts, 1, m, nb, max1, c1, ah.f1, ah.f2);
    encode(tu, 0, v, nb, max2, c2);
}

/* The block loop of each step comes twice: with the byte-plane decoder
 * (VBMI) and with lookup(). DEQ(map, codes, nb, out) is the decoder. */
#define ADAM_BLOCKS(DEQ, M1, M2)                                                              \
    do {                                                                                      \
        qtree ts, tu;                                                                         \
        float q1[DSC_QBLOCK] __attribute__((aligned(64)));                                    \
        float q2[DSC_QBLOCK] __attribute__((aligned(64)));                                    \
        load_tree(&ts, 1);                                                                    \
        load_tree(&tu, 0);                                                                    \
        for (size_t j = j0; j < j1; j++) {                                                    \
            size_t b0 = j * DSC_QBLOCK, left = n - b0;                                        \
            int nb = left < DSC_QBLOCK ? (int)left : DSC_QBLOCK;                              \
            DEQ(M1, c1 + b0, nb, q1);                                                         \
            DEQ(M2, c2 + b0, nb, q2);                                                         \
            dsc_bq_ahead ah = dsc_q8_ahead(p, g, c1, c2, j, n);                               \
            if (nb == DSC_QBLOCK)                                                             \
                adam_block(k, q1, q2, &ts, &tu, p + b0, g + b0, c1 + b0, c2 + b0, a1 + j,     \
                           a2 + j, DSC_QBLOCK, ah);                                           \
            else                                                                              \
                adam_block(k, q1, q2, &ts, &tu, p + b0, g + b0, c1 + b0, c2 + b0, a1 + j,     \
                           a2 + j, nb, ah);                                                   \
        }                                                                                     \
    } while (0)

TGT_VBMI static void adam8_vbmi(const dsc_bq_coef *k, float *p, const float *g, uint8_t *c1,
                                uint8_t *c2, float *a1, float *a2, size_t n, size_t j0,
                                size_t j1)
{
    ADAM_BLOCKS(dequant_planes, dsc_bq_planes(1), dsc_bq_planes(0));
}

TGT static void adam8_perm(const dsc_bq_coef *k, float *p, const float *g, uint8_t *c1,
                           uint8_t *c2, float *a1, float *a2, size_t n, size_t j0, size_t j1)
{
    qmap qs, qu;
    load_map(&qs, dsc_qmap_signed);
    load_map(&qu, dsc_qmap_unsigned);
    ADAM_BLOCKS(dequant_perm, &qs, &qu);
}

TGT void dsc_bq_adam8_avx512(const dsc_bq_coef *k, float *p, const float *g, uint8_t *c1,
                             uint8_t *c2, float *a1, float *a2, size_t n, size_t j0, size_t j1)
{
    if (dsc_bq_vbmi()) adam8_vbmi(k, p, g, c1, c2, a1, a2, n, j0, j1);
    else adam8_perm(k, p, g, c1, c2, a1, a2, n, j0, j1);
}

/* ------------------------------------------------------------ Momentum */

/* quant8.c sgd8_body: L2 term only with decay (g + p*0 could turn -0 into
 * +0), b = g at t = 1, p - lr*b. */
TGT_INLINE void sgd_block(const dsc_bq_coef *k, const float *q, const qtree *ts,
                          float *restrict p, const float *restrict g, uint8_t *restrict c,
                          float *a, const int nb, const int has_wd, const int first,
                          dsc_bq_ahead ah)
{
    float b[DSC_QBLOCK] __attribute__((aligned(64)));
    const float old = *a;
    const __m512 o = _mm512_set1_ps(old), mu = _mm512_set1_ps(k->beta1);
    const __m512 lr = _mm512_set1_ps(k->lr), wd = _mm512_set1_ps(k->wd);
    __m512i best = _mm512_set1_epi32(-1);
    for (int i = 0; i < nb; i += 16) {
        prefetch_codes(&ah, i);
        __mmask16 live = live_mask(nb - i);
        __m512 g0 = _mm512_maskz_loadu_ps(live, g + i), p0 = _mm512_maskz_loadu_ps(live, p + i);
        __m512 gi = has_wd ? _mm512_add_ps(g0, _mm512_mul_ps(p0, wd)) : g0;
        __m512 bi = gi;
        if (!first)
            bi = _mm512_add_ps(
                _mm512_mul_ps(_mm512_mul_ps(_mm512_load_ps(q + i), o), mu), gi);
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
    encode_pf(ts, 1, b, nb, max1, c, ah.f1, ah.f2);
}

/* One-state steps: DEQ decodes the block's codes into q (skipped at the
 * first momentum step, which does not read them), then BODY(nb). */
#define ONE_STATE_BLOCKS(DEQ, MAP, NEED, BODY)                                                \
    do {                                                                                      \
        float q[DSC_QBLOCK] __attribute__((aligned(64)));                                     \
        for (size_t j = j0; j < j1; j++) {                                                    \
            size_t b0 = j * DSC_QBLOCK, left = n - b0;                                        \
            int nb = left < DSC_QBLOCK ? (int)left : DSC_QBLOCK;                              \
            dsc_bq_ahead ah = dsc_q8_ahead(p, g, c, NULL, j, n);                              \
            if (NEED) DEQ(MAP, c + b0, nb, q);                                                \
            if (nb == DSC_QBLOCK) BODY(DSC_QBLOCK);                                           \
            else BODY(nb);                                                                    \
        }                                                                                     \
    } while (0)

#define SGD_BODY(NB) sgd_block(k, q, ts, p + b0, g + b0, c + b0, a + j, NB, has_wd, first, ah)

TGT_INLINE void sgd_blocks_perm(const dsc_bq_coef *k, const qmap *qs, const qtree *ts, float *p,
                                const float *g, uint8_t *c, float *a, size_t n, size_t j0,
                                size_t j1, const int has_wd, const int first)
{
    ONE_STATE_BLOCKS(dequant_perm, qs, !first, SGD_BODY);
}

TGT_VBMI_INLINE void sgd_blocks_vbmi(const dsc_bq_coef *k, const uint8_t *pl, const qtree *ts,
                                     float *p, const float *g, uint8_t *c, float *a, size_t n,
                                     size_t j0, size_t j1, const int has_wd, const int first)
{
    ONE_STATE_BLOCKS(dequant_planes, pl, !first, SGD_BODY);
}

TGT_VBMI static void sgd8_vbmi(const dsc_bq_coef *k, float *p, const float *g, uint8_t *c,
                               float *a, size_t n, size_t j0, size_t j1)
{
    qtree ts;
    load_tree(&ts, 1);
    const uint8_t *pl = dsc_bq_planes(1);
    if (k->has_wd) {
        if (k->first) sgd_blocks_vbmi(k, pl, &ts, p, g, c, a, n, j0, j1, 1, 1);
        else sgd_blocks_vbmi(k, pl, &ts, p, g, c, a, n, j0, j1, 1, 0);
    } else {
        if (k->first) sgd_blocks_vbmi(k, pl, &ts, p, g, c, a, n, j0, j1, 0, 1);
        else sgd_blocks_vbmi(k, pl, &ts, p, g, c, a, n, j0, j1, 0, 0);
    }
}

TGT static void sgd8_perm(const dsc_bq_coef *k, float *p, const float *g, uint8_t *c, float *a,
                          size_t n, size_t j0, size_t j1)
{
    qmap qs;
    qtree ts;
    load_map(&qs, dsc_qmap_signed);
    load_tree(&ts, 1);
    if (k->has_wd) {
        if (k->first) sgd_blocks_perm(k, &qs, &ts, p, g, c, a, n, j0, j1, 1, 1);
        else sgd_blocks_perm(k, &qs, &ts, p, g, c, a, n, j0, j1, 1, 0);
    } else {
        if (k->first) sgd_blocks_perm(k, &qs, &ts, p, g, c, a, n, j0, j1, 0, 1);
        else sgd_blocks_perm(k, &qs, &ts, p, g, c, a, n, j0, j1, 0, 0);
    }
}

TGT void dsc_bq_sgd8_avx512(const dsc_bq_coef *k, float *p, const float *g, uint8_t *c, float *a,
                            size_t n, size_t j0, size_t j1)
{
    if (dsc_bq_vbmi()) sgd8_vbmi(k, p, g, c, a, n, j0, j1);
    else sgd8_perm(k, p, g, c, a, n, j0, j1);
}

/* ---------------------------------------------------------------- Lion */

/* quant8.c lion8_body: p*dec - lr*sign(mo*b1 + omb1*g), m = mo*b2 + omb2*g.
 * sign() is (x > 0) - (x < 0) as a float: +0 for zeros and NaN. */
TGT_INLINE void lion_block(const dsc_bq_coef *k, const float *q, const qtree *ts,
                           float *restrict p, const float *restrict g, uint8_t *restrict c,
                           float *a, const int nb, dsc_bq_ahead ah)
{
    float m[DSC_QBLOCK] __attribute__((aligned(64)));
    const float old = *a;
    const __m512 o = _mm512_set1_ps(old), lr = _mm512_set1_ps(k->lr), dec = _mm512_set1_ps(k->dec);
    const __m512 b1 = _mm512_set1_ps(k->beta1), b2 = _mm512_set1_ps(k->beta2);
    const __m512 omb1 = _mm512_set1_ps(k->omb1), omb2 = _mm512_set1_ps(k->omb2);
    const __m512 zero = _mm512_setzero_ps();
    __m512i best = _mm512_set1_epi32(-1);
    for (int i = 0; i < nb; i += 16) {
        prefetch_codes(&ah, i);
        __mmask16 live = live_mask(nb - i);
        __m512 gi = _mm512_maskz_loadu_ps(live, g + i), p0 = _mm512_maskz_loadu_ps(live, p + i);
        __m512 mo = _mm512_mul_ps(_mm512_load_ps(q + i), o);
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
    encode_pf(ts, 1, m, nb, max1, c, ah.f1, ah.f2);
}

#define LION_BODY(NB) lion_block(k, q, &ts, p + b0, g + b0, c + b0, a + j, NB, ah)

TGT_VBMI static void lion8_vbmi(const dsc_bq_coef *k, float *p, const float *g, uint8_t *c,
                                float *a, size_t n, size_t j0, size_t j1)
{
    qtree ts;
    load_tree(&ts, 1);
    ONE_STATE_BLOCKS(dequant_planes, dsc_bq_planes(1), 1, LION_BODY);
}

TGT static void lion8_perm(const dsc_bq_coef *k, float *p, const float *g, uint8_t *c, float *a,
                           size_t n, size_t j0, size_t j1)
{
    qmap qs;
    qtree ts;
    load_map(&qs, dsc_qmap_signed);
    load_tree(&ts, 1);
    ONE_STATE_BLOCKS(dequant_perm, &qs, 1, LION_BODY);
}

TGT void dsc_bq_lion8_avx512(const dsc_bq_coef *k, float *p, const float *g, uint8_t *c,
                             float *a, size_t n, size_t j0, size_t j1)
{
    if (dsc_bq_vbmi()) lion8_vbmi(k, p, g, c, a, n, j0, j1);
    else lion8_perm(k, p, g, c, a, n, j0, j1);
}

/* ------------------------------------------------------------- AdaGrad */

/* quant8.c adagrad8_body: v = QS[c]*old + gw*gw with gw = g + p*wd only
 * with decay (the state's L2 term); p - lr*(g/(sqrt(v) + eps)) with the
 * raw g. */
TGT_INLINE void adagrad_block(const dsc_bq_coef *k, const float *q, const qtree *ts,
                              float *restrict p, const float *restrict g, uint8_t *restrict c,
                              float *a, const int nb, const int has_wd, dsc_bq_ahead ah)
{
    float v[DSC_QBLOCK] __attribute__((aligned(64)));
    const float old = *a;
    const __m512 o = _mm512_set1_ps(old), lr = _mm512_set1_ps(k->lr), wd = _mm512_set1_ps(k->wd);
    const __m512 eps = _mm512_set1_ps(k->eps);
    __m512i best = _mm512_set1_epi32(-1);
    for (int i = 0; i < nb; i += 16) {
        prefetch_codes(&ah, i);
        __mmask16 live = live_mask(nb - i);
        __m512 gi = _mm512_maskz_loadu_ps(live, g + i), p0 = _mm512_maskz_loadu_ps(live, p + i);
        __m512 gw = has_wd ? _mm512_add_ps(gi, _mm512_mul_ps(p0, wd)) : gi;
        __m512 vi = _mm512_add_ps(_mm512_mul_ps(_mm512_load_ps(q + i), o),
                                  _mm512_mul_ps(gw, gw));
        __m512 den = _mm512_add_ps(_mm512_sqrt_ps(vi), eps);
        __m512 pi = _mm512_sub_ps(p0, _mm512_mul_ps(lr, _mm512_div_ps(gi, den)));
        __mmask16 ok = finite_lanes(gi);
        vi = _mm512_maskz_mov_ps(ok, vi);
        pi = _mm512_mask_mov_ps(p0, ok, pi);
        _mm512_mask_storeu_ps(p + i, live, pi);
        _mm512_store_ps(v + i, vi);
        best = absmax_step(best, vi, live);
    }
    float max1 = absmax_of(_mm512_reduce_max_epi32(best));
    if (nb < DSC_QBLOCK) {
        float pv = dsc_qmap_signed[128] * old;
        pv = pv + 0.0f * 0.0f;
        max1 = amax_of(max1, fabsf(pv));
    }
    *a = max1;
    encode_pf(ts, 1, v, nb, max1, c, ah.f1, ah.f2);
}

#define ADAGRAD_BODY(NB) adagrad_block(k, q, ts, p + b0, g + b0, c + b0, a + j, NB, has_wd, ah)

TGT_INLINE void adagrad_blocks_perm(const dsc_bq_coef *k, const qmap *qs, const qtree *ts,
                                    float *p, const float *g, uint8_t *c, float *a, size_t n,
                                    size_t j0, size_t j1, const int has_wd)
{
    ONE_STATE_BLOCKS(dequant_perm, qs, 1, ADAGRAD_BODY);
}

TGT_VBMI_INLINE void adagrad_blocks_vbmi(const dsc_bq_coef *k, const uint8_t *pl,
                                         const qtree *ts, float *p, const float *g, uint8_t *c,
                                         float *a, size_t n, size_t j0, size_t j1,
                                         const int has_wd)
{
    ONE_STATE_BLOCKS(dequant_planes, pl, 1, ADAGRAD_BODY);
}

TGT_VBMI static void adagrad8_vbmi(const dsc_bq_coef *k, float *p, const float *g, uint8_t *c,
                                   float *a, size_t n, size_t j0, size_t j1)
{
    qtree ts;
    load_tree(&ts, 1);
    const uint8_t *pl = dsc_bq_planes(1);
    if (k->has_wd) adagrad_blocks_vbmi(k, pl, &ts, p, g, c, a, n, j0, j1, 1);
    else adagrad_blocks_vbmi(k, pl, &ts, p, g, c, a, n, j0, j1, 0);
}

TGT static void adagrad8_perm(const dsc_bq_coef *k, float *p, const float *g, uint8_t *c,
                              float *a, size_t n, size_t j0, size_t j1)
{
    qmap qs;
    qtree ts;
    load_map(&qs, dsc_qmap_signed);
    load_tree(&ts, 1);
    if (k->has_wd) adagrad_blocks_perm(k, &qs, &ts, p, g, c, a, n, j0, j1, 1);
    else adagrad_blocks_perm(k, &qs, &ts, p, g, c, a, n, j0, j1, 0);
}

TGT void dsc_bq_adagrad8_avx512(const dsc_bq_coef *k, float *p, const float *g, uint8_t *c,
                                float *a, size_t n, size_t j0, size_t j1)
{
    if (dsc_bq_vbmi()) adagrad8_vbmi(k, p, g, c, a, n, j0, j1);
    else adagrad8_perm(k, p, g, c, a, n, j0, j1);
}

#else
/* ISO C wants at least one declaration in a translation unit. */
typedef int dsc_quant8_avx512_unused;
#endif /* DSC_HAVE_AVX512_KERNELS */
