/* blockquant.h - 8-bit block-wise quantization with the dynamic maps of
 * bitsandbytes (docs/optimizers.md, "The 8-bit states in detail").
 *
 * A tensor of n floats is cut into blocks; each block keeps one float
 * absmax and one uint8 code per value, value = map[code] * absmax. The
 * optimizer states use blocks of DSC_QBLOCK = 256; the stand-alone
 * quantize_blockwise of 14.7 takes a block size from 64 to 4096.
 *
 * Two ways to find a code, with the same result for every float x:
 *   dsc_qsearch      the kernel's binary search (quantize_2D), the reference;
 *   dsc_qtable_code  one table load and one comparison, the fast path.
 * Left out: stochastic rounding (an option of the stand-alone kernel, never used by optimizer
 * states) and the 4-bit data types. */
#ifndef DESCENT_BLOCKQUANT_H
#define DESCENT_BLOCKQUANT_H

#include "parallel.h"

#include <stdint.h>
#include <string.h>

#define DSC_QBLOCK 256 /* block of the optimizer states (bnb BLOCKSIZE_2STATE) */

/* The maps as float32 (blockquant.c): QS (signed, first moments and momentum buffers)
 * and QU (unsigned, Adam's second moment). Sorted ascending. */
extern const float dsc_qmap_signed[256];
extern const float dsc_qmap_unsigned[256];

static inline const float *dsc_qmap(int is_signed)
{
    return is_signed ? dsc_qmap_signed : dsc_qmap_unsigned;
}

/* quantize_2D: binary search from pivot 127 with steps
 * 64 ... 1, then the midpoint test against the final pivot's neighbour on
 * the side of x. The code of the nearest map value; an exact midpoint tie
 * goes to the final pivot, which is always the even index of the two. */
uint8_t dsc_qsearch(int is_signed, float x);

/* The same function as a table, for every float but the signaling NaNs
 * 0x7F800001..0x7F80FFFF (they share +Inf's bucket and get 255; the search
 * gives NaNs 0; no arithmetic result is one of them). `up[k]` is the least float whose code is
 * above k (up[255] is NaN: nothing is above 255); `base[b]` is the code of
 * the lowest float whose bits >> 16 equal b. Every bucket of 2^16 floats
 * holds at most one threshold (counted when the table is built), so one
 * comparison finishes the search. */
typedef struct {
    float up[256];
    uint8_t base[65536];
    /* The encoder's copy, with the signed map's sign fix
     * folded in: enc_base[b] + (x >= enc_up[c]) is the fixed code of x
     * (the sign of x = s / absmax is the sign of s). For the unsigned map
     * a plain copy of base and up. */
    uint8_t enc_base[65536];
    float enc_up[256];
    int max_per_bucket; /* thresholds in the most crowded bucket (1) */
    int is_signed;
} dsc_qtable;

/* Built once, thread-safe, never freed. */
const dsc_qtable *dsc_qtable_get(int is_signed);

/* The code of x from a pair of tables: (base, up), or the encoder's
 * (enc_base, enc_up). */
static inline uint8_t dsc_qtable_enc(const uint8_t *base, const float *up, float x)
{
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    unsigned c = base[bits >> 16];
    return (uint8_t)(c + (x >= up[c]));
}

static inline uint8_t dsc_qtable_code(const dsc_qtable *t, float x)
{
    return dsc_qtable_enc(t->base, t->up, x);
}

/* Codes of one block of new state values s[0..n) under `absmax` (the
 * block's max |s|, padding lanes included): x = s / absmax (IEEE
 * division, as the float64 reference; the CUDA kernel's __fdividef is an
 * approximation of it), code = nearest map value, then for signed maps the
 * sign fix of step 3. absmax 0 gives x = 0/0 and the codes the kernel gets
 * for NaN (0, or 255 after the sign fix of a +0): they dequantize to +-0.
 * _ref follows the kernel line by line; _fast (with the table of the
 * same map) gives the same codes. */
void dsc_bq_encode_ref(const float *s, int n, float absmax, int is_signed, uint8_t *codes);
void dsc_bq_encode_fast(const dsc_qtable *t, const float *restrict s, int n, float absmax,
                        uint8_t *restrict codes);

#if defined(__GNUC__) || defined(__clang__)
#define DSC_PREFETCH(addr) __builtin_prefetch(addr)
#else
#define DSC_PREFETCH(addr) ((void)(addr))
#endif

/* Memory a step will read after this block, fetched while the encoder's
 * arithmetic runs (src/optimizers/quant8.h, "Prefetch"): two float
 * streams (one 64-byte line per 16 values encoded) and two code streams
 * (one line per 64); any may be NULL. */
typedef struct {
    const float *f1, *f2;
    const uint8_t *c1, *c2;
} dsc_bq_ahead;

/* dsc_bq_encode_fast's body, for the steps' DSC_WIDE range functions: inlined
 * there it runs the clone's vector width (its divisions); a call would run
 * the baseline's. absmax must be positive and finite (the caller checks,
 * as dsc_bq_encode_fast does). `ahead`: what to prefetch on the way, or
 * NULL. */
DSC_BODY void dsc_bq_encode_table(const dsc_qtable *t, const float *restrict s, int n,
                                  float absmax, uint8_t *restrict codes,
                                  const dsc_bq_ahead *ahead)
{
    float x[DSC_QBLOCK];
    const uint8_t *restrict eb = t->enc_base;
    const float *restrict eu = t->enc_up;
    for (int i0 = 0; i0 < n; i0 += DSC_QBLOCK) {
        int m = n - i0 < DSC_QBLOCK ? n - i0 : DSC_QBLOCK;
        const float *si = s + i0;
        uint8_t *ci = codes + i0;
        for (int i = 0; i < m; i++) x[i] = si[i] / absmax; /* vectorized */
        /* Scalar table lookups, four independent per trip (the portable
         * build has no gather instructions). The sign fix comes with the
         * table: a second pass over the codes cost a fifth of the lookups. */
        int i = 0;
        for (; i + 4 <= m; i += 4) {
            if (ahead && (i & 15) == 0) {
                if (ahead->f1) DSC_PREFETCH(ahead->f1 + i0 + i);
                if (ahead->f2) DSC_PREFETCH(ahead->f2 + i0 + i);
                if ((i & 63) == 0 && ahead->c1) DSC_PREFETCH(ahead->c1 + i0 + i);
                if ((i & 63) == 0 && ahead->c2) DSC_PREFETCH(ahead->c2 + i0 + i);
            }
            ci[i] = dsc_qtable_enc(eb, eu, x[i]);
            ci[i + 1] = dsc_qtable_enc(eb, eu, x[i + 1]);
            ci[i + 2] = dsc_qtable_enc(eb, eu, x[i + 2]);
            ci[i + 3] = dsc_qtable_enc(eb, eu, x[i + 3]);
        }
        for (; i < m; i++) ci[i] = dsc_qtable_enc(eb, eu, x[i]);
    }
}

/* Stand-alone block-wise quantization: per block of `block` values
 * (a power of two in 64..4096), absmax = max |a|, x = a * (1/absmax), code
 * = nearest map value, no sign fix. absmax[] has ceil(n/block) entries.
 * Returns DSC_INVALID_ARGUMENT for another block size. */
dsc_status dsc_quantize_blockwise(const float *a, size_t n, size_t block, int is_signed,
                                  uint8_t *codes, float *absmax);
/* out[i] = map[codes[i]] * absmax[i / block]. */
dsc_status dsc_dequantize_blockwise(const uint8_t *codes, const float *absmax, size_t n,
                                    size_t block, int is_signed, float *out);

/* ------------------------------------------------- AVX-512 kernels
 *
 * blockquant_avx512.h/.c: the map lookups and the code search of the 8-bit
 * states on 16 lanes (the optimizer steps built on them are in
 * src/optimizers/quant8_avx512.c), for x86-64 CPUs with AVX-512
 * (F, BW, VL, DQ), compiled with per-function target attributes so the rest
 * of the library stays baseline x86-64 (AVX512-VBMI too where the CPU has
 * it, for the byte-plane lookups). The map lookups are register permutes,
 * not loads, and the code comes from an affine function of |x| per piece
 * of the map, with a branch-free binary search over the thresholds `up`
 * for the few lanes near a threshold; every float operation is the
 * portable body's, in its order, so the bits are the same (tests/
 * test_quant8.c compares the three paths). Chosen at run time, once:
 * DESCENT_KERNELS=portable (or =ref) turns them off. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define DSC_HAVE_AVX512_KERNELS 1
#endif

#ifdef DSC_HAVE_AVX512_KERNELS
/* 1 when the 8-bit steps take the AVX-512 kernels: the CPU has them and
 * DESCENT_KERNELS is neither "portable" nor "ref" (both decided once). */
int dsc_bq_avx512(void);
/* For tests: allow 0 turns the AVX-512 kernels off, 1 back to the detected
 * choice; returns dsc_bq_avx512(). Call it only while no step runs. */
int dsc_bq_avx512_allow(int allow);
/* The same for the VBMI byte-permute decoder inside the AVX-512 kernels:
 * 0 makes them decode with dword permutes; returns whether VBMI is used. */
int dsc_bq_vbmi_allow(int allow);
/* The encoder and the dequantizer alone (tests): dsc_bq_encode_ref's codes
 * for n <= DSC_QBLOCK values; out[i] = map[codes[i]] * absmax. */
void dsc_bq_encode_avx512(int is_signed, const float *s, int n, float absmax, uint8_t *codes);
void dsc_bq_decode_avx512(int is_signed, const uint8_t *codes, int n, float absmax, float *out);
/* For tests: 1 when the encoder's piecewise-linear formula vouches for the
 * code of x (x = s/absmax) under the given margin (8 or 16, in units of
 * 2^-15 of a code (blockquant_avx512.h, code_lin); 0 when the encoder
 * would search it, -1 when the formula is off (dsc_bq_lin_ok() is 0). */
int dsc_bq_lin_vouches_avx512(int is_signed, float x, int margin);
#else
static inline int dsc_bq_avx512(void) { return 0; }
static inline int dsc_bq_avx512_allow(int allow) { (void)allow; return 0; }
static inline int dsc_bq_vbmi_allow(int allow) { (void)allow; return 0; }
#endif

#endif /* DESCENT_BLOCKQUANT_H */
