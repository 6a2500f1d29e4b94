/* test_quant8.c - 8-bit block-wise states (blockquant.c, quant8.c) beyond
 * their golden files:
 *
 *   1. the maps: QS[127] = +0, QS[255] = 1, QS[0] = -0.99296874, QS[128]
 *      = -QS[126] = 5.5e-7, QU[0] = 0, QU[1] = 3.25e-7, QU[255] = 1, both
 *      strictly increasing;
 *   2. the search against a brute-force nearest value on 400,000 random
 *      values, and the table quantizer against the search on every
 *      threshold +-3 floats, every table bucket's two ends, special values
 *      and every 251st float bit pattern (`test_quant8 --exhaustive`: all
 *      2^32, run by hand), leaving out the signaling NaNs that share +Inf's
 *      bucket;
 *   3. the sign fix and the absmax-0 block;
 *   4. round trip of quantize_blockwise/dequantize on random normal data:
 *      |a - deq(q(a))| <= absmax * gap/2, where gap is the largest step of
 *      the map: 0.0140625 (signed: the top decade 0.1..1 has 64 intervals of
 *      0.9/64) and 0.00703125 (unsigned: 128 intervals); so at most
 *      0.0070312 and 0.0035157 of the block's absmax (plus 2^-22 absmax for
 *      the float rounding of x = a/absmax and of Q*absmax);
 *   5. every family, 8-bit and 32-bit states: fast equal to reference,
 *      parameters and every slot BITWISE, sizes 1, 7, 255, 256, 257, 4097,
 *      5 * 10^4, with ordinary, zero, tiny, huge (g*g overflows) and signed-zero
 *      gradients (5 * 10^4 is above DSC_PAR_MIN: the threaded loop); NaN/Inf gradient elements (through the family directly:
 *      the driver never passes them) zero their states and keep p;
 *   6. the same bits for 1, 2 and 4 threads;
 *   7. no allocation inside dsc_optimizer_step (counting allocator);
 *   8. checkpoint round trip of 8-bit states (codes, absmax, step) bit for bit;
 *   9. bytes of state on GPT-2 small's 148 tensors (124,439,808 parameters):
 *      adam8bit < 2.1 bytes/param, adam 8 bytes/param;
 *  10. the AVX-512 kernels (blockquant_avx512.c), where the CPU has them:
 *      the encoder against dsc_bq_encode_ref on every 1031st float bit
 *      pattern, both signs of every threshold +-3 floats and every special
 *      class (zeros, denormals, FLT_MIN/MAX, infinities, quiet and signaling
 *      NaNs of both signs), under absmax 1 (x = s exactly) and odd absmax
 *      values (0, Inf, NaN, denormal); `--exhaustive` adds all 2^32 patterns;
 *      the dequantizer on every code; and 5 and 6 run twice, AVX-512 and
 *      portable, each at 1 and 2 threads: both equal to the reference, so
 *      to each other; where the CPU has AVX512-VBMI, the AVX-512 steps run
 *      a third time with the dword-permute decoder instead of the byte
 *      planes. Without AVX-512 the test says so and runs portable. */
#include "descent.h"
#include "core/internal.h"
#include "kernels/blockquant.h"

#include "check.h"

#include <float.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const float *const QS = dsc_qmap_signed;
static const float *const QU = dsc_qmap_unsigned;

/* ------------------------------------------------------------------ data */

static uint64_t rng = 0x243F6A8885A308D3ull;

static uint64_t next_u64(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static float uniform(void) /* [-1, 1) */
{
    return (float)((double)(next_u64() >> 40) / (double)(1ull << 23) - 1.0);
}

static float normal(void) /* Irwin-Hall approximation: enough for test data */
{
    float s = 0;
    for (int i = 0; i < 12; i++) s += 0.5f * uniform();
    return s;
}

static float from_bits(uint32_t b)
{
    float x;
    memcpy(&x, &b, sizeof x);
    return x;
}

static uint32_t to_bits(float x)
{
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}

/* ------------------------------------------------------------- 1. maps */

static void test_maps(void)
{
    CHECK(QS[127] == 0.0f && !signbit(QS[127]));
    CHECK(QS[255] == 1.0f);
    CHECK(QS[0] == -0.99296874f);
    CHECK(QS[128] == 5.50000038e-07f && QS[126] == -QS[128]);
    CHECK(QU[0] == 0.0f && QU[255] == 1.0f);
    CHECK(QU[1] == 3.2500003e-07f);
    int mono_s = 1, mono_u = 1;
    for (int k = 0; k < 255; k++) {
        if (!(QS[k] < QS[k + 1])) mono_s = 0;
        if (!(QU[k] < QU[k + 1])) mono_u = 0;
    }
    CHECK(mono_s);
    CHECK(mono_u);
    /* The signed map is symmetric but for +1 (no -1) and the +0 entry. */
    int sym = 1;
    for (int k = 0; k < 127; k++)
        if (QS[k] != -QS[254 - k]) sym = 0;
    CHECK(sym);
}

/* ---------------------------------------------------- 2. search, table */

/* Nearest entry by brute force in double; -1 when the two best distances
 * are too close to call (the float midpoint may round either way). */
static int brute_nearest(const float *q, float x)
{
    int best = 0;
    double d0 = INFINITY, d1 = INFINITY;
    for (int k = 0; k < 256; k++) {
        double d = fabs((double)x - (double)q[k]);
        if (d < d0) {
            d1 = d0;
            d0 = d;
            best = k;
        } else if (d < d1) {
            d1 = d;
        }
    }
    return d1 - d0 <= 1e-12 * (fabs((double)x) + 1e-30) + 1e-45 ? -1 : best;
}

static void test_brute_force(void)
{
    for (int sgn = 0; sgn < 2; sgn++) {
        const float *q = dsc_qmap(sgn);
        const dsc_qtable *t = dsc_qtable_get(sgn);
        long bad_search = 0, bad_table = 0, skipped = 0, n = 200000;
        for (long i = 0; i < n; i++) {
            float x;
            if (i % 2) {
                x = uniform();
            } else { /* magnitudes spread over 1e-9 .. 1 */
                double e = -9.0 * (0.5 + 0.5 * (double)uniform());
                x = (float)pow(10.0, e) * (uniform() < 0 ? -1.0f : 1.0f);
            }
            if (!sgn) x = fabsf(x);
            int want = brute_nearest(q, x);
            if (want < 0) {
                skipped++;
                continue;
            }
            if (dsc_qsearch(sgn, x) != want) bad_search++;
            if (dsc_qtable_code(t, x) != want) bad_table++;
        }
        CHECK_EQ_INT(bad_search, 0);
        CHECK_EQ_INT(bad_table, 0);
        CHECK(skipped < 10);
    }
}

/* The one bucket where the table and the search disagree: +Inf shares it
 * with the signaling NaNs 0x7F800001..0x7F80FFFF, which no arithmetic
 * produces (x is a quotient: a NaN there is quiet). */
static int signaling_nan_bucket(uint32_t bits) { return bits > 0x7F800000u && bits <= 0x7F80FFFFu; }

static long table_mismatches(int sgn, uint32_t from, uint64_t to, uint32_t stride)
{
    const dsc_qtable *t = dsc_qtable_get(sgn);
    long bad = 0;
    for (uint64_t b = from; b < to; b += stride) {
        if (signaling_nan_bucket((uint32_t)b)) continue;
        float x = from_bits((uint32_t)b);
        if (dsc_qsearch(sgn, x) != dsc_qtable_code(t, x)) bad++;
    }
    return bad;
}

static void test_table(int exhaustive)
{
    for (int sgn = 0; sgn < 2; sgn++) {
        const dsc_qtable *t = dsc_qtable_get(sgn);
        CHECK_EQ_INT(t->max_per_bucket, 1);
        CHECK(t->is_signed == sgn);
        long bad = 0;
        /* Around every threshold. */
        for (int k = 0; k < 255; k++) {
            float x = t->up[k];
            for (int d = 0; d < 3; d++) x = nextafterf(x, -INFINITY);
            for (int d = 0; d < 7; d++, x = nextafterf(x, INFINITY)) {
                if (dsc_qsearch(sgn, x) != dsc_qtable_code(t, x)) bad++;
                int want = x >= t->up[k] ? k + 1 : k;
                if (dsc_qsearch(sgn, x) != want) bad++;
            }
        }
        /* Both ends of every bucket. */
        for (uint32_t b = 0; b < 65536; b++) {
            float lo = from_bits(b << 16), hi = from_bits(b << 16 | 0xFFFFu);
            if (dsc_qsearch(sgn, lo) != dsc_qtable_code(t, lo)) bad++;
            if (!signaling_nan_bucket(b << 16 | 0xFFFFu) &&
                dsc_qsearch(sgn, hi) != dsc_qtable_code(t, hi))
                bad++;
        }
        const float special[] = {0.0f, -0.0f, 1.0f, -1.0f, INFINITY, -INFINITY, NAN,
                                 FLT_MIN, -FLT_MIN, FLT_TRUE_MIN, -FLT_TRUE_MIN, 1.5f};
        for (size_t i = 0; i < sizeof special / sizeof special[0]; i++)
            if (dsc_qsearch(sgn, special[i]) != dsc_qtable_code(t, special[i])) bad++;
        CHECK_EQ_INT(bad, 0);
        /* A sweep over the bit patterns. */
        CHECK_EQ_INT(table_mismatches(sgn, 0, 1ull << 32, exhaustive ? 1 : 251), 0);
    }
    /* Known codes. */
    CHECK_EQ_INT(dsc_qsearch(1, 0.0f), 127);
    CHECK_EQ_INT(dsc_qsearch(1, -0.0f), 127);
    CHECK_EQ_INT(dsc_qsearch(1, 1.0f), 255);
    CHECK_EQ_INT(dsc_qsearch(1, -1.0f), 0);
    CHECK_EQ_INT(dsc_qsearch(0, 0.0f), 0);
    CHECK_EQ_INT(dsc_qsearch(0, 1.0f), 255);
    CHECK_EQ_INT(dsc_qsearch(1, NAN), 0);
    CHECK_EQ_INT(dsc_qsearch(0, NAN), 0);
}

/* ------------------------------------------------------------ 3. sign fix */

static void encode_both(const float *s, int n, float absmax, int sgn, uint8_t *ref,
                        uint8_t *fast)
{
    dsc_bq_encode_ref(s, n, absmax, sgn, ref);
    dsc_bq_encode_fast(dsc_qtable_get(sgn), s, n, absmax, fast);
}

static void test_sign_fix(void)
{
    uint8_t r[4], f[4];
    /* Tiny negatives and -0 round to the +0 entry, then move to 126. */
    const float s1[4] = {-1e-9f, -0.0f, 1e-9f, 0.0f};
    encode_both(s1, 4, 1.0f, 1, r, f);
    CHECK_EQ_INT(r[0], 126);
    CHECK_EQ_INT(r[1], 126);
    CHECK_EQ_INT(r[2], 127);
    CHECK_EQ_INT(r[3], 127);
    CHECK(memcmp(r, f, 4) == 0);
    /* So a momentum of -1e-9 under absmax 2 is stored as -5.5e-7 * 2. */
    CHECK(QS[r[0]] * 2.0f == -1.10000008e-06f);
    /* Ordinary values are not touched; unsigned states have no fix. */
    const float s2[4] = {-0.5f, 0.5f, -1.0f, 1.0f};
    encode_both(s2, 4, 1.0f, 1, r, f);
    CHECK_EQ_INT(r[0], dsc_qsearch(1, -0.5f));
    CHECK(QS[r[0]] < 0 && QS[r[1]] > 0);
    CHECK_EQ_INT(r[2], 0);
    CHECK_EQ_INT(r[3], 255);
    CHECK(memcmp(r, f, 4) == 0);
    const float s3[2] = {1e-9f, 1.0f};
    encode_both(s3, 2, 1.0f, 0, r, f);
    CHECK_EQ_INT(r[0], 0);
    CHECK_EQ_INT(r[1], 255);
    CHECK(memcmp(r, f, 2) == 0);
    /* absmax 0: x = 0/0 = NaN, code 0; the sign fix moves +0 to 255. The
     * dequantized values are the zeros themselves, signs kept. */
    const float s4[2] = {0.0f, -0.0f};
    encode_both(s4, 2, 0.0f, 1, r, f);
    CHECK_EQ_INT(r[0], 255);
    CHECK_EQ_INT(r[1], 0);
    CHECK(memcmp(r, f, 2) == 0);
    CHECK(QS[r[0]] * 0.0f == 0.0f && !signbit(QS[r[0]] * 0.0f));
    CHECK(signbit(QS[r[1]] * 0.0f));
    encode_both(s4, 1, 0.0f, 0, r, f);
    CHECK_EQ_INT(r[0], 0);

    /* Random blocks with zeros, -0, tiny values and a NaN: fast == ref. */
    float s[DSC_QBLOCK];
    uint8_t cr[DSC_QBLOCK], cf[DSC_QBLOCK];
    long bad = 0;
    for (int rep = 0; rep < 2000; rep++) {
        int n = 1 + (int)(next_u64() % DSC_QBLOCK);
        float amax = 0;
        for (int i = 0; i < n; i++) {
            uint64_t k = next_u64() % 8;
            s[i] = k == 0 ? 0.0f : k == 1 ? -0.0f : k == 2 ? uniform() * 1e-8f : uniform();
            if (fabsf(s[i]) > amax) amax = fabsf(s[i]);
        }
        if (rep % 100 == 7) s[0] = NAN;
        if (rep % 100 == 8) s[n - 1] = -NAN; /* both signs: the fix reads the sign bit */
        for (int sgn = 0; sgn < 2; sgn++) {
            if (!sgn)
                for (int i = 0; i < n; i++) s[i] = fabsf(s[i]);
            encode_both(s, n, amax, sgn, cr, cf);
            if (memcmp(cr, cf, (size_t)n)) bad++;
        }
    }
    CHECK_EQ_INT(bad, 0);
}

/* ----------------------------------------------------------- 4. round trip */

static void test_round_trip(void)
{
    size_t n = 100000;
    float *a = malloc(n * sizeof *a), *d = malloc(n * sizeof *d);
    uint8_t *c = malloc(n);
    float absmax[(100000 + 63) / 64];
    const size_t blocks[] = {64, 256, 4096};
    for (int sgn = 0; sgn < 2; sgn++) {
        const float *q = dsc_qmap(sgn);
        double gap = 0;
        for (int k = 0; k < 255; k++)
            if ((double)q[k + 1] - q[k] > gap) gap = (double)q[k + 1] - q[k];
        CHECK_NEAR(gap, sgn ? 0.0140625 : 0.00703125, 1e-7);
        for (size_t bi = 0; bi < 3; bi++) {
            size_t block = blocks[bi];
            for (size_t i = 0; i < n; i++) a[i] = sgn ? normal() : fabsf(normal());
            for (size_t i = 0; i < 300; i++) a[i] = 0.0f; /* a whole zero block */
            CHECK_STATUS(dsc_quantize_blockwise(a, n, block, sgn, c, absmax), DSC_OK, NULL);
            CHECK_STATUS(dsc_dequantize_blockwise(c, absmax, n, block, sgn, d), DSC_OK, NULL);
            double worst = 0; /* in units of the block's absmax */
            long over = 0;
            for (size_t i = 0; i < n; i++) {
                double am = absmax[i / block];
                double err = fabs((double)a[i] - (double)d[i]);
                if (am > 0 && err / am > worst) worst = err / am;
                if (err > am * (gap / 2 + 0x1p-22)) over++;
            }
            CHECK_EQ_INT(over, 0);
            CHECK(worst <= gap / 2 + 0x1p-22);
            if (block <= 256) CHECK(d[0] == 0.0f && absmax[0] == 0.0f);
            if (sgn && block == 256)
                printf("round trip, signed map, block 256: max error %.6f x absmax "
                       "(bound %.6f)\n", worst, gap / 2);
        }
    }
    CHECK_STATUS(dsc_quantize_blockwise(a, n, 100, 1, c, absmax), DSC_INVALID_ARGUMENT, NULL);
    CHECK_STATUS(dsc_quantize_blockwise(a, n, 8192, 1, c, absmax), DSC_INVALID_ARGUMENT, NULL);
    free(a);
    free(d);
    free(c);
}

/* ------------------------------------------------------ 5. fast vs ref */

typedef enum { G_ORDINARY, G_ZERO, G_TINY, G_HUGE, G_SIGNED_ZERO, G_KINDS } grad_kind;

static void fill_grad(float *g, size_t n, grad_kind kind)
{
    for (size_t i = 0; i < n; i++) {
        float u = uniform();
        switch (kind) {
        case G_ORDINARY: g[i] = (i % 11 == 3) ? 0.0f : u; break;
        case G_ZERO: g[i] = 0.0f; break;
        case G_TINY: g[i] = u * 1e-30f; break;
        case G_HUGE: g[i] = u * 1e30f; break; /* g*g overflows: v and absmax2 = Inf */
        case G_SIGNED_ZERO: g[i] = (i % 3 == 0) ? -0.0f : (i % 3 == 1) ? 0.0f : u * 1e-6f; break;
        default: break;
        }
    }
}

static const char *const specs[] = {
    "adam8bit:lr=1e-2,min_8bit_size=0",
    "adam8bit:lr=1e-2,weight_decay=0.1,min_8bit_size=4096",
    "adamw8bit:lr=1e-2,min_8bit_size=0",
    "sgd8bit:lr=0.05,momentum=0.9,weight_decay=0.01,min_8bit_size=0",
    "sgd8bit:lr=0.05,momentum=0.9,min_8bit_size=100000000",
    "lion8bit:lr=1e-3,weight_decay=0.1,min_8bit_size=0",
    "lion8bit:lr=1e-3,min_8bit_size=1000000000",
    "adagrad8bit:lr=0.05,min_8bit_size=0",
    "adagrad8bit:lr=0.05,weight_decay=0.1,eps=1e-8,min_8bit_size=0",
    "adagrad8bit:lr=0.05,weight_decay=0.1,min_8bit_size=1000000000",
};
#define NSPECS ((int)(sizeof specs / sizeof specs[0]))

typedef struct {
    dsc_optimizer *opt;
    float *w, *g;
    size_t n;
} rig;

static int rig_make(rig *r, const char *spec, size_t n, int reference)
{
    r->n = n;
    r->w = malloc(n * sizeof(float));
    r->g = malloc(n * sizeof(float));
    uint64_t save = rng;
    rng = 0x1234567ull + n;
    for (size_t i = 0; i < n; i++) r->w[i] = uniform();
    rng = save;
    r->opt = dsc_optimizer_new();
    dsc_optimizer_use_reference(r->opt, reference);
    int64_t shape[1] = {(int64_t)n};
    if (dsc_optimizer_add_group(r->opt, "g", spec) != DSC_OK ||
        dsc_optimizer_add_param(r->opt, "w", r->w, r->g, 1, shape, DSC_ROLE_VECTOR, "g") !=
            DSC_OK) {
        fprintf(stderr, "rig %s: %s\n", spec, dsc_optimizer_error(r->opt));
        return 0;
    }
    return 1;
}

static void rig_free(rig *r)
{
    dsc_optimizer_free(r->opt);
    free(r->w);
    free(r->g);
}

/* Parameters and every slot equal, bit for bit. */
static int rig_same(const rig *a, const rig *b)
{
    if (memcmp(a->w, b->w, a->n * sizeof(float))) return 0;
    const dsc_param *pa = a->opt->params[0], *pb = b->opt->params[0];
    if (pa->nslots != pb->nslots) return 0;
    for (int s = 0; s < pa->nslots; s++)
        if (memcmp(pa->slots[s].data, pb->slots[s].data,
                   pa->slots[s].count * dsc_dtype_size(pa->slots[s].dtype)))
            return 0;
    return 1;
}

static void test_fast_vs_ref(void)
{
    const size_t sizes[] = {1, 7, 255, 256, 257, 4097, 50000};
    for (int f = 0; f < NSPECS; f++)
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++)
            for (int kind = 0; kind < G_KINDS; kind++) {
                rig a, b;
                if (!rig_make(&a, specs[f], sizes[si], 1) || !rig_make(&b, specs[f], sizes[si], 0)) {
                    CHECK(0);
                    continue;
                }
                int same = 1;
                for (int t = 0; t < 3; t++) {
                    /* step 1 ordinary, then the kind: states exist when it arrives */
                    fill_grad(a.g, a.n, t == 0 ? G_ORDINARY : (grad_kind)kind);
                    memcpy(b.g, a.g, a.n * sizeof(float));
                    dsc_optimizer_step(a.opt);
                    dsc_optimizer_step(b.opt);
                    if (!rig_same(&a, &b)) same = 0;
                }
                if (!same)
                    fprintf(stderr, "fast != ref: %s n=%zu kind=%d\n", specs[f], sizes[si], kind);
                CHECK(same);
                rig_free(&a);
                rig_free(&b);
            }
}

/* NaN and Inf gradient elements, fed to the family directly. */
static void test_nonfinite(void)
{
    for (int f = 0; f < NSPECS; f++) {
        rig r[2];
        size_t n = 600;
        if (!rig_make(&r[0], specs[f], n, 0) || !rig_make(&r[1], specs[f], n, 1)) {
            CHECK(0);
            return;
        }
        fill_grad(r[0].g, n, G_ORDINARY);
        memcpy(r[1].g, r[0].g, n * sizeof(float));
        dsc_optimizer_step(r[0].opt);
        dsc_optimizer_step(r[1].opt);
        float w_before[600];
        memcpy(w_before, r[0].w, sizeof w_before);
        fill_grad(r[0].g, n, G_ORDINARY);
        r[0].g[5] = NAN;
        r[0].g[300] = INFINITY;
        r[0].g[599] = -INFINITY;
        memcpy(r[1].g, r[0].g, n * sizeof(float));
        for (int ref = 0; ref < 2; ref++) {
            rig *x = &r[ref];
            dsc_optimizer *o = x->opt;
            dsc_param *p = o->params[0];
            p->grad = x->g;
            dsc_optimizer_resolve_hypers(o);
            dsc_step_ctx ctx = {.reference = ref, .step = 1};
            CHECK_STATUS(o->groups[0]->family->step(o->groups[0], &ctx), DSC_OK, NULL);
        }
        CHECK(rig_same(&r[0], &r[1]));
        dsc_param *p = r[0].opt->params[0];
        const size_t bad[3] = {5, 300, 599};
        for (int k = 0; k < 3; k++) {
            size_t i = bad[k];
            CHECK(to_bits(r[0].w[i]) == to_bits(w_before[i]));
            if (p->slots[1].dtype == DSC_DT_U8) {
                const uint8_t *c = p->slots[1].data;
                const float *am = p->slots[p->nslots == 5 ? 3 : 2].data;
                CHECK(QS[c[i]] * am[i / DSC_QBLOCK] == 0.0f);
                if (p->nslots == 5) {
                    const uint8_t *c2 = p->slots[2].data;
                    CHECK(QU[c2[i]] * ((const float *)p->slots[4].data)[i / DSC_QBLOCK] == 0.0f);
                }
            } else {
                CHECK(((const float *)p->slots[1].data)[i] == 0.0f);
            }
        }
        CHECK(to_bits(r[0].w[6]) != to_bits(w_before[6])); /* neighbours do move */
        rig_free(&r[0]);
        rig_free(&r[1]);
    }
}

/* ---------------------------------------------------------- 6. threads */

static void test_threads(void)
{
    const size_t n = 200003; /* above DSC_PAR_MIN, partial last block */
    for (int f = 0; f < NSPECS; f++) {
        rig r[3];
        const int threads[3] = {1, 2, 4};
        for (int k = 0; k < 3; k++) {
            dsc_set_num_threads(threads[k]);
            rig_make(&r[k], specs[f], n, 0);
            uint64_t save = rng;
            for (int t = 0; t < 2; t++) {
                fill_grad(r[k].g, n, G_ORDINARY);
                dsc_optimizer_step(r[k].opt);
            }
            rng = save;
        }
        CHECK(rig_same(&r[0], &r[1]));
        CHECK(rig_same(&r[0], &r[2]));
        for (int k = 0; k < 3; k++) rig_free(&r[k]);
    }
    dsc_set_num_threads(0);
}

/* -------------------------------------------------------- 7. allocation */

static long alloc_calls = 0;

static void *counting_alloc(size_t n)
{
    alloc_calls++;
    return malloc(n);
}

static void test_no_alloc(void)
{
    dsc_set_allocator(counting_alloc, free);
    for (int f = 0; f < NSPECS; f++) {
        rig a;
        if (!rig_make(&a, specs[f], 70000, 0)) {
            CHECK(0);
            continue;
        }
        long before = alloc_calls;
        for (int t = 0; t < 3; t++) {
            fill_grad(a.g, a.n, G_ORDINARY);
            dsc_optimizer_step(a.opt);
        }
        dsc_optimizer_use_reference(a.opt, 1);
        dsc_optimizer_step(a.opt);
        CHECK_EQ_INT(alloc_calls - before, 0);
        rig_free(&a);
    }
    dsc_set_allocator(NULL, NULL);
}

/* -------------------------------------------------------- 8. checkpoint */

static void test_checkpoint(void)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/test_quant8_%d.safetensors", (int)getpid());
    for (int f = 0; f < NSPECS; f++) {
        rig a, b;
        rig_make(&a, specs[f], 5000, 0);
        rig_make(&b, specs[f], 5000, 0);
        for (int t = 0; t < 3; t++) {
            fill_grad(a.g, a.n, G_ORDINARY);
            dsc_optimizer_step(a.opt);
        }
        CHECK_STATUS(dsc_optimizer_save(a.opt, path), DSC_OK, a.opt);
        memcpy(b.w, a.w, a.n * sizeof(float));
        CHECK_STATUS(dsc_optimizer_load(b.opt, path), DSC_OK, b.opt);
        CHECK(rig_same(&a, &b));
        for (int t = 0; t < 2; t++) {
            fill_grad(a.g, a.n, G_ORDINARY);
            memcpy(b.g, a.g, a.n * sizeof(float));
            dsc_optimizer_step(a.opt);
            dsc_optimizer_step(b.opt);
        }
        CHECK(rig_same(&a, &b));
        rig_free(&a);
        rig_free(&b);
    }
    /* 8-bit states do not load into 32-bit ones (same spec, other size cut). */
    rig a, b;
    rig_make(&a, "adam8bit:min_8bit_size=0", 5000, 0);
    rig_make(&b, "adam8bit:min_8bit_size=10000", 5000, 0);
    fill_grad(a.g, a.n, G_ORDINARY);
    dsc_optimizer_step(a.opt);
    CHECK_STATUS(dsc_optimizer_save(a.opt, path), DSC_OK, a.opt);
    CHECK(dsc_optimizer_load(b.opt, path) != DSC_OK);
    rig_free(&a);
    rig_free(&b);
    unlink(path);
}

/* ------------------------------------------------------------ 9. memory */

/* GPT-2 small (124M): distinct shapes and how many tensors have each. */
static const struct {
    int ndim;
    int64_t shape[2];
    int count;
} gpt2[] = {
    {2, {50257, 768}, 1},  /* wte (tied head) */
    {2, {1024, 768}, 1},   /* wpe */
    {2, {2304, 768}, 12},  /* attn.c_attn.w */
    {2, {768, 768}, 12},   /* attn.c_proj.w */
    {2, {3072, 768}, 12},  /* mlp.c_fc.w */
    {2, {768, 3072}, 12},  /* mlp.c_proj.w */
    {1, {2304, 0}, 12},    /* attn.c_attn.b */
    {1, {3072, 0}, 12},    /* mlp.c_fc.b */
    {1, {768, 0}, 12 * 6 + 2}, /* ln_1.w/b, ln_2.w/b, attn.c_proj.b, mlp.c_proj.b; ln_f.w/b */
};

static int gpt2_state(const char *spec, size_t *params, size_t *bytes)
{
    *params = *bytes = 0;
    for (size_t i = 0; i < sizeof gpt2 / sizeof gpt2[0]; i++) {
        size_t b = 0, numel = (size_t)gpt2[i].shape[0] * (gpt2[i].ndim == 2 ? (size_t)gpt2[i].shape[1] : 1);
        if (dsc_state_bytes(spec, gpt2[i].ndim, gpt2[i].shape, &b) != DSC_OK) return 0;
        *params += numel * (size_t)gpt2[i].count;
        *bytes += b * (size_t)gpt2[i].count;
    }
    return 1;
}

static void test_memory(void)
{
    size_t n8, b8, n32, b32;
    CHECK(gpt2_state("adam8bit", &n8, &b8));
    CHECK_EQ_INT(n8, 124439808);
    double per8 = (double)b8 / (double)n8;
    CHECK(per8 < 2.1);
    /* codes 2 B + absmax 8 B per 256 + the 32-bit small tensors + counters */
    CHECK(per8 > 2.03125);
    printf("GPT-2 small, %zu parameters: adam8bit %zu bytes of state = %.4f bytes/param\n",
           n8, b8, per8);
    if (dsc_optimizer_kind_find("adam")) {
        CHECK(gpt2_state("adam", &n32, &b32));
        double per32 = (double)b32 / (double)n32;
        CHECK(per32 >= 8.0 && per32 < 8.001);
        printf("GPT-2 small: adam %zu bytes = %.4f bytes/param (%.2fx the 8-bit states)\n",
               b32, per32, per32 / per8);
    }
    /* One 4096x4096 matrix, as `descent list --memory` prints it. */
    int64_t shape[2] = {4096, 4096};
    size_t b = 0;
    CHECK_STATUS(dsc_state_bytes("adam8bit", 2, shape, &b), DSC_OK, NULL);
    CHECK_EQ_INT(b, 2 * 4096 * 4096 + 2 * 4 * 4096 * 4096 / 256 + 8);
    CHECK_STATUS(dsc_state_bytes("lion8bit", 2, shape, &b), DSC_OK, NULL);
    CHECK_EQ_INT(b, 4096 * 4096 + 4 * 4096 * 4096 / 256 + 8);
    CHECK_STATUS(dsc_state_bytes("sgd8bit:lr=0.1,momentum=0.9", 2, shape, &b), DSC_OK, NULL);
    CHECK_EQ_INT(b, 4096 * 4096 + 4 * 4096 * 4096 / 256 + 8);
    CHECK_STATUS(dsc_state_bytes("adagrad8bit", 2, shape, &b), DSC_OK, NULL);
    CHECK_EQ_INT(b, 4096 * 4096 + 4 * 4096 * 4096 / 256 + 8);
    /* Below min_8bit_size: float32 states. */
    int64_t small[1] = {4095};
    CHECK_STATUS(dsc_state_bytes("adam8bit", 1, small, &b), DSC_OK, NULL);
    CHECK_EQ_INT(b, 2 * 4 * 4095 + 8);
}

/* ------------------------------------------------------------ keys */

static void test_keys(void)
{
    dsc_optimizer *o = dsc_optimizer_new();
    CHECK_STATUS(dsc_optimizer_add_group(o, "a", "sgd8bit:lr=0.1"), DSC_INVALID_ARGUMENT, NULL);
    CHECK_STATUS(dsc_optimizer_add_group(o, "b", "sgd8bit:lr=0.1,momentum=0"), DSC_OUT_OF_RANGE,
                 NULL);
    CHECK_STATUS(dsc_optimizer_add_group(o, "c", "adam8bit:amsgrad=1"), DSC_UNKNOWN_KEY, NULL);
    CHECK_STATUS(dsc_optimizer_add_group(o, "d", "adam8bit:min_8bit_size=1.5"), DSC_OUT_OF_RANGE,
                 NULL);
    /* bitsandbytes refuses lr_decay and initial_accumulator_value != 0: no such keys. */
    CHECK_STATUS(dsc_optimizer_add_group(o, "f", "adagrad8bit:lr_decay=0.1"), DSC_UNKNOWN_KEY, NULL);
    CHECK_STATUS(dsc_optimizer_add_group(o, "g", "adagrad8bit:initial_accumulator_value=0.1"),
                 DSC_UNKNOWN_KEY, NULL);
    CHECK_STATUS(dsc_optimizer_add_group(o, "h", "adagrad8bit:eps=-1"), DSC_OUT_OF_RANGE, NULL);
    CHECK_STATUS(dsc_optimizer_add_group(o, "i", "adagrad8bit:weight_decay=-0.1"),
                 DSC_OUT_OF_RANGE, NULL);
    CHECK_STATUS(dsc_optimizer_add_group(o, "e", "adamw8bit"), DSC_OK, o);
    double wd = 0;
    CHECK_STATUS(dsc_optimizer_get_hyper(o, "e", "weight_decay", &wd), DSC_OK, o);
    CHECK(wd == 0.01);
    dsc_optimizer_free(o);
}

/* ------------------------------------------------------- 10. AVX-512 */

#ifdef DSC_HAVE_AVX512_KERNELS
/* Codes of s[0..n) (n <= DSC_QBLOCK) from both encoders; mismatches. */
static long encode_mismatches(int sgn, const float *s, int n, float absmax)
{
    uint8_t r[DSC_QBLOCK], v[DSC_QBLOCK];
    dsc_bq_encode_ref(s, n, absmax, sgn, r);
    dsc_bq_encode_avx512(sgn, s, n, absmax, v);
    long bad = 0;
    for (int i = 0; i < n; i++)
        if (r[i] != v[i]) {
            if (bad < 5)
                fprintf(stderr, "avx512 encode: map %d s=%08x absmax=%08x ref %d avx %d\n", sgn,
                        (unsigned)to_bits(s[i]), (unsigned)to_bits(absmax), r[i], v[i]);
            bad++;
        }
    return bad;
}

/* Bit patterns from..to by stride, in blocks, under absmax 1. */
static long sweep_mismatches(int sgn, uint64_t from, uint64_t to, uint64_t stride)
{
    float s[DSC_QBLOCK];
    long bad = 0;
    int k = 0;
    for (uint64_t b = from; b < to; b += stride) {
        s[k++] = from_bits((uint32_t)b);
        if (k == DSC_QBLOCK) {
            bad += encode_mismatches(sgn, s, k, 1.0f);
            k = 0;
        }
    }
    if (k) bad += encode_mismatches(sgn, s, k, 1.0f);
    return bad;
}

static void test_avx512_kernels(int exhaustive)
{
    static const uint32_t special[] = {
        0x00000000u, 0x80000000u, 0x00000001u, 0x80000001u, 0x007FFFFFu, 0x807FFFFFu,
        0x00800000u, 0x80800000u, 0x7F7FFFFFu, 0xFF7FFFFFu, 0x7F800000u, 0xFF800000u,
        0x7FC00000u, 0xFFC00000u, 0x7FFFFFFFu, 0xFFFFFFFFu, 0x7F800001u, 0xFF800001u,
        0x7FBFFFFFu, 0xFFBFFFFFu, 0x7F80FFFFu, 0x3F800000u, 0xBF800000u, 0x3F7FFFFFu,
        0xBF7FFFFFu, 0x34000000u, 0xB4000000u, 0x3F800001u, 0xBF800001u};
    const int nspecial = (int)(sizeof special / sizeof special[0]);
    for (int sgn = 0; sgn < 2; sgn++) {
        const dsc_qtable *t = dsc_qtable_get(sgn);
        long bad = 0;
        float s[DSC_QBLOCK];
        /* Specials, with every length 1..nspecial (the masked tail). */
        for (int i = 0; i < nspecial; i++) s[i] = from_bits(special[i]);
        for (int n = 1; n <= nspecial; n++) bad += encode_mismatches(sgn, s, n, 1.0f);
        /* Thresholds of both maps, both signs, +-3 floats. */
        for (int map = 0; map < 2; map++) {
            const float *up = dsc_qtable_get(map)->up;
            int k = 0;
            for (int j = 0; j < 255; j++)
                for (int sign = 0; sign < 2; sign++) {
                    float x = sign ? -up[j] : up[j];
                    for (int d = 0; d < 3; d++) x = nextafterf(x, -INFINITY);
                    for (int d = 0; d < 7; d++, x = nextafterf(x, INFINITY)) {
                        s[k++] = x;
                        if (k == DSC_QBLOCK) {
                            bad += encode_mismatches(sgn, s, k, 1.0f);
                            k = 0;
                        }
                    }
                }
            if (k) bad += encode_mismatches(sgn, s, k, 1.0f);
        }
        (void)t;
        /* Odd absmax values: 0, -0, Inf, NaN, denormal, ordinary; random
         * blocks with zeros, tiny values and NaNs. */
        const float absmaxes[] = {0.0f, -0.0f, INFINITY, NAN, FLT_TRUE_MIN, 3e-39f, 0.37f,
                                  1e-30f, 1e30f, FLT_MAX};
        for (size_t a = 0; a < sizeof absmaxes / sizeof absmaxes[0]; a++)
            for (int rep = 0; rep < 20; rep++) {
                int n = 1 + (int)(next_u64() % DSC_QBLOCK);
                for (int i = 0; i < n; i++) {
                    uint64_t kind = next_u64() % 6;
                    s[i] = kind == 0 ? 0.0f : kind == 1 ? -0.0f : kind == 2 ? uniform() * 1e-8f
                         : kind == 3 ? from_bits((uint32_t)next_u64()) : uniform() * absmaxes[a];
                }
                bad += encode_mismatches(sgn, s, n, absmaxes[a]);
            }
        /* The encoder multiplies by 1/absmax and relies on code_lin to flag
         * every x' that close to a threshold of its map (within 4 floats; 6
         * checked here, both signs); the wider margin is what does it. */
        const float *up = dsc_qtable_get(sgn)->up;
        long vouched = 0;
        if (dsc_bq_lin_vouches_avx512(sgn, 0.5f, 16) >= 0)
            for (int j = 0; j < 255; j++)
                for (int sign = 0; sign < 2; sign++) {
                    float x = sign ? -up[j] : up[j];
                    for (int d = 0; d < 6; d++) x = nextafterf(x, -INFINITY);
                    for (int d = 0; d < 13; d++, x = nextafterf(x, INFINITY))
                        vouched += dsc_bq_lin_vouches_avx512(sgn, x, 16) != 0;
                }
        CHECK_EQ_INT(vouched, 0);
        /* Blocks whose quotients s/absmax fall around each threshold, under
         * absmax values whose reciprocal is inexact, and at and beyond the
         * ends of the reciprocal's range [2^-125, 2^125]. */
        const float odd_absmax[] = {0.37f, 3.0f, 1.0f / 3.0f, 7.1e-3f, 1e-20f, 6.02e22f,
                                    0x1p-125f, 0x1.000002p-125f, 0x1p125f, 0x1.fffffep124f,
                                    0x1.fffffep-126f, 0x1.000002p125f};
        for (size_t a = 0; a < sizeof odd_absmax / sizeof odd_absmax[0]; a++) {
            int k = 0;
            for (int j = 0; j < 255; j++)
                for (int sign = 0; sign < 2; sign++) {
                    float x = (sign ? -up[j] : up[j]) * odd_absmax[a];
                    for (int d = 0; d < 6; d++) x = nextafterf(x, -INFINITY);
                    for (int d = 0; d < 13; d++, x = nextafterf(x, INFINITY)) {
                        s[k++] = x;
                        if (k == DSC_QBLOCK) {
                            bad += encode_mismatches(sgn, s, k, odd_absmax[a]);
                            k = 0;
                        }
                    }
                }
            if (k) bad += encode_mismatches(sgn, s, k, odd_absmax[a]);
        }
        /* The bit-pattern sweep. */
        bad += sweep_mismatches(sgn, 0, 1ull << 32, exhaustive ? 1 : 1031);
        CHECK_EQ_INT(bad, 0);
        /* Dequantize: every code under a few absmax values. */
        uint8_t codes[DSC_QBLOCK];
        float out[DSC_QBLOCK];
        for (int c = 0; c < DSC_QBLOCK; c++) codes[c] = (uint8_t)c;
        const float scales[] = {1.0f, 0.0f, -0.0f, 3.5e-3f, INFINITY, NAN, FLT_TRUE_MIN};
        long dbad = 0;
        for (size_t a = 0; a < sizeof scales / sizeof scales[0]; a++)
            for (int n = 200; n <= DSC_QBLOCK; n += 56) {
                dsc_bq_decode_avx512(sgn, codes, n, scales[a], out);
                for (int c = 0; c < n; c++)
                    if (to_bits(out[c]) != to_bits(dsc_qmap(sgn)[c] * scales[a])) dbad++;
            }
        CHECK_EQ_INT(dbad, 0);
    }
}
#endif

/* 5 and 6 for each kernel set: AVX-512 (where the CPU has it) and the
 * portable one, each at 1 and 2 threads; both against the reference. */
static void test_kernel_sets(int exhaustive)
{
    int have = dsc_bq_avx512_allow(1);
#ifdef DSC_HAVE_AVX512_KERNELS
    if (have) test_avx512_kernels(exhaustive);
    /* The AVX-512 steps again with the dword-permute decoder, where the
     * byte-permute (VBMI) one is the CPU's choice. */
    if (have && dsc_bq_vbmi_allow(1)) {
        CHECK(dsc_bq_vbmi_allow(0) == 0);
        printf("kernels avx512 without VBMI: fast vs reference at 1 and 2 threads\n");
        test_avx512_kernels(0);
        for (int threads = 1; threads <= 2; threads++) {
            dsc_set_num_threads(threads);
            test_fast_vs_ref();
            test_nonfinite();
        }
        dsc_set_num_threads(0);
        test_threads();
        CHECK(dsc_bq_vbmi_allow(1) == 1);
    }
#else
    (void)exhaustive;
#endif
    if (!have)
        printf("AVX-512 kernels not in use (CPU without AVX-512F/BW/VL/DQ, another compiler "
               "or DESCENT_KERNELS=portable): testing portable vs reference only\n");
    for (int set = have ? 1 : 0; set >= 0; set--) {
        CHECK(dsc_bq_avx512_allow(set) == set);
        printf("kernels %s: fast vs reference at 1 and 2 threads\n", set ? "avx512" : "portable");
        for (int threads = 1; threads <= 2; threads++) {
            dsc_set_num_threads(threads);
            test_fast_vs_ref();
            test_nonfinite();
        }
        dsc_set_num_threads(0);
        test_threads();
    }
    dsc_bq_avx512_allow(1);
}

int main(int argc, char **argv)
{
    int exhaustive = argc > 1 && !strcmp(argv[1], "--exhaustive");
    test_maps();
    test_brute_force();
    test_table(exhaustive);
    test_sign_fix();
    test_round_trip();
    test_kernel_sets(exhaustive);
    test_no_alloc();
    test_checkpoint();
    test_memory();
    test_keys();
    return check_report("test_quant8");
}
