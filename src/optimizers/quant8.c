/* quant8.c - optimizers with 8-bit block-wise states (bitsandbytes):
 * adam8bit, adamw8bit, sgd8bit, lion8bit, adagrad8bit.
 *
 * docs/optimizers.md (8-bit states); the reference is the CUDA kernel pair
 * kOptimizerStatic8bit2StateBlockwise (Adam) / kOptimizerStatic8bit1State-
 * Blockwise (Momentum, Lion) of bitsandbytes @95f9af3, block size 256.
 * Every state is a uint8 code per element plus one float absmax per block
 * of 256 (blockquant.h); a step, per block:
 *   dequantize (s = Q[code] * absmax), update in float32, absmax = max |s|
 *   over the block (padding lanes of the last block included), update p
 *   with the unquantized new state, requantize (signed states: sign fix).
 *
 *   adam8bit, adamw8bit (one kernel, only the default wd differs):
 *     c1 = 1 - beta1^t, c2 = sqrt(1 - beta2^t), step = -lr*c2/c1
 *     v <- beta2*v + (1-beta2)*g*g;  m <- beta1*m + (1-beta1)*g
 *     p <- p + step*m/(sqrt(v) + c2*eps);  p <- p*(1 - lr*wd) if wd > 0
 *     (decoupled decay AFTER the update, unlike torch AdamW; so adam8bit
 *     with weight decay is decoupled too)
 *   sgd8bit: g <- g + wd*p;  b <- g at t = 1, else momentum*b + g
 *     (no dampening, no Nesterov);  p <- p - lr*b
 *   lion8bit: p <- p*(1 - lr*wd);  c = beta1*m + (1-beta1)*g;
 *     p <- p - lr*sign(c);  m <- beta2*m + (1-beta2)*g
 *   adagrad8bit (bitsandbytes Adagrad8bit, kernel branch ADAGRAD):
 *     s <- s + (g + wd*p)^2 (the decay term only when wd > 0);
 *     p <- p - lr * (g / (sqrt(s) + eps)), with the RAW gradient g: the
 *     8-bit kernel reloads g_vals for the update, so weight decay reaches
 *     the sum of squares but not the numerator (its 32-bit kernel uses
 *     g + wd*p in both; both kept as they are). The state is signed-map
 *     codes like the other one-state optimizers (bitsandbytes quantizes
 *     state1 with the signed dynamic map even here), no lr_decay and no
 *     initial accumulator (bitsandbytes refuses both). The kernel divides
 *     with __fdividef (approximate on the GPU); here the division is IEEE.
 *
 * Kept on purpose from the kernels: the sign fix (tiny negative moments
 * become -5.5e-7*absmax), the padding lanes in the last
 * block's absmax, the order of float operations. A tensor with fewer than
 * min_8bit_size elements keeps float32 states and runs the 32-bit kernels;
 * the choice is made when the parameter joins its group, from the
 * group's value. A NaN or Inf gradient element zeroes that element's states
 * and leaves its parameter unchanged (the driver's default policy skips
 * such steps before this file sees them). Not supported: amsgrad,
 * percentile clipping, max_unorm, 32-bit overrides per parameter.
 *
 * Slots (names as bitsandbytes' state dict): "step" I64; "state1" and
 * (Adam) "state2": U8 codes, or F32 values for 32-bit states; with 8-bit
 * states "absmax1" (and "absmax2"): F32, one per block.
 *
 * Golden files: adam8bit_2block_18x16, adam8bit_fallback32_4x6,
 * adam8bit_signfix_4x6, adamw8bit_wd_4x6, sgd8bit_momentum_300,
 * lion8bit_wd_20x15, adagrad8bit_2block_18x16, adagrad8bit_wd_20x15,
 * adagrad8bit_fallback32_4x6 (tests/golden/gen_adagrad8bit.py). */
#include "../core/internal.h"
#include "quant8.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------ keys */

/* adam8bit and adamw8bit share the layout; sgd8bit and lion8bit have their own. */
enum { A_LR, A_BETA1, A_BETA2, A_EPS, A_WD, A_MIN8, A_NKEYS };
enum { S_LR, S_MOMENTUM, S_WD, S_MIN8, S_NKEYS };
enum { L_LR, L_BETA1, L_BETA2, L_WD, L_MIN8, L_NKEYS };
enum { G_LR, G_EPS, G_WD, G_MIN8, G_NKEYS };

#define MIN8_MAX 9007199254740992.0 /* 2^53: every integer up to it is a double */
#define MIN8_HELP "tensors with fewer elements keep float32 states (decided when added)"

static const dsc_key_info adam_keys[A_NKEYS] = {
    [A_LR] = {"lr", DSC_KEY_FLOAT, 1e-3, 0, 1e6, 0, 0, "learning rate"},
    [A_BETA1] = {"beta1", DSC_KEY_FLOAT, 0.9, 0, 1, 0, 1, "decay of the first moment"},
    [A_BETA2] = {"beta2", DSC_KEY_FLOAT, 0.999, 0, 1, 0, 1, "decay of the second moment"},
    [A_EPS] = {"eps", DSC_KEY_FLOAT, 1e-8, 0, 1, 0, 0, "added to the bias-corrected sqrt(v)"},
    [A_WD] = {"weight_decay", DSC_KEY_FLOAT, 0, 0, 1e6, 0, 0,
              "decoupled decay p*(1-lr*wd) after the update"},
    [A_MIN8] = {"min_8bit_size", DSC_KEY_INT, 4096, 0, MIN8_MAX, 0, 0, MIN8_HELP},
};

static const dsc_key_info adamw_keys[A_NKEYS] = {
    [A_LR] = {"lr", DSC_KEY_FLOAT, 1e-3, 0, 1e6, 0, 0, "learning rate"},
    [A_BETA1] = {"beta1", DSC_KEY_FLOAT, 0.9, 0, 1, 0, 1, "decay of the first moment"},
    [A_BETA2] = {"beta2", DSC_KEY_FLOAT, 0.999, 0, 1, 0, 1, "decay of the second moment"},
    [A_EPS] = {"eps", DSC_KEY_FLOAT, 1e-8, 0, 1, 0, 0, "added to the bias-corrected sqrt(v)"},
    [A_WD] = {"weight_decay", DSC_KEY_FLOAT, 1e-2, 0, 1e6, 0, 0,
              "decoupled decay p*(1-lr*wd) after the update"},
    [A_MIN8] = {"min_8bit_size", DSC_KEY_INT, 4096, 0, MIN8_MAX, 0, 0, MIN8_HELP},
};

static const dsc_key_info sgd_keys[S_NKEYS] = {
    [S_LR] = {"lr", DSC_KEY_FLOAT, NAN, 0, 1e6, 0, 0, "learning rate (required)"},
    [S_MOMENTUM] = {"momentum", DSC_KEY_FLOAT, NAN, 0, 1, 1, 0,
                    "momentum factor (required, > 0: bitsandbytes has no 8-bit plain SGD)"},
    [S_WD] = {"weight_decay", DSC_KEY_FLOAT, 0, 0, 1e6, 0, 0, "L2 penalty added to the gradient"},
    [S_MIN8] = {"min_8bit_size", DSC_KEY_INT, 4096, 0, MIN8_MAX, 0, 0, MIN8_HELP},
};

static const dsc_key_info lion_keys[L_NKEYS] = {
    [L_LR] = {"lr", DSC_KEY_FLOAT, 1e-4, 0, 1e6, 0, 0, "learning rate"},
    [L_BETA1] = {"beta1", DSC_KEY_FLOAT, 0.9, 0, 1, 0, 0, "interpolation for the update sign"},
    [L_BETA2] = {"beta2", DSC_KEY_FLOAT, 0.99, 0, 1, 0, 0, "decay of the momentum"},
    [L_WD] = {"weight_decay", DSC_KEY_FLOAT, 0, 0, 1e6, 0, 0,
              "decoupled decay p*(1-lr*wd) before the update"},
    [L_MIN8] = {"min_8bit_size", DSC_KEY_INT, 4096, 0, MIN8_MAX, 0, 0, MIN8_HELP},
};

static const dsc_key_info adagrad_keys[G_NKEYS] = {
    [G_LR] = {"lr", DSC_KEY_FLOAT, 1e-2, 0, 1e6, 0, 0, "learning rate"},
    [G_EPS] = {"eps", DSC_KEY_FLOAT, 1e-10, 0, 1, 0, 0, "added to sqrt(sum of squares)"},
    [G_WD] = {"weight_decay", DSC_KEY_FLOAT, 0, 0, 1e6, 0, 0,
              "L2 term wd*p in the sum of squares (8-bit: not in the numerator)"},
    [G_MIN8] = {"min_8bit_size", DSC_KEY_INT, 4096, 0, MIN8_MAX, 0, 0, MIN8_HELP},
};

/* ----------------------------------------------------------------- slots */

enum { SLOT_STEP, SLOT_S1, SLOT_S2 };    /* then absmax1 (and absmax2) */

static int is_8bit(const dsc_param *p) { return p->slots[SLOT_S1].dtype == DSC_DT_U8; }

static dsc_status plan_states(const dsc_group *g, const dsc_param *p, dsc_plan *plan,
                              int nstates, int min8_key)
{
    int eight = (double)p->numel >= g->base[min8_key];
    dsc_dtype dt = eight ? DSC_DT_U8 : DSC_DT_F32;
    dsc_plan_slot(plan, "step", DSC_DT_I64, 1);
    dsc_plan_slot_shaped(plan, "state1", dt, p->ndim, p->shape);
    if (nstates == 2) dsc_plan_slot_shaped(plan, "state2", dt, p->ndim, p->shape);
    if (eight) {
        size_t nblocks = (p->numel + DSC_QBLOCK - 1) / DSC_QBLOCK;
        dsc_plan_slot(plan, "absmax1", DSC_DT_F32, nblocks);
        if (nstates == 2) dsc_plan_slot(plan, "absmax2", DSC_DT_F32, nblocks);
    }
    return DSC_OK;
}

static dsc_status plan_adam(const dsc_group *g, const dsc_param *p, dsc_plan *plan,
                            char *err, size_t n)
{
    (void)err; (void)n;
    return plan_states(g, p, plan, 2, A_MIN8);
}

static dsc_status plan_sgd(const dsc_group *g, const dsc_param *p, dsc_plan *plan,
                           char *err, size_t n)
{
    (void)err; (void)n;
    return plan_states(g, p, plan, 1, S_MIN8);
}

static dsc_status plan_lion(const dsc_group *g, const dsc_param *p, dsc_plan *plan,
                            char *err, size_t n)
{
    (void)err; (void)n;
    return plan_states(g, p, plan, 1, L_MIN8);
}

static dsc_status plan_adagrad(const dsc_group *g, const dsc_param *p, dsc_plan *plan,
                               char *err, size_t n)
{
    (void)err; (void)n;
    return plan_states(g, p, plan, 1, G_MIN8);
}

/* Per-step scalars, in float as the kernels use them. */
typedef struct {
    float lr, beta1, beta2, omb1, omb2; /* omb = 1 - beta, rounded once */
    float wd, decay;                    /* decay = 1 - lr*wd (Adam, Lion) */
    int has_wd;                         /* wd > 0: the kernels' test */
    float step_size, c2eps;             /* Adam: -lr*c2/c1, c2*eps */
    int first;                          /* Momentum: t == 1 */
    float eps;                          /* AdaGrad */
} q8_scalars;

static const float *const QS = dsc_qmap_signed;
static const float *const QU = dsc_qmap_unsigned;

static int is_finite(float x) { return fabsf(x) <= FLT_MAX; } /* false for NaN, Inf */

/* Branch-free selection for the fast loops: all ones where x is finite.
 * GCC keeps `finite ? a : b` as a branch (it may not speculate a float
 * operation that could trap), which stops vectorization; bit masks don't. */
static inline uint32_t finite_mask(float x)
{
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    return (b & 0x7F800000u) != 0x7F800000u ? 0xFFFFFFFFu : 0u;
}

/* mask ? a : b, bit for bit (a masked-out value becomes b; b = 0 gives +0). */
static inline float select_mask(uint32_t mask, float a, float b)
{
    uint32_t ba, bb;
    memcpy(&ba, &a, sizeof ba);
    memcpy(&bb, &b, sizeof bb);
    ba = (ba & mask) | (bb & ~mask);
    memcpy(&a, &ba, sizeof a);
    return a;
}

static float amax_of(float m, float x) { return x > m ? x : m; } /* fmaxf for x >= 0, m never NaN */

/* ------------------------------------------------------ the fast 8-bit path
 *
 * The fast steps go one quantization block at a time, in parallel over
 * blocks: dsc_parallel_ranges hands each thread a range of elements and the
 * thread takes the blocks that start inside it (q8_blocks), so every block
 * is done whole by one thread and the bits do not depend on the thread
 * count. Per block, one fused loop dequantizes, updates the state and the
 * parameter (both need only the new state, not the new absmax) and keeps
 * the absmax as an integer max over bit patterns; then the block's stack
 * copy of the new state is encoded (dsc_bq_encode_fast). The map lookups
 * stay scalar loads (plain x86-64 has no gather), which GCC interleaves
 * with the packed arithmetic; they and the code search are most of the
 * time. On CPUs with AVX-512 the same blocks go to blockquant_avx512.c
 * instead (q8_run_avx512), where lookups and search are register
 * permutes; the bodies below stay the portable path and its definition.
 *
 * The bodies are DSC_BODY functions with restrict parameters (restrict
 * locals were not enough: GCC gave up on the gathered loads from the maps
 * as possible aliases of p), called with nb = DSC_QBLOCK for full blocks
 * (a constant trip count) or the length of a partial last block, and once
 * per flag combination, so no loop tests a run-time flag. The flag
 * `checked` is 0 for a full block whose gradients (and whatever else the
 * update reads) and old absmax are finite, which is nearly every block:
 * then no new state can be NaN (each term is finite, or an infinity after
 * an overflow, and no two infinities of opposite signs meet), so the loop
 * needs neither the NaN-gradient selects nor a NaN test in the absmax. */
typedef struct {
    float *p;
    const float *g;
    uint8_t *c1, *c2;       /* codes of state1, state2 (Adam) */
    float *a1, *a2;         /* absmax per block */
    size_t n;
    q8_scalars s;
    const dsc_qtable *ts, *tu;
    dsc_bq_coef k;          /* the scalars again, for the AVX-512 kernels */
} q8_job;

/* Blocks [*j0, *j1) for the element range [lo, hi): those starting in it.
 * Neighbouring ranges share their boundary, so the blocks are cut exactly. */
static void q8_blocks(size_t lo, size_t hi, size_t *j0, size_t *j1)
{
    *j0 = (lo + DSC_QBLOCK - 1) / DSC_QBLOCK;
    *j1 = (hi + DSC_QBLOCK - 1) / DSC_QBLOCK;
}

/* The AVX-512 kernels (blockquant_avx512.c) do the same blocks with the
 * same bits, when the CPU has them and DESCENT_KERNELS does not say
 * "portable": dsc_bq_avx512() decides once. They take the scalars as
 * dsc_bq_coef; dec is exactly 1 without weight decay, as in the bodies. */
static dsc_bq_coef q8_coef(const q8_scalars *s)
{
    dsc_bq_coef k = {
        .beta1 = s->beta1, .beta2 = s->beta2, .omb1 = s->omb1, .omb2 = s->omb2,
        .step_size = s->step_size, .c2eps = s->c2eps, .lr = s->lr, .wd = s->wd,
        .dec = s->has_wd ? s->decay : 1.0f, .eps = s->eps, .has_wd = s->has_wd, .first = s->first,
    };
    return k;
}

#ifdef DSC_HAVE_AVX512_KERNELS
static void adam8_range_avx512(const void *ctx, size_t lo, size_t hi)
{
    const q8_job *job = ctx;
    size_t j0, j1;
    q8_blocks(lo, hi, &j0, &j1);
    dsc_bq_adam8_avx512(&job->k, job->p, job->g, job->c1, job->c2, job->a1, job->a2, job->n,
                        j0, j1);
}

static void sgd8_range_avx512(const void *ctx, size_t lo, size_t hi)
{
    const q8_job *job = ctx;
    size_t j0, j1;
    q8_blocks(lo, hi, &j0, &j1);
    dsc_bq_sgd8_avx512(&job->k, job->p, job->g, job->c1, job->a1, job->n, j0, j1);
}

static void lion8_range_avx512(const void *ctx, size_t lo, size_t hi)
{
    const q8_job *job = ctx;
    size_t j0, j1;
    q8_blocks(lo, hi, &j0, &j1);
    dsc_bq_lion8_avx512(&job->k, job->p, job->g, job->c1, job->a1, job->n, j0, j1);
}

static void adagrad8_range_avx512(const void *ctx, size_t lo, size_t hi)
{
    const q8_job *job = ctx;
    size_t j0, j1;
    q8_blocks(lo, hi, &j0, &j1);
    dsc_bq_adagrad8_avx512(&job->k, job->p, job->g, job->c1, job->a1, job->n, j0, j1);
}
#endif

/* Runs the AVX-512 range kernel when it is chosen; 0 otherwise. */
static int q8_run_avx512(q8_job *job, int which)
{
#ifdef DSC_HAVE_AVX512_KERNELS
    static const dsc_range_fn fns[4] = {adam8_range_avx512, sgd8_range_avx512,
                                        lion8_range_avx512, adagrad8_range_avx512};
    if (!dsc_bq_avx512()) return 0;
    job->k = q8_coef(&job->s);
    dsc_parallel_ranges(job->n, fns[which], job);
    return 1;
#else
    (void)job;
    (void)which;
    (void)q8_coef;
    return 0;
#endif
}

/* |x| as an integer key for the block max: the bits of |x| (ordered as
 * |x| for non-NaN x), -1 for a NaN, which the reference's fmaxf skips. */
static inline int32_t absmax_key(float x)
{
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    b &= 0x7FFFFFFFu;
    return b > 0x7F800000u ? -1 : (int32_t)b;
}

/* The same for a value known not to be NaN. */
static inline int32_t abs_bits(float x)
{
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    return (int32_t)(b & 0x7FFFFFFFu);
}

/* Whether a full block of gradients is finite: one vectorized pass (it
 * also brings the block into the cache for the update). */
static int all_finite(const float *restrict g)
{
    uint32_t bad = 0;
    for (int i = 0; i < DSC_QBLOCK; i++) {
        uint32_t b;
        memcpy(&b, &g[i], sizeof b);
        bad |= (b & 0x7F800000u) == 0x7F800000u;
    }
    return !bad;
}

static inline float absmax_of_key(int32_t best)
{
    if (best < 0) return -FLT_MAX; /* only NaN: the reference's start value */
    float r;
    memcpy(&r, &best, sizeof r);
    return r;
}

/* The padding lanes of a partial last block (see "The 8-bit states in detail" in docs/optimizers.md) load code
 * 128 (signed states), code 0 (unsigned) and gradient 0, parameter 0; their
 * updated state joins the block's absmax. */

/* ================================================================= Adam */

/* Reference: per block, the kernel's three loops in its order. */
static void adam8_ref(float *p, const float *g, uint8_t *c1, uint8_t *c2, float *a1,
                      float *a2, size_t n, const q8_scalars *s)
{
    float m[DSC_QBLOCK], v[DSC_QBLOCK];
    for (size_t b0 = 0, j = 0; b0 < n; b0 += DSC_QBLOCK, j++) {
        int nb = n - b0 < DSC_QBLOCK ? (int)(n - b0) : DSC_QBLOCK;
        float max1 = -FLT_MAX, max2 = -FLT_MAX;
        for (int i = 0; i < nb; i++) {
            float gi = g[b0 + i];
            if (is_finite(gi)) {
                v[i] = QU[c2[b0 + i]] * a2[j];                        /* 2. dequantize */
                v[i] = v[i] * s->beta2 + s->omb2 * gi * gi;           /* 3. */
                m[i] = QS[c1[b0 + i]] * a1[j];
                m[i] = m[i] * s->beta1 + s->omb1 * gi;
            } else {
                m[i] = 0.0f;
                v[i] = 0.0f;
            }
            max1 = fmaxf(max1, fabsf(m[i]));                          /* 4. */
            max2 = fmaxf(max2, fabsf(v[i]));
        }
        if (nb < DSC_QBLOCK) {                                        /* padding lanes */
            float pm = QS[128] * a1[j], pv = QU[0] * a2[j];
            pm = pm * s->beta1 + s->omb1 * 0.0f;
            pv = pv * s->beta2 + s->omb2 * 0.0f * 0.0f;
            max1 = fmaxf(max1, fabsf(pm));
            max2 = fmaxf(max2, fabsf(pv));
        }
        a1[j] = max1;
        a2[j] = max2;
        for (int i = 0; i < nb; i++) {
            if (!is_finite(g[b0 + i])) continue;
            float *pi = &p[b0 + i];
            *pi = *pi + s->step_size * (m[i] / (sqrtf(v[i]) + s->c2eps));  /* 5. */
            if (s->has_wd) *pi = *pi * s->decay;                         /* 6. */
        }
        dsc_bq_encode_ref(m, nb, max1, 1, c1 + b0);                     /* 7. */
        dsc_bq_encode_ref(v, nb, max2, 0, c2 + b0);
    }
}

/* The codes of a block's new state: dsc_bq_encode_fast, with its table
 * code inlined into the calling range function so that it runs at the
 * clone's width (a rare absmax of 0, Inf or NaN takes the call), and
 * `ahead` (or NULL) prefetched on the way. */
DSC_BODY void encode_block(const dsc_qtable *t, const float *s, int n, float absmax,
                           uint8_t *codes, const dsc_bq_ahead *ahead)
{
    if (absmax > 0.0f && absmax <= FLT_MAX) dsc_bq_encode_table(t, s, n, absmax, codes, ahead);
    else dsc_bq_encode_fast(t, s, n, absmax, codes);
}

/* Fast: one block, the float operations of the reference in its order.
 * Unchecked (see above) when the gradients and both old absmax are finite.
 * Without weight decay `dec` is 1 (x*1 == x: the same bits). */
DSC_BODY void adam8_body(const q8_job *job, size_t j, float *restrict p,
                         const float *restrict g, uint8_t *restrict c1, uint8_t *restrict c2,
                         const int nb, const int checked)
{
    float m[DSC_QBLOCK], v[DSC_QBLOCK];
    const float old1 = job->a1[j], old2 = job->a2[j];
    const q8_scalars *sc = &job->s;
    const float b1 = sc->beta1, b2 = sc->beta2, omb1 = sc->omb1, omb2 = sc->omb2;
    const float ss = sc->step_size, c2eps = sc->c2eps;
    const float dec = sc->has_wd ? sc->decay : 1.0f;
    int32_t best1 = -1, best2 = -1;
    for (int i = 0; i < nb; i++) {
        float gi = g[i];
        float vi = (QU[c2[i]] * old2) * b2 + omb2 * gi * gi;
        float mi = (QS[c1[i]] * old1) * b1 + omb1 * gi;
        float pi = (p[i] + ss * (mi / (sqrtf(vi) + c2eps))) * dec;
        if (checked) {
            uint32_t ok = finite_mask(gi);
            vi = select_mask(ok, vi, 0.0f);
            mi = select_mask(ok, mi, 0.0f);
            pi = select_mask(ok, pi, p[i]);
        }
        p[i] = pi;
        m[i] = mi;
        v[i] = vi;
        int32_t k1 = checked ? absmax_key(mi) : abs_bits(mi);
        int32_t k2 = checked ? absmax_key(vi) : abs_bits(vi);
        best1 = k1 > best1 ? k1 : best1;
        best2 = k2 > best2 ? k2 : best2;
    }
    float max1 = absmax_of_key(best1), max2 = absmax_of_key(best2);
    if (nb < DSC_QBLOCK) {
        float pm = QS[128] * old1, pv = QU[0] * old2;
        pm = pm * b1 + omb1 * 0.0f;
        pv = pv * b2 + omb2 * 0.0f * 0.0f;
        max1 = amax_of(max1, fabsf(pm));
        max2 = amax_of(max2, fabsf(pv));
    }
    job->a1[j] = max1;
    job->a2[j] = max2;
    dsc_bq_ahead ah = dsc_q8_ahead(job->p, job->g, job->c1, job->c2, j, job->n);
    encode_block(job->ts, m, nb, max1, c1, &ah);
    encode_block(job->tu, v, nb, max2, c2, NULL);
}

DSC_WIDE static void adam8_range(const void *ctx, size_t lo, size_t hi)
{
    const q8_job *job = ctx;
    size_t j0, j1;
    q8_blocks(lo, hi, &j0, &j1);
    for (size_t j = j0; j < j1; j++) {
        size_t b0 = j * DSC_QBLOCK, left = job->n - b0;
        float *p = job->p + b0;
        const float *g = job->g + b0;
        uint8_t *c1 = job->c1 + b0, *c2 = job->c2 + b0;
        int nb = left < DSC_QBLOCK ? (int)left : DSC_QBLOCK;
        int plain = nb == DSC_QBLOCK && is_finite(job->a1[j]) && is_finite(job->a2[j]) &&
                    all_finite(g);
        if (plain) adam8_body(job, j, p, g, c1, c2, DSC_QBLOCK, 0);
        else adam8_body(job, j, p, g, c1, c2, nb, 1);
    }
}

static void adam8_fast(float *p, const float *g, uint8_t *c1, uint8_t *c2, float *a1,
                       float *a2, size_t n, const q8_scalars *s)
{
    q8_job job = {.p = p, .g = g, .c1 = c1, .c2 = c2, .a1 = a1, .a2 = a2, .n = n, .s = *s,
                  .ts = dsc_qtable_get(1), .tu = dsc_qtable_get(0)};
    if (q8_run_avx512(&job, 0)) return;
    dsc_parallel_ranges(n, adam8_range, &job);
}

/* 32-bit states (kOptimizer32bit2State): note (1-beta2)*(g*g) here, while
 * the 8-bit kernel computes ((1-beta2)*g)*g. */
static void adam32_ref(float *p, const float *g, float *m, float *v, size_t n,
                       const q8_scalars *s)
{
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        if (!is_finite(gi)) {
            m[i] = v[i] = 0.0f;
            continue;
        }
        m[i] = m[i] * s->beta1 + s->omb1 * gi;
        v[i] = v[i] * s->beta2 + s->omb2 * (gi * gi);
        p[i] = p[i] + s->step_size * (m[i] / (sqrtf(v[i]) + s->c2eps));
        if (s->has_wd) p[i] = p[i] * s->decay;
    }
}

/* The float32-state kernels: per-thread ranges (dsc_parallel_ranges), flags
 * as constants of one loop per combination. */
typedef struct {
    float *p, *s1, *s2; /* parameter; state1, state2 (Adam) */
    const float *g;
    q8_scalars s;
} f32_job;

DSC_WIDE static void adam32_range(const void *ctx, size_t lo, size_t hi)
{
    const f32_job *job = ctx;
    float *restrict p = job->p, *restrict m = job->s1, *restrict v = job->s2;
    const float *restrict g = job->g;
    const q8_scalars *s = &job->s;
    const float b1 = s->beta1, b2 = s->beta2, omb1 = s->omb1, omb2 = s->omb2;
    const float ss = s->step_size, c2eps = s->c2eps, dec = s->has_wd ? s->decay : 1.0f;
    for (size_t i = lo; i < hi; i++) {
        float gi = g[i];
        uint32_t ok = finite_mask(gi);
        float mi = m[i] * b1 + omb1 * gi;
        float vi = v[i] * b2 + omb2 * (gi * gi);
        float pi = (p[i] + ss * (mi / (sqrtf(vi) + c2eps))) * dec;
        m[i] = select_mask(ok, mi, 0.0f);
        v[i] = select_mask(ok, vi, 0.0f);
        p[i] = select_mask(ok, pi, p[i]);
    }
}

static void adam32_fast(float *p, const float *g, float *m, float *v, size_t n,
                        const q8_scalars *s)
{
    f32_job job = {.p = p, .s1 = m, .s2 = v, .g = g, .s = *s};
    dsc_parallel_ranges(n, adam32_range, &job);
}

static dsc_status step_adam(dsc_group *grp, const dsc_step_ctx *ctx)
{
    for (int k = 0; k < grp->nparams; k++) {
        dsc_param *p = dsc_group_param(grp, k);
        int64_t *t = p->slots[SLOT_STEP].data;
        *t += 1;                                                      /* 1. */
        q8_scalars s = {
            .lr = (float)p->hp[A_LR], .beta1 = (float)p->hp[A_BETA1],
            .beta2 = (float)p->hp[A_BETA2], .wd = (float)p->hp[A_WD],
            .has_wd = p->hp[A_WD] > 0,
        };
        /* Bias corrections in float, as the kernel (and the float32 replay
         * quoted in PROVENANCE, which this matches to the printed digit). */
        float tf = (float)*t;
        float c1 = 1.0f - powf(s.beta1, tf), c2 = sqrtf(1.0f - powf(s.beta2, tf));
        s.step_size = -s.lr * c2 / c1;
        s.c2eps = c2 * (float)p->hp[A_EPS];
        s.omb1 = 1.0f - s.beta1;
        s.omb2 = 1.0f - s.beta2;
        s.decay = 1.0f - s.lr * s.wd;
        if (is_8bit(p)) {
            uint8_t *c1s = p->slots[SLOT_S1].data, *c2s = p->slots[SLOT_S2].data;
            float *a1 = p->slots[3].data, *a2 = p->slots[4].data;
            if (ctx->reference) adam8_ref(p->data, p->grad, c1s, c2s, a1, a2, p->numel, &s);
            else adam8_fast(p->data, p->grad, c1s, c2s, a1, a2, p->numel, &s);
        } else {
            float *m = p->slots[SLOT_S1].data, *v = p->slots[SLOT_S2].data;
            if (ctx->reference) adam32_ref(p->data, p->grad, m, v, p->numel, &s);
            else adam32_fast(p->data, p->grad, m, v, p->numel, &s);
        }
    }
    return DSC_OK;
}

/* ============================================================= Momentum */

static void sgd8_ref(float *p, const float *g, uint8_t *c, float *a, size_t n,
                     const q8_scalars *s)
{
    float b[DSC_QBLOCK];
    for (size_t b0 = 0, j = 0; b0 < n; b0 += DSC_QBLOCK, j++) {
        int nb = n - b0 < DSC_QBLOCK ? (int)(n - b0) : DSC_QBLOCK;
        float max1 = -FLT_MAX;
        for (int i = 0; i < nb; i++) {
            float gi = g[b0 + i];
            if (is_finite(gi)) {
                if (s->has_wd) gi = gi + p[b0 + i] * s->wd;           /* 1. L2 */
                b[i] = QS[c[b0 + i]] * a[j];
                b[i] = s->first ? gi : b[i] * s->beta1 + gi;           /* 2. */
            } else {
                b[i] = 0.0f;
            }
            max1 = fmaxf(max1, fabsf(b[i]));
        }
        if (nb < DSC_QBLOCK) {
            float pb = QS[128] * a[j];
            pb = s->first ? 0.0f : pb * s->beta1 + 0.0f;
            max1 = fmaxf(max1, fabsf(pb));
        }
        a[j] = max1;
        for (int i = 0; i < nb; i++)
            if (is_finite(g[b0 + i])) p[b0 + i] = p[b0 + i] - s->lr * b[i];  /* 3. */
        dsc_bq_encode_ref(b, nb, max1, 1, c + b0);                      /* 4. */
    }
}

/* Fast: one block. Unchecked when the gradients, the old absmax and, with
 * the L2 term, the parameters are finite (a NaN parameter would make the
 * buffer NaN). */
DSC_BODY void sgd8_body(const q8_job *job, size_t j, float *restrict p, const float *restrict g,
                        uint8_t *restrict c, const int nb, const int has_wd, const int first,
                        const int checked)
{
    float b[DSC_QBLOCK];
    const float old = job->a1[j], mu = job->s.beta1, lr = job->s.lr, wd = job->s.wd;
    int32_t best = -1;
    for (int i = 0; i < nb; i++) {
        float gi = g[i];
        /* gi + p*0 could turn -0 into +0 (and p = Inf into NaN): add only with decay */
        if (has_wd) gi = gi + p[i] * wd;
        float bi = first ? gi : (QS[c[i]] * old) * mu + gi;
        float pi = p[i] - lr * bi;
        if (checked) {
            uint32_t ok = finite_mask(g[i]);
            bi = select_mask(ok, bi, 0.0f);
            pi = select_mask(ok, pi, p[i]);
        }
        p[i] = pi;
        b[i] = bi;
        int32_t k = checked ? absmax_key(bi) : abs_bits(bi);
        best = k > best ? k : best;
    }
    float max1 = absmax_of_key(best);
    if (nb < DSC_QBLOCK) {
        float pb = QS[128] * old;
        pb = first ? 0.0f : pb * mu + 0.0f;
        max1 = amax_of(max1, fabsf(pb));
    }
    job->a1[j] = max1;
    dsc_bq_ahead ah = dsc_q8_ahead(job->p, job->g, job->c1, NULL, j, job->n);
    encode_block(job->ts, b, nb, max1, c, &ah);
}

DSC_BODY void sgd8_blocks(const q8_job *job, size_t j0, size_t j1, const int has_wd,
                          const int first)
{
    for (size_t j = j0; j < j1; j++) {
        size_t b0 = j * DSC_QBLOCK, left = job->n - b0;
        float *p = job->p + b0;
        const float *g = job->g + b0;
        uint8_t *c = job->c1 + b0;
        int nb = left < DSC_QBLOCK ? (int)left : DSC_QBLOCK;
        int plain = nb == DSC_QBLOCK && is_finite(job->a1[j]) && all_finite(g) &&
                    (!has_wd || all_finite(p));
        if (plain) sgd8_body(job, j, p, g, c, DSC_QBLOCK, has_wd, first, 0);
        else sgd8_body(job, j, p, g, c, nb, has_wd, first, 1);
    }
}

DSC_WIDE static void sgd8_range(const void *ctx, size_t lo, size_t hi)
{
    const q8_job *job = ctx;
    size_t j0, j1;
    q8_blocks(lo, hi, &j0, &j1);
    if (job->s.has_wd) {
        if (job->s.first) sgd8_blocks(job, j0, j1, 1, 1);
        else sgd8_blocks(job, j0, j1, 1, 0);
    } else {
        if (job->s.first) sgd8_blocks(job, j0, j1, 0, 1);
        else sgd8_blocks(job, j0, j1, 0, 0);
    }
}

static void sgd8_fast(float *p, const float *g, uint8_t *c, float *a, size_t n,
                      const q8_scalars *s)
{
    q8_job job = {.p = p, .g = g, .c1 = c, .a1 = a, .n = n, .s = *s, .ts = dsc_qtable_get(1)};
    if (q8_run_avx512(&job, 1)) return;
    dsc_parallel_ranges(n, sgd8_range, &job);
}

/* kOptimizer32bit1State, MOMENTUM: p + (-lr*b) has the bits of p - lr*b. */
static void sgd32_ref(float *p, const float *g, float *b, size_t n, const q8_scalars *s)
{
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        if (!is_finite(gi)) {
            b[i] = 0.0f;
            continue;
        }
        if (s->has_wd) gi = gi + p[i] * s->wd;
        b[i] = s->first ? gi : b[i] * s->beta1 + gi;
        p[i] = p[i] - s->lr * b[i];
    }
}

DSC_BODY void sgd32_body(const f32_job *job, size_t lo, size_t hi, const int has_wd,
                        const int first)
{
    float *restrict p = job->p, *restrict b = job->s1;
    const float *restrict g = job->g;
    const float mu = job->s.beta1, lr = job->s.lr, wd = job->s.wd;
    for (size_t i = lo; i < hi; i++) {
        float gi = g[i];
        uint32_t ok = finite_mask(gi);
        float gw = has_wd ? gi + p[i] * wd : gi;
        float bi = first ? gw : b[i] * mu + gw;
        float pi = p[i] - lr * bi;
        b[i] = select_mask(ok, bi, 0.0f);
        p[i] = select_mask(ok, pi, p[i]);
    }
}

DSC_WIDE static void sgd32_range(const void *ctx, size_t lo, size_t hi)
{
    const f32_job *job = ctx;
    if (job->s.has_wd) {
        if (job->s.first) sgd32_body(job, lo, hi, 1, 1);
        else sgd32_body(job, lo, hi, 1, 0);
    } else {
        if (job->s.first) sgd32_body(job, lo, hi, 0, 1);
        else sgd32_body(job, lo, hi, 0, 0);
    }
}

static void sgd32_fast(float *p, const float *g, float *b, size_t n, const q8_scalars *s)
{
    f32_job job = {.p = p, .s1 = b, .g = g, .s = *s};
    dsc_parallel_ranges(n, sgd32_range, &job);
}

static dsc_status step_sgd(dsc_group *grp, const dsc_step_ctx *ctx)
{
    for (int k = 0; k < grp->nparams; k++) {
        dsc_param *p = dsc_group_param(grp, k);
        int64_t *t = p->slots[SLOT_STEP].data;
        *t += 1;
        q8_scalars s = {
            .lr = (float)p->hp[S_LR], .beta1 = (float)p->hp[S_MOMENTUM],
            .wd = (float)p->hp[S_WD], .has_wd = p->hp[S_WD] > 0, .first = *t == 1,
        };
        if (is_8bit(p)) {
            uint8_t *c = p->slots[SLOT_S1].data;
            float *a = p->slots[2].data;
            if (ctx->reference) sgd8_ref(p->data, p->grad, c, a, p->numel, &s);
            else sgd8_fast(p->data, p->grad, c, a, p->numel, &s);
        } else {
            float *b = p->slots[SLOT_S1].data;
            if (ctx->reference) sgd32_ref(p->data, p->grad, b, p->numel, &s);
            else sgd32_fast(p->data, p->grad, b, p->numel, &s);
        }
    }
    return DSC_OK;
}

/* ================================================================= Lion */

static void lion8_ref(float *p, const float *g, uint8_t *c, float *a, size_t n,
                      const q8_scalars *s)
{
    float m[DSC_QBLOCK], u[DSC_QBLOCK];
    for (size_t b0 = 0, j = 0; b0 < n; b0 += DSC_QBLOCK, j++) {
        int nb = n - b0 < DSC_QBLOCK ? (int)(n - b0) : DSC_QBLOCK;
        float max1 = -FLT_MAX;
        for (int i = 0; i < nb; i++) {
            float gi = g[b0 + i];
            if (is_finite(gi)) {
                if (s->has_wd) p[b0 + i] = p[b0 + i] * s->decay;      /* 1. */
                float mo = QS[c[b0 + i]] * a[j];                      /* 2. */
                u[i] = s->lr * dsc_signf(mo * s->beta1 + s->omb1 * gi);
                m[i] = mo * s->beta2 + s->omb2 * gi;                  /* 3. */
            } else {
                u[i] = 0.0f;
                m[i] = 0.0f;
            }
            max1 = fmaxf(max1, fabsf(m[i]));
        }
        if (nb < DSC_QBLOCK) {
            float pm = QS[128] * a[j];
            pm = pm * s->beta2 + s->omb2 * 0.0f;
            max1 = fmaxf(max1, fabsf(pm));
        }
        a[j] = max1;
        for (int i = 0; i < nb; i++)
            if (is_finite(g[b0 + i])) p[b0 + i] = p[b0 + i] - u[i];
        dsc_bq_encode_ref(m, nb, max1, 1, c + b0);
    }
}

/* Fast: one block. Unchecked when the gradients and the old absmax are
 * finite; the decay multiplies by 1 without weight decay (same bits). */
DSC_BODY void lion8_body(const q8_job *job, size_t j, float *restrict p, const float *restrict g,
                         uint8_t *restrict c, const int nb, const int checked)
{
    float m[DSC_QBLOCK];
    const q8_scalars *sc = &job->s;
    const float old = job->a1[j], b1 = sc->beta1, b2 = sc->beta2, omb1 = sc->omb1,
                omb2 = sc->omb2, lr = sc->lr, dec = sc->has_wd ? sc->decay : 1.0f;
    int32_t best = -1;
    for (int i = 0; i < nb; i++) {
        float gi = g[i], mo = QS[c[i]] * old;
        float pi = p[i] * dec - lr * dsc_signf(mo * b1 + omb1 * gi);
        float mi = mo * b2 + omb2 * gi;
        if (checked) {
            uint32_t ok = finite_mask(gi);
            mi = select_mask(ok, mi, 0.0f);
            pi = select_mask(ok, pi, p[i]);
        }
        p[i] = pi;
        m[i] = mi;
        int32_t k = checked ? absmax_key(mi) : abs_bits(mi);
        best = k > best ? k : best;
    }
    float max1 = absmax_of_key(best);
    if (nb < DSC_QBLOCK) {
        float pm = QS[128] * old;
        pm = pm * b2 + omb2 * 0.0f;
        max1 = amax_of(max1, fabsf(pm));
    }
    job->a1[j] = max1;
    dsc_bq_ahead ah = dsc_q8_ahead(job->p, job->g, job->c1, NULL, j, job->n);
    encode_block(job->ts, m, nb, max1, c, &ah);
}

DSC_WIDE static void lion8_range(const void *ctx, size_t lo, size_t hi)
{
    const q8_job *job = ctx;
    size_t j0, j1;
    q8_blocks(lo, hi, &j0, &j1);
    for (size_t j = j0; j < j1; j++) {
        size_t b0 = j * DSC_QBLOCK, left = job->n - b0;
        float *p = job->p + b0;
        const float *g = job->g + b0;
        uint8_t *c = job->c1 + b0;
        int nb = left < DSC_QBLOCK ? (int)left : DSC_QBLOCK;
        if (nb == DSC_QBLOCK && is_finite(job->a1[j]) && all_finite(g))
            lion8_body(job, j, p, g, c, DSC_QBLOCK, 0);
        else lion8_body(job, j, p, g, c, nb, 1);
    }
}

static void lion8_fast(float *p, const float *g, uint8_t *c, float *a, size_t n,
                       const q8_scalars *s)
{
    q8_job job = {.p = p, .g = g, .c1 = c, .a1 = a, .n = n, .s = *s, .ts = dsc_qtable_get(1)};
    if (q8_run_avx512(&job, 2)) return;
    dsc_parallel_ranges(n, lion8_range, &job);
}

/* kOptimizer32bit1State, LION (decoupled decay in this snapshot of bitsandbytes). */
static void lion32_ref(float *p, const float *g, float *m, size_t n, const q8_scalars *s)
{
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        if (!is_finite(gi)) {
            m[i] = 0.0f;
            continue;
        }
        if (s->has_wd) p[i] = p[i] * s->decay;
        p[i] = p[i] - s->lr * dsc_signf(m[i] * s->beta1 + s->omb1 * gi);
        m[i] = m[i] * s->beta2 + s->omb2 * gi;
    }
}

DSC_WIDE static void lion32_range(const void *ctx, size_t lo, size_t hi)
{
    const f32_job *job = ctx;
    float *restrict p = job->p, *restrict m = job->s1;
    const float *restrict g = job->g;
    const q8_scalars *s = &job->s;
    const float b1 = s->beta1, b2 = s->beta2, omb1 = s->omb1, omb2 = s->omb2, lr = s->lr;
    const float dec = s->has_wd ? s->decay : 1.0f;
    for (size_t i = lo; i < hi; i++) {
        float gi = g[i], mo = m[i];
        uint32_t ok = finite_mask(gi);
        float pi = p[i] * dec - lr * dsc_signf(mo * b1 + omb1 * gi);
        float mi = mo * b2 + omb2 * gi;
        m[i] = select_mask(ok, mi, 0.0f);
        p[i] = select_mask(ok, pi, p[i]);
    }
}

static void lion32_fast(float *p, const float *g, float *m, size_t n, const q8_scalars *s)
{
    f32_job job = {.p = p, .s1 = m, .g = g, .s = *s};
    dsc_parallel_ranges(n, lion32_range, &job);
}

static dsc_status step_lion(dsc_group *grp, const dsc_step_ctx *ctx)
{
    for (int k = 0; k < grp->nparams; k++) {
        dsc_param *p = dsc_group_param(grp, k);
        int64_t *t = p->slots[SLOT_STEP].data;
        *t += 1;
        q8_scalars s = {
            .lr = (float)p->hp[L_LR], .beta1 = (float)p->hp[L_BETA1],
            .beta2 = (float)p->hp[L_BETA2], .wd = (float)p->hp[L_WD],
            .has_wd = p->hp[L_WD] > 0,
        };
        s.omb1 = 1.0f - s.beta1;
        s.omb2 = 1.0f - s.beta2;
        s.decay = 1.0f - s.lr * s.wd;
        if (is_8bit(p)) {
            uint8_t *c = p->slots[SLOT_S1].data;
            float *a = p->slots[2].data;
            if (ctx->reference) lion8_ref(p->data, p->grad, c, a, p->numel, &s);
            else lion8_fast(p->data, p->grad, c, a, p->numel, &s);
        } else {
            float *m = p->slots[SLOT_S1].data;
            if (ctx->reference) lion32_ref(p->data, p->grad, m, p->numel, &s);
            else lion32_fast(p->data, p->grad, m, p->numel, &s);
        }
    }
    return DSC_OK;
}

/* ============================================================== AdaGrad */

/* Reference: the kernel's loops per block, in its order. */
static void adagrad8_ref(float *p, const float *g, uint8_t *c, float *a, size_t n,
                         const q8_scalars *s)
{
    float v[DSC_QBLOCK];
    for (size_t b0 = 0, j = 0; b0 < n; b0 += DSC_QBLOCK, j++) {
        int nb = n - b0 < DSC_QBLOCK ? (int)(n - b0) : DSC_QBLOCK;
        float max1 = -FLT_MAX;
        for (int i = 0; i < nb; i++) {
            float gi = g[b0 + i];
            if (is_finite(gi)) {
                if (s->has_wd) gi = gi + p[b0 + i] * s->wd;           /* 1. L2 (state only) */
                v[i] = QS[c[b0 + i]] * a[j];                          /* 2. dequantize */
                v[i] = v[i] + gi * gi;                                /* 3. sum of squares */
            } else {
                v[i] = 0.0f;
            }
            max1 = fmaxf(max1, fabsf(v[i]));                          /* 4. block absmax */
        }
        if (nb < DSC_QBLOCK) {                                        /* padding lanes */
            float pv = QS[128] * a[j];
            pv = pv + 0.0f * 0.0f;
            max1 = fmaxf(max1, fabsf(pv));
        }
        a[j] = max1;
        for (int i = 0; i < nb; i++) {
            float gi = g[b0 + i];                                     /* 5. the raw g */
            if (is_finite(gi)) p[b0 + i] = p[b0 + i] - s->lr * (gi / (sqrtf(v[i]) + s->eps));
        }
        dsc_bq_encode_ref(v, nb, max1, 1, c + b0);                      /* 6. requantize */
    }
}

/* Fast: one block, the reference's float operations in its order.
 * Unchecked when the gradients, the old absmax and (with decay) the
 * parameters are finite. */
DSC_BODY void adagrad8_body(const q8_job *job, size_t j, float *restrict p,
                            const float *restrict g, uint8_t *restrict c, const int nb,
                            const int has_wd, const int checked)
{
    float v[DSC_QBLOCK];
    const float old = job->a1[j], lr = job->s.lr, wd = job->s.wd, eps = job->s.eps;
    int32_t best = -1;
    for (int i = 0; i < nb; i++) {
        float gi = g[i];
        float gw = has_wd ? gi + p[i] * wd : gi;
        float vi = QS[c[i]] * old + gw * gw;
        float pi = p[i] - lr * (gi / (sqrtf(vi) + eps));
        if (checked) {
            uint32_t ok = finite_mask(gi);
            vi = select_mask(ok, vi, 0.0f);
            pi = select_mask(ok, pi, p[i]);
        }
        p[i] = pi;
        v[i] = vi;
        int32_t k = checked ? absmax_key(vi) : abs_bits(vi);
        best = k > best ? k : best;
    }
    float max1 = absmax_of_key(best);
    if (nb < DSC_QBLOCK) {
        float pv = QS[128] * old;
        pv = pv + 0.0f * 0.0f;
        max1 = amax_of(max1, fabsf(pv));
    }
    job->a1[j] = max1;
    dsc_bq_ahead ah = dsc_q8_ahead(job->p, job->g, job->c1, NULL, j, job->n);
    encode_block(job->ts, v, nb, max1, c, &ah);
}

DSC_BODY void adagrad8_blocks(const q8_job *job, size_t j0, size_t j1, const int has_wd)
{
    for (size_t j = j0; j < j1; j++) {
        size_t b0 = j * DSC_QBLOCK, left = job->n - b0;
        float *p = job->p + b0;
        const float *g = job->g + b0;
        uint8_t *c = job->c1 + b0;
        int nb = left < DSC_QBLOCK ? (int)left : DSC_QBLOCK;
        int plain = nb == DSC_QBLOCK && is_finite(job->a1[j]) && all_finite(g) &&
                    (!has_wd || all_finite(p));
        if (plain) adagrad8_body(job, j, p, g, c, DSC_QBLOCK, has_wd, 0);
        else adagrad8_body(job, j, p, g, c, nb, has_wd, 1);
    }
}

DSC_WIDE static void adagrad8_range(const void *ctx, size_t lo, size_t hi)
{
    const q8_job *job = ctx;
    size_t j0, j1;
    q8_blocks(lo, hi, &j0, &j1);
    if (job->s.has_wd) adagrad8_blocks(job, j0, j1, 1);
    else adagrad8_blocks(job, j0, j1, 0);
}

static void adagrad8_fast(float *p, const float *g, uint8_t *c, float *a, size_t n,
                          const q8_scalars *s)
{
    q8_job job = {.p = p, .g = g, .c1 = c, .a1 = a, .n = n, .s = *s, .ts = dsc_qtable_get(1)};
    if (q8_run_avx512(&job, 3)) return;
    dsc_parallel_ranges(n, adagrad8_range, &job);
}

/* kOptimizer32bit1State, ADAGRAD: here g + wd*p enters both the sum and
 * the numerator. */
static void adagrad32_ref(float *p, const float *g, float *v, size_t n, const q8_scalars *s)
{
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        if (!is_finite(gi)) {
            v[i] = 0.0f;
            continue;
        }
        if (s->has_wd) gi = gi + p[i] * s->wd;
        v[i] = v[i] + gi * gi;
        p[i] = p[i] - s->lr * (gi / (sqrtf(v[i]) + s->eps));
    }
}

DSC_BODY void adagrad32_body(const f32_job *job, size_t lo, size_t hi, const int has_wd)
{
    float *restrict p = job->p, *restrict v = job->s1;
    const float *restrict g = job->g;
    const float lr = job->s.lr, wd = job->s.wd, eps = job->s.eps;
    for (size_t i = lo; i < hi; i++) {
        float gi = g[i];
        uint32_t ok = finite_mask(gi);
        float gw = has_wd ? gi + p[i] * wd : gi;
        float vi = v[i] + gw * gw;
        float pi = p[i] - lr * (gw / (sqrtf(vi) + eps));
        v[i] = select_mask(ok, vi, 0.0f);
        p[i] = select_mask(ok, pi, p[i]);
    }
}

DSC_WIDE static void adagrad32_range(const void *ctx, size_t lo, size_t hi)
{
    const f32_job *job = ctx;
    if (job->s.has_wd) adagrad32_body(job, lo, hi, 1);
    else adagrad32_body(job, lo, hi, 0);
}

static dsc_status step_adagrad(dsc_group *grp, const dsc_step_ctx *ctx)
{
    for (int k = 0; k < grp->nparams; k++) {
        dsc_param *p = dsc_group_param(grp, k);
        int64_t *t = p->slots[SLOT_STEP].data;
        *t += 1;
        q8_scalars s = {
            .lr = (float)p->hp[G_LR], .eps = (float)p->hp[G_EPS], .wd = (float)p->hp[G_WD],
            .has_wd = p->hp[G_WD] > 0,
        };
        if (is_8bit(p)) {
            uint8_t *c = p->slots[SLOT_S1].data;
            float *a = p->slots[2].data;
            if (ctx->reference) adagrad8_ref(p->data, p->grad, c, a, p->numel, &s);
            else adagrad8_fast(p->data, p->grad, c, a, p->numel, &s);
        } else {
            float *v = p->slots[SLOT_S1].data;
            if (ctx->reference) {
                adagrad32_ref(p->data, p->grad, v, p->numel, &s);
            } else {
                f32_job job = {.p = p->data, .s1 = v, .g = p->grad, .s = s};
                dsc_parallel_ranges(p->numel, adagrad32_range, &job);
            }
        }
    }
    return DSC_OK;
}

/* ============================================================ registry */

#define Q8_PAPER "Dettmers, Lewis, Shleifer, Zettlemoyer: 8-bit Optimizers via Block-wise " \
                 "Quantization, ICLR 2022"

const dsc_family dsc_family_adam8bit = {
    .info = {
        .name = "adam8bit",
        .summary = "Adam with 8-bit block-wise states (bitsandbytes Adam8bit; decoupled decay)",
        .paper = Q8_PAPER,
        .source = "bitsandbytes-foundation/bitsandbytes csrc/kernels.cu "
                  "kOptimizerStatic8bit2StateBlockwise @95f9af3",
        .nkeys = A_NKEYS, .keys = adam_keys, .matrix = 0,
    },
    .plan_param = plan_adam, .step = step_adam,
};

const dsc_family dsc_family_adamw8bit = {
    .info = {
        .name = "adamw8bit",
        .summary = "AdamW with 8-bit block-wise states (bitsandbytes AdamW8bit)",
        .paper = Q8_PAPER,
        .source = "bitsandbytes-foundation/bitsandbytes csrc/kernels.cu "
                  "kOptimizerStatic8bit2StateBlockwise @95f9af3",
        .nkeys = A_NKEYS, .keys = adamw_keys, .matrix = 0,
    },
    .plan_param = plan_adam, .step = step_adam,
};

const dsc_family dsc_family_sgd8bit = {
    .info = {
        .name = "sgd8bit",
        .summary = "SGD with an 8-bit block-wise momentum buffer (bitsandbytes SGD8bit)",
        .paper = Q8_PAPER,
        .source = "bitsandbytes-foundation/bitsandbytes csrc/kernels.cu "
                  "kOptimizerStatic8bit1StateBlockwise (MOMENTUM) @95f9af3",
        .nkeys = S_NKEYS, .keys = sgd_keys, .matrix = 0,
    },
    .plan_param = plan_sgd, .step = step_sgd,
};

const dsc_family dsc_family_lion8bit = {
    .info = {
        .name = "lion8bit",
        .summary = "Lion with an 8-bit block-wise momentum (bitsandbytes Lion8bit)",
        .paper = "Chen et al., Symbolic Discovery of Optimization Algorithms, NeurIPS 2023; "
                 "8-bit states: Dettmers et al., ICLR 2022",
        .source = "bitsandbytes-foundation/bitsandbytes csrc/kernels.cu "
                  "kOptimizerStatic8bit1StateBlockwise (LION) @95f9af3",
        .nkeys = L_NKEYS, .keys = lion_keys, .matrix = 0,
    },
    .plan_param = plan_lion, .step = step_lion,
};

const dsc_family dsc_family_adagrad8bit = {
    .info = {
        .name = "adagrad8bit",
        .summary = "AdaGrad with an 8-bit block-wise sum of squares (bitsandbytes Adagrad8bit)",
        .paper = "Duchi, Hazan, Singer, JMLR 2011; 8-bit states: Dettmers et al., ICLR 2022",
        .source = "bitsandbytes-foundation/bitsandbytes csrc/kernels.cu "
                  "kOptimizerStatic8bit1StateBlockwise (ADAGRAD) @95f9af3",
        .nkeys = G_NKEYS, .keys = adagrad_keys, .matrix = 0,
    },
    .plan_param = plan_adagrad, .step = step_adagrad,
};
