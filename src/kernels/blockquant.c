/* blockquant.c - the dynamic maps, the block-wise absmax quantizer of the
 * 8-bit optimizer states and the stand-alone quantize_blockwise
 * (docs/optimizers.md, 8-bit states; bitsandbytes csrc/kernels.cu
 * quantize_2D, dQuantize, kQuantizeBlockwise).
 *
 * The maps are the float32 tables below, written as the
 * 9-significant-digit literals: each parses to exactly one float32, and
 * recomputing them (create_dynamic_map) would differ in the last ulp for
 * dozens of entries depending on how linspace is evaluated. */
#include "blockquant.h"

#include <float.h>
#include <math.h>
#include <pthread.h>

/* The signed map QS: index 127 is +0, 255 is 1, 0 is -0.99296874. */
const float dsc_qmap_signed[256] = {
    /*   0 */ -0.992968738f, -0.978906214f, -0.96484375f, -0.950781226f,
    /*   4 */ -0.936718702f, -0.922656238f, -0.908593774f, -0.89453125f,
    /*   8 */ -0.880468726f, -0.866406202f, -0.852343738f, -0.838281214f,
    /*  12 */ -0.82421875f, -0.810156226f, -0.796093702f, -0.782031238f,
    /*  16 */ -0.767968774f, -0.75390625f, -0.739843786f, -0.725781262f,
    /*  20 */ -0.711718798f, -0.697656274f, -0.68359375f, -0.669531286f,
    /*  24 */ -0.655468762f, -0.641406238f, -0.627343774f, -0.61328125f,
    /*  28 */ -0.599218726f, -0.585156262f, -0.571093798f, -0.557031274f,
    /*  32 */ -0.54296875f, -0.528906226f, -0.514843762f, -0.500781238f,
    /*  36 */ -0.486718774f, -0.47265625f, -0.458593726f, -0.444531262f,
    /*  40 */ -0.430468738f, -0.416406214f, -0.40234375f, -0.388281226f,
    /*  44 */ -0.374218762f, -0.360156238f, -0.346093714f, -0.33203125f,
    /*  48 */ -0.317968726f, -0.303906262f, -0.289843738f, -0.275781274f,
    /*  52 */ -0.26171875f, -0.247656256f, -0.233593762f, -0.219531253f,
    /*  56 */ -0.205468744f, -0.19140625f, -0.177343741f, -0.163281247f,
    /*  60 */ -0.149218753f, -0.135156244f, -0.12109375f, -0.107031256f,
    /*  64 */ -0.0985937491f, -0.0957812443f, -0.0929687545f, -0.0901562497f,
    /*  68 */ -0.0873437524f, -0.0845312476f, -0.0817187428f, -0.078906253f,
    /*  72 */ -0.0760937482f, -0.0732812509f, -0.0704687461f, -0.0676562563f,
    /*  76 */ -0.0648437515f, -0.0620312467f, -0.0592187531f, -0.0564062484f,
    /*  80 */ -0.053593751f, -0.05078125f, -0.047968749f, -0.0451562516f,
    /*  84 */ -0.0423437469f, -0.0395312496f, -0.0367187522f, -0.0339062475f,
    /*  88 */ -0.0310937501f, -0.0282812472f, -0.0254687499f, -0.0226562507f,
    /*  92 */ -0.0198437497f, -0.0170312505f, -0.0142187504f, -0.0114062503f,
    /*  96 */ -0.00971874967f, -0.00915624946f, -0.00859375019f, -0.00803124998f,
    /* 100 */ -0.00746874977f, -0.00690625003f, -0.00634374982f, -0.00578125007f,
    /* 104 */ -0.00521875033f, -0.00465624966f, -0.00409374991f, -0.00353124971f,
    /* 108 */ -0.00296874996f, -0.00240624999f, -0.00184375001f, -0.00128124992f,
    /* 112 */ -0.000943750085f, -0.000831249985f, -0.00071875006f, -0.000606250076f,
    /* 116 */ -0.000493750034f, -0.000381250022f, -0.000268750038f, -0.000156250011f,
    /* 120 */ -8.87499991e-05f, -6.62500024e-05f, -4.37499984e-05f, -2.12499981e-05f,
    /* 124 */ -7.7499999e-06f, -3.25000019e-06f, -5.50000038e-07f, 0.0f,
    /* 128 */ 5.50000038e-07f, 3.25000019e-06f, 7.7499999e-06f, 2.12499981e-05f,
    /* 132 */ 4.37499984e-05f, 6.62500024e-05f, 8.87499991e-05f, 0.000156250011f,
    /* 136 */ 0.000268750038f, 0.000381250022f, 0.000493750034f, 0.000606250076f,
    /* 140 */ 0.00071875006f, 0.000831249985f, 0.000943750085f, 0.00128124992f,
    /* 144 */ 0.00184375001f, 0.00240624999f, 0.00296874996f, 0.00353124971f,
    /* 148 */ 0.00409374991f, 0.00465624966f, 0.00521875033f, 0.00578125007f,
    /* 152 */ 0.00634374982f, 0.00690625003f, 0.00746874977f, 0.00803124998f,
    /* 156 */ 0.00859375019f, 0.00915624946f, 0.00971874967f, 0.0114062503f,
    /* 160 */ 0.0142187504f, 0.0170312505f, 0.0198437497f, 0.0226562507f,
    /* 164 */ 0.0254687499f, 0.0282812472f, 0.0310937501f, 0.0339062475f,
    /* 168 */ 0.0367187522f, 0.0395312496f, 0.0423437469f, 0.0451562516f,
    /* 172 */ 0.047968749f, 0.05078125f, 0.053593751f, 0.0564062484f,
    /* 176 */ 0.0592187531f, 0.0620312467f, 0.0648437515f, 0.0676562563f,
    /* 180 */ 0.0704687461f, 0.0732812509f, 0.0760937482f, 0.078906253f,
    /* 184 */ 0.0817187428f, 0.0845312476f, 0.0873437524f, 0.0901562497f,
    /* 188 */ 0.0929687545f, 0.0957812443f, 0.0985937491f, 0.107031256f,
    /* 192 */ 0.12109375f, 0.135156244f, 0.149218753f, 0.163281247f,
    /* 196 */ 0.177343741f, 0.19140625f, 0.205468744f, 0.219531253f,
    /* 200 */ 0.233593762f, 0.247656256f, 0.26171875f, 0.275781274f,
    /* 204 */ 0.289843738f, 0.303906262f, 0.317968726f, 0.33203125f,
    /* 208 */ 0.346093714f, 0.360156238f, 0.374218762f, 0.388281226f,
    /* 212 */ 0.40234375f, 0.416406214f, 0.430468738f, 0.444531262f,
    /* 216 */ 0.458593726f, 0.47265625f, 0.486718774f, 0.500781238f,
    /* 220 */ 0.514843762f, 0.528906226f, 0.54296875f, 0.557031274f,
    /* 224 */ 0.571093798f, 0.585156262f, 0.599218726f, 0.61328125f,
    /* 228 */ 0.627343774f, 0.641406238f, 0.655468762f, 0.669531286f,
    /* 232 */ 0.68359375f, 0.697656274f, 0.711718798f, 0.725781262f,
    /* 236 */ 0.739843786f, 0.75390625f, 0.767968774f, 0.782031238f,
    /* 240 */ 0.796093702f, 0.810156226f, 0.82421875f, 0.838281214f,
    /* 244 */ 0.852343738f, 0.866406202f, 0.880468726f, 0.89453125f,
    /* 248 */ 0.908593774f, 0.922656238f, 0.936718702f, 0.950781226f,
    /* 252 */ 0.96484375f, 0.978906214f, 0.992968738f, 1.0f,
};

/* The unsigned map QU: index 0 is 0, 255 is 1. */
const float dsc_qmap_unsigned[256] = {
    /*   0 */ 0.0f, 3.2500003e-07f, 7.7499999e-07f, 2.12499981e-06f,
    /*   4 */ 4.37499966e-06f, 6.62499997e-06f, 8.87499937e-06f, 1.56249989e-05f,
    /*   8 */ 2.68750009e-05f, 3.81249993e-05f, 4.93749976e-05f, 6.06250032e-05f,
    /*  12 */ 7.18750016e-05f, 8.31249927e-05f, 9.43749983e-05f, 0.000128125001f,
    /*  16 */ 0.000184375007f, 0.000240624999f, 0.00029687502f, 0.000353124982f,
    /*  20 */ 0.000409375003f, 0.000465625024f, 0.000521875045f, 0.000578125007f,
    /*  24 */ 0.000634375028f, 0.000690625049f, 0.000746875012f, 0.000803125091f,
    /*  28 */ 0.000859375054f, 0.000915625016f, 0.000971875037f, 0.00114062498f,
    /*  32 */ 0.00142187497f, 0.00170312496f, 0.00198437483f, 0.00226562493f,
    /*  36 */ 0.00254687481f, 0.00282812468f, 0.00310937478f, 0.00339062465f,
    /*  40 */ 0.00367187499f, 0.00395312486f, 0.0042343745f, 0.00451562507f,
    /*  44 */ 0.00479687471f, 0.00507812481f, 0.00535937492f, 0.00564062456f,
    /*  48 */ 0.00592187513f, 0.0062031243f, 0.00648437487f, 0.00676562544f,
    /*  52 */ 0.00704687461f, 0.00732812518f, 0.00760937436f, 0.00789062493f,
    /*  56 */ 0.0081718741f, 0.0084531242f, 0.00873437524f, 0.00901562441f,
    /*  60 */ 0.00929687452f, 0.00957812369f, 0.00985937472f, 0.010703126f,
    /*  64 */ 0.0121093756f, 0.0135156242f, 0.0149218757f, 0.0163281243f,
    /*  68 */ 0.0177343749f, 0.0191406254f, 0.020546874f, 0.0219531264f,
    /*  72 */ 0.0233593769f, 0.0247656256f, 0.0261718761f, 0.0275781285f,
    /*  76 */ 0.0289843734f, 0.0303906258f, 0.0317968726f, 0.033203125f,
    /*  80 */ 0.0346093737f, 0.036015626f, 0.0374218784f, 0.0388281234f,
    /*  84 */ 0.0402343757f, 0.0416406207f, 0.0430468731f, 0.0444531254f,
    /*  88 */ 0.0458593741f, 0.0472656265f, 0.0486718789f, 0.0500781238f,
    /*  92 */ 0.0514843762f, 0.0528906249f, 0.0542968772f, 0.0557031296f,
    /*  96 */ 0.057109382f, 0.0585156269f, 0.0599218719f, 0.0613281243f,
    /* 100 */ 0.0627343804f, 0.0641406253f, 0.0655468777f, 0.0669531301f,
    /* 104 */ 0.068359375f, 0.0697656274f, 0.0711718798f, 0.0725781247f,
    /* 108 */ 0.0739843771f, 0.0753906295f, 0.0767968819f, 0.0782031268f,
    /* 112 */ 0.0796093717f, 0.0810156241f, 0.0824218765f, 0.0838281214f,
    /* 116 */ 0.0852343738f, 0.0866406187f, 0.0880468711f, 0.0894531235f,
    /* 120 */ 0.0908593759f, 0.0922656283f, 0.0936718732f, 0.0950781256f,
    /* 124 */ 0.096484378f, 0.0978906229f, 0.0992968753f, 0.103515625f,
    /* 128 */ 0.110546872f, 0.117578126f, 0.124609374f, 0.131640613f,
    /* 132 */ 0.138671875f, 0.145703137f, 0.152734369f, 0.159765631f,
    /* 136 */ 0.166796863f, 0.173828125f, 0.180859387f, 0.187890619f,
    /* 140 */ 0.194921881f, 0.201953113f, 0.208984375f, 0.216015637f,
    /* 144 */ 0.223046869f, 0.230078131f, 0.237109393f, 0.244140625f,
    /* 148 */ 0.251171887f, 0.258203119f, 0.265234381f, 0.272265643f,
    /* 152 */ 0.279296875f, 0.286328137f, 0.293359399f, 0.300390631f,
    /* 156 */ 0.307421893f, 0.314453125f, 0.321484387f, 0.328515619f,
    /* 160 */ 0.335546851f, 0.342578113f, 0.349609375f, 0.356640607f,
    /* 164 */ 0.363671869f, 0.370703101f, 0.377734363f, 0.384765625f,
    /* 168 */ 0.391796887f, 0.398828119f, 0.405859351f, 0.412890613f,
    /* 172 */ 0.419921875f, 0.426953107f, 0.433984369f, 0.441015631f,
    /* 176 */ 0.448046863f, 0.455078125f, 0.462109387f, 0.469140619f,
    /* 180 */ 0.476171881f, 0.483203113f, 0.490234375f, 0.497265607f,
    /* 184 */ 0.504296899f, 0.511328101f, 0.518359303f, 0.525390625f,
    /* 188 */ 0.532421827f, 0.539453149f, 0.546484351f, 0.553515673f,
    /* 192 */ 0.560546875f, 0.567578137f, 0.574609399f, 0.581640601f,
    /* 196 */ 0.588671923f, 0.595703125f, 0.602734387f, 0.609765649f,
    /* 200 */ 0.616796851f, 0.623828113f, 0.630859375f, 0.637890577f,
    /* 204 */ 0.644921899f, 0.651953101f, 0.658984423f, 0.666015625f,
    /* 208 */ 0.673046947f, 0.680078149f, 0.687109351f, 0.694140673f,
    /* 212 */ 0.701171875f, 0.708203197f, 0.715234399f, 0.722265601f,
    /* 216 */ 0.729296923f, 0.736328125f, 0.743359327f, 0.750390649f,
    /* 220 */ 0.757421851f, 0.764453173f, 0.771484375f, 0.778515577f,
    /* 224 */ 0.785546899f, 0.792578101f, 0.799609303f, 0.806640625f,
    /* 228 */ 0.813671827f, 0.820703149f, 0.827734351f, 0.834765673f,
    /* 232 */ 0.841796875f, 0.848828137f, 0.855859399f, 0.862890601f,
    /* 236 */ 0.869921923f, 0.876953125f, 0.883984387f, 0.891015649f,
    /* 240 */ 0.898046851f, 0.905078113f, 0.912109375f, 0.919140577f,
    /* 244 */ 0.926171899f, 0.933203101f, 0.940234423f, 0.947265625f,
    /* 248 */ 0.954296947f, 0.961328149f, 0.968359351f, 0.975390673f,
    /* 252 */ 0.982421875f, 0.989453197f, 0.996484399f, 1.0f,
};

uint8_t dsc_qsearch(int is_signed, float x)
{
    const float *q = dsc_qmap(is_signed);
    /* Bounds before the first comparison: -1 (signed) or 0, and 1. The
     * upper one equals q[255] for both maps; the lower one is read only
     * when every comparison went down (final pivot 0), and then both
     * answers are 0. */
    int pivot = 127, lo_pivot = 0, hi_pivot = 255;
    float lo = is_signed ? -1.0f : 0.0f, hi = 1.0f;
    float val = q[pivot];
    for (int step = 64; step > 0; step >>= 1) {
        if (x > val) {
            lo_pivot = pivot;
            lo = val;
            pivot += step;
        } else {
            hi_pivot = pivot;
            hi = val;
            pivot -= step;
        }
        val = q[pivot];
    }
    /* The final pivot is 127 plus an odd number, so even; its neighbour on
     * the side of x is one index away. Strict tests: a tie keeps the pivot. */
    if (x > val) return (uint8_t)(x > (hi + val) * 0.5f ? hi_pivot : pivot);
    return (uint8_t)(x < (lo + val) * 0.5f ? lo_pivot : pivot);
}

/* ------------------------------------------------------------ the table */

static dsc_qtable tables[2];
static pthread_once_t table_once[2] = {PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT};

/* The lowest float of the bucket of 2^16 bit patterns starting at b << 16:
 * the first pattern for positive floats, the last for negative ones. */
static float bucket_low(uint32_t b)
{
    uint32_t bits = b << 16 | ((b & 0x8000u) ? 0xFFFFu : 0u);
    float x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

static uint32_t bucket_of(float x)
{
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return bits >> 16;
}

static void build_table(dsc_qtable *t, int is_signed)
{
    const float *q = dsc_qmap(is_signed);
    t->is_signed = is_signed;
    /* Threshold between codes k and k+1: the midpoint the search computes,
     * (q[k] + q[k+1]) * 0.5f. At the midpoint itself the search keeps its
     * final pivot, the even one of k and k+1: so x == mid already gives
     * k+1 when k is odd, and k+1 starts one float above mid when k is even. */
    for (int k = 0; k < 255; k++) {
        float mid = (q[k] + q[k + 1]) * 0.5f;
        t->up[k] = (k & 1) ? mid : nextafterf(mid, INFINITY);
    }
    t->up[255] = NAN; /* x >= NaN is false: code 255 stays */
    for (uint32_t b = 0; b < 65536; b++) t->base[b] = dsc_qsearch(is_signed, bucket_low(b));
    /* Crowding: thresholds strictly above their bucket's lowest float. The
     * thresholds ascend, so those of one bucket are consecutive. */
    int most = 0, run = 0;
    uint32_t prev = 0x10000u;
    for (int k = 0; k < 255; k++) {
        uint32_t b = bucket_of(t->up[k]);
        if (t->up[k] == bucket_low(b)) continue;
        run = b == prev ? run + 1 : 1;
        prev = b;
        if (run > most) most = run;
    }
    t->max_per_bucket = most;
    /* The encoder's tables. The sign fix on this path: a negative x (or -0)
     * has a code <= 127 and QS[127] = +0 has no sign bit, so 127 becomes
     * 126 and nothing else moves: negative buckets take min(base, 126),
     * and the step from 126 up to 127 (threshold up[126], only negative x
     * reach code 126) never happens. A positive x has a code >= 127 and
     * keeps it, but a positive NaN has code 0 and becomes 0 - 1 = 255. A
     * negative NaN keeps 0 (x >= up[0] is false for it). */
    memcpy(t->enc_base, t->base, sizeof t->enc_base);
    memcpy(t->enc_up, t->up, sizeof t->enc_up);
    if (is_signed) {
        for (uint32_t b = 0; b < 65536; b++) {
            if (b & 0x8000u) {
                if (t->enc_base[b] > 126) t->enc_base[b] = 126;
            } else if (b > 0x7F80u) { /* NaN (+Inf is in bucket 0x7F80) */
                t->enc_base[b] = 255;
            }
        }
        t->enc_up[126] = NAN;
    }
}

static void build_unsigned(void) { build_table(&tables[0], 0); }
static void build_signed(void) { build_table(&tables[1], 1); }

const dsc_qtable *dsc_qtable_get(int is_signed)
{
    if (is_signed) {
        pthread_once(&table_once[1], build_signed);
        return &tables[1];
    }
    pthread_once(&table_once[0], build_unsigned);
    return &tables[0];
}

/* ----------------------------------------------- optimizer state blocks */

void dsc_bq_encode_ref(const float *s, int n, float absmax, int is_signed, uint8_t *codes)
{
    const float *q = dsc_qmap(is_signed);
    for (int i = 0; i < n; i++) {
        uint8_t c = dsc_qsearch(is_signed, s[i] / absmax);       /* 14.2 step 2 */
        if (is_signed && !!signbit(q[c]) != !!signbit(s[i]))      /* step 3 */
            c = (uint8_t)(s[i] > 0.0f ? c + 1 : c - 1);           /* wraps as uchar */
        codes[i] = c;
    }
}

void dsc_bq_encode_fast(const dsc_qtable *t, const float *restrict s, int n, float absmax,
                        uint8_t *restrict codes)
{
    /* 0, Inf or NaN absmax: x is 0/0 or 0 for the whole block; rare, so the
     * reference does it. */
    if (!(absmax > 0.0f && absmax <= FLT_MAX)) {
        dsc_bq_encode_ref(s, n, absmax, t->is_signed, codes);
        return;
    }
    dsc_bq_encode_table(t, s, n, absmax, codes, NULL);
}

/* ------------------------------------------- stand-alone quantization */

static int valid_block(size_t block)
{
    return block >= 64 && block <= 4096 && (block & (block - 1)) == 0;
}

dsc_status dsc_quantize_blockwise(const float *a, size_t n, size_t block, int is_signed,
                                  uint8_t *codes, float *absmax)
{
    if (!valid_block(block)) return DSC_INVALID_ARGUMENT;
    if (n && (!a || !codes || !absmax)) return DSC_NULL_POINTER;
    for (size_t b0 = 0, j = 0; b0 < n; b0 += block, j++) {
        size_t m = n - b0 < block ? n - b0 : block;
        /* kQuantizeBlockwise: fmaxf from -FLT_MAX (NaN entries are skipped;
         * padding lanes load 0 and change nothing). */
        float amax = -FLT_MAX;
        for (size_t i = 0; i < m; i++) amax = fmaxf(amax, fabsf(a[b0 + i]));
        absmax[j] = amax;
        /* Reciprocal, then multiply. An all-zero block has 1/0 = Inf and
         * x = 0*Inf = NaN, which the search sends to code 0. dQuantize
         * starts from the bounds -1 and 1 and replaces them by q[0], q[255]
         * at the ends; that gives the same codes as dsc_qsearch. */
        float inv = 1.0f / amax;
        for (size_t i = 0; i < m; i++) codes[b0 + i] = dsc_qsearch(is_signed, a[b0 + i] * inv);
    }
    return DSC_OK;
}

dsc_status dsc_dequantize_blockwise(const uint8_t *codes, const float *absmax, size_t n,
                                    size_t block, int is_signed, float *out)
{
    if (!valid_block(block)) return DSC_INVALID_ARGUMENT;
    if (n && (!codes || !absmax || !out)) return DSC_NULL_POINTER;
    const float *q = dsc_qmap(is_signed);
    for (size_t i = 0; i < n; i++) out[i] = q[codes[i]] * absmax[i / block];
    return DSC_OK;
}
