/* spam.c - SPAM: spike-aware Adam with momentum reset (TianjinYellow/SPAM-Optimizer,
 * class AdamW in galore_torch/SPAM.py, exported as SPAM).
 *
 * Update (docs/optimizers.md). Group state: k0 completed steps,
 * c the warmup counter (W+1 before the first step: the first warmup starts
 * fully open). With k = k0 + 1, W = warmup_steps, D = delta_t,
 * A = grad_accu_steps:
 *   scale = 1 - dr,  dr = 0 if c >= W else 0.99*(1 + cos(pi*c/(W+1)))/2
 *   per parameter (t its own counter):
 *     m, v <- 0                          if k % D == 0  (t is NOT reset)
 *     t <- t + 1
 *     g <- sign(g)*sqrt(threshold*v)     where g^2 > threshold*v, when
 *                                        threshold != 0, k >= A and k % D >= A
 *                                        (v: stored, after a reset)
 *     m <- b1*m + (1-b1)*g;  v <- b2*v + (1-b2)*g*g
 *     s = lr*sqrt(1-b2^t)/(1-b1^t)       (correct_bias; else s = lr)
 *     p <- p - s*scale * m/(sqrt(v) + eps)   (eps not bias-corrected)
 *     p <- p - lr*wd*p                   if wd > 0 (decoupled, AFTER the update,
 *                                        not scaled by the warmup)
 *   k0 <- k0 + 1;  c <- c + 1;  c <- 0 if (k0 + 1) % D == 0 (next step resets)
 * The official code clips by writing into p.grad; here the clipped value
 * lives in a register and the caller's gradient is only read.
 * Golden files: spam_reset_clip_4x6, spam_wd_threshold_3x5.
 *
 * Sparse momentum, for 2-D parameters of a group whose
 * `density` is > 0 when the parameter is added (other parameters of the group
 * stay dense): only the entries of a mask are updated; the others keep their
 * value (no update, no weight decay: the official code decays an indexed copy,
 * so weight decay is a no-op for every sparse parameter). The first mask has
 * exactly floor(density*numel) entries, chosen uniformly (selection sampling);
 * at the end of every step with (k0+1) % D == 0 it is redrawn with independent
 * Bernoulli(density) entries, and the moments off the new mask are zeroed (the
 * next step resets all moments anyway). The moments are stored densely, so
 * this reproduces the algorithm, not its memory saving.
 * Random numbers: the library generator (SplitMix64, kernels/rng.h), one stream per parameter, seeded with
 * mask_seed XOR the 64-bit FNV-1a hash of the parameter's name (so the masks
 * do not depend on insertion order); uniform u = (x >> 11) * 2^-53. The
 * stream state is the slot "rng", the mask the slot "mask": both are
 * checkpointed. Golden files do not cover it (the official masks come from
 * torch's generator); density 1 reproduces dense SPAM without weight decay. */
#include "../core/internal.h"
#include "../kernels/rng.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const double PI = 3.14159265358979323846;

enum { LR, BETA1, BETA2, EPS, WEIGHT_DECAY, CORRECT_BIAS, WARMUP_STEPS, THRESHOLD, DELTA_T,
       GRAD_ACCU_STEPS, DENSITY, MASK_SEED, NKEYS };

static const dsc_key_info keys[NKEYS] = {
    [LR] = {"lr", DSC_KEY_FLOAT, 1e-3, 0, 1e6, 0, 0, "learning rate"},
    [BETA1] = {"beta1", DSC_KEY_FLOAT, 0.9, 0, 1, 0, 1, "decay of the first moment"},
    [BETA2] = {"beta2", DSC_KEY_FLOAT, 0.999, 0, 1, 0, 1, "decay of the second moment"},
    [EPS] = {"eps", DSC_KEY_FLOAT, 1e-6, 0, 1, 1, 0, "added to sqrt(v) (not bias-corrected)"},
    [WEIGHT_DECAY] = {"weight_decay", DSC_KEY_FLOAT, 0, 0, 1e6, 0, 0,
                      "decoupled decay p <- p - lr*wd*p after the update (dense only)"},
    [CORRECT_BIAS] = {"correct_bias", DSC_KEY_BOOL, 1, 0, 1, 0, 0, "Adam bias correction"},
    [WARMUP_STEPS] = {"warmup_steps", DSC_KEY_INT, 150, 0, 1e12, 0, 0,
                      "cosine warmup length after each momentum reset"},
    [THRESHOLD] = {"threshold", DSC_KEY_FLOAT, 5000, 0, 1e30, 0, 0,
                   "spike clipping: g^2 > threshold*v is clipped (0: off)"},
    [DELTA_T] = {"delta_t", DSC_KEY_INT, 500, 1, 1e12, 0, 0,
                 "momentum reset interval (official DeltaT)"},
    [GRAD_ACCU_STEPS] = {"grad_accu_steps", DSC_KEY_INT, 20, 0, 1e12, 0, 0,
                         "no spike clipping during the first A steps of each interval"},
    [DENSITY] = {"density", DSC_KEY_FLOAT, 0, 0, 1, 0, 0,
                 "sparse momentum on 2-D parameters: fraction of entries updated "
                 "(0: dense; fixed when a parameter is added)"},
    [MASK_SEED] = {"mask_seed", DSC_KEY_INT, 0, 0, 9007199254740992.0, 0, 0,
                   "seed of the sparse-momentum masks (with the parameter name)"},
};

/* Per-parameter slots; mask and rng only for sparse parameters. */
enum { SLOT_M, SLOT_V, SLOT_T, SLOT_MASK, SLOT_RNG };
/* Group slots. */
enum { GSLOT_K0, GSLOT_C };

static int is_sparse_plan(const dsc_group *g, const dsc_param *p)
{
    return g->base[DENSITY] > 0 && p->ndim == 2;
}

static dsc_status plan_param(const dsc_group *g, const dsc_param *p, dsc_plan *plan,
                             char *err, size_t n)
{
    (void)err; (void)n;
    dsc_plan_slot(plan, "exp_avg", DSC_DT_F32, p->numel);
    dsc_plan_slot(plan, "exp_avg_sq", DSC_DT_F32, p->numel);
    dsc_plan_slot(plan, "step", DSC_DT_I64, 1);
    if (is_sparse_plan(g, p)) {
        dsc_plan_slot_shaped(plan, "mask", DSC_DT_U8, p->ndim, p->shape);
        dsc_plan_slot(plan, "rng", DSC_DT_I64, 1);
    }
    return DSC_OK;
}

static void plan_group(const dsc_group *g, dsc_plan *plan)
{
    (void)g;
    dsc_plan_slot(plan, "total_steps", DSC_DT_I64, 1);
    dsc_plan_slot(plan, "warmup_counter", DSC_DT_I64, 1);
}

/* ------------------------------------------------------------ random masks */

static double uniform01(uint64_t *state) { return dsc_rng_unit(dsc_rng_next(state)); }

/* The first mask: exactly floor(density*numel) entries (Knuth's selection
 * sampling: each subset of that size is equally likely). */
static void init_param(dsc_group *g, dsc_param *p)
{
    if (p->nslots <= SLOT_RNG) return;
    uint64_t state = (uint64_t)g->base[MASK_SEED] ^ dsc_fnv1a64_str(DSC_FNV64_OFFSET, p->name);
    uint8_t *mask = p->slots[SLOT_MASK].data;
    size_t need = (size_t)(g->base[DENSITY] * (double)p->numel);
    if (need > p->numel) need = p->numel;
    for (size_t i = 0; i < p->numel; i++) {
        size_t left = p->numel - i;
        int take = (double)left * uniform01(&state) < (double)need;
        mask[i] = (uint8_t)take;
        need -= (size_t)take;
    }
    memcpy(p->slots[SLOT_RNG].data, &state, sizeof state);
}

/* Redraw: independent Bernoulli(density) entries; moments off the mask zeroed. */
static void redraw_mask(dsc_param *p, double density)
{
    uint64_t state;
    memcpy(&state, p->slots[SLOT_RNG].data, sizeof state);
    uint8_t *mask = p->slots[SLOT_MASK].data;
    float *m = p->slots[SLOT_M].data, *v = p->slots[SLOT_V].data;
    for (size_t i = 0; i < p->numel; i++) {
        mask[i] = (uint8_t)(uniform01(&state) < density);
        if (!mask[i]) m[i] = v[i] = 0.0f;
    }
    memcpy(p->slots[SLOT_RNG].data, &state, sizeof state);
}

/* ------------------------------------------------------------------ kernels */

typedef struct {
    float beta1, one_minus_beta1, beta2, one_minus_beta2, eps;
    float step;       /* s * scale */
    float wd_step;    /* lr * wd, 0 when off */
    float threshold;  /* spike threshold */
    int reset, clip;
} spam_scalars;

/* Reference: one element at a time, in the order of the spec. mask NULL: dense. */
static void spam_step_ref(float *p, const float *g, float *m, float *v, const uint8_t *mask,
                          size_t n, spam_scalars s)
{
    for (size_t i = 0; i < n; i++) {
        if (mask && !mask[i]) continue;
        if (s.reset) {                                                /* 2.1 reset */
            m[i] = 0.0f;
            v[i] = 0.0f;
        }
        float gi = g[i];
        if (s.clip && gi * gi > s.threshold * v[i])                   /* 2.3 spikes */
            gi = dsc_signf(gi) * sqrtf(s.threshold * v[i]);
        m[i] = s.beta1 * m[i] + s.one_minus_beta1 * gi;              /* 2.4 moments */
        v[i] = s.beta2 * v[i] + s.one_minus_beta2 * gi * gi;
        float denom = sqrtf(v[i]) + s.eps;                            /* 2.5 */
        p[i] = p[i] - s.step * (m[i] / denom);                       /* 2.6-2.7 */
        if (!mask && s.wd_step != 0.0f) p[i] = p[i] - s.wd_step * p[i]; /* 2.8 */
    }
}

/* Fast: one fused pass over per-thread ranges. The body is written once;
 * clipping, weight decay and the mask are inlined as constants (one loop
 * per combination, each vectorized); the rare reset (once every delta_t
 * steps) is its own zeroing pass before the update. Masked
 * entries are computed and then not stored (a select instead of a branch),
 * which leaves them exactly as they were. */
typedef struct {
    float *p, *m, *v;
    const float *g;
    const uint8_t *mask;
    spam_scalars s;
} spam_job;

DSC_BODY void spam_body(const spam_job *job, size_t lo, size_t hi, const int clip,
                        const int decay, const int masked)
{
    float *restrict p = job->p, *restrict m = job->m, *restrict v = job->v;
    const float *restrict g = job->g;
    const uint8_t *restrict mask = job->mask;
    const float b1 = job->s.beta1, c1 = job->s.one_minus_beta1, b2 = job->s.beta2,
                c2 = job->s.one_minus_beta2, eps = job->s.eps, step = job->s.step,
                thr = job->s.threshold, wd = job->s.wd_step;
    for (size_t i = lo; i < hi; i++) {
        float m0 = m[i], v0 = v[i], p0 = p[i];
        float mi = m0, vi = v0, gi = g[i];
        if (clip) {
            float lim = sqrtf(thr * vi);
            gi = gi * gi > thr * vi ? dsc_signf(gi) * lim : gi;
        }
        mi = b1 * mi + c1 * gi;
        vi = b2 * vi + c2 * gi * gi;
        float pi = p0 - step * (mi / (sqrtf(vi) + eps));
        if (decay) pi = pi - wd * pi;
        if (masked) {
            int on = mask[i] != 0;
            mi = on ? mi : m0;
            vi = on ? vi : v0;
            pi = on ? pi : p0;
        }
        m[i] = mi;
        v[i] = vi;
        p[i] = pi;
    }
}

DSC_WIDE static void spam_range(const void *ctx, size_t lo, size_t hi)
{
    const spam_job *job = ctx;
    const int clip = job->s.clip;
    if (job->mask) { /* sparse parameters take no weight decay */
        if (clip) spam_body(job, lo, hi, 1, 0, 1);
        else spam_body(job, lo, hi, 0, 0, 1);
    } else if (job->s.wd_step != 0.0f) {
        if (clip) spam_body(job, lo, hi, 1, 1, 0);
        else spam_body(job, lo, hi, 0, 1, 0);
    } else {
        if (clip) spam_body(job, lo, hi, 1, 0, 0);
        else spam_body(job, lo, hi, 0, 0, 0);
    }
}

static void spam_step_fast(float *p, const float *g, float *m, float *v, const uint8_t *mask,
                           size_t n, spam_scalars s)
{
    if (s.reset) { /* 2.1: the moments of the entries this step updates */
        for (size_t i = 0; i < n; i++) {
            if (mask && !mask[i]) continue;
            m[i] = 0.0f;
            v[i] = 0.0f;
        }
    }
    spam_job job = {.p = p, .m = m, .v = v, .g = g, .mask = mask, .s = s};
    dsc_parallel_ranges(n, spam_range, &job);
}

static dsc_status step(dsc_group *grp, const dsc_step_ctx *ctx)
{
    int64_t *k0 = grp->slots[GSLOT_K0].data, *c = grp->slots[GSLOT_C].data;
    const double *gh = grp->cur;
    int64_t W = (int64_t)gh[WARMUP_STEPS], D = (int64_t)gh[DELTA_T],
            A = (int64_t)gh[GRAD_ACCU_STEPS];
    if (D < 1) D = 1; /* the key range says so; guards the modulo */
    if (*k0 == 0) *c = W + 1; /* fresh run: the first warmup starts fully open */
    const int64_t k = *k0 + 1;
    double dr = *c >= W ? 0.0
                        : 0.99 * (1.0 + cos(PI * (double)*c / (double)(W + 1))) / 2.0;
    double scale = 1.0 - dr;
    const int reset = k % D == 0;
    const int clip_window = k >= A && k % D >= A;
    for (int j = 0; j < grp->nparams; j++) {
        dsc_param *p = dsc_group_param(grp, j);
        const double *hp = p->hp;
        int64_t *t = p->slots[SLOT_T].data;
        *t += 1;
        double lr = hp[LR], b1 = hp[BETA1], b2 = hp[BETA2];
        double s = lr;
        if (hp[CORRECT_BIAS] != 0)
            s = lr * sqrt(1.0 - pow(b2, (double)*t)) / (1.0 - pow(b1, (double)*t));
        spam_scalars sc = {
            .beta1 = (float)b1, .one_minus_beta1 = (float)(1.0 - b1),
            .beta2 = (float)b2, .one_minus_beta2 = (float)(1.0 - b2),
            .eps = (float)hp[EPS], .step = (float)(s * scale),
            .wd_step = hp[WEIGHT_DECAY] > 0 ? (float)(lr * hp[WEIGHT_DECAY]) : 0.0f,
            .threshold = (float)hp[THRESHOLD],
            .reset = reset, .clip = hp[THRESHOLD] != 0 && clip_window,
        };
        const uint8_t *mask = p->nslots > SLOT_MASK ? p->slots[SLOT_MASK].data : NULL;
        float *m = p->slots[SLOT_M].data, *v = p->slots[SLOT_V].data;
        if (ctx->reference) spam_step_ref(p->data, p->grad, m, v, mask, p->numel, sc);
        else spam_step_fast(p->data, p->grad, m, v, mask, p->numel, sc);
    }
    *k0 += 1;
    *c += 1;
    if ((*k0 + 1) % D == 0) {
        *c = 0; /* the next step resets the moments and starts a new warmup */
        for (int j = 0; j < grp->nparams; j++) {
            dsc_param *p = dsc_group_param(grp, j);
            if (p->nslots > SLOT_MASK) redraw_mask(p, p->hp[DENSITY]);
        }
    }
    return DSC_OK;
}

const dsc_family dsc_family_spam = {
    .info = {
        .name = "spam",
        .summary = "Adam with momentum reset, spike clipping and warmup after resets (SPAM)",
        .paper = "Huang et al., SPAM: Spike-Aware Adam with Momentum Reset for Stable LLM "
                 "Training, ICLR 2025 (arXiv 2501.06842)",
        .source = "TianjinYellow/SPAM-Optimizer galore_torch/SPAM.py "
                  "@e8185fbe695fdc449953b4a1f96121df5bf0d268",
        .nkeys = NKEYS, .keys = keys, .matrix = 0,
    },
    .plan_param = plan_param, .plan_group = plan_group, .init_param = init_param,
    .step = step,
};
