/* bracket.c - the pass of the one-pass rank select (bracket.h).
 *
 * The plain loop tests sixteen values at a time with vector compares (`omp
 * simd` reductions) and gathers the few groups that hold a value of the
 * bracket one value at a time, without a branch. Its cost is the
 * horizontal sums of each group of sixteen and the gather; the AVX-512
 * loop keeps the counts in vector lanes and gathers with a compress into a
 * register stored whole (a compress straight to memory is microcoded and
 * slow on AMD's Zen 4), a handful of instructions for sixteen values. x is
 * g + wd*p as the plain loop computes it: a multiply, then an add, never
 * fused. */
#include "bracket.h"

#include "blockquant.h" /* DSC_HAVE_AVX512_KERNELS, dsc_bq_avx512() */
#include "parallel.h"

#include <string.h>

#define NONFINITE_BITS 0x7f800000u
#define GROUP 16

static inline uint32_t abs_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u & 0x7fffffffu;
}

DSC_BODY size_t plain_body(const float *restrict g, const float *restrict p, float wd,
                           size_t n, uint32_t lo, uint32_t width, uint32_t hi,
                           uint32_t *restrict out, size_t counts[2], const int l2)
{
    size_t above = 0, bad = 0, m = 0, i = 0;
    for (; i + GROUP <= n; i += GROUP) {
        uint32_t a = 0, b = 0, any = 0;
#ifdef _OPENMP
#pragma omp simd reduction(+ : a, b) reduction(| : any)
#endif
        for (int k = 0; k < GROUP; k++) {
            uint32_t u = abs_bits(l2 ? g[i + (size_t)k] + wd * p[i + (size_t)k] : g[i + (size_t)k]);
            a += u >= hi;
            b += u >= NONFINITE_BITS;
            any |= (uint32_t)(u - lo < width);
        }
        above += a;
        bad += b;
        if (!any) continue;
        for (int k = 0; k < GROUP; k++) { /* without a branch: often a coin toss */
            uint32_t u = abs_bits(l2 ? g[i + (size_t)k] + wd * p[i + (size_t)k] : g[i + (size_t)k]);
            out[m] = u;
            m += u - lo < width;
        }
    }
    for (; i < n; i++) {
        uint32_t u = abs_bits(l2 ? g[i] + wd * p[i] : g[i]);
        above += u >= hi;
        bad += u >= NONFINITE_BITS;
        out[m] = u;
        m += u - lo < width;
    }
    counts[0] += above;
    counts[1] += bad;
    return m;
}

DSC_WIDE static size_t plain_span(const float *g, const float *p, float wd, size_t n,
                                  uint32_t lo, uint32_t width, uint32_t hi, uint32_t *out,
                                  size_t counts[2])
{
    if (p && wd != 0.0f) return plain_body(g, p, wd, n, lo, width, hi, out, counts, 1);
    return plain_body(g, p, wd, n, lo, width, hi, out, counts, 0);
}

size_t dsc_bracket_span_plain(const float *g, const float *p, float wd, size_t n, uint32_t lo,
                              uint32_t width, uint32_t hi, uint32_t *out, size_t counts[2])
{
    return plain_span(g, p, wd, n, lo, width, hi, out, counts);
}

#ifdef DSC_HAVE_AVX512_KERNELS
#include <immintrin.h>

#define TGT_BRACKET __attribute__((target("avx512f,popcnt")))

TGT_BRACKET static inline void avx512_lanes(__m512i u, __mmask16 live, __m512i vlo, __m512i vwidth,
                                            __m512i vhi, __m512i vbad, __m512i *acc_above,
                                            __m512i *acc_bad, uint32_t *out, size_t *m)
{
    const __m512i one = _mm512_set1_epi32(1);
    __mmask16 ka = _mm512_mask_cmpge_epu32_mask(live, u, vhi);
    __mmask16 kb = _mm512_mask_cmpge_epu32_mask(live, u, vbad);
    __mmask16 kc = _mm512_mask_cmplt_epu32_mask(live, _mm512_sub_epi32(u, vlo), vwidth);
    *acc_above = _mm512_mask_add_epi32(*acc_above, ka, *acc_above, one);
    *acc_bad = _mm512_mask_add_epi32(*acc_bad, kb, *acc_bad, one);
    _mm512_storeu_si512((void *)(out + *m), _mm512_maskz_compress_epi32(kc, u));
    *m += (size_t)__builtin_popcount((unsigned)kc);
}

TGT_BRACKET static size_t avx512_span(const float *g, const float *p, float wd, size_t n,
                                      uint32_t lo, uint32_t width, uint32_t hi, uint32_t *out,
                                      size_t counts[2])
{
    const __m512i magnitude = _mm512_set1_epi32(0x7fffffff), vlo = _mm512_set1_epi32((int)lo),
                  vwidth = _mm512_set1_epi32((int)width), vhi = _mm512_set1_epi32((int)hi),
                  vbad = _mm512_set1_epi32((int)NONFINITE_BITS);
    const __m512 vwd = _mm512_set1_ps(wd);
    const int l2 = p && wd != 0.0f;
    __m512i acc_above = _mm512_setzero_si512(), acc_bad = _mm512_setzero_si512();
    size_t m = 0, i = 0;
    for (; i + GROUP <= n; i += GROUP) {
        __m512 x = _mm512_loadu_ps(g + i);
        if (l2) x = _mm512_add_ps(x, _mm512_mul_ps(vwd, _mm512_loadu_ps(p + i)));
        __m512i u = _mm512_and_si512(_mm512_castps_si512(x), magnitude);
        avx512_lanes(u, 0xffff, vlo, vwidth, vhi, vbad, &acc_above, &acc_bad, out, &m);
    }
    if (i < n) {
        const __mmask16 live = (__mmask16)((1u << (n - i)) - 1u);
        __m512 x = _mm512_maskz_loadu_ps(live, g + i);
        if (l2) x = _mm512_add_ps(x, _mm512_mul_ps(vwd, _mm512_maskz_loadu_ps(live, p + i)));
        __m512i u = _mm512_and_si512(_mm512_castps_si512(x), magnitude);
        avx512_lanes(u, live, vlo, vwidth, vhi, vbad, &acc_above, &acc_bad, out, &m);
    }
    counts[0] += (size_t)(uint32_t)_mm512_reduce_add_epi32(acc_above);
    counts[1] += (size_t)(uint32_t)_mm512_reduce_add_epi32(acc_bad);
    return m;
}
#endif

size_t dsc_bracket_span(const float *g, const float *p, float wd, size_t n, uint32_t lo,
                        uint32_t width, uint32_t hi, uint32_t *out, size_t counts[2])
{
#ifdef DSC_HAVE_AVX512_KERNELS
    if (dsc_bq_avx512()) return avx512_span(g, p, wd, n, lo, width, hi, out, counts);
#endif
    return plain_span(g, p, wd, n, lo, width, hi, out, counts);
}
