/* blockquant_avx512.c - the AVX-512 side of the 8-bit quantization
 * (blockquant.h, blockquant_avx512.h): CPU detection, the search trees,
 * and the encoder and decoder on their own for the tests. The optimizer
 * steps built from these primitives are src/optimizers/quant8_avx512.c.
 *
 * Why these kernels exist: the portable step spends most of its time on
 * the two map operations, not on the arithmetic. A dequantize is a load
 * from a 256-entry table per element and an encode two dependent table
 * loads (bucket, then threshold); baseline x86-64 has no gather, so each is
 * a scalar load and the step runs at a third to a half of the memory
 * bandwidth. Here neither touches memory:
 *
 *   dequantize  with AVX512-VBMI, four 256-byte planes (byte k of every
 *               map value) looked up 64 codes at a time by vpermt2b and
 *               interleaved back into floats (dequant_planes()); without
 *               it, the 256 floats of a map are 16 zmm registers, vpermt2ps
 *               looks up 32 entries of a register pair by the code's low 5
 *               bits, and three rounds of blends on bits 5, 6, 7 pick the
 *               pair (lookup()). Values are copied, never computed: exact.
 *   encode      code = the number of thresholds up[k] (blockquant.c: the
 *               least float whose code is above k) with x >= up[k]: the
 *               codes ascend with x, so that count is the search's answer
 *               for every non-NaN x, and 0 for NaN (every comparison is
 *               false), as the search gives. Between the decade boundaries
 *               of the map the thresholds are equally spaced, so the count
 *               is floor of an affine function of |x| chosen by the binade
 *               (code_lin(); its tables are built here, build_lin()); the
 *               lanes it cannot vouch for (within 2^-12 of a threshold)
 *               take a branch-free binary search over the 255 thresholds
 *               held level by level in registers: a level is a permute (or
 *               blend) of its thresholds by the decisions so far, a
 *               comparison, and one masked OR that records the decision
 *               both as the next permute index and as a bit of the code
 *               (search()). Then the sign fix of the signed map, which
 *               comes down to two masked moves (search_fixed()). No new
 *               exception: comparisons, and one multiply-add of |x| <= 1
 *               by finite constants (the table's signaling NaN bucket does
 *               not exist here).
 *
 * The arithmetic is the portable body's, operation by operation: separate
 * _mm512_mul_ps / _mm512_add_ps / _mm512_div_ps / _mm512_sqrt_ps, never a
 * fused multiply-add (the one in code_lin computes a code, not a value, and
 * is checked against the search; the build is ISO C, where GCC does not contract;
 * clang contracts within one expression unless told, hence the pragma for
 * the few scalar lines). Every block is checked: the finite-gradient
 * selects and the NaN-skipping absmax cost one mask operation each here,
 * so there is no unchecked variant.
 *
 * Compiled only for x86-64 with GCC or clang, with target attributes on
 * the functions (the library itself stays baseline x86-64); elsewhere this
 * file is empty and the portable path runs. */
#include "blockquant_avx512.h"

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


/* ------------------------------------------------------------ choice */

static int detected;     /* CPU has the ISA and DESCENT_KERNELS allows it */
static int allowed = 1;  /* tests switch the kernels off with this */
static pthread_once_t detect_once = PTHREAD_ONCE_INIT;

/* The search trees of the two maps (blockquant_avx512.h), built with the
 * detection. */
enum { TREE_SIZE = DSC_BQ_TREE_SIZE };
static const int tree_off[8] = {DSC_BQ_TREE_OFFSETS};
static float tree[2][TREE_SIZE] __attribute__((aligned(64)));
/* The byte planes of the two maps and the unpack order (dequant_planes). */
static uint8_t planes[2][1024 + 64] __attribute__((aligned(64)));
/* The tables of code_lin (blockquant_avx512.h) and whether they are good. */
static float lin[2][DSC_BQ_LIN_SIZE] __attribute__((aligned(64)));
static int lin_ok;
static int detected_vbmi; /* ... and the CPU has AVX512-VBMI */
static int allowed_vbmi = 1; /* tests switch the VBMI decoder off with this */

static unsigned reverse_bits(unsigned v, int nbits)
{
    unsigned r = 0;
    for (int b = 0; b < nbits; b++) r |= ((v >> b) & 1u) << (nbits - 1 - b);
    return r;
}

/* code_lin's tables for one map. Pieces (by index): 0 below the first
 * positive threshold (code 127 or 0), 1..7 the decades 1e-6 .. 1e0
 * (bitsandbytes' create_dynamic_map: decade i holds 2^i values, 2^(i+1)
 * for the unsigned map, at D*(0.1 + 0.9*(j + 0.5)/n), D = 10^(i-6)), 8 from
 * up[254] on (code 255); + 16 for negative x. Returns 0 if a binade holds
 * more than one piece boundary (then the pattern does not apply). */
static int build_lin(int sgn, float *l)
{
    const float *up = dsc_qtable_get(sgn)->up;
    const int cmin = sgn ? 127 : 0;
    double a[32], b[32], cap[32], lb[9];
    /* Constant pieces: slope 0 and no cap (768 - 256 is above any Y). */
    for (int p = 0; p < 32; p++) a[p] = 0.0, b[p] = cmin + 0.5, cap[p] = 768.0;
    b[8] = 255.5;
    lb[0] = -INFINITY;
    lb[1] = up[cmin];
    lb[8] = up[254];
    for (int i = 0; i < 7; i++) {
        int n = sgn ? 1 << i : 2 << i, c = sgn ? 127 + (1 << i) : (2 << i) - 1;
        double d = pow(10.0, i - 6);
        a[1 + i] = n / (0.9 * d);
        b[1 + i] = c - 0.1 * n / 0.9;
        cap[1 + i] = c + n - 0.5;
        if (i > 0) lb[1 + i] = up[c - 1];
    }
    for (int p = 0; p < 16; p++) a[16 + p] = a[p], b[16 + p] = b[p], cap[16 + p] = cap[p];
    b[16] = 128.5; /* the ends after 254 - code: 126 (the sign fix of -0) */
    b[24] = 254.5; /* and 0 */
    int32_t pl[32];
    for (int r = 0; r < 32; r++) {
        double lo = r == 0 ? 0.0 : ldexp(1.0, r - 31), hi = ldexp(1.0, r - 30);
        int below = 0, inside = 0;
        double split = INFINITY;
        for (int p = 1; p < 9; p++) {
            if (lb[p] <= lo) below = p;
            else if (lb[p] < hi) inside++, split = lb[p];
        }
        if (inside > 1) return 0;
        pl[r] = below;
        l[r] = (float)split;
    }
    memcpy(l + 32, pl, sizeof pl);
    for (int p = 0; p < 32; p++) {
        l[64 + p] = (float)a[p];
        l[96 + p] = (float)(b[p] + 256.0);
        l[128 + p] = (float)(cap[p] + 256.0);
    }
    return 1;
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
    for (int sgn = 0; sgn < 2; sgn++) {
        const float *map = dsc_qmap(sgn);
        for (int c = 0; c < 256; c++) {
            uint32_t bits;
            memcpy(&bits, &map[c], sizeof bits);
            for (int p = 0; p < 4; p++) planes[sgn][256 * p + c] = (uint8_t)(bits >> (8 * p));
        }
        /* Position 16L + 4k + m takes element 16k + 4L + m (a transpose of
         * the 4x4 blocks of four bytes; its own inverse). */
        for (int l = 0; l < 4; l++)
            for (int k4 = 0; k4 < 4; k4++)
                for (int m = 0; m < 4; m++)
                    planes[sgn][1024 + 16 * l + 4 * k4 + m] = (uint8_t)(16 * k4 + 4 * l + m);
    }
    lin_ok = build_lin(0, lin[0]) && build_lin(1, lin[1]);
    const char *k = getenv("DESCENT_KERNELS");
    int off = k && (strcmp(k, "portable") == 0 || strcmp(k, "ref") == 0);
    __builtin_cpu_init();
    detected = !off && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    detected_vbmi = detected && __builtin_cpu_supports("avx512vbmi");
}

int dsc_bq_avx512(void)
{
    pthread_once(&detect_once, detect);
    return detected && allowed;
}

const float *dsc_bq_lin(int is_signed)
{
    pthread_once(&detect_once, detect);
    return lin[is_signed != 0];
}

int dsc_bq_lin_ok(void)
{
    pthread_once(&detect_once, detect);
    return lin_ok;
}

int dsc_bq_vbmi(void)
{
    pthread_once(&detect_once, detect);
    return detected && allowed && detected_vbmi && allowed_vbmi;
}

int dsc_bq_vbmi_allow(int allow)
{
    allowed_vbmi = allow != 0;
    return dsc_bq_vbmi();
}

const uint8_t *dsc_bq_planes(int is_signed)
{
    pthread_once(&detect_once, detect);
    return planes[is_signed != 0];
}

const float *dsc_bq_tree(int is_signed)
{
    pthread_once(&detect_once, detect);
    return tree[is_signed != 0];
}

int dsc_bq_avx512_allow(int allow)
{
    allowed = allow != 0;
    return dsc_bq_avx512();
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

TGT int dsc_bq_lin_vouches_avx512(int is_signed, float x, int margin)
{
    pthread_once(&detect_once, detect);
    if (!dsc_bq_lin_ok()) return -1;
    qtree t;
    load_tree(&t, is_signed != 0);
    __m512 v = _mm512_set1_ps(x);
    __mmask16 unsafe;
    if (is_signed) (void)code_lin(&t, 1, v, &unsafe, margin);
    else (void)code_lin(&t, 0, v, &unsafe, margin);
    return unsafe ? 0 : 1;
}

TGT_VBMI static void decode_vbmi(int is_signed, const uint8_t *codes, int n, float *q)
{
    dequant_planes(dsc_bq_planes(is_signed), codes, n, q);
}

TGT void dsc_bq_decode_avx512(int is_signed, const uint8_t *codes, int n, float absmax,
                              float *out)
{
    float q[DSC_QBLOCK] __attribute__((aligned(64)));
    if (dsc_bq_vbmi()) {
        decode_vbmi(is_signed, codes, n, q);
    } else {
        qmap m;
        load_map(&m, dsc_qmap(is_signed));
        dequant_perm(&m, codes, n, q);
    }
    const __m512 va = _mm512_set1_ps(absmax);
    for (int i = 0; i < n; i += 16) {
        __mmask16 live = live_mask(n - i);
        _mm512_mask_storeu_ps(out + i, live, _mm512_mul_ps(_mm512_load_ps(q + i), va));
    }
}

#else
/* ISO C wants at least one declaration in a translation unit. */
typedef int dsc_blockquant_avx512_unused;
#endif /* DSC_HAVE_AVX512_KERNELS */
