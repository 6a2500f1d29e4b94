/* blockquant_avx512.h - the AVX-512 primitives of the 8-bit block-wise
 * quantization (blockquant.h): the 256-entry maps held in registers, the
 * branch-free code search, encode and decode of 16 lanes at a time. Not
 * installed. The kernels end here: the 8-bit optimizer steps built from
 * these primitives live with their optimizers (src/optimizers/
 * quant8_avx512.c), and the tests reach the encoder and the decoder
 * through blockquant_avx512.c.
 *
 * Every function is inline with per-function target attributes, so a file
 * that includes this header stays baseline x86-64 apart from the functions
 * that call these (they must carry TGT themselves). */
#ifndef DESCENT_KERNELS_BLOCKQUANT_AVX512_H
#define DESCENT_KERNELS_BLOCKQUANT_AVX512_H

#include "blockquant.h"

#ifdef DSC_HAVE_AVX512_KERNELS

#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define TARGET_ISA "avx512f,avx512bw,avx512vl,avx512dq"
#define TGT __attribute__((target(TARGET_ISA)))
#define TGT_INLINE static inline __attribute__((always_inline, target(TARGET_ISA)))
/* The byte permutes of AVX512-VBMI (vpermb, vpermt2b), for the decoder of
 * dequant_planes(); chosen at run time like the rest (dsc_bq_vbmi()). */
#define TARGET_ISA_VBMI TARGET_ISA ",avx512vbmi"
#define TGT_VBMI __attribute__((target(TARGET_ISA_VBMI)))
#define TGT_VBMI_INLINE static inline __attribute__((always_inline, target(TARGET_ISA_VBMI)))

/* The thresholds of each map by search level, in the order the search
 * indexes them (see search()): level L (0..7) has the 2^L thresholds that
 * split the codes into runs of 2^(8-L); position i of the level (from the
 * left) splits at up[(2i + 1) * 2^(7-L) - 1] and is stored at the bit
 * reversal of i in L bits, at offset DSC_BQ_TREE_OFFSETS[L] of the
 * DSC_BQ_TREE_SIZE floats (64-byte aligned) dsc_bq_tree returns. Built once,
 * with the CPU detection (blockquant_avx512.c). */
#define DSC_BQ_TREE_SIZE 304
#define DSC_BQ_TREE_OFFSETS 0, 16, 32, 48, 64, 80, 112, 176
const float *dsc_bq_tree(int is_signed);

/* The tables of code_lin, 5 x 32 entries (64-byte aligned): XB, PL (int32),
 * A, B, CAP. Built with the detection; dsc_bq_lin_ok() is 0 if the maps
 * did not fit its pattern (then encode() searches every vector). */
#define DSC_BQ_LIN_SIZE 160
const float *dsc_bq_lin(int is_signed);
int dsc_bq_lin_ok(void);

/* The map as four byte planes for dequant_planes(): byte p of the bits of
 * map[c] at [256 p + c] (1024 bytes, 64-byte aligned), then at [1024] the
 * 64-byte order that makes the planes' interleave come out in element
 * order (see dequant_planes). Built with the detection. */
const uint8_t *dsc_bq_planes(int is_signed);
/* 1 when dsc_bq_avx512() and the CPU also has AVX512-VBMI. */
int dsc_bq_vbmi(void);

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
    /* The piecewise-linear encoder (code_lin), 32 entries each: split
     * point and lower piece by binade; slope, offset and cap by piece. */
    __m512 xb[2];
    __m512i pl[2];
    __m512 pa[2], pb[2], pc[2];
    int lin; /* dsc_bq_lin_ok() */
} qtree;

TGT_INLINE void load_map(qmap *m, const float *map)
{
    for (int i = 0; i < 16; i++) m->r[i] = _mm512_loadu_ps(map + 16 * i);
}

TGT_INLINE void load_tree(qtree *t, int is_signed)
{
    static const int tree_off[8] = {DSC_BQ_TREE_OFFSETS};
    const float *e = dsc_bq_tree(is_signed);
    t->root = _mm512_set1_ps(e[0]);
    for (int i = 0; i < 2; i++) t->b1[i] = _mm512_set1_ps(e[tree_off[1] + i]);
    for (int i = 0; i < 4; i++) t->b2[i] = _mm512_set1_ps(e[tree_off[2] + i]);
    t->l3 = _mm512_load_ps(e + tree_off[3]);
    t->l4 = _mm512_load_ps(e + tree_off[4]);
    for (int i = 0; i < 2; i++) t->l5[i] = _mm512_load_ps(e + tree_off[5] + 16 * i);
    for (int i = 0; i < 4; i++) t->l6[i] = _mm512_load_ps(e + tree_off[6] + 16 * i);
    for (int i = 0; i < 8; i++) t->l7[i] = _mm512_load_ps(e + tree_off[7] + 16 * i);
    const float *l = dsc_bq_lin(is_signed);
    t->lin = dsc_bq_lin_ok();
    for (int i = 0; i < 2; i++) {
        t->xb[i] = _mm512_load_ps(l + 16 * i);
        t->pl[i] = _mm512_load_si512((const void *)(l + 32 + 16 * i));
        t->pa[i] = _mm512_load_ps(l + 64 + 16 * i);
        t->pb[i] = _mm512_load_ps(l + 96 + 16 * i);
        t->pc[i] = _mm512_load_ps(l + 128 + 16 * i);
    }
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

/* The code of x (after the sign fix) without a search, for the lanes it
 * can vouch for. The dynamic maps are made of decades: between the
 * decade boundaries the map values are equally spaced, so there the code
 * is floor(Y) with Y = A|x| + B affine (Y is an integer exactly at the
 * thresholds). So: the binade of |x| (its exponent, tiny values clamped to
 * 2^-31) gives a piece, or two with a split point XB where a decade
 * boundary (or the first or last threshold) falls inside the binade; one
 * comparison picks between them; Y = min(A|x| + B, CAP) (the cap keeps a
 * decade's line from running past its last code into the gap before the
 * next decade's first threshold). B carries + 256, so Y + 256 is in
 * [256, 512) and its float bits hold floor(Y) in bits 15..22 and the
 * fraction in bits 0..14. Negative x: by the signed map's symmetry
 * (q[254 - k] = -q[k]) the code is 254 - floor(Y), with the two constant
 * end pieces (tiny: 126 after the sign fix; beyond up[254]: 0) given their
 * own offsets at piece + 16; the unsigned map gives every negative x code 0
 * there.
 *
 * Exactness: floor(Y) is the count of thresholds <= |x| except within a
 * few units of 2^-15 of an integer Y (the rounding of the map literals,
 * of A and B and of the fused multiply-add), so lanes whose fraction is
 * within `margin` units of an integer (a power of two, 8 or more), and
 * |x| > 1 or NaN, are returned in *unsafe and the caller searches them.
 * With margin 8, checked on all 2^32 floats for both maps
 * (tests/test_quant8.c --exhaustive; the default run samples); a wider
 * margin only flags more lanes. encode() uses 16 when its x carries the
 * error of a multiplication by the reciprocal (see there). */
TGT_INLINE __m512i code_lin(const qtree *t, int is_signed, __m512 x, __mmask16 *unsafe,
                            const int margin)
{
    const __m512i one = _mm512_set1_epi32(0x3F800000);
    __m512i bits = _mm512_castps_si512(x), ax = bits, axc;
    __mmask16 neg = 0, out = 0;
    if (is_signed) {
        /* |x| clamped to [2^-31, 1]: beyond 1 (NaN and infinities included)
         * every threshold is passed, which the top piece gives (255, or 0
         * for a negative x: the search and the sign fix agree, NaN too). */
        ax = _mm512_and_si512(bits, _mm512_set1_epi32(0x7FFFFFFF));
        axc = _mm512_min_epu32(_mm512_max_epu32(ax, _mm512_set1_epi32(0x30000000)), one);
        neg = _mm512_movepi32_mask(bits);
    } else {
        /* Negative x, NaN and x > 1 (never met by a second moment) searched. */
        out = _mm512_cmpgt_epu32_mask(bits, one);
        axc = _mm512_max_epu32(bits, _mm512_set1_epi32(0x30000000));
    }
    __m512i r = _mm512_srli_epi32(axc, 23); /* 96..127: the tables read r mod 32 */
    __m512 xb = _mm512_permutex2var_ps(t->xb[0], r, t->xb[1]);
    __mmask16 up = _mm512_cmp_ps_mask(_mm512_castsi512_ps(axc), xb, _CMP_GE_OQ);
    /* A threshold at a split point is decided by that comparison, not by
     * Y; with the wider margin, |x| within 8 floats of the split point is
     * searched too (distance of the bits, both positive: 4 floats for x's
     * error, and the negative thresholds of the signed map, which meet the
     * positive split points only to within a float or two). */
    __mmask16 near_split = 0;
    if (margin > 8)
        near_split = _mm512_cmple_epu32_mask(
            _mm512_add_epi32(_mm512_sub_epi32(axc, _mm512_castps_si512(xb)),
                             _mm512_set1_epi32(8)),
            _mm512_set1_epi32(16));
    __m512i pi = _mm512_permutex2var_epi32(t->pl[0], r, t->pl[1]);
    pi = _mm512_mask_add_epi32(pi, up, pi, _mm512_set1_epi32(1));
    /* Slopes and caps are the same for both signs (16 entries); only the
     * offsets of the two constant end pieces differ (32). */
    __m512 a = _mm512_permutexvar_ps(pi, t->pa[0]), cap = _mm512_permutexvar_ps(pi, t->pc[0]);
    __m512 b;
    if (is_signed) {
        pi = _mm512_mask_or_epi32(pi, neg, pi, _mm512_set1_epi32(16));
        b = _mm512_permutex2var_ps(t->pb[0], pi, t->pb[1]);
    } else {
        b = _mm512_permutexvar_ps(pi, t->pb[0]);
    }
    __m512 z = _mm512_min_ps(_mm512_fmadd_ps(_mm512_castsi512_ps(axc), a, b), cap);
    __m512i zb = _mm512_castps_si512(z);
    /* frac + margin, taken mod 2^15, below 2 margin: within margin of an integer. */
    *unsafe = out | near_split | _mm512_testn_epi32_mask(_mm512_add_epi32(zb, _mm512_set1_epi32(margin)),
                                            _mm512_set1_epi32(0x7FFF & -(2 * margin)));
    /* floor(Y) in the low byte (bits 15.. of the bits of 256 + Y: 0x8700 +
     * floor(Y)); the byte store keeps the low 8 bits. */
    __m512i c = _mm512_srli_epi32(zb, 15);
    if (is_signed) c = _mm512_mask_sub_epi32(c, neg, _mm512_set1_epi32(254), c);
    return c;
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

/* The search and the sign fix of encode(), for the vectors code_lin does
 * not settle. Out of line: inlined, its thresholds would be kept in
 * registers across the encoder's loop, which has none to spare. The sign
 * fix, worked out case by case (x has the sign of s, absmax being
 * positive): a negative s (-0 included) has x <= -0, below up[127] > 0, so
 * c <= 127, and only c = 127 (QS[127] is +0) moves, down to 126; a positive
 * s has x >= +0 > up[126], so c >= 127 and nothing moves; a NaN has c = 0,
 * kept under a negative sign and moved to 0 - 1 = 255 under a positive
 * one. Integer tests of the bits of s: no exception. */
__attribute__((noinline, target(TARGET_ISA))) static __m512i search_fixed(const qtree *t,
                                                                          int is_signed,
                                                                          __m512 x, __m512 sv)
{
    __m512i c = search(t, x);
    if (is_signed) {
        __m512i bits = _mm512_castps_si512(sv);
        __mmask16 neg = _mm512_test_epi32_mask(bits, _mm512_set1_epi32((int)0x80000000u));
        __mmask16 pnan = _mm512_cmpgt_epi32_mask(bits, _mm512_set1_epi32(0x7F800000));
        c = _mm512_mask_min_epu32(c, neg, c, _mm512_set1_epi32(126));
        c = _mm512_mask_mov_epi32(c, pnan, _mm512_set1_epi32(255));
    }
    return c;
}

/* dsc_bq_encode_fast's codes for s[0..n): x = s / absmax (IEEE division),
 * the search, and for the signed map the reference's sign fix: where the
 * sign of QS[c] (negative for c < 127; QS[127] is +0) differs from the
 * sign bit of s, c moves one up for s > 0 and one down otherwise, wrapping
 * as a uchar.
 *
 * The division is the costliest instruction of the encoder, so code_lin
 * reads x' = s * (1/absmax) instead and divides only the vectors it cannot
 * vouch for, before searching them. x' is not always x: with r = 1/absmax
 * rounded, x' = (s/absmax)(1 + e1)(1 + e2) with |e1|, |e2| <= 2^-24 while
 * x = (s/absmax)(1 + e3), so x' and x are less than 4 floats apart (where
 * r is a normal float: absmax in [2^-125, 2^125], else the division). The
 * codes can then differ only if a threshold lies between them, that is
 * within 4 floats of x'; every float that close to a threshold of either
 * map lands within 16 units of an integer Y in code_lin (tests/
 * test_quant8.c checks each threshold's neighbours, +-6 floats, for both
 * signs), so margin 16 sends those lanes to the division and the search,
 * and every lane code_lin keeps has the code of x itself.
 *
 * pf1, pf2 (or NULL): two float streams to prefetch at the encoder's pace,
 * one 64-byte line of each per 16 values, for a caller that wants memory
 * it will read later fetched while this arithmetic runs (src/optimizers/
 * quant8.h, "Prefetch"); encode() passes none. */
TGT_INLINE void encode_pf(const qtree *t, int is_signed, const float *s, int n, float absmax,
                          uint8_t *codes, const float *pf1, const float *pf2)
{
    /* 0, Inf or NaN absmax: rare, the reference does it (as on the
     * portable path). */
    if (!(absmax > 0.0f && absmax <= FLT_MAX)) {
        dsc_bq_encode_ref(s, n, absmax, is_signed, codes);
        return;
    }
    const __m512 va = _mm512_set1_ps(absmax);
    if (t->lin && absmax >= 0x1p-125f && absmax <= 0x1p125f) {
        const __m512 vr = _mm512_set1_ps(1.0f / absmax);
        for (int i = 0; i < n; i += 16) {
            if (pf1) {
                _mm_prefetch((const char *)(pf1 + i), _MM_HINT_T0);
                _mm_prefetch((const char *)(pf2 + i), _MM_HINT_T0);
            }
            __mmask16 live = live_mask(n - i), unsafe;
            __m512 sv = _mm512_maskz_loadu_ps(live, s + i);
            __m512i fast = code_lin(t, is_signed, _mm512_mul_ps(sv, vr), &unsafe, 16);
            unsafe &= live;
            if (unsafe) { /* about 1 vector in 70 on random data */
                __m512i c = search_fixed(t, is_signed, _mm512_div_ps(sv, va), sv);
                fast = _mm512_mask_mov_epi32(fast, unsafe, c);
            }
            _mm512_mask_cvtepi32_storeu_epi8(codes + i, live, fast);
        }
        return;
    }
    for (int i = 0; i < n; i += 16) {
        __mmask16 live = live_mask(n - i);
        __m512 sv = _mm512_maskz_loadu_ps(live, s + i);
        __m512 x = _mm512_div_ps(sv, va);
        __mmask16 unsafe = live;
        __m512i fast = _mm512_setzero_si512();
        if (t->lin) {
            fast = code_lin(t, is_signed, x, &unsafe, 8);
            unsafe &= live;
        }
        if (!unsafe) {
            _mm512_mask_cvtepi32_storeu_epi8(codes + i, live, fast);
            continue;
        }
        /* Rare (about 1 vector in 100 on random data): search them. */
        __m512i c = search_fixed(t, is_signed, x, sv);
        c = _mm512_mask_mov_epi32(fast, unsafe, c);
        _mm512_mask_cvtepi32_storeu_epi8(codes + i, live, c);
    }
}

TGT_INLINE void encode(const qtree *t, int is_signed, const float *s, int n, float absmax,
                       uint8_t *codes)
{
    encode_pf(t, is_signed, s, n, absmax, codes, NULL, NULL);
}

/* map[c] for the codes of one block (n <= DSC_QBLOCK; out[0..n) written,
 * and the rest of the 64-element group holding n), with byte permutes,
 * 64 codes at a time. Each of the four bytes of a float is looked up in
 * its own 256-byte plane: vpermt2b reads 128 bytes of two registers by the
 * code's low 7 bits, twice (codes below and above 128), and bit 7 (vpmovb2m)
 * picks one; then two rounds of unpacks interleave the four planes into
 * floats. The unpacks work within 128-bit lanes, so they leave element
 * 16k + 4L + m of the result at lane L, dword m of vector k in position
 * 16L + 4k + m: the codes are put in that order first (one vpermb with the
 * fixed transpose `order`), and the four vectors come out in element order.
 * Bytes are copied, never computed: the values are the map's. Per 64 codes
 * 22 instructions, where lookup() takes 18 per 16. */
TGT_VBMI_INLINE void dequant_planes(const uint8_t *pl, const uint8_t *codes, int n, float *out)
{
    const __m512i order = _mm512_load_si512((const void *)(pl + 1024));
    for (int i = 0; i < n; i += 64) {
        int left = n - i;
        __mmask64 live = left >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << left) - 1);
        __m512i c = _mm512_permutexvar_epi8(order, _mm512_maskz_loadu_epi8(live, codes + i));
        __mmask64 top = _mm512_movepi8_mask(c);
        __m512i b[4];
        for (int p = 0; p < 4; p++) {
            const uint8_t *t = pl + 256 * p;
            __m512i lo = _mm512_permutex2var_epi8(_mm512_load_si512((const void *)t), c,
                                                  _mm512_load_si512((const void *)(t + 64)));
            __m512i hi = _mm512_permutex2var_epi8(_mm512_load_si512((const void *)(t + 128)), c,
                                                  _mm512_load_si512((const void *)(t + 192)));
            b[p] = _mm512_mask_blend_epi8(top, lo, hi);
        }
        __m512i w01l = _mm512_unpacklo_epi8(b[0], b[1]), w01h = _mm512_unpackhi_epi8(b[0], b[1]);
        __m512i w23l = _mm512_unpacklo_epi8(b[2], b[3]), w23h = _mm512_unpackhi_epi8(b[2], b[3]);
        _mm512_store_si512((void *)(out + i), _mm512_unpacklo_epi16(w01l, w23l));
        _mm512_store_si512((void *)(out + i + 16), _mm512_unpackhi_epi16(w01l, w23l));
        _mm512_store_si512((void *)(out + i + 32), _mm512_unpacklo_epi16(w01h, w23h));
        _mm512_store_si512((void *)(out + i + 48), _mm512_unpackhi_epi16(w01h, w23h));
    }
}

/* The same with lookup(), for CPUs without VBMI. */
TGT_INLINE void dequant_perm(const qmap *m, const uint8_t *codes, int n, float *out)
{
    for (int i = 0; i < n; i += 16)
        _mm512_store_ps(out + i, lookup(m, load_codes(codes + i, live_mask(n - i))));
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

static inline float absmax_of(int32_t best)
{
    if (best < 0) return -FLT_MAX; /* only NaN: the reference's start value */
    float r;
    memcpy(&r, &best, sizeof r);
    return r;
}

static inline float amax_of(float m, float x) { return x > m ? x : m; }

#endif /* DSC_HAVE_AVX512_KERNELS */
#endif /* DESCENT_KERNELS_BLOCKQUANT_AVX512_H */
