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
static int detected_vbmi; /* ... and the CPU has AVX512-VBMI */
static int allowed_vbmi = 1; /* tests switch the VBMI decoder off with this */

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
